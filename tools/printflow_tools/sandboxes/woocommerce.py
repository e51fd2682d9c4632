"""A loopback WooCommerce site: the REST API v3 the write-back step tells and
reconciliation lists.

Behaves as the real API does for what PrintFlow sends:

- every route checks the REST API key pair, as HTTP Basic credentials (or the
  ``consumer_key``/``consumer_secret`` query parameters); a wrong key answers 401
  ``{"code": "woocommerce_rest_cannot_view", "message": ..., "data": {"status": 401}}``, a
  read-only key 401 ``woocommerce_rest_cannot_edit`` on writes;
- ``POST /wp-json/wc/v3/orders/{id}/notes`` ``{"note", "customer_note"}``: 201 with the note;
  every call adds one; an empty note is 400 ``woocommerce_rest_invalid_note``;
- ``GET .../orders/{id}/notes``: the order's notes, newest first, all of them (the real
  endpoint is not paginated); ``type=internal``/``customer`` keeps private/customer ones;
- ``GET /wp-json/wc/v3/orders``: ``after`` (exclusive) with ``dates_are_gmt=true`` compared to
  ``date_created_gmt``, ``orderby=date&order=asc``, ``per_page`` (at most 100) and ``page``;
  ``X-WP-Total`` and ``X-WP-TotalPages`` say how many there are; a page past the end is an
  empty list. Orders listed are the webhook's JSON (``events/payloads/woocommerce-order-
  created.json``) given to :meth:`WooCommerceSandbox.add_order`;
- ``PUT /wp-json/wc/v3/orders/{id}`` ``{"status"}``: 200 with the order; a status the site
  does not have is 400 ``rest_invalid_param``;
- an unknown order is 404 ``woocommerce_rest_shop_order_invalid_id``;
- injected failures (``Behaviour``): 429 with ``Retry-After`` (a host's rate limiter:
  WooCommerce itself has none), or 5xx; :meth:`WooCommerceSandbox.fail_next` answers the next
  requests with given statuses, in order.
"""

from __future__ import annotations

import base64
import binascii
import copy
import itertools
import math
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

DEMO_CONSUMER_KEY = "ck_demo_printflow"
DEMO_CONSUMER_SECRET = "cs_demo_printflow"  # noqa: S105 (the sandbox's own, public)
STATUSES = (
    "pending",
    "processing",
    "on-hold",
    "completed",
    "cancelled",
    "refunded",
    "failed",
    "checkout-draft",
)
PREFIX = "/wp-json/wc/v3/orders/{order_id}"
MAX_PER_PAGE = 100


@dataclass
class SiteOrder:
    order_id: str
    status: str = "processing"
    notes: list[dict[str, Any]] = field(default_factory=list)
    # The order's JSON (the webhook's body) for the listing; empty: not listed.
    document: dict[str, Any] = field(default_factory=dict)


class WooCommerceSandbox(SandboxServer):
    """One WooCommerce site on 127.0.0.1."""

    name = "woocommerce"

    def __init__(
        self,
        *,
        consumer_key: str = DEMO_CONSUMER_KEY,
        consumer_secret: str = DEMO_CONSUMER_SECRET,
        read_only: bool = False,
        max_per_page: int = MAX_PER_PAGE,
        behaviour: Behaviour | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(behaviour=behaviour, clock=clock)
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.read_only = read_only
        self.max_per_page = max_per_page  # a smaller cap makes tests page
        self._orders: dict[str, SiteOrder] = {}
        self._note_ids = itertools.count(1)
        self.failures = ScriptedFailures(_failure)
        self.fail_next = self.failures.fail_next
        self.route("GET", "/wp-json/wc/v3/orders", self._list_orders)
        self.route("PUT", PREFIX, self._update_order)
        self.route("POST", PREFIX + "/notes", self._add_note)
        self.route("GET", PREFIX + "/notes", self._list_notes)

    def add_order(self, order: int | str | dict[str, Any], *, status: str | None = None) -> None:
        """An order by its id, or its full JSON (listed by ``GET /orders`` then)."""
        document = copy.deepcopy(order) if isinstance(order, dict) else {}
        order_id = str(document["id"]) if document else str(order)
        chosen = status or str(document.get("status") or "processing")
        with self._lock:
            self._orders[order_id] = SiteOrder(order_id, chosen, document=document)

    def order(self, order_id: int | str) -> SiteOrder:
        with self._lock:
            return copy.deepcopy(self._orders[str(order_id)])

    # -- routes ---------------------------------------------------------------------------

    def _list_orders(self, request: Request) -> Response:
        if not self._authenticated(request):
            raise HttpError(
                _error(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
            )
        injected = self.failures.take()
        if injected is not None:
            return injected
        query = request.query
        try:
            after = parse_time(query["after"]) if query.get("after") else None
        except ValueError:
            raise HttpError(
                _error(400, "rest_invalid_param", "Invalid parameter(s): after")
            ) from None
        per_page = min(
            _number(query.get("per_page", "10"), "per_page", MAX_PER_PAGE), self.max_per_page
        )
        page = _number(query.get("page", "1"), "page", 10**6)
        if (query.get("orderby", "date"), query.get("order", "desc")) != ("date", "asc"):
            raise HttpError(_error(400, "rest_invalid_param", "the sandbox lists date asc only"))
        gmt = query.get("dates_are_gmt") == "true"
        with self._lock:
            orders = [
                {**copy.deepcopy(o.document), "status": o.status}
                for o in self._orders.values()
                if o.document
            ]

        def created(order: dict[str, Any]) -> Any:
            # Without dates_are_gmt, ``after`` is in the shop's time zone (UTC here as well).
            return parse_time(order["date_created_gmt" if gmt else "date_created"])

        orders.sort(key=lambda o: (created(o), int(o["id"])))
        if after is not None:
            orders = [o for o in orders if created(o) > after]
        chosen = orders[(page - 1) * per_page : page * per_page]
        headers = {
            "X-WP-Total": str(len(orders)),
            "X-WP-TotalPages": str(math.ceil(len(orders) / per_page)),
        }
        return json_response(200, chosen, headers)

    def _update_order(self, request: Request) -> Response:
        order = self._find(request, write=True)
        doc = request.json()
        status = doc.get("status") if isinstance(doc, dict) else None
        if status is not None:
            if status not in STATUSES:
                raise HttpError(
                    _error(
                        400,
                        "rest_invalid_param",
                        "Invalid parameter(s): status",
                        params={"status": f"status is not one of {', '.join(STATUSES)}."},
                    )
                )
            with self._lock:
                order.status = status
        return json_response(200, {"id": int(order.order_id), "status": order.status})

    def _add_note(self, request: Request) -> Response:
        order = self._find(request, write=True)
        doc = request.json()
        note = doc.get("note") if isinstance(doc, dict) else None
        if not isinstance(note, str) or not note.strip():
            raise HttpError(
                _error(
                    400,
                    "woocommerce_rest_invalid_note",
                    "Cannot create order note, please provide a note.",
                )
            )
        entry = {
            "id": next(self._note_ids),
            "author": "PrintFlow",
            "date_created_gmt": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.clock())),
            "note": note,
            "customer_note": bool(doc.get("customer_note", False)),
        }
        with self._lock:
            order.notes.insert(0, entry)
        return json_response(201, entry)

    def _list_notes(self, request: Request) -> Response:
        order = self._find(request, write=False)
        kind = request.query.get("type", "any")
        if kind not in ("any", "customer", "internal"):
            raise HttpError(_error(400, "rest_invalid_param", "Invalid parameter(s): type"))
        with self._lock:
            notes = copy.deepcopy(order.notes)
        if kind != "any":
            notes = [n for n in notes if n["customer_note"] is (kind == "customer")]
        return json_response(200, notes)

    def _find(self, request: Request, *, write: bool) -> SiteOrder:
        if not self._authenticated(request):
            raise HttpError(
                _error(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
            )
        if write and self.read_only:
            raise HttpError(
                _error(
                    401,
                    "woocommerce_rest_cannot_edit",
                    "Sorry, you are not allowed to edit this resource.",
                )
            )
        injected = self.failures.take()
        if injected is not None:
            raise HttpError(injected)
        with self._lock:
            found = self._orders.get(request.params["order_id"])
        if found is None:
            raise HttpError(_error(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID."))
        return found

    def _authenticated(self, request: Request) -> bool:
        if request.query.get("consumer_key") is not None:
            pair = (request.query.get("consumer_key"), request.query.get("consumer_secret"))
            return pair == (self.consumer_key, self.consumer_secret)
        scheme, _, value = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (user, password) == (self.consumer_key, self.consumer_secret)


def _error(status: int, code: str, message: str, **data: Any) -> Response:
    return json_response(
        status, {"code": code, "message": message, "data": {"status": status, **data}}
    )


def _number(value: str, name: str, maximum: int) -> int:
    if not value.isdigit() or not 1 <= int(value) <= maximum:
        raise HttpError(_error(400, "rest_invalid_param", f"Invalid parameter(s): {name}"))
    return int(value)


def _failure(status: int) -> Response:
    response = _error(status, "rest_error", "Too many requests" if status == 429 else "Error")
    if status == 429:
        response.headers["Retry-After"] = "1"
    return response
