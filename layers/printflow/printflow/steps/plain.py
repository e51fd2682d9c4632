"""Running a plain step: a Lambda task that does its work and answers (no task token).

consume-rest-api, send-email and update-storefront-order share this shape, so their handlers
share this function. Order of work:

1. ``work()`` runs the step (building its service on first use: a build failure is a step
   failure like any other);
2. the step's status is recorded (:meth:`StepCompletion.step_done`): no status state follows
   a plain step in the flow, so its status is part of its work;
3. ``answer(result)`` logs the success, adds its metrics and shapes the task's output.

Errors propagate on purpose (a transient AWS failure as :class:`StepRetryable`, see
:mod:`printflow.steps.transient`): Lambda reports the exception's class name as ``errorType``,
which the compiled flow's ``Retry`` (``StepRetryable``) and ``Catch`` (everything else)
match. A :class:`StepFailed` of a step that fails its own task marks the order failed and
answers :data:`ORDER_FAILED_ANSWER` instead. A crash between 1 and 2 leaves the work done and
the status unrecorded: the flow's retry runs the step again, and each step guards its work
against a second run (see the step's own module).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from printflow.errors import StepFailed, StepRetryable
from printflow.observability import logger, metrics
from printflow.steps.completion import ORDER_FAILED_ANSWER, StepCompletion
from printflow.steps.context import StepInvocation
from printflow.steps.transient import aws_outages_are_retried

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class PlainStepNames:
    """What a step's failures are called in its logs and metrics."""

    # The log lines' subject: "{work} will be retried", "{work} failed".
    work: str
    retried_metric: str
    failed_metric: str


def run_plain_step(
    invocation: StepInvocation,
    names: PlainStepNames,
    completion: Callable[[], StepCompletion],
    work: Callable[[], R],
    answer: Callable[[R], dict[str, Any]],
) -> dict[str, Any]:
    """Run ``work``, record the step's status and return ``answer`` of its result."""
    try:
        with aws_outages_are_retried():
            result = work()
            completion().step_done(invocation)
    except StepRetryable as exc:
        logger.warning(f"{names.work} will be retried", extra={"reason": str(exc)})
        metrics.add_metric(name=names.retried_metric, unit="Count", value=1)
        raise
    except StepFailed as exc:
        logger.warning(f"{names.work} failed", extra={"reason": str(exc)})
        metrics.add_metric(name=names.failed_metric, unit="Count", value=1)
        if not completion().order_failed(invocation, exc):
            raise
        return ORDER_FAILED_ANSWER
    except Exception as exc:
        if not invocation.fails_own_task:
            raise
        # A step that fails its own task catches only known error names (not its own
        # OrderFailed): an unexpected one becomes a step failure, so the order is marked.
        raise StepFailed(f"{type(exc).__name__}: {exc}") from exc
    return answer(result)
