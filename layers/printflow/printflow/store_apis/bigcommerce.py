"""BigCommerce's V2 Orders API: the full order behind a thin ``store/order/created`` webhook,
write-back to it, and reconciliation's listing of it.

BigCommerce's webhook carries only the order id, so the line items and the shopper's
choices (the product options a render needs) are read from the store
(:class:`BigCommerceOrders`):

- ``GET {base}/stores/{hash}/v2/orders/{id}``: the order (email, currency, dates);
- ``GET {base}/stores/{hash}/v2/orders/{id}/products?page=N&limit=250``: its line items,
  each with ``product_options[]`` (``display_name``, ``display_value``). A page past the
  end answers ``204 No Content``.

Write-back (:class:`BigCommerceWriteBack`): ``PUT /orders/{id}`` with ``status_id`` or
``staff_notes``. Reconciliation (:class:`BigCommerceOrderPuller`):
``GET /orders?min_date_created=…&sort=date_created:asc&limit=250&page=N``.

Authentication is an API account token in ``X-Auth-Token``: read-only Orders scope to read
and pull, modify to write back. Errors say whether a retry can help: 429 (with
``X-Rate-Limit-Time-Reset-Ms``), 5xx, network errors and a non-JSON answer (a proxy's error
page) can; 401/403 (a wrong token) and 404 (no such order) cannot.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from printflow.domain.order import Order
from printflow.domain.storefront import StoreApi
from printflow.errors import ValidationError
from printflow.platforms.bigcommerce import complete_bigcommerce
from printflow.store_apis.base import Pacer, StoreAnswer, StoreApiError, excerpt, exchange_paced
from printflow.store_apis.pulls import OrderPage, PulledOrder, parse_time
from printflow.validators import ascii_int

PAGE_SIZE = 250  # the API's maximum
MAX_PAGES = 4  # 1,000 line items: the most an Order holds (platforms.fields.MAX_LINE_ITEMS)


class BigCommerceApi:
    """One store's V2 API: JSON calls with the token, 429 waited out within the pacer.
    ``http`` should be a guarded client (SSRF-checked)."""

    def __init__(self, http: httpx.Client, api: StoreApi, access_token: str, pacer: Pacer) -> None:
        self._http = http
        self._base = f"{api.base_url}/stores/{api.store_hash}/v2"
        self._headers = {"X-Auth-Token": access_token, "Accept": "application/json"}
        self._pacer = pacer

    def call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """The JSON of a 200 answer, or None for 204; :class:`StoreApiError` otherwise."""
        answer = exchange_paced(
            self._http,
            method,
            self._base + path,
            f"{method} /v2{path}",
            self._pacer,
            headers=self._headers,
            json_body=body,
            params=params,
            ok=(200, 204),
            refusal=_error,
            default_wait_s=1.0,
        )
        return answer.body  # None for 204


class BigCommerceOrders:
    """Reads orders of one store. ``http`` should be a guarded client (SSRF-checked).

    A 429 is not waited out here (no pacer budget): the render step's retry waits it."""

    def __init__(self, http: httpx.Client, api: StoreApi, access_token: str) -> None:
        self._api = BigCommerceApi(http, api, access_token, Pacer(0.0))

    def fetch(self, order_id: str) -> tuple[dict[str, Any], list[Any]]:
        """The order document and all its line items (raw API JSON)."""
        path = f"/orders/{quote(order_id, safe='')}"  # one path segment, whatever the id
        doc = self._api.call("GET", path)
        if not isinstance(doc, dict):
            raise StoreApiError(f"GET {path}: expected a JSON object", transient=False)
        products: list[Any] = []
        # One page more than the limit holds: a full last page may be followed by nothing.
        for page in range(1, MAX_PAGES + 2):
            answer = self._api.call(
                "GET", f"{path}/products", params={"page": page, "limit": PAGE_SIZE}
            )
            if answer is None or answer == []:  # 204: past the last page
                break
            if not isinstance(answer, list):
                raise StoreApiError(f"GET {path}/products: expected a JSON list", transient=False)
            if page > MAX_PAGES:
                raise StoreApiError(
                    f"order {order_id!r} has more than {MAX_PAGES * PAGE_SIZE} line items",
                    transient=False,
                )
            products.extend(answer)
            if len(answer) < PAGE_SIZE:
                break
        return doc, products


def complete_thin_order(
    http: httpx.Client, api: StoreApi, credentials: Mapping[str, str], thin: Order
) -> Order:
    """The full order behind a thin webhook: read from the store, then merged into ``thin``.

    Raises :class:`StoreApiError` (the read) or :class:`~printflow.errors.MalformedPayload`
    (an order the store answered that cannot be used). Reads only; stores nothing.
    """
    doc, products = BigCommerceOrders(http, api, credentials["accessToken"]).fetch(thin.order_id)
    return complete_bigcommerce(thin, doc, products)


# -- write-back (the update-storefront-order step) ---------------------------------------------

# V2 order status ids by name (GET /v2/order_statuses); a flow may give the name or the id.
ORDER_STATUS_IDS: dict[str, int] = {
    "incomplete": 0,
    "pending": 1,
    "shipped": 2,
    "partially shipped": 3,
    "refunded": 4,
    "cancelled": 5,
    "declined": 6,
    "awaiting payment": 7,
    "awaiting pickup": 8,
    "awaiting shipment": 9,
    "completed": 10,
    "awaiting fulfillment": 11,
    "manual verification required": 12,
    "disputed": 13,
    "partially refunded": 14,
}
STAFF_NOTES_LIMIT = 65_535  # a TEXT column


def bigcommerce_status(status: str) -> int:
    """The V2 ``status_id`` of a status name (``Completed``, ``awaiting-shipment``) or id."""
    text = status.strip()
    number = ascii_int(text)
    if number is not None and number in ORDER_STATUS_IDS.values():
        return number
    found = ORDER_STATUS_IDS.get(text.lower().replace("-", " ").replace("_", " "))
    if found is None:
        raise ValidationError(
            f"{status!r} is not a BigCommerce order status (a name such as 'Completed' or "
            "an id 0-14)"
        )
    return found


class BigCommerceWriteBack:
    """Status and staff notes on one store's orders (V2 ``PUT /orders/{id}``).

    BigCommerce orders have one ``staff_notes`` text, no list of notes and no tags: a note is
    appended to the text already there (read first, never replaced), unless the text holds the
    note's marker already (written by an attempt that died before recording it); tags are
    written into the note by the step. The API token needs the Orders modify scope.
    """

    def __init__(
        self, http: httpx.Client, api: StoreApi, credentials: dict[str, str], pacer: Pacer
    ) -> None:
        self._api = BigCommerceApi(http, api, credentials["accessToken"], pacer)

    def add_tags(self, order_id: str, tags: Sequence[str]) -> None:
        raise StoreApiError("BigCommerce orders have no tags", transient=False)

    def set_status(self, order_id: str, status: str | int) -> None:
        self._api.call("PUT", _order_path(order_id), body={"status_id": int(status)})

    def add_note(self, order_id: str, note: str, *, step_id: str, marker: str) -> None:
        current = self._api.call("GET", _order_path(order_id))
        existing = current.get("staff_notes") if isinstance(current, dict) else None
        existing = existing if isinstance(existing, str) else ""
        if marker in existing:
            return  # written by an earlier attempt whose record was lost
        combined = f"{existing.rstrip()}\n\n{note}" if existing.strip() else note
        if len(combined) > STAFF_NOTES_LIMIT:
            raise StoreApiError(
                f"order {order_id!r}: staff notes would exceed {STAFF_NOTES_LIMIT} characters",
                transient=False,
            )
        self._api.call("PUT", _order_path(order_id), body={"staff_notes": combined})


def _order_path(order_id: str) -> str:
    return f"/orders/{quote(order_id, safe='')}"  # one path segment, whatever the id


# -- reconciliation: orders created since a time (a page at a time) ------------------------


class BigCommerceOrderPuller:
    """``GET /v2/orders?min_date_created=…&sort=date_created:asc&limit=250&page=N``.

    A listed order becomes the thin ``store/order/created`` callback its webhook carries, so
    it is recorded exactly as a delivered one (the render step reads the rest, as it does for
    every BigCommerce order).
    """

    def __init__(
        self, http: httpx.Client, api: StoreApi, credentials: dict[str, str], pacer: Pacer
    ) -> None:
        self._store_hash = api.store_hash
        self._api = BigCommerceApi(http, api, credentials["accessToken"], pacer)

    def orders_since(self, since: datetime, page: str | None) -> OrderPage:
        number = int(page or "1")
        params = {
            "min_date_created": since.astimezone(UTC).isoformat(timespec="seconds"),
            "sort": "date_created:asc",
            "limit": PAGE_SIZE,
            "page": number,
        }
        what = "GET /v2/orders"
        answer = self._api.call("GET", "/orders", params=params)
        if answer is None:  # 204: no (more) orders
            return OrderPage(())
        if not isinstance(answer, list):
            raise StoreApiError(f"{what}: expected a JSON list", transient=False)
        orders = tuple(self._pulled(doc, what) for doc in answer)
        # The listing says nothing of its size: the page after the last one answers 204.
        return OrderPage(orders, str(number + 1) if orders else None)

    def _pulled(self, doc: Any, what: str) -> PulledOrder:
        if not isinstance(doc, dict) or doc.get("id") in (None, ""):
            raise StoreApiError(f"{what}: an order without an id", transient=False)
        created = parse_time(doc.get("date_created"), what)
        callback = {
            "scope": "store/order/created",
            "store_id": str(doc.get("store_id") or ""),
            "data": {"type": "order", "id": doc["id"]},
            "hash": "",
            "created_at": int(created.timestamp()),
            "producer": f"stores/{self._store_hash}",
        }
        return PulledOrder(str(doc["id"]), created, json.dumps(callback).encode())


def _error(what: str, answer: StoreAnswer) -> StoreApiError:
    status = answer.status
    if status in (401, 403):
        return StoreApiError(
            f"{what}: HTTP {status}, the store refused the access token (check "
            "storeApi.credentialsSecret and the token's Orders scope: read-only to read, "
            "modify to write back)",
            transient=False,
        )
    if status == 404:
        return StoreApiError(f"{what}: HTTP 404, the store has no such order", transient=False)
    if status >= 500:
        return StoreApiError(
            f"{what}: HTTP {status}", transient=True, retry_after_s=answer.retry_after_s
        )
    return StoreApiError(f"{what}: HTTP {status}: {excerpt(answer.body)}", transient=False)
