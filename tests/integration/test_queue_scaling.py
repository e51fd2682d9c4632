"""The local SQS event-source mapping scales as Lambda's does: five batches in flight at
first, up to five more a second while receives come back full, never above the mapping's
MaximumConcurrency, and back to five once the queue is empty."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from printflow_tools.localstack.fidelity import make_moto_behave_like_aws
from printflow_tools.localstack.triggers import QueueMapping, QueuePoller

MESSAGES = 600


@pytest.fixture
def sqs() -> Iterator[Any]:
    make_moto_behave_like_aws()
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


class SlowFunction:
    """A handler that takes 0.3 s a batch and notes the most batches it had at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.bodies: list[str] = []

    def __call__(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(0.3)
        with self._lock:
            self.in_flight -= 1
            self.bodies.extend(record["body"] for record in event["Records"])
        return {"batchItemFailures": []}


def run(sqs: Any, maximum: int) -> tuple[SlowFunction, list[int]]:
    url = sqs.create_queue(QueueName=f"timers-{maximum}")["QueueUrl"]
    for start in range(0, MESSAGES, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "MessageBody": str(n)} for n in range(start, start + 10)],
        )
    mapping = QueueMapping(
        function="Poll", queue_url=url, queue_arn="arn:aws:sqs:us-east-1:123456789012:t",
        batch_size=10, report_batch_item_failures=True, concurrency=5,
        maximum_concurrency=maximum,
    )  # fmt: skip
    function = SlowFunction()
    poller = QueuePoller([mapping], function, sqs)
    pollers: list[int] = []
    poller.start()
    try:
        deadline = time.monotonic() + 60
        while len(set(function.bodies)) < MESSAGES and time.monotonic() < deadline:
            pollers.append(poller.running(mapping))
            time.sleep(0.1)
        deadline = time.monotonic() + 10
        while poller.running(mapping) > 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        pollers.append(poller.running(mapping))
    finally:
        poller.stop()
    return function, pollers


def test_a_backlog_adds_batches_to_the_maximum_and_an_empty_queue_takes_them_back(
    sqs: Any,
) -> None:
    function, pollers = run(sqs, maximum=12)

    assert set(function.bodies) == {str(n) for n in range(MESSAGES)}
    assert pollers[0] <= 10  # five to begin with, five more after a second at most
    assert max(pollers) == 12  # scaled up while receives came back full, to the maximum
    assert function.most_in_flight <= 12
    assert pollers[-1] == 5  # and back to five


def test_five_batches_stay_five_when_the_maximum_says_so(sqs: Any) -> None:
    function, pollers = run(sqs, maximum=5)

    assert set(function.bodies) == {str(n) for n in range(MESSAGES)}
    assert max(pollers) == 5
    assert function.most_in_flight <= 5
