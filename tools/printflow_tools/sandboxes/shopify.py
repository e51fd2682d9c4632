"""A loopback Shopify shop: the Admin GraphQL API's order listing (reconciliation).

Behaves as the real API does for what PrintFlow asks:

- ``POST /admin/api/{version}/graphql.json`` with ``X-Shopify-Access-Token`` (401
  ``{"errors": "[API] Invalid API key or access token ..."}`` otherwise);
- the ``orders(first, after, sortKey: CREATED_AT, query: "created_at:>='…'")`` connection,
  oldest first, with ``pageInfo { hasNextPage endCursor }`` and opaque cursors, and an order's
  ``lineItems(first, after)`` connection, also through ``order(id:)``;
- every answer carries ``extensions.cost`` (a leaky bucket of ``maximum_points`` restoring
  ``restore_rate`` a second); :meth:`ShopifySandbox.throttle_next` answers the next queries
  ``200`` with ``errors[].extensions.code == "THROTTLED"``, as an empty bucket does;
- :meth:`ShopifySandbox.fail_next` answers the next requests with 429 (``Retry-After``) or 5xx.

It is not a GraphQL engine: it recognises PrintFlow's two queries by their root field and
answers with every field they select. Orders are added in the REST (webhook) shape with
:meth:`ShopifySandbox.add_order` and shown in the GraphQL shape.
"""

from __future__ import annotations

import base64
import copy
import re
import threading
import time
from typing import Any

from printflow_tools.sandboxes.common import (
    Behaviour,
    Clock,
    HttpError,
    Request,
    Response,
    SandboxServer,
    json_response,
)
from printflow_tools.sandboxes.stores import ScriptedFailures, parse_time

DEMO_SHOPIFY_TOKEN = "shpat_demo-shopify-admin-token"  # noqa: S105 (the sandbox's own, public)
MAX_FIRST = 250
_SINCE = re.compile(r"created_at:>='([^']+)'")


class ShopifySandbox(SandboxServer):
    """One Shopify shop on 127.0.0.1; orders and knobs may change while it runs."""

    name = "shopify"

    def __init__(
        self,
        *,
        access_token: str = DEMO_SHOPIFY_TOKEN,
        maximum_points: int = 2000,
        restore_rate: int = 100,
        max_page_size: int = MAX_FIRST,
        behaviour: Behaviour | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(behaviour=behaviour, clock=clock)
        self.access_token = access_token
        self.maximum_points = maximum_points
        self.restore_rate = restore_rate
        self.max_page_size = max_page_size  # a smaller cap makes tests page
        self._orders: dict[str, dict[str, Any]] = {}
        self._throttles = 0
        self._state = threading.Lock()
        self.failures = ScriptedFailures(_failure)
        self.fail_next = self.failures.fail_next
        self.route("POST", "/admin/api/{version}/graphql.json", self._graphql)

    def add_order(self, order: dict[str, Any]) -> None:
        """An order in the REST shape (``events/payloads/shopify-orders-create.json``)."""
        with self._state:
            self._orders[str(order["id"])] = copy.deepcopy(order)

    def remove_order(self, order_id: int | str) -> None:
        with self._state:
            self._orders.pop(str(order_id), None)

    def throttle_next(self, count: int = 1) -> None:
        with self._state:
            self._throttles += count

    # -- the API ---------------------------------------------------------------------------

    def _graphql(self, request: Request) -> Response:
        if request.headers.get("X-Shopify-Access-Token") != self.access_token:
            raise HttpError(
                json_response(
                    401,
                    {
                        "errors": "[API] Invalid API key or access token "
                        "(unrecognized login or wrong password)"
                    },
                )
            )
        injected = self.failures.take()
        if injected is not None:
            return injected
        doc = request.json()
        if not isinstance(doc, dict) or not isinstance(doc.get("query"), str):
            raise HttpError(json_response(400, {"errors": {"query": "Required parameter missing"}}))
        query, variables = doc["query"], doc.get("variables") or {}
        with self._state:
            throttled = self._throttles > 0
            self._throttles -= 1 if throttled else 0
        if throttled:
            return json_response(
                200,
                {
                    "errors": [
                        {
                            "message": "Throttled",
                            "extensions": {
                                "code": "THROTTLED",
                                "documentation": "https://shopify.dev/api/usage/rate-limits",
                            },
                        }
                    ],
                    "extensions": self._cost(requested=502, available=100),
                },
            )
        if re.search(r"\border\s*\(\s*id:", query):
            data = {"order": self._one_order(variables)}
        elif re.search(r"\borders\s*\(", query):
            data = {"orders": self._orders_page(variables)}
        else:
            raise HttpError(
                json_response(200, {"errors": [{"message": "the sandbox knows two queries"}]})
            )
        return json_response(200, {"data": data, "extensions": self._cost(52, self.maximum_points)})

    def _orders_page(self, variables: dict[str, Any]) -> dict[str, Any]:
        first = min(_first(variables.get("first")), self.max_page_size)
        items = _first(variables.get("items", 10))
        match = _SINCE.search(str(variables.get("query") or ""))
        since = parse_time(match.group(1)) if match else None
        with self._state:
            orders = [copy.deepcopy(o) for o in self._orders.values()]
        orders.sort(key=lambda o: (parse_time(o["created_at"]), int(o["id"])))
        if since is not None:
            orders = [o for o in orders if parse_time(o["created_at"]) >= since]
        start = _offset(variables.get("after"))
        chosen = orders[start : start + first]
        end = start + len(chosen)
        return {
            "pageInfo": {
                "hasNextPage": end < len(orders),
                "endCursor": _cursor(end) if chosen else None,
            },
            "nodes": [_order_node(order, items, None) for order in chosen],
        }

    def _one_order(self, variables: dict[str, Any]) -> dict[str, Any] | None:
        gid = str(variables.get("id") or "")
        with self._state:
            order = copy.deepcopy(self._orders.get(gid.rsplit("/", 1)[-1]))
        if order is None:
            return None
        node = _order_node(order, _first(variables.get("first")), variables.get("after"))
        return {"lineItems": node["lineItems"]}

    def _cost(self, requested: int, available: int) -> dict[str, Any]:
        return {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": min(requested, available),
                "throttleStatus": {
                    "maximumAvailable": float(self.maximum_points),
                    "currentlyAvailable": available,
                    "restoreRate": float(self.restore_rate),
                },
            }
        }


def _first(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_FIRST:
        raise HttpError(
            json_response(
                200, {"errors": [{"message": f"first must be between 1 and {MAX_FIRST}"}]}
            )
        )
    return value


def _cursor(offset: int) -> str:
    return base64.b64encode(f"sandbox:{offset}".encode()).decode()


def _offset(cursor: Any) -> int:
    if cursor is None:
        return 0
    try:
        prefix, _, number = base64.b64decode(str(cursor)).decode().partition(":")
    except ValueError:
        prefix, number = "", ""
    if prefix != "sandbox" or not number.isdigit():
        raise HttpError(json_response(200, {"errors": [{"message": "Invalid cursor"}]}))
    return int(number)


def _order_node(order: dict[str, Any], items: int, after: Any) -> dict[str, Any]:
    line_items = order.get("line_items") or []
    start = _offset(after)
    chosen = line_items[start : start + items]
    end = start + len(chosen)
    return {
        "id": f"gid://shopify/Order/{order['id']}",
        "legacyResourceId": str(order["id"]),
        "name": order.get("name"),
        "email": order.get("email"),
        "createdAt": parse_time(order["created_at"]).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "currencyCode": order.get("currency"),
        "lineItems": {
            "pageInfo": {"hasNextPage": end < len(line_items), "endCursor": _cursor(end)},
            "nodes": [_line_item_node(item) for item in chosen],
        },
    }


def _line_item_node(item: dict[str, Any]) -> dict[str, Any]:
    def ref(value: Any) -> dict[str, str] | None:
        return None if value is None else {"legacyResourceId": str(value)}

    return {
        "id": f"gid://shopify/LineItem/{item['id']}",
        "name": item.get("name"),
        "title": item.get("title"),
        "quantity": item.get("quantity"),
        "sku": item.get("sku"),
        "product": ref(item.get("product_id")),
        "variant": ref(item.get("variant_id")),
        "customAttributes": [
            {"key": p.get("name"), "value": p.get("value")} for p in item.get("properties") or []
        ],
    }


def _failure(status: int) -> Response:
    headers = {"Retry-After": "1.0"} if status == 429 else {}
    message = "Exceeded 2 calls per second for api client." if status == 429 else "Internal error"
    return json_response(status, {"errors": message}, headers)
