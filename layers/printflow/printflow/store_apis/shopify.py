"""Shopify's Admin GraphQL API (``POST {base}/admin/api/{version}/graphql.json``).

Authentication: ``X-Shopify-Access-Token``. Rate limits are by query cost: a throttled
request answers 200 with ``errors[].extensions.code == "THROTTLED"`` and the answer's
``extensions.cost.throttleStatus`` says how fast points come back, so the wait is known.
HTTP 429 and 5xx occur too.

Reconciliation (list/pull): ``orders(first, after, sortKey: CREATED_AT,
query: "created_at:>='…'")``, cursor-paginated; an order with more line items than the
first page holds has the rest read with ``order(id) { lineItems(after: …) }``. Each order
becomes the REST JSON of the ``orders/create`` webhook (numeric ids, ``line_items`` with
``properties``), so it is recorded as a delivered one.
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

# Query cost ~ orders x line items: 25 x 20 stays well under the 1,000-point single query cap.
ORDERS_PER_PAGE = 25
LINE_ITEMS_FIRST = 20
LINE_ITEMS_MORE = 100
MAX_LINE_ITEM_PAGES = 10  # 1,000 line items, intake's limit

_LINE_ITEM_FIELDS = """
  pageInfo { hasNextPage endCursor }
  nodes {
    id name title quantity sku
    product { legacyResourceId }
    variant { legacyResourceId }
    customAttributes { key value }
  }
"""

ORDERS_QUERY = (
    """
query PrintFlowReconcile($first: Int!, $after: String, $query: String!, $items: Int!) {
  orders(first: $first, after: $after, sortKey: CREATED_AT, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id legacyResourceId name email createdAt currencyCode
      lineItems(first: $items) {"""
    + _LINE_ITEM_FIELDS
    + """}
    }
  }
}
"""
)

LINE_ITEMS_QUERY = (
    """
query PrintFlowOrderLineItems($id: ID!, $first: Int!, $after: String) {
  order(id: $id) {
    lineItems(first: $first, after: $after) {"""
    + _LINE_ITEM_FIELDS
    + """}
  }
}
"""
)


class ShopifyOrderPuller:
    """Lists the shop's orders created at or after a time, oldest first."""

    def __init__(self, http: httpx.Client, api: StoreApi, access_token: str) -> None:
        self._http = http
        self._url = f"{api.base_url}/admin/api/{api.api_version}/graphql.json"
        self._headers = {"X-Shopify-Access-Token": access_token, "Accept": "application/json"}

    def orders_since(self, since: datetime, page: str | None) -> OrderPage:
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        data = self._query(
            ORDERS_QUERY,
            {
                "first": ORDERS_PER_PAGE,
                "after": page,
                "query": f"created_at:>='{stamp}'",
                "items": LINE_ITEMS_FIRST,
            },
        )
        connection = _object(data.get("orders"), "orders")
        nodes = connection.get("nodes")
        if not isinstance(nodes, list):
            raise StoreApiError("Shopify orders: no nodes in the answer", transient=False)
        orders = tuple(self._pulled(_object(node, "orders.nodes[]")) for node in nodes)
        info = _object(connection.get("pageInfo"), "orders.pageInfo")
        cursor = info.get("endCursor")
        more = info.get("hasNextPage") is True and isinstance(cursor, str) and bool(nodes)
        return OrderPage(orders, cursor if more else None)

    def _pulled(self, node: dict[str, Any]) -> PulledOrder:
        order_id = _legacy_id(node.get("legacyResourceId") or node.get("id"), "order id")
        created = parse_time(node.get("createdAt"), "Shopify orders")
        items = self._line_items(node)
        name = node.get("name")
        number = str(name).lstrip("#") if isinstance(name, str) else ""
        body = {
            "id": int(order_id) if order_id.isdigit() else order_id,
            "admin_graphql_api_id": node.get("id"),
            "name": name,
            # The REST order_number is the name's digits (``#1042`` -> 1042).
            "order_number": int(number) if number.isdigit() else None,
            "email": node.get("email"),
            "currency": node.get("currencyCode"),
            "created_at": node.get("createdAt"),
            "line_items": [_rest_line_item(item) for item in items],
        }
        return PulledOrder(order_id, created, json.dumps(body).encode())

    def _line_items(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        connection = _object(node.get("lineItems"), "lineItems")
        items = list(_nodes(connection))
        info = _object(connection.get("pageInfo"), "lineItems.pageInfo")
        for _ in range(MAX_LINE_ITEM_PAGES):
            if info.get("hasNextPage") is not True:
                return items
            data = self._query(
                LINE_ITEMS_QUERY,
                {"id": node.get("id"), "first": LINE_ITEMS_MORE, "after": info.get("endCursor")},
            )
            more = _object(_object(data.get("order"), "order").get("lineItems"), "lineItems")
            items.extend(_nodes(more))
            info = _object(more.get("pageInfo"), "lineItems.pageInfo")
        raise StoreApiError(
            f"Shopify order {node.get('id')}: more line items than an order may hold",
            transient=False,
        )

    def _query(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        what = "Shopify GraphQL orders"
        answer, _ = call_json(
            self._http,
            "POST",
            self._url,
            what=what,
            headers=self._headers,
            json_body={"query": query, "variables": variables},
        )
        doc = _object(answer, "the answer")
        errors = doc.get("errors")
        if errors:
            raise _graphql_error(errors, doc.get("extensions"), what)
        return _object(doc.get("data"), "data")


def _graphql_error(errors: Any, extensions: Any, what: str) -> StoreApiError:
    codes = (
        [(e.get("extensions") or {}).get("code") for e in errors if isinstance(e, dict)]
        if isinstance(errors, list)
        else []
    )
    if "THROTTLED" in codes:
        return StoreApiError(
            f"{what}: THROTTLED", transient=True, retry_after_s=_throttle_wait(extensions)
        )
    first = errors[0] if isinstance(errors, list) and errors else errors
    message = first.get("message") if isinstance(first, dict) else str(first)
    return StoreApiError(f"{what}: {str(message)[:200]}", transient=False)


def _throttle_wait(extensions: Any) -> float | None:
    """Seconds until the bucket holds the points the query asked for."""
    cost = extensions.get("cost") if isinstance(extensions, dict) else None
    cost = cost if isinstance(cost, dict) else {}
    status = cost.get("throttleStatus")
    status = status if isinstance(status, dict) else {}
    wanted = _number(cost.get("requestedQueryCost"))
    available = _number(status.get("currentlyAvailable"))
    rate = _number(status.get("restoreRate"))
    if wanted is None or available is None or not rate:
        return None
    return max(0.0, (wanted - available) / rate)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StoreApiError(f"Shopify GraphQL: {what} is not an object", transient=False)
    return value


def _nodes(connection: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = connection.get("nodes")
    if not isinstance(nodes, list):
        raise StoreApiError("Shopify GraphQL: a connection has no nodes", transient=False)
    return [_object(node, "a node") for node in nodes]


def _legacy_id(value: Any, what: str) -> str:
    """``gid://shopify/Order/123`` or ``"123"`` -> ``"123"`` (the webhook's numeric id)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value:
        return value.rsplit("/", 1)[-1]
    raise StoreApiError(f"Shopify GraphQL: no {what}", transient=False)


def _rest_line_item(node: dict[str, Any]) -> dict[str, Any]:
    def legacy(ref: Any) -> Any:
        found = ref.get("legacyResourceId") if isinstance(ref, dict) else None
        return int(found) if isinstance(found, str) and found.isdigit() else found

    item_id = _legacy_id(node.get("id"), "line item id")
    attributes = node.get("customAttributes")
    return {
        "id": int(item_id) if item_id.isdigit() else item_id,
        "name": node.get("name"),
        "title": node.get("title"),
        "quantity": node.get("quantity"),
        "sku": node.get("sku"),
        "product_id": legacy(node.get("product")),
        "variant_id": legacy(node.get("variant")),
        "properties": [
            {"name": a.get("key"), "value": a.get("value")}
            for a in (attributes if isinstance(attributes, list) else [])
            if isinstance(a, dict)
        ],
    }


def order_puller(
    http: httpx.Client, api: StoreApi, credentials: Mapping[str, Any], secret_name: str
) -> ShopifyOrderPuller:
    """The registry's factory: ``{"accessToken": …}`` (an Admin API token) is the secret."""
    return ShopifyOrderPuller(http, api, credential(credentials, "accessToken", secret_name))
