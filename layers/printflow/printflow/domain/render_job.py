"""Render jobs: one per CHILI output task or Customer's Canvas project of an order.

A job records the flow's task token, so whoever finishes the job (the download function on
success, the poller on failure) can complete the order's ``generate-production-files`` step.
A ``discovery`` job stands in for Customer's Canvas projects that do not exist yet: when the
poller finds them it creates one ``project`` job each.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from printflow.domain.order import OrderKey

HISTORY_LIMIT = 10


class JobState(StrEnum):
    PENDING = "pending"  # waiting for its next poll
    LEASED = "leased"  # a poller is polling it now
    READY = "ready"  # finished at the provider; queued for download
    DOWNLOADING = "downloading"
    DONE = "done"  # every file is in S3
    FAILED = "failed"
    SUPERSEDED = "superseded"  # a discovery job whose projects now have jobs of their own


ACTIVE_STATES = frozenset({JobState.PENDING, JobState.LEASED})


class JobKind(StrEnum):
    TASK = "task"  # CHILI output task
    PROJECT = "project"  # Customer's Canvas project (its processing pipeline)
    DISCOVERY = "discovery"  # Customer's Canvas projects not found yet


@dataclass(frozen=True, slots=True)
class PollingPolicy:
    """How often a provider's work may be polled and how long transient errors are borne."""

    interval_s: float  # between the first polls of a running job
    first_poll_s: float  # after the job is created
    max_transient_failures: int = 8  # consecutive 5xx / 429 / timeouts before giving up
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 300.0
    min_interval_s: float = 0.0  # a floor the provider asks for (Customer's Canvas: 60 s)
    max_recoveries: int = 3  # resume/restart attempts of a failed pipeline
    recovery_delay_s: float = 60.0
    # A job that keeps running is polled less often: the interval grows by ``growth`` per
    # poll up to ``max_interval_s``, spread by +/- ``jitter`` so jobs started together do
    # not stay in lockstep.
    growth: float = 1.0
    max_interval_s: float | None = None
    jitter: float = 0.0

    def next_poll_delay(self, polls_made: int = 1) -> float:
        """Seconds until the next poll of a job still running after ``polls_made`` polls."""
        delay = self.interval_s * self.growth ** max(0, polls_made - 1)
        if self.jitter:
            delay *= random.uniform(1.0 - self.jitter, 1.0 + self.jitter)
        if self.max_interval_s is not None:
            delay = min(delay, self.max_interval_s)
        return max(delay, self.min_interval_s)

    def backoff_delay(self, failures: int, retry_after: float | None = None) -> float:
        """Exponential backoff with full jitter; never sooner than the provider's Retry-After."""
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * (2 ** max(0, failures - 1)))
        delay = random.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return max(delay, self.min_interval_s)


@dataclass(frozen=True, slots=True)
class RenderJob:
    order_key: OrderKey
    job_id: str
    provider: str
    kind: JobKind
    state: JobState
    task_token: str
    step_id: str
    ref: str = ""  # CHILI taskId, Customer's Canvas project id
    line_item_id: str | None = None
    attempts: int = 0  # polls made
    failures: int = 0  # consecutive transient failures
    recoveries: int = 0
    created_at: float = 0.0
    deadline_at: float = 0.0
    due_at: float | None = None
    lease_owner: str | None = None
    last_polled_at: float | None = None
    last_status: str | None = None
    history: tuple[dict[str, Any], ...] = ()
    files: tuple[dict[str, Any], ...] = ()
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # provider-specific extras

    def with_history(self, at: float, status: str, detail: str = "") -> RenderJob:
        entry = {
            "at": round(at, 3),
            "status": status,
            **({"detail": detail[:300]} if detail else {}),
        }
        return replace(self, history=(*self.history, entry)[-HISTORY_LIMIT:], last_status=status)
