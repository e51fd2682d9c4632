"""A loopback Shopify shop: the Admin GraphQL API the write-back step tells.

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
- ``order(id)``: the order's ``tags`` (for tests and tools);
- injected failures (``Behaviour``): 429 with ``Retry-After``, or 5xx.

The GraphQL document is not parsed in full: the sandbox recognises the operations above by
their field name and reads their arguments from ``variables``, as PrintFlow sends them.
"""

from __future__ import annotations

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

DEMO_SHOP_TOKEN = "shpat_demo-printflow-token"  # noqa: S105 (the sandbox's own, public)
ORDER_GID = "gid://shopify/Order/"
MUTATION_COST = 10
QUERY_COST = 1
_VERSION = re.compile(r"^20[0-9]{2}-(01|04|07|10)$")
_METAFIELD_KEY = re.compile(r"^[A-Za-z0-9_-]{2,64}$")
_OPERATION = re.compile(r"\b(tagsAdd|metafieldsSet|order)\s*\(")


@dataclass
class ShopOrder:
    order_id: str
    tags: list[str] = field(default_factory=list)
    metafields: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)


class ShopifySandbox(SandboxServer):
    """One shop on 127.0.0.1; orders, the token and the cost bucket may change while it runs."""

    name = "shopify"

    def __init__(
        self,
        *,
        access_token: str = DEMO_SHOP_TOKEN,
        bucket_size: float = 1000.0,
        restore_rate: float = 50.0,
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
        self.route("POST", "/admin/api/{version}/graphql.json", self._graphql)

    # -- state ----------------------------------------------------------------------------

    def add_order(self, order_id: int | str, *, tags: list[str] | None = None) -> None:
        with self._lock:
            self._orders[str(order_id)] = ShopOrder(str(order_id), list(tags or []))

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
        cost = QUERY_COST if operation == "order" else MUTATION_COST
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
        }[operation](variables)
        return json_response(200, {"data": {operation: data}, "extensions": self._cost(cost)})

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
            return {"id": ORDER_GID + found.order_id, "tags": list(found.tags)}

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
