"""What the store sandboxes (BigCommerce, Shopify, WooCommerce) share for order listings.

- :class:`ScriptedFailures`: answers the next listing requests with given statuses (429 with
  the platform's wait header, 5xx), in order, so a test can fail exactly the page it means;
- :func:`created_at`: an order's creation time from the platform's own field.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from printflow_tools.sandboxes.common import Response


class ScriptedFailures:
    """Statuses to answer the next listing requests with, instead of the listing."""

    def __init__(self, answer: Callable[[int], Response]) -> None:
        self._answer = answer
        self._statuses: list[int] = []
        self._lock = threading.Lock()

    def fail_next(self, *statuses: int) -> None:
        """Answer the next ``len(statuses)`` listings with these statuses (429, 500, 503…)."""
        with self._lock:
            self._statuses.extend(statuses)

    def take(self) -> Response | None:
        with self._lock:
            status = self._statuses.pop(0) if self._statuses else None
        return None if status is None else self._answer(status)


def parse_time(value: str) -> datetime:
    """ISO 8601 (naive means UTC) or RFC 2822, as UTC; ValueError when neither."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = parsedate_to_datetime(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
