"""A step's last act: write its ``successStatus``, and end a failed flow when it is the end.

The compiled flow has one state per step (see :mod:`printflow.flows.compiler`): no status
states follow the Task states, because every state transition is billed. So each step
writes its own status once its work is done:

- a Lambda step (REST, email) here, after its work succeeded;
- a render step in the download function, with the artifacts, when it completes the task
  token (:meth:`printflow.adapters.order_table.OrderTable.set_artifacts`).

A step reached through ``onError`` also records the error it was reached with
(``{step, error, cause, at}``) in the same write. A step that ends the flow after an error
(``endsFlowFailed``) runs as a callback task and fails it with ``OrderFailed`` and the
original ``Error: Cause``: the execution fails as it did when a Fail state followed, without
the Fail state's transition.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from printflow.adapters.order_table import OrderTable, StepStatus
from printflow.adapters.task_tokens import TaskTokens
from printflow.errors import StepFailed
from printflow.flows.compiler import FAILED_EXECUTION_ERROR
from printflow.steps.context import StepInvocation

# The execution's error when an order took its error path, as the compiler's Fail state has it.
ORDER_FAILED_ERROR = FAILED_EXECUTION_ERROR


def iso_now(clock: Callable[[], datetime] | None = None) -> str:
    """UTC, millisecond precision, ``Z``: the shape of Step Functions' ``EnteredTime``."""
    now = clock() if clock is not None else datetime.now(UTC)
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def step_status(invocation: StepInvocation, at: str) -> StepStatus:
    """The status write of ``invocation`` (with the error record on an error path)."""
    error = None
    if invocation.error is not None:
        error = {
            "step": invocation.error.step or "",
            "error": invocation.error.error,
            "cause": invocation.error.raw_cause or invocation.error.cause,
            "at": at,
        }
    return StepStatus(
        step_id=invocation.step_id,
        status=invocation.success_status,
        at=at,
        run_id=invocation.delivery_id,
        error=error,
    )


class StepCompletion:
    """Records a finished step on its order (and ends a failed flow when asked to)."""

    def __init__(
        self,
        table: OrderTable,
        tokens: TaskTokens | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._table = table
        self._tokens = tokens
        self._clock = clock

    def step_done(self, invocation: StepInvocation) -> None:
        """Write the step's status; fail its task with ``OrderFailed`` if it ends the flow.

        An exception here fails the step like any other: the flow's Retry/Catch apply.
        """
        self._table.record_step_status(
            invocation.order, step_status(invocation, iso_now(self._clock))
        )
        if not invocation.ends_flow_failed:
            return
        if self._tokens is None or invocation.task_token is None:
            raise StepFailed(f"step {invocation.step_id!r} ends the flow but has no task token")
        error = invocation.error
        cause = f"{error.error}: {error.raw_cause}" if error else "the order took its error path"
        self._tokens.fail(invocation.task_token, ORDER_FAILED_ERROR, cause)
