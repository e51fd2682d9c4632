"""Render jobs' poll timers: one SQS message per job, delayed until its next poll is due.

SQS delays a message by at most 900 s (``DelaySeconds``, whole seconds). A poll due later
is reached by a chain: the message fires at 900 s, finds its due time still ahead and is
sent again for the rest. The delay is rounded up (:func:`delay_after`), so a timer fires at
its job's due time or less than a second after it. Rounding down instead made every timer
fire up to a second early and the poll function sleep out the rest: billed GB-seconds on
every poll (half a second on average, at the function's memory size), to save the half
second of lateness that the providers' own jittered intervals (about 10 %) dwarf.

The message names the job and the due time it was set for; it carries nothing the poll
needs, so a duplicate, late or stale message is harmless: the job's lease decides.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from printflow.domain.order import OrderKey
from printflow.domain.render_job import RenderJob

MAX_DELAY_S = 900  # SQS's limit for DelaySeconds


@dataclass(frozen=True, slots=True)
class PollTimer:
    """One fired (or to be set) timer: poll job ``job_id`` of ``order_key`` at ``due_at``."""

    order_key: OrderKey
    job_id: str
    due_at: float

    def to_message(self) -> str:
        return json.dumps(
            {
                "storefrontId": self.order_key.storefront_id,
                "orderId": self.order_key.order_id,
                "jobId": self.job_id,
                "dueAt": round(self.due_at, 3),
            },
            separators=(",", ":"),
        )


class MalformedTimer(ValueError):
    """A poll-queue message that is not a timer."""


def parse_timer_message(body: str) -> PollTimer:
    """The timer in an SQS message body; :class:`MalformedTimer` when it is not one."""
    try:
        doc = json.loads(body)
        storefront_id, order_id, job_id = doc["storefrontId"], doc["orderId"], doc["jobId"]
        due_at = float(doc["dueAt"])
    except (ValueError, KeyError, TypeError) as exc:
        raise MalformedTimer(f"not a poll timer: {exc}") from exc
    if not all(isinstance(v, str) and v for v in (storefront_id, order_id, job_id)):
        raise MalformedTimer("not a poll timer: storefrontId, orderId and jobId must be strings")
    if not math.isfinite(due_at):
        raise MalformedTimer("not a poll timer: dueAt must be a number")
    return PollTimer(OrderKey(storefront_id, order_id), job_id, due_at)


def delay_for(due_at: float, now: float) -> int:
    """Whole seconds of ``DelaySeconds`` that fire less than a second before ``due_at``
    (capped at 900)."""
    return max(0, min(MAX_DELAY_S, math.floor(due_at - now)))


def delay_after(due_at: float, now: float) -> int:
    """Whole seconds of ``DelaySeconds`` that fire at ``due_at`` or less than a second after
    it (capped at 900: a longer wait is chained)."""
    whole = delay_for(due_at, now)
    return whole if whole == MAX_DELAY_S or now + whole >= due_at else whole + 1


class PollTimerQueue:
    """The poll queue: ``set`` puts a job's next poll on it."""

    def __init__(
        self, client: Any, queue_url: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self.queue_url = queue_url
        self._clock = clock

    def set(self, job: RenderJob) -> None:
        """Schedule the poll of ``job`` at its ``due_at`` (now when it has none)."""
        due_at = job.due_at if job.due_at is not None else self._clock()
        self.set_timer(PollTimer(job.order_key, job.job_id, due_at))

    def set_timer(self, timer: PollTimer) -> None:
        self._client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=timer.to_message(),
            DelaySeconds=delay_after(timer.due_at, self._clock()),
        )
