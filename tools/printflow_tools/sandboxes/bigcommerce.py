"""A loopback BigCommerce store: the V2 Orders API a thin order webhook is completed from.

Behaves as the real API does for what PrintFlow reads:

- every route checks ``X-Auth-Token`` (401 ``[{"status": 401, "message": ...}]`` otherwise)
  and the store hash in the path (404 for another store);
- ``GET /stores/{hash}/v2/orders/{id}``: the order, or 404 ``[{"status": 404, ...}]``;
- ``GET /stores/{hash}/v2/orders/{id}/products?page=N&limit=M``: a page of line items with
  ``product_options``; a page past the end answers ``204 No Content``;
- ``PUT /stores/{hash}/v2/orders/{id}``: ``status_id`` and ``staff_notes`` (write-back);
- ``GET /stores/{hash}/v2/orders?min_date_created=…&sort=date_created:asc&limit=M&page=N``:
  the orders created at or after the time (RFC 2822 or ISO 8601), oldest first; a page past
  the end answers ``204 No Content`` (reconciliation lists orders this way);
- :meth:`BigCommerceSandbox.fail_next` answers the next listings with 429/5xx, in order;
- injected failures (``Behaviour``) answer 429 with ``X-Rate-Limit-Time-Reset-Ms`` or 5xx.

Orders are added with :meth:`BigCommerceSandbox.add_order`; :func:`demo_order` builds the
one behind ``events/payloads/bigcommerce-order-created.json`` (order 250).
"""

from __future__ import annotations

import copy
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

DEMO_STORE_HASH = "abc123xyz"  # the demo payload's producer is "stores/abc123xyz"
DEMO_ACCESS_TOKEN = "demo-bigcommerce-api-token"  # noqa: S105 (the sandbox's own, public)
MAX_PAGE_SIZE = 250
PREFIX = "/stores/{store_hash}/v2/orders/{order_id}"
STATUS_NAMES = {
    0: "Incomplete",
    1: "Pending",
    2: "Shipped",
    3: "Partially Shipped",
    4: "Refunded",
    5: "Cancelled",
    6: "Declined",
    7: "Awaiting Payment",
    8: "Awaiting Pickup",
    9: "Awaiting Shipment",
    10: "Completed",
    11: "Awaiting Fulfillment",
    12: "Manual Verification Required",
    13: "Disputed",
    14: "Partially Refunded",
}


def demo_order(order_id: int = 250) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A realistic order with two personalised line items, as ``GET /v2/orders`` shows it."""
    order = {
        "id": order_id,
        "status": "Awaiting Fulfillment",
        "status_id": 11,
        "staff_notes": "",
        "date_created": "Fri, 21 Nov 2025 15:22:11 +0000",
        "currency_code": "EUR",
        "total_inc_tax": "64.9000",
        "items_total": 3,
        "billing_address": {
            "first_name": "Anna",
            "last_name": "Peeters",
            "email": "anna.peeters@example.com",
            "country_iso2": "BE",
        },
        "products": {"resource": f"/orders/{order_id}/products"},
    }
    products = [
        {
            "id": 501,
            "order_id": order_id,
            "product_id": 77,
            "variant_id": 310,
            "name": "Personalised poster A2",
            "sku": "POSTER-A2",
            "quantity": 2,
            "product_options": [
                {"id": 1, "display_name": "Headline", "display_value": "Happy birthday Anna"},
                {"id": 2, "display_name": "Colour", "display_value": "Ocean"},
            ],
        },
        {
            "id": 502,
            "order_id": order_id,
            "product_id": 78,
            "variant_id": 311,
            "name": "Greeting card",
            "sku": "CARD-A6",
            "quantity": 1,
            "product_options": [
                {"id": 3, "display_name": "Headline", "display_value": "See you soon"},
            ],
        },
    ]
    return order, products


class BigCommerceSandbox(SandboxServer):
    """One BigCommerce store on 127.0.0.1; orders and knobs may change while it runs."""

    name = "bigcommerce"

    def __init__(
        self,
        *,
        store_hash: str = DEMO_STORE_HASH,
        access_token: str = DEMO_ACCESS_TOKEN,
        max_page_size: int = MAX_PAGE_SIZE,
        behaviour: Behaviour | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(behaviour=behaviour, clock=clock)
        self.store_hash = store_hash
        self.access_token = access_token
        self.max_page_size = max_page_size  # a smaller cap makes tests page
        self._orders: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        self.route("GET", PREFIX, self._get_order)
        self.route("GET", PREFIX + "/products", self._get_products)
        self.route("PUT", PREFIX, self._update_order)
        self.route("GET", "/stores/{store_hash}/v2/orders", self._list_orders)
        self.rate_limit_reset_ms = 1000  # the wait a scripted 429 states
        self.listing_failures = ScriptedFailures(self._failure)
        self.fail_next = self.listing_failures.fail_next

    def add_order(self, order: dict[str, Any], products: list[dict[str, Any]]) -> None:
        with self._lock:
            self._orders[str(order["id"])] = (copy.deepcopy(order), copy.deepcopy(products))

    def remove_order(self, order_id: int | str) -> None:
        with self._lock:
            self._orders.pop(str(order_id), None)

    # -- routes ---------------------------------------------------------------------------

    def _get_order(self, request: Request) -> Response:
        order, _ = self._find(request)
        return json_response(200, order)

    def _get_products(self, request: Request) -> Response:
        _, products = self._find(request)
        page = _positive(request.query.get("page", "1"), "page")
        limit = min(_positive(request.query.get("limit", "50"), "limit"), MAX_PAGE_SIZE)
        chosen = products[(page - 1) * limit : page * limit]
        if not chosen:
            return Response(204)
        return json_response(200, chosen)

    def _update_order(self, request: Request) -> Response:
        """``PUT /v2/orders/{id}``: ``status_id`` (0-14) and ``staff_notes`` (replaced: the
        V2 API keeps one text, a client appends by reading it first)."""
        self._find(request)
        doc = request.json()
        if not isinstance(doc, dict) or not doc:
            raise HttpError(_error(400, "The request body is empty or not an object."))
        status_id = doc.get("status_id")
        if "status_id" in doc and (
            not isinstance(status_id, int)
            or isinstance(status_id, bool)
            or status_id not in STATUS_NAMES
        ):
            raise HttpError(_error(400, "The field 'status_id' is invalid."))
        notes = doc.get("staff_notes")
        if "staff_notes" in doc and not isinstance(notes, str):
            raise HttpError(_error(400, "The field 'staff_notes' is invalid."))
        with self._lock:
            order = self._orders[request.params["order_id"]][0]
            if isinstance(status_id, int):
                order["status_id"] = status_id
                order["status"] = STATUS_NAMES[status_id]
            if "staff_notes" in doc:
                order["staff_notes"] = notes
            return json_response(200, copy.deepcopy(order))

    def order(self, order_id: int | str) -> dict[str, Any]:
        """A copy of the order document as the store holds it."""
        with self._lock:
            return copy.deepcopy(self._orders[str(order_id)][0])

    def _list_orders(self, request: Request) -> Response:
        self._check_access(request)
        injected = self.listing_failures.take()
        if injected is not None:
            return injected
        since_value = request.query.get("min_date_created")
        try:
            since = parse_time(since_value) if since_value else None
        except (TypeError, ValueError):
            raise HttpError(_error(400, "The field 'min_date_created' is invalid.")) from None
        if request.query.get("sort", "date_created:asc") != "date_created:asc":
            raise HttpError(_error(400, "The sandbox sorts by date_created:asc only."))
        page = _positive(request.query.get("page", "1"), "page")
        limit = min(_positive(request.query.get("limit", "50"), "limit"), self.max_page_size)
        with self._lock:
            orders = [copy.deepcopy(order) for order, _ in self._orders.values()]
        orders.sort(key=lambda o: (parse_time(o["date_created"]), int(o["id"])))
        if since is not None:
            orders = [o for o in orders if parse_time(o["date_created"]) >= since]
        chosen = orders[(page - 1) * limit : page * limit]
        return json_response(200, chosen) if chosen else Response(204)

    def _check_access(self, request: Request) -> None:
        if request.headers.get("X-Auth-Token") != self.access_token:
            raise HttpError(_error(401, "You are not authorised to access this resource."))
        if request.params["store_hash"] != self.store_hash:
            raise HttpError(_error(404, "The requested store does not exist."))

    def _failure(self, status: int) -> Response:
        response = _error(status, "Too many requests." if status == 429 else "Internal error.")
        if status == 429:
            response.headers["X-Rate-Limit-Time-Reset-Ms"] = str(self.rate_limit_reset_ms)
        return response

    def _find(self, request: Request) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        self._check_access(request)
        with self._lock:
            found = self._orders.get(request.params["order_id"])
        if found is None:
            raise HttpError(_error(404, "The requested resource was not found."))
        return copy.deepcopy(found)

    def _injected_failure(self) -> Response | None:
        response = super()._injected_failure()
        if response is not None and response.status == 429:
            # BigCommerce states the wait in milliseconds, not with Retry-After.
            response.headers.pop("Retry-After", None)
            reset_ms = str(self.behaviour.retry_after_s * 1000)
            response.headers["X-Rate-Limit-Time-Reset-Ms"] = reset_ms
        return response


def _error(status: int, message: str) -> Response:
    return json_response(status, [{"status": status, "message": message}])


def _positive(value: str, name: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise HttpError(_error(400, f"The field '{name}' is invalid."))
    return int(value)
