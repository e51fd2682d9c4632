"""Why download messages died, and putting them back (``printflow dlq list | replay``).

A download message names a render job. What replaying it means depends on the job:

- ``done``: already handled; the message is dropped, nothing changes;
- ``ready`` / ``downloading`` (the flow still waits for it): the message goes back on the
  download queue;
- ``failed``: the last delivery failed the flow's step, so a message alone cannot finish
  the order any more; the order is retried from that step (:mod:`.retry`), which polls the
  job again and downloads only what is not stored yet;
- a message that names no job (malformed) stays in the dead-letter queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from printflow.adapters.dead_letters import DeadLetter, DeadLetterQueue
from printflow.adapters.download_queue import parse_download_message
from printflow.adapters.render_job_table import RenderJobTable
from printflow.domain.order import OrderKey
from printflow.domain.render_job import JobState, RenderJob
from printflow.errors import PrintFlowError
from printflow.operations.retry import OrderRetries, RetryRefused


@dataclass(frozen=True, slots=True)
class DeadLetterView:
    """One dead-lettered download message and why it died."""

    message_id: str
    order: OrderKey | None
    job_id: str | None
    job_state: str | None
    reason: str
    receive_count: int
    sent_at: str

    def to_document(self) -> dict[str, Any]:
        return {
            "messageId": self.message_id,
            "storefrontId": self.order.storefront_id if self.order else None,
            "orderId": self.order.order_id if self.order else None,
            "jobId": self.job_id,
            "jobState": self.job_state,
            "reason": self.reason,
            "receiveCount": self.receive_count,
            "sentAt": self.sent_at,
        }


@dataclass(frozen=True, slots=True)
class ReplayResult:
    message_id: str
    action: str  # "requeued", "retried order", "dropped (already done)", "kept: ..."

    def to_document(self) -> dict[str, str]:
        return {"messageId": self.message_id, "action": self.action}


def _job_of(letter: DeadLetter, jobs: RenderJobTable) -> tuple[OrderKey, str, RenderJob | None]:
    key, job_id = parse_download_message(letter.body)
    return key, job_id, jobs.get(key, job_id)


def describe(letter: DeadLetter, jobs: RenderJobTable) -> DeadLetterView:
    sent = datetime.fromtimestamp(letter.sent_at_ms / 1000, UTC).isoformat(timespec="seconds")
    try:
        key, job_id, job = _job_of(letter, jobs)
    except (ValueError, KeyError, TypeError):
        return DeadLetterView(
            letter.message_id, None, None, None, "malformed message (names no job)",
            letter.receive_count, sent,
        )  # fmt: skip
    if job is None:
        reason = "the job does not exist"
    elif job.state is JobState.FAILED:
        reason = job.error or "the download failed"
    elif job.state is JobState.DONE:
        reason = "already handled (the job is done)"
    else:
        reason = f"deliveries ran out while the job was {job.state.value}"
    return DeadLetterView(
        letter.message_id, key, job_id, job.state.value if job else None, reason,
        letter.receive_count, sent,
    )  # fmt: skip


def replay(
    letter: DeadLetter, queue: DeadLetterQueue, jobs: RenderJobTable, retries: OrderRetries
) -> ReplayResult:
    """Put one message back to work (see the module doc); never does anything twice."""
    try:
        key, _, job = _job_of(letter, jobs)
    except (ValueError, KeyError, TypeError):
        queue.release(letter)
        return ReplayResult(letter.message_id, "kept: malformed message (names no job)")
    if job is None:
        queue.release(letter)
        return ReplayResult(letter.message_id, "kept: the job does not exist")
    if job.state is JobState.DONE or job.state is JobState.SUPERSEDED:
        queue.delete(letter)
        return ReplayResult(letter.message_id, "dropped (already done)")
    if job.state is JobState.FAILED:
        try:
            started = retries.retry(key, from_step=job.step_id)
        except RetryRefused as exc:
            if exc.running:
                # Another message of this order started its retry already: the render step
                # of that retry takes up every failed job of the step, this one included.
                queue.delete(letter)
                return ReplayResult(letter.message_id, f"covered by the running retry of {key}")
            queue.release(letter)
            return ReplayResult(letter.message_id, f"kept: order retry refused: {exc}")
        except PrintFlowError as exc:
            queue.release(letter)
            return ReplayResult(letter.message_id, f"kept: order retry refused: {exc}")
        queue.delete(letter)
        return ReplayResult(letter.message_id, f"retried order {key} (attempt {started.attempt})")
    queue.send_back(letter)
    return ReplayResult(letter.message_id, "requeued")
