"""The render-provider protocol and the values it trades in.

A render provider is an adapter with three operations: start (or find) the render work for an
order, poll its state, and list the finished files with how to download each (the files come
with the ``DONE`` poll result, because both providers return them in that answer).

Every value here is plain data that the start-render Lambda and the poller store in the order
table (``to_document`` / ``from_document``): the adapters keep no state between invocations
that correctness depends on, so a crash between two calls loses nothing a retry cannot redo.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

from printflow.domain.order import Order
from printflow.domain.storefront import ProviderName


class WorkKind(StrEnum):
    """What a :class:`RenderWork` reference points at."""

    OUTPUT_TASK = "output-task"  # a CHILI output task (reference: taskId)
    PROJECT = "project"  # a Customer's Canvas project (reference: project id)
    # The CC projects of an order while none has been found yet (reference: order id).
    ORDER_PROJECTS = "order-projects"


class PollState(StrEnum):
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    # The provider has not created the work yet (CC projects or pipelines appear a little
    # after the order): normal for a while, the poller waits and asks again.
    NOT_READY = "NOT_READY"


class ArtifactAuth(StrEnum):
    BEARER = "bearer"  # send the provider's bearer token (see RenderProvider.download_headers)
    NONE = "none"  # a public URL: send no credentials at all


class RecoveryAction(StrEnum):
    RESUME = "resume"
    RESTART = "restart"


@dataclass(frozen=True, slots=True)
class RenderWork:
    """One unit of render work the poller tracks as a render job.

    ``recovery_attempts`` and ``last_recovery_at`` travel with the work so that the bounds on
    recovery hold across poller invocations: :meth:`RenderProvider.recover` returns the
    updated work, which the poller stores.
    """

    provider: ProviderName
    kind: WorkKind
    reference: str
    line_item_id: str | None = None
    line_item_index: int | None = None
    output_format: str | None = None
    recovery_attempts: int = 0
    last_recovery_at: float | None = None
    # ORDER_PROJECTS only: the line items (index in the order, id) that should each get a
    # project, and when to stop looking for the missing ones (None: until the render timeout).
    expected_line_items: tuple[tuple[int, str], ...] = ()
    discovery_deadline_at: float | None = None

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "provider": self.provider.value,
            "kind": self.kind.value,
            "reference": self.reference,
            "lineItemId": self.line_item_id,
            "lineItemIndex": self.line_item_index,
            "outputFormat": self.output_format,
            "recoveryAttempts": self.recovery_attempts,
            "lastRecoveryAt": self.last_recovery_at,
            "expectedLineItems": [[index, item_id] for index, item_id in self.expected_line_items]
            or None,
            "discoveryDeadlineAt": self.discovery_deadline_at,
        }
        return {k: v for k, v in doc.items() if v is not None}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> RenderWork:
        index = doc.get("lineItemIndex")
        last = doc.get("lastRecoveryAt")
        deadline = doc.get("discoveryDeadlineAt")
        return cls(
            provider=ProviderName(doc["provider"]),
            kind=WorkKind(doc["kind"]),
            reference=str(doc["reference"]),
            line_item_id=None if doc.get("lineItemId") is None else str(doc["lineItemId"]),
            line_item_index=None if index is None else int(index),
            output_format=doc.get("outputFormat"),
            recovery_attempts=int(doc.get("recoveryAttempts") or 0),
            last_recovery_at=None if last is None else float(last),
            expected_line_items=tuple(
                (int(index), str(item_id)) for index, item_id in doc.get("expectedLineItems") or ()
            ),
            discovery_deadline_at=None if deadline is None else float(deadline),
        )

    def recovered(self, at: float) -> RenderWork:
        return replace(self, recovery_attempts=self.recovery_attempts + 1, last_recovery_at=at)


@dataclass(frozen=True, slots=True)
class ArtifactSource:
    """Where one finished file is and how to fetch it.

    ``url`` is provider-supplied: the download function still routes it through the SSRF
    guard. ``declared_size`` is what the provider announced (verify it, don't trust it).
    """

    url: str
    auth: ArtifactAuth
    filename: str
    content_type: str | None = None
    declared_size: int | None = None
    reference: str | None = None
    line_item_id: str | None = None

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "url": self.url,
            "auth": self.auth.value,
            "filename": self.filename,
            "contentType": self.content_type,
            "declaredSize": self.declared_size,
            "reference": self.reference,
            "lineItemId": self.line_item_id,
        }
        return {k: v for k, v in doc.items() if v is not None}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> ArtifactSource:
        size = doc.get("declaredSize")
        return cls(
            url=str(doc["url"]),
            auth=ArtifactAuth(doc["auth"]),
            filename=str(doc["filename"]),
            content_type=doc.get("contentType"),
            declared_size=None if size is None else int(size),
            reference=doc.get("reference"),
            line_item_id=doc.get("lineItemId"),
        )


@dataclass(frozen=True, slots=True)
class PollResult:
    """The state of one unit of work.

    ``retry_after_s``: the earliest the poller should ask again, when the provider (or its
    documented guidance, e.g. Customer's Canvas's 60 s) says so. ``files`` only when DONE.
    ``discovered``: for an ``ORDER_PROJECTS`` work, the per-project works found so far
    (RUNNING while ``missing_line_items`` still lack a project, DONE when none is missing).
    """

    state: PollState
    detail: str | None = None
    retry_after_s: float | None = None
    files: tuple[ArtifactSource, ...] = ()
    discovered: tuple[RenderWork, ...] = ()
    missing_line_items: tuple[str, ...] = ()
    recoverable: bool = False


@dataclass(frozen=True, slots=True)
class RecoveryPlan:
    """Whether a FAILED work may be recovered now (see :meth:`RenderProvider.recovery_plan`)."""

    allowed: bool
    action: RecoveryAction | None = None
    wait_s: float = 0.0
    reason: str = ""


# Called with each work as soon as it exists (the start-render Lambda records it).
WorkStarted = Callable[["RenderWork"], None]


class RenderProvider(Protocol):
    """What the start-render Lambda and the poller need from a provider adapter."""

    @property
    def name(self) -> ProviderName: ...

    @property
    def min_poll_interval_s(self) -> float:
        """Never poll one work more often than this (CC: 60 s, vendor guidance)."""
        ...

    async def start(
        self,
        order: Order,
        *,
        skip_line_items: frozenset[str] = frozenset(),
        started: WorkStarted | None = None,
    ) -> tuple[RenderWork, ...]:
        """Start (CHILI) or find (CC) the order's render work; return what was started.

        CHILI's start is not idempotent (every call starts new, billed tasks), so each work
        is handed to ``started`` as soon as it exists, for the caller to record before the
        next one starts; ``skip_line_items`` names line items a crashed earlier attempt
        already recorded. Customer's Canvas finds projects the shop created, which is
        idempotent: it ignores ``skip_line_items`` and reports its finds at the end.
        """
        ...

    async def poll(self, work: RenderWork) -> PollResult:
        """The work's state; raises :class:`ProviderUnavailable` for transient trouble."""
        ...

    def recovery_plan(self, work: RenderWork) -> RecoveryPlan:
        """Whether and when a FAILED work may be recovered (no I/O)."""
        ...

    async def recover(self, work: RenderWork) -> RenderWork:
        """Recover a FAILED work; return the work with its recovery counters updated."""
        ...

    async def download_headers(self, source: ArtifactSource) -> dict[str, str]:
        """Headers to fetch ``source`` with (the bearer token, or nothing)."""
        ...

    def forget_token(self, headers: Mapping[str, str]) -> None:
        """The download got 401 with these headers: drop that token before retrying once."""
        ...
