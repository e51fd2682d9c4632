"""One download-queue message: download its job, or decide when the queue delivers it again.

Order of work per message:

1. parse it; a malformed one (poison) is made visible again at once and reported as failed,
   so its deliveries run out in seconds and the queue moves it to the dead-letter queue,
   where it can be inspected;
2. :meth:`DownloadService.download` the job (stopping before ``deadline``);
3. a ``retry`` answer is delivered again after :func:`retry_delay`: through the message's
   visibility timeout (reported as failed, :class:`DownloadRetry`) or, once one more failed
   delivery would move it to the dead-letter queue, as a new message (the old one is then
   deleted as handled). Every other answer deletes the message. A transient AWS failure
   (a timeout, throttling, a 5xx, from any step of the download or the order's completion)
   comes back after :func:`retry_delay` too, not after the queue's visibility timeout.

The dead-letter queue is for messages that crash the function: a transient failure goes on
until the render step's timeout, after which the service fails the step. A crash after step 3
sent a new message but before the batch answered leaves two messages for one job: the
download is idempotent (a file already stored is not uploaded again), so the second costs a
delivery, not a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass

from printflow.adapters import aws
from printflow.adapters.download_queue import DownloadQueue, parse_download_message
from printflow.download.service import DownloadService, Outcome
from printflow.observability import logger, metrics

# The backoff: 2 s, 4 s, 8 s, ... capped at a minute.
FIRST_DELAY_S = 2.0
MAX_DELAY_S = 60.0


class DownloadRetry(Exception):
    """The message goes back to the queue (reported as a batch item failure)."""


@dataclass(frozen=True, slots=True)
class QueuedDownload:
    """What the queue told us about one message."""

    body: str
    message_id: str
    receipt_handle: str
    receive_count: int


def retry_delay(receive_count: int, retry_after_s: float | None) -> float:
    """2 s, 4 s, 8 s, ... capped at a minute; never sooner than the provider asked.

    Short, because a transient error is usually one bad answer (the providers' own
    ``Retry-After`` is a second or two) and an order waits on it; the retries go on until
    the render step's timeout, so a long outage is waited out, a minute at a time.
    """
    backoff = min(MAX_DELAY_S, FIRST_DELAY_S * 2.0 ** max(0, receive_count - 1))
    return float(max(backoff, retry_after_s or 0.0))


class DownloadRedelivery:
    """Handles download messages: the service's work plus the queue's redelivery policy."""

    def __init__(self, service: DownloadService, queue: DownloadQueue, *, max_receives: int):
        self._service = service
        self._queue = queue
        # The queue's maxReceiveCount: the delivery after this one would go to the DLQ.
        self._max_receives = max_receives

    def handle(self, message: QueuedDownload, *, deadline: float) -> None:
        """Download the message's job; :class:`DownloadRetry` when the message must come back.

        ``deadline`` is a ``time.monotonic()`` value: no file is started after it.
        """
        try:
            key, job_id = parse_download_message(message.body)
        except (ValueError, KeyError, TypeError) as exc:
            logger.error("malformed download message", extra={"message_id": message.message_id})
            self._queue.retry_later(message.receipt_handle, 0)
            raise DownloadRetry("malformed download message") from exc
        receives = message.receive_count
        logger.append_keys(order_key=str(key), job=job_id)
        try:
            result = self._service.download(key, job_id, deadline=deadline)
        except Exception as exc:
            if not aws.is_transient(exc):
                raise  # a crash: the queue's visibility timeout, then the dead-letter queue
            # An AWS outage (DynamoDB, S3, Step Functions) is a transient failure like the
            # provider's: back off, do not wait out the queue's 90-minute visibility timeout.
            logger.warning("AWS unavailable; download will be retried", extra={"reason": str(exc)})
            self._come_back(message, retry_delay(receives, None), f"AWS unavailable: {exc}")
            return
        metrics.add_metric(name=f"Downloads{result.outcome.value.title()}", unit="Count", value=1)
        if result.outcome is Outcome.RETRY:
            self._come_back(message, retry_delay(receives, result.retry_after_s), result.detail)
            return
        logger.info(
            "download handled", extra={"outcome": result.outcome.value, "detail": result.detail}
        )

    def _come_back(self, message: QueuedDownload, delay: float, detail: str) -> None:
        """Deliver ``message`` again after ``delay``: through its visibility timeout
        (:class:`DownloadRetry`), or as a new message once one more failed delivery would
        move it to the dead-letter queue (the old one is then deleted as handled)."""
        if message.receive_count >= self._max_receives:
            self._queue.send_again(message.body, delay)
            logger.info("download message sent again", extra={"receives": message.receive_count})
            return
        self._queue.retry_later(message.receipt_handle, delay)
        raise DownloadRetry(detail)
