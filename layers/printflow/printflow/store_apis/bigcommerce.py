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
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from printflow.domain.storefront import StoreApi
from printflow.errors import ValidationError
from printflow.providers.base import retry_after_s
from printflow.store_apis.base import Pacer, StoreAnswer, StoreApiError, excerpt, exchange

PAGE_SIZE = 250  # the API's maximum
MAX_PAGES = 4  # 1,000 line items: the most an Order holds (intake.normalisers.MAX_LINE_ITEMS)
MAX_ANSWER_BYTES = 4 * 1024 * 1024


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
                body = _read_at_most(response, MAX_ANSWER_BYTES, what)
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


def _read_at_most(response: httpx.Response, limit: int, what: str) -> bytes:
    """The body of a 200 answer, refused past ``limit`` bytes without reading further."""
    if response.status_code != 200:
        return b""  # the status says it all
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > limit:
            raise StoreApiError(f"{what}: answer over {limit} bytes", transient=False)
    return bytes(body)


def _transient(what: str, response: httpx.Response) -> StoreApiError:
    """429 or 5xx; BigCommerce says when its rate-limit window resets in milliseconds."""
    wait = retry_after_s(response)
    reset_ms = response.headers.get("x-rate-limit-time-reset-ms", "")
    if wait is None and reset_ms.isdigit():
        wait = int(reset_ms) / 1000
    return StoreApiError(f"{what}: HTTP {response.status_code}", transient=True, retry_after_s=wait)


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
WRITE_ATTEMPTS = 3


def bigcommerce_status(status: str) -> int:
    """The V2 ``status_id`` of a status name (``Completed``, ``awaiting-shipment``) or id."""
    text = status.strip()
    if text.isdigit() and int(text) in ORDER_STATUS_IDS.values():
        return int(text)
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
    appended to the text already there (read first, never replaced), and tags are written
    into the note by the step. The API token needs the Orders modify scope.
    """

    def __init__(
        self, http: httpx.Client, api: StoreApi, credentials: dict[str, str], pacer: Pacer
    ) -> None:
        self._http = http
        self._base = f"{api.base_url}/stores/{api.store_hash}/v2"
        self._headers = {"X-Auth-Token": credentials["accessToken"], "Accept": "application/json"}
        self._pacer = pacer

    def add_tags(self, order_id: str, tags: Sequence[str]) -> None:
        raise StoreApiError("BigCommerce orders have no tags", transient=False)

    def set_status(self, order_id: str, status: str | int) -> None:
        self._send("PUT", order_id, {"status_id": int(status)})

    def add_note(self, order_id: str, note: str, *, step_id: str) -> None:
        current = self._send("GET", order_id, None)
        existing = current.get("staff_notes") if isinstance(current, dict) else None
        existing = existing if isinstance(existing, str) else ""
        if note in existing:
            return  # written by an earlier attempt whose record was lost
        combined = f"{existing.rstrip()}\n\n{note}" if existing.strip() else note
        if len(combined) > STAFF_NOTES_LIMIT:
            raise StoreApiError(
                f"order {order_id!r}: staff notes would exceed {STAFF_NOTES_LIMIT} characters",
                transient=False,
            )
        self._send("PUT", order_id, {"staff_notes": combined})

    def _send(self, method: str, order_id: str, body: dict[str, Any] | None) -> Any:
        path = f"/orders/{quote(order_id, safe='')}"
        what = f"{method} /v2{path}"
        for _ in range(WRITE_ATTEMPTS):
            answer = exchange(
                self._http, method, self._base + path, what, headers=self._headers, json_body=body
            )
            if answer.status == 200:
                return answer.body
            if answer.status == 429:
                wait = answer.retry_after_s
                self._pacer.wait(1.0 if wait is None else wait, f"{what}: HTTP 429")
                continue
            raise _write_error(what, answer)
        raise StoreApiError(
            f"{what}: still rate limited after {WRITE_ATTEMPTS} tries", transient=True
        )


def _write_error(what: str, answer: StoreAnswer) -> StoreApiError:
    status = answer.status
    if status in (401, 403):
        return StoreApiError(
            f"{what}: HTTP {status}, the store refused the access token "
            "(check storeApi.credentialsSecret and the token's Orders modify scope)",
            transient=False,
        )
    if status == 404:
        return StoreApiError(f"{what}: HTTP 404, the store has no such order", transient=False)
    if status >= 500:
        return StoreApiError(
            f"{what}: HTTP {status}", transient=True, retry_after_s=answer.retry_after_s
        )
    return StoreApiError(f"{what}: HTTP {status}: {excerpt(answer.body)}", transient=False)
