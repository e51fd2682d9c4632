"""Scheduled every minute, the safety net: start stuck orders, rescue render jobs whose poll
timer was lost (due for longer than ``RESCUE_AFTER_SECONDS``) and count them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from printflow.cold_start import ColdStart
from printflow.observability import logger, metrics, tracer
from printflow.render.poller import PollReport
from printflow.render.run_metrics import oldest_due_age, raise_if_run_failed, run_metrics
from printflow.render.wiring import (
    build_job_table,
    build_poller,
    build_sweep,
    provider_registry,
)
from printflow.settings import RenderSettings

SETTINGS = RenderSettings.from_env()
# Kept across invocations: it caches provider credentials and OAuth tokens.
registry = ColdStart(lambda: provider_registry(SETTINGS))
sweep = ColdStart(lambda: build_sweep(SETTINGS))
jobs = ColdStart(lambda: build_job_table(SETTINGS))


async def poll(remaining_s: Any) -> PollReport:
    poller, directory = build_poller(SETTINGS, registry(), rescue=True)
    try:
        return await poller.sweep(remaining_s)
    finally:
        await directory.aclose()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer().capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    swept = sweep().run()
    report = asyncio.run(poll(lambda: context.get_remaining_time_in_millis() / 1000))
    for name, value in (
        ("RenderPolls", report.polls),
        ("RenderJobsFinished", report.finished),
        ("RenderJobsFailed", report.failed),
        ("RenderJobsRescued", report.rescued),
        ("OrdersRestarted", swept.started),
    ):
        metrics.add_metric(name=name, unit="Count", value=value)
    if report.rescued:
        logger.warning(
            "render jobs rescued: their poll timers were lost", extra={"rescued": report.rescued}
        )
    # Operations metrics (alarms, dashboard): see printflow.render.run_metrics.
    for metric, unit, amount in run_metrics(report, oldest_due_age_now()):
        metrics.add_metric(name=metric, unit=unit, value=amount)
    if report.polls or swept.checked:
        logger.info("poll run", extra={"sweep": swept.to_dict(), "poll": report.to_dict()})
    raise_if_run_failed(report)
    return {"sweep": swept.to_dict(), "poll": report.to_dict()}


def oldest_due_age_now() -> float:
    now = time.time()
    return oldest_due_age((jobs().oldest_due_at(s, now) for s in range(SETTINGS.due_shards)), now)
