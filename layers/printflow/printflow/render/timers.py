"""Fired poll timers, from the poll queue's SQS event to the poller."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from printflow.adapters.poll_timers import MalformedTimer, PollTimer, parse_timer_message
from printflow.render.poller import Poller, PollReport
from printflow.render.wiring import ProviderDirectory


@dataclass(frozen=True, slots=True)
class TimerBatch:
    """The timers of one SQS batch, and the ids of messages that were not timers."""

    timers: list[PollTimer] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> TimerBatch:
        batch = cls()
        for record in event.get("Records") or []:
            try:
                batch.timers.append(parse_timer_message(str(record.get("body", ""))))
            except MalformedTimer:
                batch.malformed.append(str(record.get("messageId", "")))
        return batch

    def response(self) -> dict[str, Any]:
        """The partial batch response: only malformed messages go back to the queue (a timer
        whose poll failed is set again by the poller, not redelivered)."""
        return {"batchItemFailures": [{"itemIdentifier": m} for m in self.malformed]}


async def fire_timers(
    build: Callable[[], tuple[Poller, ProviderDirectory]],
    timers: list[PollTimer],
    remaining_s: Callable[[], float],
) -> PollReport:
    """Poll the jobs of ``timers`` with a poller built inside this event loop."""
    poller, directory = build()
    try:
        return await poller.fire(timers, remaining_s)
    finally:
        await directory.aclose()
