"""The intake service: one webhook delivery in, one recorded order (at most) out.

Order of work, chosen so that an acknowledged order is never lost:

1. reject bad input (size, platform, storefront, signature, payload) before any write;
2. store the raw body in S3 under a name made from its content. If that fails, nothing is
   recorded and the storefront gets 503, so it retries;
3. write the order with a conditional put: a duplicate fails here and gets the stored item
   back in the same call. The item is therefore complete the moment anyone can see it, and
   a "duplicate" answer always points at a durable order. (Writing the item first and the
   body second would need an undo when the body fails, and a resend answered "duplicate"
   in between would then acknowledge an order that the undo deletes.) A duplicate whose
   bytes differ from the recorded delivery's deletes its own, unreferenced, body;
4. start the flow under a deterministic execution name. If this fails the order stays
   ``Received`` in its sweep slot and the poller's sweep starts it later: answer 202 anyway.

A crash between any two steps leaves either nothing the storefront was told about or a
recorded order the sweep will start. A duplicate costs two calls (the body's PUT, which
rewrites the same object, and the refused put).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from printflow.adapters.order_flows import OrderFlowStarter
from printflow.adapters.order_table import NewOrderRecord, OrderTable
from printflow.adapters.raw_bodies import RawBodyStore
from printflow.domain.order import Order, RawBodyRef
from printflow.domain.storefront import STOREFRONT_ID, Storefront
from printflow.errors import (
    MethodNotAllowed,
    NotFound,
    OrderAlreadyRecorded,
    PayloadTooLarge,
)
from printflow.intake.directory import StorefrontDirectory
from printflow.observability import logger, metrics
from printflow.platforms.base import IgnoredDelivery, StorefrontPlatform
from printflow.platforms.registry import UnknownPlatform, platform_for, verify_webhook
from printflow.settings import IntakeSettings

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
        """One delivery: the platform reads it (see :mod:`printflow.platforms.base`).

        A correctly signed delivery of a topic other than "new order" is answered 200 and
        ignored, so a storefront subscribed to more than we need never retries it.
        """
        storefront, secrets, platform = self._check_request(request)
        request = replace(request, headers=platform.canonical_headers(request.headers))
        if platform.is_ping(request.body):
            return IntakeOutcome(200, {"status": "ping", "recorded": False})

        verify_webhook(
            storefront,
            request.headers,
            request.body,
            secrets,
            now=self._clock(),
            replay_window_s=self._settings.replay_window_s,
        )
        delivered = platform.order_from_delivery(
            storefront.storefront_id, request.body, request.headers
        )
        if isinstance(delivered, IgnoredDelivery):
            return IntakeOutcome(
                200, {"status": "ignored", "recorded": False, "topic": delivered.topic}
            )
        return self._record(storefront, delivered, request)

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
        platform = platform_for(storefront.platform)
        order = platform.normalise(storefront.storefront_id, body, request.headers)
        return self._record(storefront, order, request)

    def _check_size(self, body: bytes) -> None:
        """One bound for webhook and pulled bodies alike (a pulled order is no larger)."""
        if len(body) > self._settings.max_body_bytes:
            raise PayloadTooLarge(
                f"body is {len(body)} bytes; the limit is {self._settings.max_body_bytes}"
            )

    def _check_request(
        self, request: WebhookRequest
    ) -> tuple[Storefront, list[str], StorefrontPlatform]:
        # Methods are case-sensitive (RFC 9110): "post" is not POST.
        if request.method != "POST":
            raise MethodNotAllowed(f"method {request.method} is not allowed; use POST")
        self._check_size(request.body)
        try:
            platform = platform_for(request.platform)
        except UnknownPlatform as unknown:
            raise NotFound(str(unknown)) from None
        # An id that could never be registered is unknown: no lookup (and no key error).
        valid_id = STOREFRONT_ID.match(request.storefront_id) is not None
        known = self._directory.find(request.storefront_id) if valid_id else None
        if known is None:
            raise NotFound(f"unknown storefront {request.storefront_id!r}")
        if known.storefront.platform != platform.id:
            raise NotFound(
                f"storefront {request.storefront_id!r} is not registered for {platform.id.value}"
            )
        return known.storefront, known.secrets, platform

    def _record(
        self, storefront: Storefront, order: Order, request: WebhookRequest
    ) -> IntakeOutcome:
        now = self._clock()
        received_at = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
        logger.append_keys(order_key=str(order.key))
        try:
            raw_ref = self._raw_bodies.put(
                order.key, request.body, request.headers.get("content-type", "")
            )
        except Exception as exc:
            logger.exception("raw body not stored; nothing recorded")
            raise IntakeUnavailable("the order could not be stored; retry the delivery") from exc
        record = NewOrderRecord(
            order=order,
            raw_body=raw_ref,
            flow=storefront.flow,
            received_at=received_at,
            sweep_due_at=int(now) + self._settings.sweep_after_s,
            due_shards=self._settings.due_shards,
        )
        try:
            self._table.record_new_order(record)
        except OrderAlreadyRecorded as duplicate:
            metrics.add_metric(name="DuplicateDeliveries", unit="Count", value=1)
            logger.info("duplicate delivery")
            self._discard_unreferenced(raw_ref, duplicate.existing)
            return IntakeOutcome(
                200,
                {
                    "status": "duplicate",
                    "orderKey": str(order.key),
                    "orderStatus": duplicate.existing.get("status"),
                },
            )

        self._start_flow(storefront, order)
        metrics.add_metric(name="OrdersReceived", unit="Count", value=1)
        return IntakeOutcome(
            202,
            {"status": "Received", "orderKey": str(order.key), "complete": order.complete},
        )

    def _discard_unreferenced(self, ours: RawBodyRef, existing: Mapping[str, Any]) -> None:
        """Delete this delivery's body unless the recorded order refers to it (same bytes)."""
        recorded = existing.get("rawBody") or {}
        if recorded.get("key") == ours.key and recorded.get("bucket") == ours.bucket:
            return
        try:
            self._raw_bodies.discard(ours)
        except Exception:
            # Best effort: a body left behind is an unreferenced object, never a wrong record.
            logger.exception("unreferenced raw body not deleted", extra={"key": ours.key})

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
