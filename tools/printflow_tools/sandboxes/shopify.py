"""A loopback Shopify shop: the Admin GraphQL API the write-back step tells and
reconciliation lists.

Behaves as the real API does for what PrintFlow sends:

- ``POST /admin/api/{version}/graphql.json`` with ``X-Shopify-Access-Token``; a wrong or
  missing token answers 401 ``{"errors": "[API] Invalid API key or access token ..."}``; a
  version that is not dated (``2025-10``) answers 404;
- calculated query costs: a bucket of ``bucket_size`` points refilled at ``restore_rate`` per
  second (the sandbox's clock); every answer carries ``extensions.cost`` with
  ``throttleStatus``; a request the bucket cannot pay for answers **200** with
  ``errors[].extensions.code == "THROTTLED"`` and changes nothing;
- ``tagsAdd(id, tags)``: adds tags (case-insensitively new ones only), never removes one; an
  unknown order gives ``node: null`` and a ``userErrors`` entry;
- ``metafieldsSet(metafields)``: sets order metafields by namespace and key (the same value
  again changes nothing); bad keys and unknown owners are ``userErrors``;
- ``order(id)``: the order's ``tags`` (for tests and tools) and its ``lineItems(first, after)``
  connection;
- ``orders(first, after, sortKey: CREATED_AT, query: "created_at:>='…'")``: the orders given
  in the REST (webhook) shape to :meth:`ShopifySandbox.add_order`, oldest first, in the
  GraphQL shape, with ``pageInfo { hasNextPage endCursor }`` and opaque cursors. It costs
  ``2 + first x lineItems.first`` points, as Shopify's calculated cost does;
- injected failures (``Behaviour``): 429 with ``Retry-After``, or 5xx;
  :meth:`ShopifySandbox.fail_next` answers the next requests with given statuses, in order.

The GraphQL document is not parsed in full: the sandbox recognises the operations above by
their field name and reads their arguments from ``variables``, as PrintFlow sends them.
"""

from __future__ import annotations

import base64
import copy
import itertools
import re
import threading
import time
from dataclasses import dataclass, field
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

DEMO_SHOP_TOKEN = "shpat_demo-printflow-token"  # noqa: S105 (the sandbox's own, public)
ORDER_GID = "gid://shopify/Order/"
MUTATION_COST = 10
QUERY_COST = 1
MAX_FIRST = 250
_SINCE = re.compile(r"created_at:>='([^']+)'")
_VERSION = re.compile(r"^20[0-9]{2}-(01|04|07|10)$")
_METAFIELD_KEY = re.compile(r"^[A-Za-z0-9_-]{2,64}$")
_OPERATION = re.compile(r"\b(tagsAdd|metafieldsSet|orders|order)\s*\(")


@dataclass
class ShopOrder:
    order_id: str
    tags: list[str] = field(default_factory=list)
    metafields: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    # The order in the REST (webhook) shape, for listings; empty: not listed.
    document: dict[str, Any] = field(default_factory=dict)


class ShopifySandbox(SandboxServer):
    """One shop on 127.0.0.1; orders, the token and the cost bucket may change while it runs."""

    name = "shopify"

    def __init__(
        self,
        *,
        access_token: str = DEMO_SHOP_TOKEN,
        bucket_size: float = 1000.0,
        restore_rate: float = 50.0,
        max_page_size: int = MAX_FIRST,
        behaviour: Behaviour | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(behaviour=behaviour, clock=clock)
        self.access_token = access_token
        self.bucket_size = bucket_size
        self.restore_rate = restore_rate
        self._available = bucket_size
        self._refilled_at = clock()
        self._orders: dict[str, ShopOrder] = {}
        self._bucket_lock = threading.Lock()
        self._metafield_ids = itertools.count(1)
        self._pending_drain = 0.0
        self.max_page_size = max_page_size  # a smaller cap makes tests page
        self.failures = ScriptedFailures(_failure)
        self.fail_next = self.failures.fail_next
        self.route("POST", "/admin/api/{version}/graphql.json", self._graphql)

    # -- state ----------------------------------------------------------------------------

    def add_order(
        self, order: int | str | dict[str, Any], *, tags: list[str] | None = None
    ) -> None:
        """An order by its id, or in the REST shape (``events/payloads/shopify-orders-
        create.json``): listed by ``orders`` then."""
        document = copy.deepcopy(order) if isinstance(order, dict) else {}
        order_id = str(document["id"]) if document else str(order)
        with self._lock:
            self._orders[order_id] = ShopOrder(order_id, list(tags or []), document=document)

    def remove_order(self, order_id: int | str) -> None:
        with self._lock:
            self._orders.pop(str(order_id), None)

    def order(self, order_id: int | str) -> ShopOrder:
        """A copy of the order as the shop holds it."""
        with self._lock:
            return copy.deepcopy(self._orders[str(order_id)])

    def drain(self, points: float) -> None:
        """Spend ``points`` of the bucket, as another app of the shop would."""
        with self._bucket_lock:
            self._refill()
            self._available = max(self._available - points, 0.0)

    def drain_before_next_request(self, points: float) -> None:
        """Spend ``points`` just before the next API request is answered: another app's
        burst that lands while PrintFlow is on its way (a test knob, independent of timing)."""
        with self._bucket_lock:
            self._pending_drain += points

    # -- the API --------------------------------------------------------------------------

    def _graphql(self, request: Request) -> Response:
        if request.headers.get("X-Shopify-Access-Token") != self.access_token:
            return json_response(
                401,
                {
                    "errors": "[API] Invalid API key or access token (unrecognized login or "
                    "wrong password)"
                },
            )
        if not _VERSION.match(request.params["version"]):
            return json_response(404, {"errors": "Not Found"})
        injected = self.failures.take()
        if injected is not None:
            return injected
        doc = request.json()
        if not isinstance(doc, dict) or not isinstance(doc.get("query"), str):
            return json_response(400, {"errors": {"query": "Required parameter missing"}})
        variables = doc.get("variables") or {}
        match = _OPERATION.search(doc["query"])
        if match is None:
            return json_response(
                200, {"errors": [{"message": "Field doesn't exist on type", "extensions": {}}]}
            )
        operation = match.group(1)
        cost = _cost_of(operation, variables)
        with self._bucket_lock:
            self._refill()
            self._available = max(self._available - self._pending_drain, 0.0)
            self._pending_drain = 0.0
            if self._available < cost:
                return json_response(200, self._throttled(cost))
            self._available -= cost
        data = {
            "tagsAdd": self._tags_add,
            "metafieldsSet": self._metafields_set,
            "order": self._read_order,
            "orders": self._orders_page,
        }[operation](variables)
        actual = _actual_cost(operation, data, cost)
        with self._bucket_lock:
            # Shopify charges the requested cost up front and refunds what the query did not use.
            self._available = min(self.bucket_size, self._available + cost - actual)
            extensions = self._cost(cost, actual)
        return json_response(200, {"data": {operation: data}, "extensions": extensions})

    def _tags_add(self, variables: dict[str, Any]) -> dict[str, Any]:
        found = self._find(variables.get("id"))
        tags = variables.get("tags")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise HttpError(
                json_response(200, {"errors": [{"message": "tags: expected [String!]"}]})
            )
        if found is None:
            return {
                "node": None,
                "userErrors": [{"field": ["id"], "message": "Order does not exist"}],
            }
        with self._lock:
            have = {t.casefold() for t in found.tags}
            for tag in (t.strip() for t in tags):
                if tag and tag.casefold() not in have:
                    found.tags.append(tag)
                    have.add(tag.casefold())
        return {"node": {"id": ORDER_GID + found.order_id}, "userErrors": []}

    def _metafields_set(self, variables: dict[str, Any]) -> dict[str, Any]:
        entries = variables.get("metafields")
        if not isinstance(entries, list) or not 1 <= len(entries) <= 25:
            return {
                "metafields": None,
                "userErrors": [
                    {"field": ["metafields"], "message": "1-25 metafields", "code": "INVALID"}
                ],
            }
        errors: list[dict[str, Any]] = []
        accepted: list[tuple[ShopOrder, dict[str, str]]] = []
        for index, entry in enumerate(entries):
            owner = self._find(entry.get("ownerId")) if isinstance(entry, dict) else None
            if owner is None:
                errors.append(
                    {
                        "field": ["metafields", str(index), "ownerId"],
                        "message": "Owner does not exist",
                        "code": "INVALID",
                    }
                )
                continue
            key, namespace = entry.get("key"), entry.get("namespace")
            if not isinstance(key, str) or not _METAFIELD_KEY.match(key):
                errors.append(
                    {
                        "field": ["metafields", str(index), "key"],
                        "message": "Key is invalid",
                        "code": "INVALID",
                    }
                )
                continue
            if not isinstance(namespace, str) or not 3 <= len(namespace) <= 255:
                errors.append(
                    {
                        "field": ["metafields", str(index), "namespace"],
                        "message": "Namespace is invalid",
                        "code": "INVALID",
                    }
                )
                continue
            if not isinstance(entry.get("value"), str) or not isinstance(entry.get("type"), str):
                errors.append(
                    {
                        "field": ["metafields", str(index), "value"],
                        "message": "Value and type are required",
                        "code": "BLANK",
                    }
                )
                continue
            accepted.append(
                (owner, {k: str(entry[k]) for k in ("namespace", "key", "type", "value")})
            )
        if errors:  # all or nothing, as the real mutation
            return {"metafields": None, "userErrors": errors}
        ids = []
        with self._lock:
            for owner, metafield in accepted:
                slot = (metafield["namespace"], metafield["key"])
                metafield["id"] = owner.metafields.get(slot, {}).get("id") or (
                    f"gid://shopify/Metafield/{next(self._metafield_ids)}"
                )
                owner.metafields[slot] = metafield
                ids.append({"id": metafield["id"], "key": metafield["key"]})
        return {"metafields": ids, "userErrors": []}

    def _read_order(self, variables: dict[str, Any]) -> dict[str, Any] | None:
        found = self._find(variables.get("id"))
        if found is None:
            return None
        with self._lock:
            node = {"id": ORDER_GID + found.order_id, "tags": list(found.tags)}
            document = copy.deepcopy(found.document)
        if "first" in variables:  # the lineItems connection asked for
            lines = _order_node(document, variables, variables.get("after"))["lineItems"]
            node["lineItems"] = lines
        return node

    def _orders_page(self, variables: dict[str, Any]) -> dict[str, Any]:
        first = min(_first(variables.get("first")), self.max_page_size)
        match = _SINCE.search(str(variables.get("query") or ""))
        since = parse_time(match.group(1)) if match else None
        with self._lock:
            orders = [copy.deepcopy(o.document) for o in self._orders.values() if o.document]
        orders.sort(key=lambda o: (parse_time(o["created_at"]), int(o["id"])))
        if since is not None:
            orders = [o for o in orders if parse_time(o["created_at"]) >= since]
        start = _offset(variables.get("after"))
        chosen = orders[start : start + first]
        end = start + len(chosen)
        items = {"first": variables.get("items", 10)}
        return {
            "pageInfo": {
                "hasNextPage": end < len(orders),
                "endCursor": _cursor(end) if chosen else None,
            },
            "nodes": [_order_node(order, items, None) for order in chosen],
        }

    def _find(self, gid: Any) -> ShopOrder | None:
        if not isinstance(gid, str) or not gid.startswith(ORDER_GID):
            return None
        with self._lock:
            return self._orders.get(gid[len(ORDER_GID) :])

    # -- the cost bucket ------------------------------------------------------------------

    def _refill(self) -> None:
        now = self.clock()
        elapsed = max(now - self._refilled_at, 0.0)
        self._available = min(self.bucket_size, self._available + elapsed * self.restore_rate)
        self._refilled_at = now

    def _cost(self, cost: float, actual: float | None = None) -> dict[str, Any]:
        return {
            "cost": {
                "requestedQueryCost": cost,
                "actualQueryCost": cost if actual is None else actual,
                "throttleStatus": {
                    "maximumAvailable": self.bucket_size,
                    "currentlyAvailable": round(self._available, 3),
                    "restoreRate": self.restore_rate,
                },
            }
        }

    def _throttled(self, cost: float) -> dict[str, Any]:
        extensions = self._cost(cost)
        extensions["cost"]["actualQueryCost"] = None
        return {
            "errors": [
                {
                    "message": "Throttled",
                    "extensions": {
                        "code": "THROTTLED",
                        "documentation": "https://shopify.dev/api/usage/rate-limits",
                    },
                }
            ],
            "extensions": extensions,
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


def _cost_of(operation: str, variables: dict[str, Any]) -> float:
    """Shopify's calculated cost, near enough: a mutation 10, a read 1 plus what it lists."""
    if operation == "orders":
        return 2 + _count(variables.get("first")) * _count(variables.get("items", 10))
    if operation == "order" and "first" in variables:
        return 2 + _count(variables.get("first"))
    return QUERY_COST if operation == "order" else MUTATION_COST


def _actual_cost(operation: str, data: Any, requested: float) -> float:
    """What a listing really cost: one point per order and per line item it returned."""
    if operation == "orders" and isinstance(data, dict):
        nodes = data["nodes"]
        return 2 + sum(1 + len(node["lineItems"]["nodes"]) for node in nodes)
    if operation == "order" and isinstance(data, dict) and "lineItems" in data:
        return 2 + len(data["lineItems"]["nodes"])
    return requested


def _count(value: Any) -> int:
    return value if isinstance(value, int) and 1 <= value <= MAX_FIRST else 1


def _order_node(order: dict[str, Any], variables: dict[str, Any], after: Any) -> dict[str, Any]:
    line_items = order.get("line_items") or []
    items = _first(variables.get("first"))
    start = _offset(after)
    chosen = line_items[start : start + items]
    end = start + len(chosen)
    return {
        "id": f"{ORDER_GID}{order.get('id')}",
        "legacyResourceId": str(order.get("id")),
        "name": order.get("name"),
        "email": order.get("email"),
        "createdAt": (
            parse_time(order["created_at"]).strftime("%Y-%m-%dT%H:%M:%SZ")
            if order.get("created_at")
            else None
        ),
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
