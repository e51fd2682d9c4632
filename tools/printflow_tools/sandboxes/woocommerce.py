"""A loopback WooCommerce site: the REST API v3 the write-back step tells.

Behaves as the real API does for what PrintFlow sends:

- every route checks the REST API key pair, as HTTP Basic credentials (or the
  ``consumer_key``/``consumer_secret`` query parameters); a wrong key answers 401
  ``{"code": "woocommerce_rest_cannot_view", "message": ..., "data": {"status": 401}}``, a
  read-only key 401 ``woocommerce_rest_cannot_edit`` on writes;
- ``POST /wp-json/wc/v3/orders/{id}/notes`` ``{"note", "customer_note"}``: 201 with the note;
  every call adds one; an empty note is 400 ``woocommerce_rest_invalid_note``;
- ``GET .../orders/{id}/notes``: the order's notes, newest first;
- ``PUT /wp-json/wc/v3/orders/{id}`` ``{"status"}``: 200 with the order; a status the site
  does not have is 400 ``rest_invalid_param``;
- an unknown order is 404 ``woocommerce_rest_shop_order_invalid_id``;
- injected failures (``Behaviour``): 429 with ``Retry-After`` (a host's rate limiter:
  WooCommerce itself has none), or 5xx.
"""

from __future__ import annotations

import base64
import binascii
import copy
import itertools
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


@dataclass
class SiteOrder:
    order_id: str
    status: str = "processing"
    notes: list[dict[str, Any]] = field(default_factory=list)


class WooCommerceSandbox(SandboxServer):
    """One WooCommerce site on 127.0.0.1."""

    name = "woocommerce"

    def __init__(
        self,
        *,
        consumer_key: str = DEMO_CONSUMER_KEY,
        consumer_secret: str = DEMO_CONSUMER_SECRET,
        read_only: bool = False,
        behaviour: Behaviour | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(behaviour=behaviour, clock=clock)
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.read_only = read_only
        self._orders: dict[str, SiteOrder] = {}
        self._note_ids = itertools.count(1)
        self.route("PUT", PREFIX, self._update_order)
        self.route("POST", PREFIX + "/notes", self._add_note)
        self.route("GET", PREFIX + "/notes", self._list_notes)

    def add_order(self, order_id: int | str, *, status: str = "processing") -> None:
        with self._lock:
            self._orders[str(order_id)] = SiteOrder(str(order_id), status)

    def order(self, order_id: int | str) -> SiteOrder:
        with self._lock:
            return copy.deepcopy(self._orders[str(order_id)])

    # -- routes ---------------------------------------------------------------------------

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
        with self._lock:
            return json_response(200, copy.deepcopy(order.notes))

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
