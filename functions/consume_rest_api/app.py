"""consume-rest-api step of the order flow: POST the order document to the flow's URL.

Errors, retries and the order's failure are handled as for every plain step: see
:mod:`printflow.steps.plain`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from printflow.cold_start import ColdStart
from printflow.observability import logger, metrics, tracer
from printflow.steps.context import parse_step_event
from printflow.steps.plain import PlainStepNames, run_plain_step
from printflow.steps.rest import RestDelivery
from printflow.steps.settings import StepSettings
from printflow.steps.wiring import build_rest_step, build_step_completion

STEP_TYPE = "consume-rest-api"
SETTINGS = StepSettings.from_env()
NAMES = PlainStepNames("rest delivery", "RestDeliveriesRetried", "RestDeliveriesFailed")
step = ColdStart(lambda: build_rest_step(SETTINGS))
completion = ColdStart(lambda: build_step_completion(SETTINGS))


def delivered(delivery: RestDelivery) -> dict[str, Any]:
    logger.info("rest delivery accepted", extra={"status": delivery.status})
    metrics.add_metric(name="RestDeliveries", unit="Count", value=1)
    return {"status": delivery.status, "delivery": delivery.delivery_id}


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer().capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    invocation = parse_step_event(event, expected_type=STEP_TYPE)
    logger.append_keys(order_key=str(invocation.order), step=invocation.step_id)
    return run_plain_step(
        invocation,
        NAMES,
        completion,
        lambda: step().run(invocation, remaining_s=context.get_remaining_time_in_millis() / 1000),
        delivered,
    )
