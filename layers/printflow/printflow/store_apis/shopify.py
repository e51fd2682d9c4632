"""Shopify's Admin GraphQL API.

Write-back (the ``update-storefront-order`` step):

- tags: ``tagsAdd`` adds to the order's tags and never replaces them; a tag it has already
  is left alone, so a repeat is harmless;
- note: ``metafieldsSet`` on the order, namespace ``printflow``, key ``note-{step}``, type
  ``multi_line_text_field``: the merchant's own order note is never overwritten (``orderUpdate``
  would replace it), and setting the same metafield again changes nothing;
- status: Shopify orders have no status an app sets (fulfilment is a workflow of its own), so
  a ``status`` is refused for Shopify storefronts when the flow is checked against them.

Requests go to ``{baseUrl}/admin/api/{apiVersion}/graphql.json`` with
``X-Shopify-Access-Token`` (an Admin API token with ``write_orders``). Rate limits are by
query cost: every answer carries ``extensions.cost.throttleStatus`` (``currentlyAvailable``,
``restoreRate``); before a request the client waits until the bucket holds the request's
cost, a ``THROTTLED`` error (HTTP 200) is waited out from the same figures, and a 429 from
its ``Retry-After``, within the step's :class:`~printflow.store_apis.base.Pacer`.
``userErrors`` are validation failures: permanent.

Reconciliation (:class:`ShopifyOrderPuller`): ``orders(first, after, sortKey: CREATED_AT,
query: "created_at:>='…'")``, cursor-paginated; an order with more line items than the
first page holds has the rest read with ``order(id) { lineItems(after: …) }``. Each order
becomes the REST JSON of the ``orders/create`` webhook (numeric ids, ``line_items`` with
``properties``), so it is recorded as a delivered one. It needs the ``read_orders`` scope
(``read_all_orders`` for orders older than 60 days). Both go through :class:`ShopifyGraphql`,
which owns the cost throttling.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from printflow.domain.storefront import StoreApi
from printflow.store_apis.base import Pacer, StoreAnswer, StoreApiError, excerpt, exchange
from printflow.store_apis.pulls import OrderPage, PulledOrder, parse_time
from printflow.validators import ascii_int, finite_float

ORDER_GID_PREFIX = "gid://shopify/Order/"
NOTE_NAMESPACE = "printflow"
# What a small mutation costs (Shopify charges 10 per mutation plus selections).
MUTATION_COST = 10
MAX_ATTEMPTS = 5

TAGS_ADD = (
    "mutation tagsAdd($id: ID!, $tags: [String!]!) { "
    "tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } } }"
)
METAFIELDS_SET = (
    "mutation metafieldsSet($metafields: [MetafieldsSetInput!]!) { "
    "metafieldsSet(metafields: $metafields) { metafields { id key } "
    "userErrors { field message code } } }"
)


def order_gid(order_id: str) -> str:
    """The order's GID (the webhook's ``admin_graphql_api_id``) from its numeric id."""
    return order_id if order_id.startswith(ORDER_GID_PREFIX) else ORDER_GID_PREFIX + order_id


def note_key(step_id: str) -> str:
    """Metafield keys are 2-64 of letters, digits, '-' and '_': step ids fit."""
    return f"note-{step_id}"[:64]


class ShopifyWriteBack:
    """Tags and notes on one shop's orders. ``http`` should be a guarded client."""

    def __init__(
        self, http: httpx.Client, api: StoreApi, credentials: dict[str, str], pacer: Pacer
    ) -> None:
        self._graphql = ShopifyGraphql(http, api, credentials, pacer)

    def add_tags(self, order_id: str, tags: Sequence[str]) -> None:
        data = self._mutate("tagsAdd", TAGS_ADD, {"id": order_gid(order_id), "tags": list(tags)})
        if data.get("node") is None:
            raise StoreApiError(f"tagsAdd: the shop has no order {order_id!r}", transient=False)

    def set_status(self, order_id: str, status: str | int) -> None:
        raise StoreApiError("Shopify orders have no status PrintFlow can set", transient=False)

    def add_note(self, order_id: str, note: str, *, step_id: str, marker: str) -> None:
        # One metafield per step: setting it again (a retry, an attempt that died unrecorded)
        # replaces it with the same text, so no marker lookup is needed; the note carries it.
        metafield = {
            "ownerId": order_gid(order_id),
            "namespace": NOTE_NAMESPACE,
            "key": note_key(step_id),
            "type": "multi_line_text_field",
            "value": note,
        }
        self._mutate("metafieldsSet", METAFIELDS_SET, {"metafields": [metafield]})

    def _mutate(self, name: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        data = self._graphql.query(query, variables, name)
        result = data.get(name)
        if not isinstance(result, dict):
            raise StoreApiError(f"{name}: the answer has no {name} result", transient=False)
        errors = result.get("userErrors") or []
        if errors:
            messages = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
            raise StoreApiError(f"{name}: the shop refused it: {messages}", transient=False)
        return result


class ShopifyGraphql:
    """One shop's Admin GraphQL endpoint, its cost bucket tracked from every answer.
    ``http`` should be a guarded client."""

    def __init__(
        self, http: httpx.Client, api: StoreApi, credentials: dict[str, str], pacer: Pacer
    ) -> None:
        self._http = http
        self._url = f"{api.base_url}/admin/api/{api.api_version}/graphql.json"
        self._headers = {
            "X-Shopify-Access-Token": credentials["accessToken"],
            "Accept": "application/json",
        }
        self._pacer = pacer
        # The cost bucket as the last answer left it; None until the first answer.
        self._available: float | None = None
        self._restore_rate = 50.0

    def query(
        self, query: str, variables: dict[str, Any], what: str, *, cost: float = MUTATION_COST
    ) -> dict[str, Any]:
        """The ``data`` of one GraphQL request, throttling waited out within the pacer.

        ``cost``: what the request is expected to cost, waited for when the bucket the last
        answer reported holds less."""
        for _ in range(MAX_ATTEMPTS):
            if self._available is not None and self._available < cost:
                wait = (cost - self._available) / self._restore_rate
                self._pacer.wait(wait, f"{what}: the shop's query cost budget is spent")
            answer = exchange(
                self._http,
                "POST",
                self._url,
                what,
                headers=self._headers,
                json_body={"query": query, "variables": variables},
            )
            data = self._read(answer, what)
            if data is not None:
                return data
        raise StoreApiError(f"{what}: still throttled after {MAX_ATTEMPTS} tries", transient=True)

    def _read(self, answer: StoreAnswer, what: str) -> dict[str, Any] | None:
        """``data``, or None when throttled (after waiting); raises for anything else."""
        status = answer.status
        if status in (401, 403):
            raise StoreApiError(
                f"{what}: HTTP {status}, the shop refused the access token "
                "(check storeApi.credentialsSecret and the app's read_orders/write_orders scopes)",
                transient=False,
            )
        if status == 429:
            wait = answer.retry_after_s
            self._pacer.wait(2.0 if wait is None else wait, f"{what}: HTTP 429")
            return None
        if status >= 500:
            raise StoreApiError(
                f"{what}: HTTP {status}", transient=True, retry_after_s=answer.retry_after_s
            )
        if status != 200 or not isinstance(answer.body, dict):
            raise StoreApiError(f"{what}: HTTP {status}: {excerpt(answer.body)}", transient=False)
        doc = answer.body
        self._note_cost(doc)
        errors = doc.get("errors")
        if errors:
            if _throttled(errors):
                self._pacer.wait(self._throttle_wait(doc), f"{what}: THROTTLED")
                return None
            raise StoreApiError(f"{what}: {excerpt(errors)}", transient=False)
        data = doc.get("data")
        if not isinstance(data, dict):
            raise StoreApiError(f"{what}: the answer has no data", transient=False)
        return data

    def _note_cost(self, doc: dict[str, Any]) -> None:
        throttle = ((doc.get("extensions") or {}).get("cost") or {}).get("throttleStatus") or {}
        available, rate = throttle.get("currentlyAvailable"), throttle.get("restoreRate")
        available, rate = finite_float(available), finite_float(rate)
        if available is not None:
            self._available = available
        if rate is not None and rate > 0:
            self._restore_rate = rate

    def _throttle_wait(self, doc: dict[str, Any]) -> float:
        cost = (doc.get("extensions") or {}).get("cost") or {}
        requested = cost.get("requestedQueryCost")
        needed = finite_float(requested)
        needed = MUTATION_COST if needed is None else needed
        available = self._available or 0.0
        self._available = None  # the wait refills it; the next answer says by how much
        return max(needed - available, 0.0) / self._restore_rate


def _throttled(errors: Any) -> bool:
    return isinstance(errors, list) and any(
        isinstance(e, dict) and (e.get("extensions") or {}).get("code") == "THROTTLED"
        for e in errors
    )


# -- reconciliation: orders created since a time (a page at a time) ------------------------

# Query cost ~ orders x line items: 25 x 20 stays well under the 1,000-point single query cap.
ORDERS_PER_PAGE = 25
LINE_ITEMS_FIRST = 20
LINE_ITEMS_MORE = 100
MAX_LINE_ITEM_PAGES = 10  # 1,000 line items, intake's limit
# The sandbox and Shopify charge about one point per order and per line item listed.
ORDERS_QUERY_COST = 2 + ORDERS_PER_PAGE * LINE_ITEMS_FIRST
LINE_ITEMS_QUERY_COST = 2 + LINE_ITEMS_MORE

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

    def __init__(
        self, http: httpx.Client, api: StoreApi, credentials: dict[str, str], pacer: Pacer
    ) -> None:
        self._graphql = ShopifyGraphql(http, api, credentials, pacer)

    def orders_since(self, since: datetime, page: str | None) -> OrderPage:
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        data = self._graphql.query(
            ORDERS_QUERY,
            {
                "first": ORDERS_PER_PAGE,
                "after": page,
                "query": f"created_at:>='{stamp}'",
                "items": LINE_ITEMS_FIRST,
            },
            "Shopify orders",
            cost=ORDERS_QUERY_COST,
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
            "id": _as_int(order_id),
            "admin_graphql_api_id": node.get("id"),
            "name": name,
            # The REST order_number is the name's digits (``#1042`` -> 1042).
            "order_number": ascii_int(number),
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
            data = self._graphql.query(
                LINE_ITEMS_QUERY,
                {"id": node.get("id"), "first": LINE_ITEMS_MORE, "after": info.get("endCursor")},
                "Shopify order line items",
                cost=LINE_ITEMS_QUERY_COST,
            )
            more = _object(_object(data.get("order"), "order").get("lineItems"), "lineItems")
            items.extend(_nodes(more))
            info = _object(more.get("pageInfo"), "lineItems.pageInfo")
        raise StoreApiError(
            f"Shopify order {node.get('id')}: more line items than an order may hold",
            transient=False,
        )


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


def _as_int(legacy_id: str) -> int | str:
    """A legacy id as the REST API's integer, or as it came when it is no plain number."""
    number = ascii_int(legacy_id)
    return legacy_id if number is None else number


def _rest_line_item(node: dict[str, Any]) -> dict[str, Any]:
    def legacy(ref: Any) -> Any:
        found = ref.get("legacyResourceId") if isinstance(ref, dict) else None
        return _as_int(found) if isinstance(found, str) else found

    item_id = _legacy_id(node.get("id"), "line item id")
    attributes = node.get("customAttributes")
    return {
        "id": _as_int(item_id),
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
