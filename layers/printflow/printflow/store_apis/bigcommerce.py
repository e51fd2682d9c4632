"""BigCommerce's V2 Orders API: the full order behind a thin ``store/order/created`` webhook.

BigCommerce's webhook carries only the order id, so the line items and the shopper's
choices (the product options a render needs) are read from the store:

- ``GET {base}/stores/{hash}/v2/orders/{id}``: the order (email, currency, dates);
- ``GET {base}/stores/{hash}/v2/orders/{id}/products?page=N&limit=250``: its line items,
  each with ``product_options[]`` (``display_name``, ``display_value``). A page past the
  end answers ``204 No Content``.

Authentication is an API account token in ``X-Auth-Token``; read-only Orders scope is
enough. Errors say whether a retry can help: 429 (with ``X-Rate-Limit-Time-Reset-Ms``), 5xx
and network errors can; 401/403 (a wrong token) and 404 (no such order) cannot.

Reconciliation's listing of orders created since a time (``BigCommerceOrderPuller``) is the
last section of the module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from printflow.domain.storefront import StoreApi
from printflow.providers.base import retry_after_s
from printflow.store_apis.http import MAX_ANSWER_BYTES, StoreApiError, call_json, read_at_most
from printflow.store_apis.pulls import OrderPage, PulledOrder, credential, parse_time

PAGE_SIZE = 250  # the API's maximum
MAX_PAGES = 4  # 1,000 line items: the most an Order holds (intake.normalisers.MAX_LINE_ITEMS)


class BigCommerceOrders:
    """Reads orders of one store. ``http`` should be a guarded client (SSRF-checked)."""

    def __init__(self, http: httpx.Client, api: StoreApi, access_token: str) -> None:
        self._http = http
        self._base = f"{api.base_url}/stores/{api.store_hash}/v2"
        self._headers = {"X-Auth-Token": access_token, "Accept": "application/json"}

    def fetch(self, order_id: str) -> tuple[dict[str, Any], list[Any]]:
        """The order document and all its line items (raw API JSON)."""
        path = f"/orders/{quote(order_id, safe='')}"  # one path segment, whatever the id
        doc = self._get_json(path, {})
        if not isinstance(doc, dict):
            raise StoreApiError(f"GET {path}: expected a JSON object", transient=False)
        products: list[Any] = []
        # One page more than the limit holds: a full last page may be followed by nothing.
        for page in range(1, MAX_PAGES + 2):
            answer = self._get_json(f"{path}/products", {"page": page, "limit": PAGE_SIZE})
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

    def _get_json(self, path: str, params: dict[str, Any]) -> Any:
        what = f"GET {path}"
        try:
            with self._http.stream(
                "GET", self._base + path, params=params, headers=self._headers
            ) as response:
                body = read_at_most(response, MAX_ANSWER_BYTES, what)
        except httpx.TimeoutException:
            raise StoreApiError(
                f"{what}: the store did not answer in time", transient=True
            ) from None
        except httpx.HTTPError as exc:
            raise StoreApiError(f"{what}: {type(exc).__name__}", transient=True) from None
        status = response.status_code
        if status == 204:
            return None
        if status == 200:
            try:
                return json.loads(body)
            except ValueError:
                # A proxy's error page: worth another try, unlike a wrong answer.
                raise StoreApiError(f"{what}: the answer is not JSON", transient=True) from None
        if status in (401, 403):
            raise StoreApiError(
                f"{what}: HTTP {status}, the store refused the access token "
                "(check storeApi.credentialsSecret and the token's Orders scope)",
                transient=False,
            )
        if status == 404:
            raise StoreApiError(f"{what}: HTTP 404, the store has no such order", transient=False)
        if status == 429 or status >= 500:
            raise _transient(what, response)
        raise StoreApiError(f"{what}: HTTP {status}", transient=False)


def _transient(what: str, response: httpx.Response) -> StoreApiError:
    """429 or 5xx; BigCommerce says when its rate-limit window resets in milliseconds."""
    wait = retry_after_s(response)
    reset_ms = response.headers.get("x-rate-limit-time-reset-ms", "")
    if wait is None and reset_ms.isdigit():
        wait = int(reset_ms) / 1000
    return StoreApiError(f"{what}: HTTP {response.status_code}", transient=True, retry_after_s=wait)


# -- reconciliation: orders created since a time (a page at a time) ------------------------

LIST_PAGE_SIZE = 250  # the API's maximum


class BigCommerceOrderPuller:
    """``GET /v2/orders?min_date_created=…&sort=date_created:asc&limit=250&page=N``.

    A listed order becomes the thin ``store/order/created`` callback its webhook carries, so
    it is recorded exactly as a delivered one (the render step reads the rest, as it does for
    every BigCommerce order).
    """

    def __init__(self, http: httpx.Client, api: StoreApi, access_token: str) -> None:
        self._http = http
        self._api = api
        self._url = f"{api.base_url}/stores/{api.store_hash}/v2/orders"
        self._headers = {"X-Auth-Token": access_token, "Accept": "application/json"}

    def orders_since(self, since: datetime, page: str | None) -> OrderPage:
        number = int(page or "1")
        params = {
            "min_date_created": since.astimezone(UTC).isoformat(timespec="seconds"),
            "sort": "date_created:asc",
            "limit": LIST_PAGE_SIZE,
            "page": number,
        }
        what = "GET /v2/orders"
        answer, _ = call_json(
            self._http,
            "GET",
            self._url,
            what=what,
            headers=self._headers,
            params=params,
            transient=_transient,
        )
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
            "producer": f"stores/{self._api.store_hash}",
        }
        return PulledOrder(str(doc["id"]), created, json.dumps(callback).encode())


def order_puller(
    http: httpx.Client, api: StoreApi, credentials: Mapping[str, Any], secret_name: str
) -> BigCommerceOrderPuller:
    """The registry's factory: ``{"accessToken": …}`` is the secret."""
    return BigCommerceOrderPuller(http, api, credential(credentials, "accessToken", secret_name))
