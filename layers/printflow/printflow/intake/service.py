"""The intake service: one webhook delivery in, one recorded order (at most) out.

Order of work, chosen so that an acknowledged order is never lost and a duplicate costs one
AWS call:

1. reject bad input (size, platform, storefront, signature, payload) before any write;
2. write the order with a conditional put: a duplicate fails here and gets the stored item
   back in the same call;
3. store the raw body in S3; if that fails, undo step 2 and answer 503 so the storefront
   retries (a half-recorded order would otherwise swallow the retry as a "duplicate");
4. start the flow under a deterministic execution name. If this fails the order stays
   ``Received`` in its sweep slot and the poller's sweep starts it later: answer 202 anyway.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from printflow.adapters.order_flows import OrderFlowStarter
from printflow.adapters.order_table import NewOrderRecord, OrderTable
from printflow.adapters.raw_bodies import RawBodyStore, raw_body_key
from printflow.domain.order import Order, RawBodyRef
from printflow.domain.storefront import STOREFRONT_ID, Platform, Storefront
from printflow.errors import (
    InvalidSignature,
    MethodNotAllowed,
    NotFound,
    OrderAlreadyRecorded,
    PayloadTooLarge,
)
from printflow.intake.directory import StorefrontDirectory
from printflow.intake.normalisers import normalise
from printflow.intake.signatures import canonical_shopify_headers, verify_webhook
from printflow.observability import logger, metrics
from printflow.settings import IntakeSettings

_WOO_PING = re.compile(rb"^webhook_id=\d{1,20}$")

# Topics that mean "a new order". A correctly signed delivery of another topic is answered
# 200 and ignored, so a storefront subscribed to more than we need never retries it.
ORDER_TOPICS: dict[Platform, tuple[str, str]] = {
    Platform.SHOPIFY: ("x-shopify-topic", "orders/create"),
    Platform.WOOCOMMERCE: ("x-wc-webhook-topic", "order.created"),
}
BIGCOMMERCE_ORDER_SCOPE = "store/order/created"
# Marks a pulled order's request (reconciliation), for logs; never sent by a storefront.
PULLED_HEADER = "x-printflow-pulled-by"


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    method: str
    platform: str
    storefront_id: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True, slots=True)
class IntakeOutcome:
    status: int
    body: dict[str, Any] = field(default_factory=dict)


class IntakeUnavailable(Exception):
    """The order could not be recorded durably; the storefront must retry (503)."""


class IntakeService:
    def __init__(
        self,
        settings: IntakeSettings,
        directory: StorefrontDirectory,
        table: OrderTable,
        raw_bodies: RawBodyStore,
        flows: OrderFlowStarter,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._directory = directory
        self._table = table
        self._raw_bodies = raw_bodies
        self._flows = flows
        self._clock = clock

    def receive(self, request: WebhookRequest) -> IntakeOutcome:
        storefront, secrets = self._check_request(request)
        if storefront.platform is Platform.SHOPIFY:
            request = replace(request, headers=canonical_shopify_headers(request.headers))
        if _is_woocommerce_ping(storefront, request.body):
            return IntakeOutcome(200, {"status": "ping", "recorded": False})

        verify_webhook(
            storefront,
            request.headers,
            request.body,
            secrets,
            now=self._clock(),
            replay_window_s=self._settings.replay_window_s,
        )
        _check_shop_domain(storefront, request.headers)
        ignored = _ignored_topic(storefront, request.headers)
        if ignored:
            return IntakeOutcome(200, {"status": "ignored", "recorded": False, "topic": ignored})

        order = normalise(
            storefront.platform, storefront.storefront_id, request.body, request.headers
        )
        if storefront.platform is Platform.BIGCOMMERCE:
            scope = order.delivery.get("scope")
            if scope != BIGCOMMERCE_ORDER_SCOPE:
                return IntakeOutcome(200, {"status": "ignored", "recorded": False, "topic": scope})
        return self._record(storefront, order, request)

    def record_pulled(self, storefront: Storefront, body: bytes) -> IntakeOutcome:
        """Record an order that reconciliation pulled from the storefront's Orders API.

        ``body`` is the JSON the platform's webhook would carry for it. It takes the webhook's
        path from the normaliser on (same limits, raw body in S3, flow started under the
        same execution name), so an order both pulled and delivered is recorded once and
        started once, whichever comes first: the second answers ``duplicate``.
        """
        self._check_size(body)
        request = WebhookRequest(
            method="POST",
            platform=storefront.platform.value,
            storefront_id=storefront.storefront_id,
            headers={"content-type": "application/json", PULLED_HEADER: "reconciliation"},
            body=body,
        )
        order = normalise(storefront.platform, storefront.storefront_id, body, request.headers)
        return self._record(storefront, order, request)

    def _check_size(self, body: bytes) -> None:
        """One bound for webhook and pulled bodies alike (a pulled order is no larger)."""
        if len(body) > self._settings.max_body_bytes:
            raise PayloadTooLarge(
                f"body is {len(body)} bytes; the limit is {self._settings.max_body_bytes}"
            )

    def _check_request(self, request: WebhookRequest) -> tuple[Storefront, list[str]]:
        # Methods are case-sensitive (RFC 9110): "post" is not POST.
        if request.method != "POST":
            raise MethodNotAllowed(f"method {request.method} is not allowed; use POST")
        self._check_size(request.body)
        try:
            platform = Platform(request.platform)
        except ValueError:
            allowed = ", ".join(p.value for p in Platform)
            raise NotFound(
                f"unknown platform {request.platform!r}; expected one of {allowed}"
            ) from None
        # An id that could never be registered is unknown: no lookup (and no key error).
        valid_id = STOREFRONT_ID.match(request.storefront_id) is not None
        known = self._directory.find(request.storefront_id) if valid_id else None
        if known is None:
            raise NotFound(f"unknown storefront {request.storefront_id!r}")
        if known.storefront.platform is not platform:
            raise NotFound(
                f"storefront {request.storefront_id!r} is not registered for {platform.value}"
            )
        return known.storefront, known.secrets

    def _record(
        self, storefront: Storefront, order: Order, request: WebhookRequest
    ) -> IntakeOutcome:
        now = self._clock()
        received_at = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
        raw_ref = RawBodyRef(
            bucket=self._raw_bodies.bucket, key=raw_body_key(order.key, received_at, request.body)
        )
        record = NewOrderRecord(
            order=order,
            raw_body=raw_ref,
            flow=storefront.flow,
            received_at=received_at,
            sweep_due_at=int(now) + self._settings.sweep_after_s,
            due_shards=self._settings.due_shards,
        )
        logger.append_keys(order_key=str(order.key))
        try:
            intake_id = self._table.record_new_order(record)
        except OrderAlreadyRecorded as duplicate:
            metrics.add_metric(name="DuplicateDeliveries", unit="Count", value=1)
            logger.info("duplicate delivery")
            return IntakeOutcome(
                200,
                {
                    "status": "duplicate",
                    "orderKey": str(order.key),
                    "orderStatus": duplicate.existing.get("status"),
                },
            )

        try:
            self._raw_bodies.put(
                order.key, received_at, request.body, request.headers.get("content-type", "")
            )
        except Exception as exc:
            logger.exception("raw body not stored; undoing the order record")
            self._table.forget_unacknowledged_order(order.key, intake_id)
            raise IntakeUnavailable("the order could not be stored; retry the delivery") from exc

        self._start_flow(storefront, order)
        metrics.add_metric(name="OrdersReceived", unit="Count", value=1)
        return IntakeOutcome(
            202,
            {"status": "Received", "orderKey": str(order.key), "complete": order.complete},
        )

    def _start_flow(self, storefront: Storefront, order: Order) -> None:
        if self._flows.state_machine_for(storefront.flow) is None:
            logger.error("no state machine for flow", extra={"flow": storefront.flow})
            metrics.add_metric(name="FlowStartsDeferred", unit="Count", value=1)
            return
        try:
            self._flows.start(storefront.flow, order.key)
        except Exception:
            # The order is durable and stays in its sweep slot: the sweep starts it later.
            logger.exception("flow start failed; the sweep will retry")
            metrics.add_metric(name="FlowStartsDeferred", unit="Count", value=1)


def _is_woocommerce_ping(storefront: Storefront, body: bytes) -> bool:
    return storefront.platform is Platform.WOOCOMMERCE and bool(_WOO_PING.match(body.strip()))


def _check_shop_domain(storefront: Storefront, headers: Mapping[str, str]) -> None:
    if storefront.platform is not Platform.SHOPIFY or not storefront.shop_domain:
        return
    domain = headers.get("x-shopify-shop-domain", "")
    if domain.lower() != storefront.shop_domain.lower():
        raise InvalidSignature("x-shopify-shop-domain does not match this storefront")


def _ignored_topic(storefront: Storefront, headers: Mapping[str, str]) -> str | None:
    rule = ORDER_TOPICS.get(storefront.platform)
    if rule is None:
        return None
    header, wanted = rule
    topic = headers.get(header)
    return topic if topic is not None and topic != wanted else None
