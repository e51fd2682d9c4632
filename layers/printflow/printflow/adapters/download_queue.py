"""The download queue: one SQS message per render job whose files are ready."""

from __future__ import annotations

import json
from typing import Any

from printflow.domain.order import OrderKey
from printflow.domain.render_job import RenderJob

MAX_DELAY_S = 900  # SQS's limit for DelaySeconds


def download_message(job: RenderJob) -> dict[str, str]:
    """The message names the job only; the download function reads the job's files."""
    return {
        "storefrontId": job.order_key.storefront_id,
        "orderId": job.order_key.order_id,
        "jobId": job.job_id,
    }


def parse_download_message(body: str) -> tuple[OrderKey, str]:
    doc = json.loads(body)
    return OrderKey(str(doc["storefrontId"]), str(doc["orderId"])), str(doc["jobId"])


class DownloadQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url

    def retry_later(self, receipt_handle: str, delay_s: float) -> None:
        """Make a failed message visible again after ``delay_s`` (not the queue's long
        visibility timeout, which must cover the slowest download)."""
        self._client.change_message_visibility(
            QueueUrl=self.queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=max(0, min(43_200, int(delay_s))),
        )

    def send_again(self, body: str, delay_s: float) -> None:
        """Queue a message's body anew (its receive count starts over), after ``delay_s``."""
        self._client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=body,
            DelaySeconds=max(0, min(MAX_DELAY_S, int(delay_s))),
        )

    def send(self, job: RenderJob) -> None:
        self._client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps(download_message(job), separators=(",", ":")),
        )
