"""Download queue consumer: stream a render job's files into S3, complete the order.

Partial batch failures: a message that must be retried is reported in
``batchItemFailures`` and made visible again after a backoff; the others are deleted.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from printflow.adapters import aws
from printflow.adapters.download_queue import DownloadQueue, parse_download_message
from printflow.download.service import DownloadService, Outcome
from printflow.download.wiring import build_download_service
from printflow.observability import logger, metrics, tracer
from printflow.providers.registry import ProviderRegistry
from printflow.render.wiring import provider_registry
from printflow.settings import DownloadSettings

SETTINGS = DownloadSettings.from_env()
# Stop starting a file when less than this is left: a cut-off upload is aborted anyway.
SAFETY_S = 15.0
# Every record of a batch may ask to be retried: that is a normal answer, not a crash.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
_service: DownloadService | None = None
_registry: ProviderRegistry | None = None
_queue: DownloadQueue | None = None
_deadline = 0.0


class DownloadRetry(Exception):
    """The message goes back to the queue (reported as a batch item failure)."""


def service() -> DownloadService:
    global _service, _registry
    if _service is None:
        _registry = provider_registry(SETTINGS.render)
        _service = build_download_service(SETTINGS, _registry)
    return _service


def queue() -> DownloadQueue:
    global _queue
    if _queue is None:
        _queue = DownloadQueue(aws.client("sqs"), SETTINGS.render.require_queue())
    return _queue


def retry_delay(receive_count: int, retry_after_s: float | None) -> float:
    """30 s, 60 s, 120 s, ... capped at 15 minutes; never sooner than the provider asked."""
    backoff = min(900.0, 30.0 * 2.0 ** max(0, receive_count - 1))
    return float(max(backoff, retry_after_s or 0.0))


def record_handler(record: SQSRecord) -> None:
    try:
        key, job_id = parse_download_message(record.body)
    except (ValueError, KeyError, TypeError) as exc:
        # A poison message: visible again at once, so its deliveries run out in seconds and
        # the queue moves it to the dead-letter queue, where it can be inspected.
        logger.error("malformed download message", extra={"message_id": record.message_id})
        queue().retry_later(record.receipt_handle, 0)
        raise DownloadRetry("malformed download message") from exc
    receives = int(record.attributes.approximate_receive_count or 1)
    logger.append_keys(order_key=str(key), job=job_id)
    result = service().download(
        key, job_id, last_attempt=receives >= SETTINGS.max_receives, deadline=_deadline
    )
    metrics.add_metric(name=f"Downloads{result.outcome.value.title()}", unit="Count", value=1)
    if result.outcome is Outcome.RETRY:
        queue().retry_later(record.receipt_handle, retry_delay(receives, result.retry_after_s))
        raise DownloadRetry(result.detail)
    logger.info(
        "download handled", extra={"outcome": result.outcome.value, "detail": result.detail}
    )


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer().capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    global _deadline
    _deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - SAFETY_S
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
