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
_service: DownloadService | None = None
_registry: ProviderRegistry | None = None
_queue: DownloadQueue | None = None


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
    """2 s, 4 s, 8 s, ... capped at a minute; never sooner than the provider asked.

    Short, because a transient error is usually one bad answer (the providers' own
    ``Retry-After`` is a second or two) and an order waits on it; the retries go on until
    the render step's timeout, so a long outage is waited out, a minute at a time.
    """
    backoff = min(60.0, 2.0 * 2.0 ** max(0, receive_count - 1))
    return float(max(backoff, retry_after_s or 0.0))


def record_handler(record: SQSRecord, deadline: float) -> None:
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
    result = service().download(key, job_id, deadline=deadline)
    metrics.add_metric(name=f"Downloads{result.outcome.value.title()}", unit="Count", value=1)
    if result.outcome is Outcome.RETRY:
        delay = retry_delay(receives, result.retry_after_s)
        if receives >= SETTINGS.max_receives:
            # One more failed delivery would move it to the dead-letter queue, which is for
            # messages that crash the function: a transient failure goes on as a new message
            # (the service fails the step once the render step's timeout has passed).
            queue().send_again(record.body, delay)
            logger.info("download message sent again", extra={"receives": receives})
            return
        queue().retry_later(record.receipt_handle, delay)
        raise DownloadRetry(result.detail)
    logger.info(
        "download handled", extra={"outcome": result.outcome.value, "detail": result.detail}
    )


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer().capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - SAFETY_S
    # The processor and the deadline belong to this invocation (nothing of a batch is kept
    # in module state, which invocations that share an environment would trample). Every
    # record may ask to be retried: that is a normal answer, not a crash.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(
        event=event,
        record_handler=lambda record: record_handler(record, deadline),
        processor=processor,
        context=context,
    )
    return dict(response)
