"""consume-rest-api step of the order flow: POST the order document to the flow's URL.

Step errors propagate on purpose: Lambda reports the exception's class name as
``errorType``, which the compiled flow's ``Retry`` (``StepRetryable``) and ``Catch``
(everything else) match.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from printflow.errors import StepFailed, StepRetryable
from printflow.observability import logger, metrics, tracer
from printflow.steps.completion import ORDER_FAILED_ANSWER, StepCompletion
from printflow.steps.context import parse_step_event
from printflow.steps.rest import RestStep
from printflow.steps.settings import StepSettings
from printflow.steps.wiring import build_rest_step, build_step_completion

STEP_TYPE = "consume-rest-api"
SETTINGS = StepSettings.from_env()
_step: RestStep | None = None
_completion: StepCompletion | None = None


def step() -> RestStep:
    # Built on the first invocation, not at import, like the webhook's service.
    global _step
    if _step is None:
        _step = build_rest_step(SETTINGS)
    return _step


def completion() -> StepCompletion:
    global _completion
    if _completion is None:
        _completion = build_step_completion(SETTINGS)
    return _completion


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer().capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    invocation = parse_step_event(event, expected_type=STEP_TYPE)
    logger.append_keys(order_key=str(invocation.order), step=invocation.step_id)
    try:
        delivery = step().run(invocation, remaining_s=context.get_remaining_time_in_millis() / 1000)
        # The step's status is part of its work: no status state follows it in the flow.
        completion().step_done(invocation)
    except StepRetryable as exc:
        logger.warning("rest delivery will be retried", extra={"reason": str(exc)})
        metrics.add_metric(name="RestDeliveriesRetried", unit="Count", value=1)
        raise
    except StepFailed as exc:
        logger.warning("rest delivery failed", extra={"reason": str(exc)})
        metrics.add_metric(name="RestDeliveriesFailed", unit="Count", value=1)
        if not completion().order_failed(invocation, exc):
            raise
        return ORDER_FAILED_ANSWER
    except Exception as exc:
        if not invocation.fails_own_task:
            raise
        # A step that fails its own task catches only known error names (not its own
        # OrderFailed): an unexpected one becomes a step failure, so the order is marked.
        raise StepFailed(f"{type(exc).__name__}: {exc}") from exc
    logger.info("rest delivery accepted", extra={"status": delivery.status})
    metrics.add_metric(name="RestDeliveries", unit="Count", value=1)
    return {"status": delivery.status, "delivery": delivery.delivery_id}
