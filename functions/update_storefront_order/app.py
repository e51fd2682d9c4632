"""update-storefront-order step of the order flow: tell the shop (tags, status, a note with
the file links) through the storefront's store API.

Errors, retries and the order's failure are handled as for every plain step: see
:mod:`printflow.steps.plain`. Notes and credentials are never logged.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from printflow.cold_start import ColdStart
from printflow.observability import logger, metrics, tracer
from printflow.steps.context import parse_step_event
from printflow.steps.plain import PlainStepNames, run_plain_step
from printflow.steps.settings import StepSettings
from printflow.steps.wiring import build_step_completion, build_write_back_step
from printflow.steps.write_back import WriteBack

STEP_TYPE = "update-storefront-order"
SETTINGS = StepSettings.from_env()
NAMES = PlainStepNames("write-back", "StoreWriteBacksRetried", "StoreWriteBacksFailed")
step = ColdStart(lambda: build_write_back_step(SETTINGS))
completion = ColdStart(lambda: build_step_completion(SETTINGS))


def written(write_back: WriteBack) -> dict[str, Any]:
    logger.info("shop order updated", extra=write_back.to_dict())
    metrics.add_metric(name="StoreWriteBacks", unit="Count", value=1)
    return write_back.to_dict()


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
        written,
    )
