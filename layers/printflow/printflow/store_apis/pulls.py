"""Reconciliation's view of a store API: pages of orders created since a time.

Each platform's module turns its Orders API answer into :class:`PulledOrder` values whose
``body`` is the JSON its *webhook* would have carried, so a pulled order goes through the
same normaliser and the same intake as a delivered one (one order, one execution, whichever
comes first). Each platform's puller is found through
:data:`printflow.store_apis.registry.STORE_PLATFORMS`, beside its write-back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx

from printflow.domain.storefront import StoreApi
from printflow.store_apis.base import Pacer, StoreApiError


@dataclass(frozen=True, slots=True)
class PulledOrder:
    """One order as the store listed it. ``created_at`` is timezone-aware (UTC)."""

    order_id: str
    created_at: datetime
    body: bytes  # webhook-shaped JSON for the platform's normaliser


@dataclass(frozen=True, slots=True)
class OrderPage:
    """A page of orders, oldest first; ``next_page`` is None on the last one."""

    orders: tuple[PulledOrder, ...]
    next_page: str | None = None


class OrderPuller(Protocol):
    """Lists one store's orders created at or after ``since``, a page at a time."""

    def orders_since(self, since: datetime, page: str | None) -> OrderPage:
        """``page``: None for the first page, then the previous page's ``next_page``."""
        ...


class PullerFactory(Protocol):
    """Builds a puller from a (guarded) client, the store API settings, its checked
    credentials (:func:`printflow.store_apis.registry.load_store_credentials`) and a pacer."""

    def __call__(
        self, http: httpx.Client, api: StoreApi, credentials: dict[str, str], pacer: Pacer
    ) -> OrderPuller: ...


def parse_time(value: Any, what: str) -> datetime:
    """An order's creation time as a UTC datetime (ISO 8601 or RFC 2822; naive means UTC)."""
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            try:
                parsed = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                parsed = None
        if parsed is not None:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise StoreApiError(f"{what}: an order has no usable creation time", transient=False)
