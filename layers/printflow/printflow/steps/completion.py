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

A Lambda step without ``onError`` (``failsOrder``) also runs as a callback task: it completes
the task when its work is done, and when its work failed for good it marks the order
``Failed`` (status, error, history entry: one write, as the compiler's ``s.failed`` state
did) and fails the task with ``OrderFailed`` and ``<Error>: <cause>``, so no record state and
no Fail state follow it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from printflow.adapters.order_table import OrderTable, StepStatus
from printflow.adapters.task_tokens import TaskTokens
from printflow.errors import StepFailed, StepRetryable
from printflow.flows.compiler import FAILED_EXECUTION_ERROR, FAILED_STATUS
from printflow.steps.context import StepInvocation

# The execution's error when an order took its error path, as the compiler's Fail state has it.
ORDER_FAILED_ERROR = FAILED_EXECUTION_ERROR
# What a step Lambda answers when it failed the order itself (its callback task ignores it).
ORDER_FAILED_ANSWER = {"orderFailed": True}


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
        # Per execution and step (not the delivery id, which an order retry keeps): a
        # retry's status writes must land even where the first execution wrote them.
        run_id=invocation.run_id,
        error=error,
    )


def fail_flow_cause(invocation: StepInvocation) -> str | None:
    """The ``OrderFailed`` cause of a step that ends a failed flow (the error it was reached
    with, as the compiler's Fail state put it); ``None`` for every other step."""
    if not invocation.ends_flow_failed:
        return None
    error = invocation.error
    return f"{error.error}: {error.raw_cause}" if error else "the order took its error path"


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
        cause = fail_flow_cause(invocation)
        if cause is not None:
            self._fail_task(invocation, cause)
        elif invocation.fails_order:
            self._task_tokens(invocation).succeed(self._token(invocation), {})

    def order_failed(self, invocation: StepInvocation, failure: StepFailed) -> bool:
        """The step's work failed for good: ``True`` when the step marked the order ``Failed``
        and failed its task with ``OrderFailed`` (a step without onError), ``False`` when the
        flow's Catch takes the failure to the step's onError (re-raise it).
        """
        if not invocation.fails_order:
            return False
        try:
            self._mark_failed(invocation, failure)
        except StepFailed:
            raise
        except Exception as exc:
            # Not marked yet: the step's Retry runs it again (its work is idempotent per
            # order and step), and once retries are spent its ``.failed`` state marks it.
            raise StepRetryable(f"could not mark the order failed: {exc}") from exc
        return True

    def _mark_failed(self, invocation: StepInvocation, failure: StepFailed) -> None:
        at = iso_now(self._clock)
        error_name = type(failure).__name__
        self._table.record_step_status(
            invocation.order,
            StepStatus(
                step_id=invocation.step_id,
                status=FAILED_STATUS,
                at=at,
                # Not the success write's run id: a step whose status write landed before
                # its work failed (an email step after an error) still records the failure.
                run_id=f"failed:{invocation.run_id}",
                error={
                    "step": invocation.step_id,
                    "error": error_name,
                    "cause": str(failure),
                    "at": at,
                },
            ),
        )
        self._fail_task(invocation, f"{error_name}: {failure}")

    def _fail_task(self, invocation: StepInvocation, cause: str) -> None:
        self._task_tokens(invocation).fail(self._token(invocation), ORDER_FAILED_ERROR, cause)

    def _task_tokens(self, invocation: StepInvocation) -> TaskTokens:
        if self._tokens is None:
            raise StepFailed(f"step {invocation.step_id!r} ends its own task but has no client")
        return self._tokens

    @staticmethod
    def _token(invocation: StepInvocation) -> str:
        if invocation.task_token is None:
            raise StepFailed(f"step {invocation.step_id!r} ends its own task but has no token")
        return invocation.task_token
