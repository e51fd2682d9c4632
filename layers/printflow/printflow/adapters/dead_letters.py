"""The download dead-letter queue: read its messages without consuming them, move them back."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# Long enough to look at one message and act on it; it reappears if the tool dies.
_INSPECT_VISIBILITY_S = 30


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message_id: str
    body: str
    receipt_handle: str
    receive_count: int
    sent_at_ms: int


class DeadLetterQueue:
    def __init__(self, client: Any, queue_url: str, target_url: str) -> None:
        self._client = client
        self.queue_url = queue_url
        self.target_url = target_url

    def messages(self, limit: int = 1000) -> Iterator[DeadLetter]:
        """Up to ``limit`` messages, each hidden for a short while as it is read.

        SQS has no peek: a message read is invisible to others until its visibility runs
        out (30 s here), then it is back in the queue untouched.
        """
        seen: set[str] = set()
        empty_rounds = 0
        while len(seen) < limit and empty_rounds < 2:
            response = self._client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, limit - len(seen)),
                VisibilityTimeout=_INSPECT_VISIBILITY_S,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            )
            batch = response.get("Messages", [])
            if not batch:
                empty_rounds += 1
                continue
            for message in batch:
                if message["MessageId"] in seen:
                    continue
                seen.add(message["MessageId"])
                attributes = message.get("Attributes", {})
                yield DeadLetter(
                    message_id=message["MessageId"],
                    body=message.get("Body", ""),
                    receipt_handle=message["ReceiptHandle"],
                    receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
                    sent_at_ms=int(attributes.get("SentTimestamp", 0)),
                )

    def send_back(self, letter: DeadLetter) -> None:
        """Put the body on the download queue again, then delete it here (in that order:
        a crash in between leaves a copy in both, which the download handles once)."""
        self._client.send_message(QueueUrl=self.target_url, MessageBody=letter.body)
        self.delete(letter)

    def delete(self, letter: DeadLetter) -> None:
        self._client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=letter.receipt_handle)

    def release(self, letter: DeadLetter) -> None:
        """Leave the message in the queue, visible again at once."""
        self._client.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=letter.receipt_handle, VisibilityTimeout=0
        )
