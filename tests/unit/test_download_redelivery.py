"""The download queue's redelivery policy: backoff, poison messages, the dead-letter queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from printflow.domain.order import OrderKey
from printflow.download.redelivery import (
    DownloadRedelivery,
    DownloadRetry,
    QueuedDownload,
    retry_delay,
)
from printflow.download.service import DownloadResult, Outcome
from printflow.observability import metrics

BODY = json.dumps({"storefrontId": "s", "orderId": "1", "jobId": "j"})


@pytest.fixture(autouse=True)
def clean_metrics() -> Iterator[None]:
    # Powertools keeps metrics in state shared by every Metrics object: leave none behind.
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


class Service:
    def __init__(self, result: DownloadResult) -> None:
        self.result = result
        self.calls: list[tuple[OrderKey, str, float]] = []

    def download(self, key: OrderKey, job_id: str, *, deadline: float) -> DownloadResult:
        self.calls.append((key, job_id, deadline))
        return self.result


class Queue:
    def __init__(self) -> None:
        self.visible_again: list[tuple[str, float]] = []
        self.sent: list[tuple[str, float]] = []

    def retry_later(self, receipt_handle: str, delay_s: float) -> None:
        self.visible_again.append((receipt_handle, delay_s))

    def send_again(self, body: str, delay_s: float) -> None:
        self.sent.append((body, delay_s))


def message(body: str = BODY, receives: int = 1) -> QueuedDownload:
    return QueuedDownload(body, "m-1", "rh-1", receives)


def consumer(result: DownloadResult, max_receives: int = 5) -> tuple[Any, Service, Queue]:
    service, queue = Service(result), Queue()
    redelivery = DownloadRedelivery(service, queue, max_receives=max_receives)
    return redelivery, service, queue


@pytest.mark.parametrize(
    ("receives", "retry_after", "expected"),
    [(1, None, 2.0), (2, None, 4.0), (3, 1.0, 8.0), (9, None, 60.0), (1, 30.0, 30.0)],
)
def test_backoff_doubles_to_a_minute_and_honours_retry_after(
    receives: int, retry_after: float | None, expected: float
) -> None:
    assert retry_delay(receives, retry_after) == expected


def test_the_deadline_reaches_the_service_and_a_done_job_deletes_the_message() -> None:
    redelivery, service, queue = consumer(DownloadResult(Outcome.DONE))
    redelivery.handle(message(), deadline=123.5)
    assert service.calls == [(OrderKey("s", "1"), "j", 123.5)]
    assert "DownloadsDone" in metrics.metric_set
    assert queue.visible_again == [] and queue.sent == []


def test_a_poison_message_comes_back_at_once_without_a_download() -> None:
    redelivery, service, queue = consumer(DownloadResult(Outcome.DONE))
    with pytest.raises(DownloadRetry, match="malformed"):
        redelivery.handle(message("{not json"), deadline=0.0)
    assert queue.visible_again == [("rh-1", 0)]
    assert service.calls == []


def test_a_transient_failure_comes_back_after_the_backoff() -> None:
    redelivery, _, queue = consumer(DownloadResult(Outcome.RETRY, retry_after_s=None, detail="503"))
    with pytest.raises(DownloadRetry, match="503"):
        redelivery.handle(message(receives=2), deadline=0.0)
    assert queue.visible_again == [("rh-1", 4.0)] and queue.sent == []


def test_the_last_delivery_is_sent_again_instead_of_reaching_the_dead_letter_queue() -> None:
    redelivery, _, queue = consumer(DownloadResult(Outcome.RETRY, detail="503"), max_receives=3)
    redelivery.handle(message(receives=3), deadline=0.0)  # handled: no DownloadRetry
    assert queue.sent == [(BODY, 8.0)] and queue.visible_again == []


class FailingService:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def download(self, key: OrderKey, job_id: str, *, deadline: float) -> DownloadResult:
        raise self.error


def failing_consumer(error: Exception, max_receives: int = 5) -> tuple[Any, Queue]:
    queue = Queue()
    return DownloadRedelivery(FailingService(error), queue, max_receives=max_receives), queue  # type: ignore[arg-type]


def test_an_aws_outage_comes_back_after_the_backoff_not_the_visibility_timeout() -> None:
    # The 1,000-order fault run left an order "In progress" for the queue's 90 minutes: its
    # completing download met a read timeout of the loaded local stack and crashed.
    redelivery, queue = failing_consumer(ReadTimeoutError(endpoint_url="http://127.0.0.1/"))
    with pytest.raises(DownloadRetry, match="AWS unavailable"):
        redelivery.handle(message(receives=2), deadline=0.0)
    assert queue.visible_again == [("rh-1", 4.0)] and queue.sent == []

    throttled = ClientError({"Error": {"Code": "ThrottlingException"}}, "SendTaskSuccess")
    redelivery, queue = failing_consumer(throttled, max_receives=3)
    redelivery.handle(message(receives=3), deadline=0.0)  # sent again, never the DLQ
    assert queue.sent == [(BODY, 8.0)] and queue.visible_again == []


def test_a_crash_that_is_not_an_aws_outage_still_reaches_the_dead_letter_queue() -> None:
    redelivery, queue = failing_consumer(KeyError("artifacts"))
    with pytest.raises(KeyError):
        redelivery.handle(message(receives=5), deadline=0.0)
    assert queue.visible_again == [] and queue.sent == []
