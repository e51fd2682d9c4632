"""Scheduled every minute, the safety net: start stuck orders, rescue render jobs whose poll
timer was lost (due for longer than ``RESCUE_AFTER_SECONDS``) and count them."""

from __future__ import annotations

import asyncio
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from printflow.intake.sweep import StuckOrderSweep
from printflow.observability import logger, metrics, tracer
from printflow.providers.registry import ProviderRegistry
from printflow.render.poller import PollReport
from printflow.render.wiring import build_poller, build_sweep, provider_registry
from printflow.settings import RenderSettings

SETTINGS = RenderSettings.from_env()
_registry: ProviderRegistry | None = None
_sweep: StuckOrderSweep | None = None


def registry() -> ProviderRegistry:
    # Kept across invocations: it caches provider credentials and OAuth tokens.
    global _registry
    if _registry is None:
        _registry = provider_registry(SETTINGS)
    return _registry


def sweep() -> StuckOrderSweep:
    global _sweep
    if _sweep is None:
        _sweep = build_sweep(SETTINGS)
    return _sweep


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
    if report.polls or swept.checked:
        logger.info("poll run", extra={"sweep": swept.to_dict(), "poll": report.to_dict()})
    return {"sweep": swept.to_dict(), "poll": report.to_dict()}
