"""Shopify: HMAC-signed ``orders/create`` webhooks, bound to one shop domain.

Quirks: newer deliveries send their headers without the ``X-`` prefix (both forms are read);
a storefront's ``shopDomain`` must match ``X-Shopify-Shop-Domain``; other topics are ignored.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from printflow.domain.order import LineItem, Order, OrderKey
from printflow.domain.storefront import (
    DEFAULT_SHOPIFY_API_VERSION,
    SHOPIFY_API_VERSION,
    Platform,
    StoreApiParts,
    StoreApiShape,
    Storefront,
    StorefrontSetting,
)
from printflow.errors import InvalidSignature, ValidationError
from printflow.platforms.base import PlatformSpec
from printflow.platforms.fields import (
    line_items,
    named_properties,
    opt_str,
    order_id,
    quantity,
)
from printflow.platforms.signatures import hmac_sha256, verify_base64_hmac

ORDER_TOPIC = ("x-shopify-topic", "orders/create")
SHOPIFY_UNPREFIXED = "shopify-"
SHOP_DOMAIN_HEADER = "x-shopify-shop-domain"


def canonical_shopify_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Shopify's headers under their ``x-shopify-*`` names, whichever form was delivered.

    Shopify's newer event deliveries send ``shopify-hmac-sha256``, ``shopify-topic``, ...
    without the ``X-`` prefix (shopify.dev documents both). Names are lower-case here; a
    prefixed header that is present wins over its unprefixed twin.
    """
    canonical = dict(headers)
    for name, value in headers.items():
        if name.startswith(SHOPIFY_UNPREFIXED):
            canonical.setdefault("x-" + name, value)
    return canonical


def verify_shopify(headers: Mapping[str, str], body: bytes, secrets: Sequence[str]) -> None:
    """``X-Shopify-Hmac-Sha256``: base64 HMAC-SHA256 of the raw body with the app secret."""
    verify_base64_hmac(headers, body, secrets, "x-shopify-hmac-sha256")


def _verify(
    storefront: Storefront,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    now: float,
    replay_window_s: int,
) -> None:
    # The signature first, then the sender: a storefront bound to a shop domain accepts no
    # other shop's (correctly signed, same app) deliveries.
    verify_shopify(headers, body, secrets)
    if storefront.shop_domain:
        domain = headers.get(SHOP_DOMAIN_HEADER, "")
        if domain.lower() != storefront.shop_domain.lower():
            raise InvalidSignature("x-shopify-shop-domain does not match this storefront")


def _line_item(raw: dict[str, Any], where: str) -> LineItem:
    return LineItem(
        id=order_id(raw.get("id"), f"{where}.id"),
        name=str(raw.get("name") or raw.get("title") or ""),
        quantity=quantity(raw.get("quantity", 1), f"{where}.quantity"),
        sku=opt_str(raw.get("sku")),
        product_id=opt_str(raw.get("product_id")),
        variant_id=opt_str(raw.get("variant_id")),
        properties=named_properties(raw.get("properties"), f"{where}.properties", "name", "value"),
    )


def normalise_shopify(storefront_id: str, doc: dict[str, Any], headers: Mapping[str, str]) -> Order:
    """A Shopify order (webhook or Admin API) as an :class:`Order`."""
    delivery = {
        name: headers[header]
        for name, header in (
            ("eventId", "x-shopify-event-id"),
            ("webhookId", "x-shopify-webhook-id"),
            ("topic", "x-shopify-topic"),
            ("shopDomain", SHOP_DOMAIN_HEADER),
            ("apiVersion", "x-shopify-api-version"),
            ("triggeredAt", "x-shopify-triggered-at"),
        )
        if headers.get(header)
    }
    return Order(
        key=OrderKey(storefront_id, order_id(doc.get("id"), "id")),
        platform=Platform.SHOPIFY.value,
        number=opt_str(doc.get("order_number")),
        name=opt_str(doc.get("name")),
        email=opt_str(doc.get("email") or doc.get("contact_email")),
        currency=opt_str(doc.get("currency")),
        created_at=opt_str(doc.get("created_at")),
        line_items=line_items(doc.get("line_items"), "line_items", _line_item),
        delivery=delivery,
    )


def _sign(body: bytes, secret: str, *, timestamp: int | None, topic: str | None) -> dict[str, str]:
    mac = hmac_sha256(secret, body)
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic or ORDER_TOPIC[1],
        "X-Shopify-Hmac-Sha256": base64.b64encode(mac).decode(),
        "X-Shopify-Shop-Domain": "printflow-demo.myshopify.com",
        "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Webhook-Id": str(uuid.uuid5(uuid.NAMESPACE_URL, body.hex()[:64])),
        "X-Shopify-Event-Id": str(uuid.uuid5(uuid.NAMESPACE_OID, body.hex()[:64])),
        "X-Shopify-Triggered-At": "2026-11-20T15:15:43.000Z",
    }


def _shop_domain(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{where}: must be a non-empty string")
    return value


def _store_api_parts(doc: dict[str, Any], where: str, settings: Mapping[str, Any]) -> StoreApiParts:
    api_version = doc.get("apiVersion", DEFAULT_SHOPIFY_API_VERSION)
    if not isinstance(api_version, str) or not SHOPIFY_API_VERSION.match(api_version):
        raise ValidationError(
            f"{where}.apiVersion: a dated Admin API version such as {DEFAULT_SHOPIFY_API_VERSION!r}"
        )
    shop_domain = settings.get("shop_domain")
    return "", api_version, f"https://{shop_domain}" if shop_domain else None


PLATFORM = PlatformSpec(
    id=Platform.SHOPIFY,
    title="Shopify",
    verifier=_verify,
    normaliser=normalise_shopify,
    signer=_sign,
    order_topic=ORDER_TOPIC,
    header_form=canonical_shopify_headers,
    settings=(StorefrontSetting("shopDomain", "shop_domain", _shop_domain),),
    store_api=StoreApiShape(
        fields=frozenset({"credentialsSecret", "baseUrl", "apiVersion", "reconcileIntervalS"}),
        parts=_store_api_parts,
        base_url_hint=" (or the storefront's shopDomain)",
    ),
)
