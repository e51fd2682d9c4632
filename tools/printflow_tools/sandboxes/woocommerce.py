"""A loopback WooCommerce shop: REST API v3's order listing (reconciliation).

Behaves as the real API does for what PrintFlow asks:

- ``GET /wp-json/wc/v3/orders`` with the consumer key and secret as HTTP Basic credentials
  (401 ``{"code": "woocommerce_rest_cannot_view", ...}`` otherwise);
- ``after`` (exclusive) with ``dates_are_gmt=true`` compared to ``date_created_gmt``,
  ``orderby=date&order=asc``, ``per_page`` (at most 100) and ``page``; ``X-WP-Total`` and
  ``X-WP-TotalPages`` say how many there are; a page past the end is an empty list;
- :meth:`WooCommerceSandbox.fail_next` answers the next listings with 429 or 5xx.

Orders are the webhook's JSON (``events/payloads/woocommerce-order-created.json``).
"""

from __future__ import annotations

import base64
import binascii
import copy
import math
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

DEMO_CONSUMER_KEY = "ck_demo_woocommerce_key"
DEMO_CONSUMER_SECRET = "cs_demo_woocommerce_secret"  # noqa: S105 (the sandbox's own, public)
MAX_PER_PAGE = 100


class WooCommerceSandbox(SandboxServer):
    """One WooCommerce shop on 127.0.0.1; orders and knobs may change while it runs."""

    name = "woocommerce"

    def __init__(
        self,
        *,
        consumer_key: str = DEMO_CONSUMER_KEY,
        consumer_secret: str = DEMO_CONSUMER_SECRET,
        max_per_page: int = MAX_PER_PAGE,
        behaviour: Behaviour | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(behaviour=behaviour, clock=clock)
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.max_per_page = max_per_page  # a smaller cap makes tests page
        self._orders: dict[str, dict[str, Any]] = {}
        self._state = threading.Lock()
        self.failures = ScriptedFailures(_failure)
        self.fail_next = self.failures.fail_next
        self.route("GET", "/wp-json/wc/v3/orders", self._list_orders)

    def add_order(self, order: dict[str, Any]) -> None:
        with self._state:
            self._orders[str(order["id"])] = copy.deepcopy(order)

    def remove_order(self, order_id: int | str) -> None:
        with self._state:
            self._orders.pop(str(order_id), None)

    def _list_orders(self, request: Request) -> Response:
        self._authenticate(request)
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
        with self._state:
            orders = [copy.deepcopy(o) for o in self._orders.values()]

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

    def _authenticate(self, request: Request) -> None:
        value = request.headers.get("Authorization") or ""
        user = password = ""
        if value.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(value[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            user, _, password = decoded.partition(":")
        if (user, password) != (self.consumer_key, self.consumer_secret):
            raise HttpError(
                _error(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
            )


def _error(status: int, code: str, message: str) -> Response:
    return json_response(status, {"code": code, "message": message, "data": {"status": status}})


def _number(value: str, name: str, maximum: int) -> int:
    if not value.isdigit() or not 1 <= int(value) <= maximum:
        raise HttpError(_error(400, "rest_invalid_param", f"Invalid parameter(s): {name}"))
    return int(value)


def _failure(status: int) -> Response:
    response = _error(status, "rest_error", "Too many requests" if status == 429 else "Error")
    if status == 429:
        response.headers["Retry-After"] = "1"
    return response
