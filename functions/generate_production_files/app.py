"""generate-production-files step: start the order's render work and record its jobs.

A ``.waitForTaskToken`` task: this function returns as soon as the jobs are recorded; the
download function (success) or the poller (failure) completes the token later.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from printflow.cold_start import ColdStart
from printflow.errors import StepFailed
from printflow.observability import logger, metrics, tracer
from printflow.render.start import (
    DEFAULT_RENDER_TIMEOUT_S,
    RenderRequest,
    render_options,
)
from printflow.render.wiring import build_render_starter
from printflow.settings import RenderSettings
from printflow.steps.completion import fail_flow_cause, iso_now, step_status
from printflow.steps.context import parse_step_event
from printflow.steps.transient import aws_outages_are_retried

STEP_TYPE = "generate-production-files"
SETTINGS = RenderSettings.from_env()
starter = ColdStart(lambda: build_render_starter(SETTINGS))


def render_request(event: dict[str, Any], context: LambdaContext) -> RenderRequest:
    invocation = parse_step_event(event, expected_type=STEP_TYPE)
    token = event.get("taskToken")
    if not isinstance(token, str) or not token:
        raise StepFailed("step event: 'taskToken' is required (a .waitForTaskToken task)")
    timeout = (event.get("step") or {}).get("timeoutSeconds") or DEFAULT_RENDER_TIMEOUT_S
    return RenderRequest(
        invocation.order,
        invocation.step_id,
        token,
        int(timeout),
        remaining_s=lambda: context.get_remaining_time_in_millis() / 1000,
        file_format=render_options(invocation).file_format,
        success_status=invocation.success_status,
        order_retry=invocation.first_execution is not None,
        fail_flow_cause=fail_flow_cause(invocation),
        error=step_status(invocation, iso_now()).error,
        run_id=invocation.run_id,
    )


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer().capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = render_request(event, context)
    logger.append_keys(order_key=str(request.order), step=request.step_id)
    with aws_outages_are_retried():
        started = starter().start(request)
    logger.info("render started", extra=started.to_dict())
    metrics.add_metric(name="RenderJobsStarted", unit="Count", value=started.jobs)
    return started.to_dict()
