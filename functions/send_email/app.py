"""send-email step of the order flow: render the step's templates and send them with SES.

Errors, retries and the order's failure are handled as for every plain step: see
:mod:`printflow.steps.plain`. Recipients are never logged.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from printflow.cold_start import ColdStart
from printflow.observability import logger, metrics, tracer
from printflow.steps.context import parse_step_event
from printflow.steps.email import SentEmail
from printflow.steps.plain import PlainStepNames, run_plain_step
from printflow.steps.settings import StepSettings
from printflow.steps.wiring import build_email_step, build_step_completion

STEP_TYPE = "send-email"
SETTINGS = StepSettings.from_env(email=True)
NAMES = PlainStepNames("email", "EmailsRetried", "EmailsFailed")
step = ColdStart(lambda: build_email_step(SETTINGS))
completion = ColdStart(lambda: build_step_completion(SETTINGS))


def sent(email: SentEmail) -> dict[str, Any]:
    if email.outcome == "may have been sent":
        logger.warning(
            "email may have been sent: an earlier attempt stopped between claiming and "
            "recording it; not sending again"
        )
        metrics.add_metric(name="EmailsMaybeSent", unit="Count", value=1)
    elif email.outcome == "already sent":
        logger.info("email already sent by an earlier attempt")
    else:
        logger.info("email sent", extra={"recipients": email.recipient_count})
        metrics.add_metric(name="EmailsSent", unit="Count", value=1)
    return {
        "messageId": email.message_id,
        "recipients": email.recipient_count,
        "outcome": email.outcome,
    }


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer().capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    invocation = parse_step_event(event, expected_type=STEP_TYPE)
    logger.append_keys(order_key=str(invocation.order), step=invocation.step_id)
    return run_plain_step(invocation, NAMES, completion, lambda: step().run(invocation), sent)
