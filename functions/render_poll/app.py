"""Poll-queue consumer: each message is a render job's poll timer that has fired.

Polls every due job of the batch concurrently, sets each one's next timer and queues the
downloads of finished jobs. A malformed message is reported as a batch item failure, so its
deliveries run out and the queue moves it to its dead-letter queue.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from printflow.cold_start import ColdStart
from printflow.observability import logger, metrics, tracer
from printflow.render.run_metrics import run_metrics
from printflow.render.timers import TimerBatch, fire_timers
from printflow.render.wiring import build_poller, provider_registry
from printflow.settings import RenderSettings

SETTINGS = RenderSettings.from_env()
# Kept across invocations: it caches provider credentials and OAuth tokens.
registry = ColdStart(lambda: provider_registry(SETTINGS))


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer().capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    batch = TimerBatch.from_event(event)
    for message_id in batch.malformed:
        logger.error("malformed poll timer", extra={"message_id": message_id})
    report = asyncio.run(
        fire_timers(
            lambda: build_poller(SETTINGS, registry()),
            batch.timers,
            lambda: context.get_remaining_time_in_millis() / 1000,
        )
    )
    for name, value in (
        ("RenderPolls", report.polls),
        ("RenderJobsFinished", report.finished),
        ("RenderJobsFailed", report.failed),
        ("PollTimersSkipped", report.timers_skipped),
    ):
        metrics.add_metric(name=name, unit="Count", value=value)
    # Operations metrics (alarms, dashboard): see printflow.render.run_metrics.
    for metric, unit, amount in run_metrics(report, None):
        metrics.add_metric(name=metric, unit=unit, value=amount)
    logger.info("poll timers fired", extra={"poll": report.to_dict()})
    # Lambda reads batchItemFailures only; the report is for whoever invokes it directly.
    return {**batch.response(), "poll": report.to_dict()}
