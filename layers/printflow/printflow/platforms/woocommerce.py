"""WooCommerce: HMAC-signed ``order.created`` webhooks.

Quirk: when a webhook is saved, WooCommerce sends an unsigned form body ``webhook_id=<n>`` to
check the URL; it is answered 200 (and nothing is recorded) before any signature check.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from printflow.domain.order import LineItem, Order, OrderKey, Property
from printflow.domain.storefront import Platform, StoreApiParts, StoreApiShape, Storefront
from printflow.platforms.base import PlatformSpec
from printflow.platforms.fields import (
    line_items,
    named_properties,
    opt_str,
    order_id,
    quantity,
)
from printflow.platforms.signatures import hmac_sha256, verify_base64_hmac

ORDER_TOPIC = ("x-wc-webhook-topic", "order.created")
_PING = re.compile(rb"^webhook_id=\d{1,20}$")


def is_woocommerce_ping(body: bytes) -> bool:
    """The body WooCommerce sends, unsigned, when a webhook is saved."""
    return bool(_PING.match(body.strip()))


def verify_woocommerce(headers: Mapping[str, str], body: bytes, secrets: Sequence[str]) -> None:
    """``X-WC-Webhook-Signature``: base64 HMAC-SHA256 of the delivered body."""
    verify_base64_hmac(headers, body, secrets, "x-wc-webhook-signature")


def _verify(
    storefront: Storefront,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    now: float,
    replay_window_s: int,
) -> None:
    verify_woocommerce(headers, body, secrets)


def _properties(value: Any, where: str) -> tuple[Property, ...]:
    # Keys starting with "_" are WooCommerce's hidden internals, not customer choices.
    props = named_properties(value, where, "key", "value")
    return tuple(p for p in props if not p.name.startswith("_"))


def _line_item(raw: dict[str, Any], where: str) -> LineItem:
    return LineItem(
        id=order_id(raw.get("id"), f"{where}.id"),
        name=str(raw.get("name") or ""),
        quantity=quantity(raw.get("quantity", 1), f"{where}.quantity"),
        sku=opt_str(raw.get("sku")),
        product_id=opt_str(raw.get("product_id")),
        variant_id=opt_str(raw.get("variation_id")) if raw.get("variation_id") else None,
        properties=_properties(raw.get("meta_data"), f"{where}.meta_data"),
    )


def normalise_woocommerce(
    storefront_id: str, doc: dict[str, Any], headers: Mapping[str, str]
) -> Order:
    """A WooCommerce order (webhook or REST API) as an :class:`Order`."""
    billing_value = doc.get("billing")
    billing: dict[str, Any] = billing_value if isinstance(billing_value, dict) else {}
    delivery = {
        name: headers[header]
        for name, header in (
            ("webhookId", "x-wc-webhook-id"),
            ("deliveryId", "x-wc-webhook-delivery-id"),
            ("topic", "x-wc-webhook-topic"),
            ("source", "x-wc-webhook-source"),
        )
        if headers.get(header)
    }
    number = opt_str(doc.get("number"))
    return Order(
        key=OrderKey(storefront_id, order_id(doc.get("id"), "id")),
        platform=Platform.WOOCOMMERCE.value,
        number=number,
        name=f"#{number}" if number else None,
        email=opt_str(billing.get("email")),
        currency=opt_str(doc.get("currency")),
        created_at=opt_str(doc.get("date_created_gmt") or doc.get("date_created")),
        line_items=line_items(doc.get("line_items"), "line_items", _line_item),
        delivery=delivery,
    )


def _sign(body: bytes, secret: str, *, timestamp: int | None, topic: str | None) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": "https://shop.example.org/",
        "X-WC-Webhook-Topic": topic or ORDER_TOPIC[1],
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "created",
        "X-WC-Webhook-Signature": base64.b64encode(hmac_sha256(secret, body)).decode(),
        "X-WC-Webhook-ID": "17",
        "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex,
    }


def _store_api_parts(doc: dict[str, Any], where: str, settings: Mapping[str, Any]) -> StoreApiParts:
    return "", None, None  # the site's URL has no default


PLATFORM = PlatformSpec(
    id=Platform.WOOCOMMERCE,
    title="WooCommerce",
    verifier=_verify,
    normaliser=normalise_woocommerce,
    signer=_sign,
    order_topic=ORDER_TOPIC,
    ping=is_woocommerce_ping,
    store_api=StoreApiShape(
        fields=frozenset({"credentialsSecret", "baseUrl", "reconcileIntervalS"}),
        parts=_store_api_parts,
    ),
)
