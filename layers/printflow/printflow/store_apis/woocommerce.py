"""WooCommerce's REST API v3.

Reconciliation (list/pull): ``GET {base}/wp-json/wc/v3/orders?after=…&dates_are_gmt=true
&orderby=date&order=asc&per_page=100&page=N`` with the consumer key and secret as HTTP Basic
credentials (over HTTPS). ``X-WP-TotalPages`` says how many pages there are. A listed order
has the same JSON as the ``order.created`` webhook's body, so it is recorded as one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from printflow.domain.storefront import StoreApi
from printflow.store_apis.http import StoreApiError, call_json
from printflow.store_apis.pulls import OrderPage, PulledOrder, credential, parse_time

# -- reconciliation: orders created since a time (a page at a time) ------------------------

LIST_PAGE_SIZE = 100  # the API's maximum
DRAFT_STATUS = "checkout-draft"


class WooCommerceOrderPuller:
    """Lists the shop's orders created after a time, oldest first."""

    def __init__(self, http: httpx.Client, api: StoreApi, key: str, secret: str) -> None:
        self._http = http
        self._url = f"{api.base_url}/wp-json/wc/v3/orders"
        self._auth = httpx.BasicAuth(key, secret)
        self._headers = {"Accept": "application/json"}

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
        what = "GET /wc/v3/orders"
        answer, response = call_json(
            self._http,
            "GET",
            self._url,
            what=what,
            headers=self._headers,
            params=params,
            auth=self._auth,
        )
        if answer is None:
            return OrderPage(())
        if not isinstance(answer, list):
            raise StoreApiError(f"{what}: expected a JSON list", transient=False)
        # A block-checkout draft is a cart, not an order: no ``order.created`` webhook is sent
        # for it, so it is not pulled either.
        orders = tuple(
            _pulled(doc, what)
            for doc in answer
            if not (isinstance(doc, dict) and doc.get("status") == DRAFT_STATUS)
        )
        pages = response.headers.get("x-wp-totalpages", "")
        more = number < int(pages) if pages.isdigit() else len(answer) >= LIST_PAGE_SIZE
        return OrderPage(orders, str(number + 1) if more and answer else None)


def _gmt(moment: datetime) -> str:
    earlier = moment.astimezone(UTC).timestamp() - 1
    return datetime.fromtimestamp(earlier, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _pulled(doc: Any, what: str) -> PulledOrder:
    if not isinstance(doc, dict) or doc.get("id") in (None, ""):
        raise StoreApiError(f"{what}: an order without an id", transient=False)
    created = parse_time(doc.get("date_created_gmt") or doc.get("date_created"), what)
    return PulledOrder(str(doc["id"]), created, json.dumps(doc).encode())


def order_puller(
    http: httpx.Client, api: StoreApi, credentials: Mapping[str, Any], secret_name: str
) -> WooCommerceOrderPuller:
    """The registry's factory: ``{"consumerKey": …, "consumerSecret": …}`` is the secret."""
    return WooCommerceOrderPuller(
        http,
        api,
        credential(credentials, "consumerKey", secret_name),
        credential(credentials, "consumerSecret", secret_name),
    )
