"""WooCommerce's REST API v3 (``{site}/wp-json/wc/v3``).

Write-back (the ``update-storefront-order`` step):

- note: ``POST /orders/{id}/notes`` ``{"note": ..., "customer_note": false}`` (201): a private
  note the shop's staff see. Every call adds one, so each note ends with its marker (one per
  execution and step) and the order's private notes (``GET /orders/{id}/notes?type=internal``,
  not paginated) are read first: a
  note an attempt wrote before dying unrecorded is found there and not written again;
- status: ``PUT /orders/{id}`` ``{"status": "completed"}`` (``pending``, ``processing``,
  ``on-hold``, ``completed``, ``cancelled``, ``refunded``, ``failed``, or a plugin's own slug);
- tags: WooCommerce orders have none; the step writes them into the note instead.

Reconciliation (:class:`WooCommerceOrderPuller`): ``GET /orders?after=…&dates_are_gmt=true
&orderby=date&order=asc&per_page=100&page=N``; ``X-WP-TotalPages`` says how many pages there
are. A listed order has the same JSON as the ``order.created`` webhook's body, so it is
recorded as one.

Authentication is the REST API key pair as HTTP Basic credentials over HTTPS (the key needs
Read/Write permission). Errors answer ``{"code", "message", "data": {"status"}}``: 401/403
are a wrong or read-only key, 404 an unknown order, 400 a refused value; 429 (a host's rate
limiter) is waited out from ``Retry-After`` within the pacer, 5xx is transient.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from printflow.domain.storefront import StoreApi
from printflow.errors import ValidationError
from printflow.store_apis.base import Pacer, StoreAnswer, StoreApiError, excerpt, exchange_paced
from printflow.store_apis.pulls import OrderPage, PulledOrder, parse_time
from printflow.validators import ascii_int

API_PATH = "/wp-json/wc/v3"
LIST_PAGE_SIZE = 100  # the API's maximum
DRAFT_STATUS = "checkout-draft"
_STATUS_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,19}$")


def woocommerce_status(status: str) -> str:
    """The status slug WooCommerce takes (``wc-completed`` and ``Completed`` -> ``completed``)."""
    slug = status.strip().lower().removeprefix("wc-").replace(" ", "-")
    if not _STATUS_SLUG.match(slug):
        raise ValidationError(f"{status!r} is not a WooCommerce order status slug")
    return slug


class WooCommerceApi:
    """One site's REST API: JSON calls with the key pair, 429 waited out within the pacer.
    ``http`` should be a guarded client."""

    def __init__(
        self, http: httpx.Client, api: StoreApi, credentials: dict[str, str], pacer: Pacer
    ) -> None:
        self._http = http
        self._base = api.base_url + API_PATH
        self._auth = httpx.BasicAuth(credentials["consumerKey"], credentials["consumerSecret"])
        self._pacer = pacer

    def call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, object] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> StoreAnswer:
        """A 2xx answer; :class:`StoreApiError` for anything else."""
        return exchange_paced(
            self._http,
            method,
            self._base + path,
            f"{method} {API_PATH}{path}",
            self._pacer,
            headers={"Accept": "application/json"},
            json_body=body,
            params=params,
            auth=self._auth,
            ok=(200, 201),
            refusal=_error,
        )


class WooCommerceWriteBack:
    """Notes and statuses on one site's orders. ``http`` should be a guarded client."""

    def __init__(
        self, http: httpx.Client, api: StoreApi, credentials: dict[str, str], pacer: Pacer
    ) -> None:
        self._api = WooCommerceApi(http, api, credentials, pacer)

    def add_tags(self, order_id: str, tags: Sequence[str]) -> None:
        raise StoreApiError("WooCommerce orders have no tags", transient=False)

    def set_status(self, order_id: str, status: str | int) -> None:
        self._api.call("PUT", f"/orders/{quote(order_id, safe='')}", body={"status": str(status)})

    def add_note(self, order_id: str, note: str, *, step_id: str, marker: str) -> None:
        """Add ``note`` (which ends with ``marker``) unless a note with ``marker`` is there."""
        path = f"/orders/{quote(order_id, safe='')}/notes"
        if self._has_note(path, marker):
            return  # written by an attempt that died before recording it
        self._api.call("POST", path, body={"note": note, "customer_note": False})

    def _has_note(self, path: str, marker: str) -> bool:
        # The notes endpoint is not paginated: it answers all of the order's private notes.
        answer = self._api.call("GET", path, params={"type": "internal"})
        notes = answer.body if isinstance(answer.body, list) else []
        return any(isinstance(n, dict) and marker in str(n.get("note", "")) for n in notes)


class WooCommerceOrderPuller:
    """Lists the site's orders created at or after a time, oldest first."""

    def __init__(
        self, http: httpx.Client, api: StoreApi, credentials: dict[str, str], pacer: Pacer
    ) -> None:
        self._api = WooCommerceApi(http, api, credentials, pacer)

    def orders_since(self, since: datetime, page: str | None) -> OrderPage:
        number = int(page or "1")
        params = {
            # ``after`` is exclusive: one second earlier keeps an order made at ``since``.
            "after": _gmt(since),
            "dates_are_gmt": "true",
            "orderby": "date",
            "order": "asc",
            "per_page": LIST_PAGE_SIZE,
            "page": number,
        }
        what = f"GET {API_PATH}/orders"
        answer = self._api.call("GET", "/orders", params=params)
        if answer.body is None:
            return OrderPage(())
        if not isinstance(answer.body, list):
            raise StoreApiError(f"{what}: expected a JSON list", transient=False)
        # A block-checkout draft is a cart, not an order: no ``order.created`` webhook is sent
        # for it, so it is not pulled either.
        orders = tuple(
            _pulled(doc, what)
            for doc in answer.body
            if not (isinstance(doc, dict) and doc.get("status") == DRAFT_STATUS)
        )
        pages = ascii_int(answer.headers.get("x-wp-totalpages", ""))
        more = number < pages if pages is not None else len(answer.body) >= LIST_PAGE_SIZE
        return OrderPage(orders, str(number + 1) if more and answer.body else None)


def _gmt(moment: datetime) -> str:
    earlier = moment.astimezone(UTC).timestamp() - 1
    return datetime.fromtimestamp(earlier, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _pulled(doc: Any, what: str) -> PulledOrder:
    if not isinstance(doc, dict) or doc.get("id") in (None, ""):
        raise StoreApiError(f"{what}: an order without an id", transient=False)
    created = parse_time(doc.get("date_created_gmt") or doc.get("date_created"), what)
    return PulledOrder(str(doc["id"]), created, json.dumps(doc).encode())


def _error(what: str, answer: StoreAnswer) -> StoreApiError:
    status = answer.status
    body = answer.body if isinstance(answer.body, dict) else {}
    message = body.get("message") or excerpt(answer.body)
    if status in (401, 403):
        return StoreApiError(
            f"{what}: HTTP {status}, the site refused the API key (check "
            f"storeApi.credentialsSecret and the key's Read/Write permission): {message}",
            transient=False,
        )
    if status >= 500:
        return StoreApiError(
            f"{what}: HTTP {status}", transient=True, retry_after_s=answer.retry_after_s
        )
    return StoreApiError(f"{what}: HTTP {status}: {message}", transient=False)
