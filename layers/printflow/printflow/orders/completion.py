"""Completing thin orders: BigCommerce's webhook names an order, its store API has the rest.

The webhook answers fast and records what it got (``complete: false``); the order is read
in full the first time a step needs its line items (the render start), then stored, so every
later step, the REST document and the manifest see the full order. The read happens inside
the flow on purpose: a slow or failing store API then costs a step retry, never a webhook
delivery, and an acknowledged order is never lost. A crash between the read and the write
stores nothing: the step's retry reads the order again.

Which platforms send thin orders, and how one is read, is the platform's entry in the store
API table (``StorePlatform.complete_thin_order``, today BigCommerce's). The store API's
credentials are read by the one loader every store client uses
(:func:`printflow.store_apis.registry.load_store_credentials`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from botocore.exceptions import ClientError

from printflow.adapters.order_table import OrderTable
from printflow.domain.order import Order
from printflow.domain.storefront import StoreApi, Storefront
from printflow.errors import MalformedPayload, PrintFlowError, ValidationError
from printflow.store_apis.base import StoreApiError
from printflow.store_apis.registry import STORE_PLATFORMS, load_store_credentials
from printflow.validators import UrlPolicy, check_url

HttpFactory = Callable[[], httpx.Client]


class OrderNotCompletable(PrintFlowError):
    """The order cannot be completed; retrying will not change that. The message says why."""


class StoreUnavailable(PrintFlowError):
    """The store API failed in a way a later retry may not (429, 5xx, network)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class OrderCompleter:
    """Turns a thin order into the full one and stores it (once)."""

    def __init__(
        self,
        orders: OrderTable,
        secretsmanager: Any,
        http: HttpFactory,
        url_policy: UrlPolicy,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._orders = orders
        self._secrets = secretsmanager
        self._http = http
        self._url_policy = url_policy
        self._clock = clock

    def complete(
        self, order: Order, storefront: Storefront, *, document_bucket: str | None = None
    ) -> Order:
        """``order`` itself when complete; otherwise the full order, now stored.

        ``document_bucket`` keeps the document of an order too large for its table item.

        Raises :class:`OrderNotCompletable` or :class:`StoreUnavailable`.
        """
        if order.complete:
            return order
        where = f"storefront {storefront.storefront_id!r}"
        entry = STORE_PLATFORMS.get(storefront.platform)
        completes = entry.complete_thin_order if entry is not None else None
        if completes is None or storefront.store_api is None:
            raise OrderNotCompletable(
                f"order {order.order_id!r} arrived without its line items and {where} has no "
                "storeApi to read them from (see README: BigCommerce storefronts)"
            )
        api = storefront.store_api
        _check_same_store(order, api, where)
        try:
            check_url(api.base_url, f"{where}.storeApi.baseUrl", self._url_policy)
            credentials = load_store_credentials(self._secrets, storefront.platform, api, where)
        except ValidationError as exc:
            raise OrderNotCompletable(str(exc)) from None
        except ClientError as exc:  # throttled or unavailable: the step's retry may succeed
            code = exc.response.get("Error", {}).get("Code", "")
            raise StoreUnavailable(f"the store API token could not be read ({code})") from None
        try:
            with self._http() as http:
                full = completes(http, api, credentials, order)
        except StoreApiError as exc:
            if exc.transient:
                raise StoreUnavailable(exc.message, exc.retry_after_s) from None
            raise OrderNotCompletable(exc.message) from None
        except MalformedPayload as exc:
            raise OrderNotCompletable(f"the store API's order is unusable: {exc.message}") from None
        self._orders.complete_order(
            full, self._clock().isoformat(timespec="seconds"), document_bucket
        )
        return full


def _check_same_store(order: Order, api: StoreApi, where: str) -> None:
    """The webhook names its store (``producer: stores/{hash}``); it must be the configured one.

    Otherwise the order id would be looked up in another shop: a wrong order, not a missing one.
    """
    producer = order.delivery.get("producer", "")
    if producer.startswith("stores/") and producer != f"stores/{api.store_hash}":
        raise OrderNotCompletable(
            f"the webhook came from {producer!r} but {where}.storeApi.storeHash is "
            f"{api.store_hash!r}"
        )
