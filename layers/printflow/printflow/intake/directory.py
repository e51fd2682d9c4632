"""Storefront configs and their webhook secrets, cached in a warm function.

A storefront's config changes rarely and is read on every delivery: caching it (and its
secret) keeps the request path to the writes that matter. Unknown storefronts are cached
briefly too, so a flood of deliveries for a wrong id does not become a flood of reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from printflow.adapters.order_table import OrderTable
from printflow.adapters.webhook_secrets import WebhookSecrets
from printflow.domain.storefront import Storefront

UNKNOWN_STOREFRONT_CACHE_S = 5.0


@dataclass(frozen=True, slots=True)
class KnownStorefront:
    storefront: Storefront
    secrets: list[str]


class StorefrontDirectory:
    def __init__(
        self,
        table: OrderTable,
        secrets: WebhookSecrets,
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._table = table
        self._secrets = secrets
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, KnownStorefront | None]] = {}

    def find(self, storefront_id: str) -> KnownStorefront | None:
        now = self._clock()
        cached = self._cache.get(storefront_id)
        if cached and cached[0] > now:
            return cached[1]
        storefront = self._table.get_storefront(storefront_id)
        if storefront is None:
            self._cache[storefront_id] = (now + UNKNOWN_STOREFRONT_CACHE_S, None)
            return None
        known = KnownStorefront(storefront, self._secrets.accepted(storefront_id))
        self._cache[storefront_id] = (now + self._ttl_s, known)
        return known
