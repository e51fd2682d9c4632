"""Download queue consumer: stream a render job's files into S3, complete the order.

Partial batch failures: a message that must be retried is reported in
``batchItemFailures`` and made visible again after a backoff; the others are deleted. The
policy (backoff, poison messages, the dead-letter queue) is
:mod:`printflow.download.redelivery`'s.
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

from printflow.cold_start import ColdStart
from printflow.download.redelivery import QueuedDownload
from printflow.download.wiring import build_download_redelivery
from printflow.observability import logger, metrics, tracer
from printflow.render.wiring import provider_registry
from printflow.settings import DownloadSettings

SETTINGS = DownloadSettings.from_env()
# Stop starting a file when less than this is left: a cut-off upload is aborted anyway.
SAFETY_S = 15.0
redelivery = ColdStart(
    lambda: build_download_redelivery(SETTINGS, provider_registry(SETTINGS.render))
)


def record_handler(record: SQSRecord, deadline: float) -> None:
    message = QueuedDownload(
        body=record.body,
        message_id=record.message_id,
        receipt_handle=record.receipt_handle,
        receive_count=int(record.attributes.approximate_receive_count or 1),
    )
    redelivery().handle(message, deadline=deadline)


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
