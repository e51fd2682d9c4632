"""send-email step of the order flow: render the step's templates and send them with SES.

Step errors propagate on purpose: Lambda reports the exception's class name as
``errorType``, which the compiled flow's ``Retry`` (``StepRetryable``) and ``Catch``
(everything else) match. Recipients are never logged.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from printflow.errors import StepFailed, StepRetryable
from printflow.observability import logger, metrics, tracer
from printflow.steps.completion import ORDER_FAILED_ANSWER, StepCompletion
from printflow.steps.context import parse_step_event
from printflow.steps.email import EmailStep
from printflow.steps.settings import StepSettings
from printflow.steps.wiring import build_email_step, build_step_completion

STEP_TYPE = "send-email"
SETTINGS = StepSettings.from_env(email=True)
_step: EmailStep | None = None
_completion: StepCompletion | None = None


def step() -> EmailStep:
    global _step
    if _step is None:
        _step = build_email_step(SETTINGS)
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
        sent = step().run(invocation)
        # The step's status is part of its work: no status state follows it in the flow.
        completion().step_done(invocation)
    except StepRetryable as exc:
        logger.warning("email will be retried", extra={"reason": str(exc)})
        metrics.add_metric(name="EmailsRetried", unit="Count", value=1)
        raise
    except StepFailed as exc:
        logger.warning("email failed", extra={"reason": str(exc)})
        metrics.add_metric(name="EmailsFailed", unit="Count", value=1)
        if not completion().order_failed(invocation, exc):
            raise
        return ORDER_FAILED_ANSWER
    except Exception as exc:
        if not invocation.fails_own_task:
            raise
        # A step that fails its own task catches only known error names (not its own
        # OrderFailed): an unexpected one becomes a step failure, so the order is marked.
        raise StepFailed(f"{type(exc).__name__}: {exc}") from exc
    if sent.outcome == "may have been sent":
        logger.warning(
            "email may have been sent: an earlier attempt stopped between claiming and "
            "recording it; not sending again"
        )
        metrics.add_metric(name="EmailsMaybeSent", unit="Count", value=1)
    elif sent.outcome == "already sent":
        logger.info("email already sent by an earlier attempt")
    else:
        logger.info("email sent", extra={"recipients": sent.recipient_count})
        metrics.add_metric(name="EmailsSent", unit="Count", value=1)
    return {
        "messageId": sent.message_id,
        "recipients": sent.recipient_count,
        "outcome": sent.outcome,
    }
