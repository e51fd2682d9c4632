"""The generic platform: any shop that can send a timestamped HMAC (PrintFlow's own scheme).

``X-PrintFlow-Timestamp`` (unix seconds) and ``X-PrintFlow-Signature: v1=<hex>`` over
``{timestamp}.{body}`` (:mod:`printflow.signing`); several comma-separated signatures are
accepted, so a shop can sign with the old and the new secret during a rotation. A delivery
outside the replay window is refused. Every delivery is an order: there are no topics.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping, Sequence
from typing import Any

from printflow.domain.order import LineItem, Order, OrderKey, Property
from printflow.domain.storefront import Platform, Storefront
from printflow.errors import InvalidSignature
from printflow.platforms.base import PlatformSpec
from printflow.platforms.fields import (
    line_items,
    named_properties,
    opt_str,
    order_id,
    quantity,
)
from printflow.signing import (
    GENERIC_SIGNATURE_HEADER,
    GENERIC_TIMESTAMP_HEADER,
    generic_signature,
)


def verify_generic(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    now: float,
    replay_window_s: int,
) -> None:
    """Timestamped HMAC so a captured request cannot be replayed after the window."""
    timestamp = headers.get(GENERIC_TIMESTAMP_HEADER, "").strip()
    signature = headers.get(GENERIC_SIGNATURE_HEADER, "").strip()
    if not timestamp or not signature:
        raise InvalidSignature(
            f"missing {GENERIC_TIMESTAMP_HEADER} or {GENERIC_SIGNATURE_HEADER} header"
        )
    # isascii(): str.isdigit() also accepts "²" and "¹²³", which int() then refuses.
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise InvalidSignature(f"{GENERIC_TIMESTAMP_HEADER} must be unix seconds")
    if abs(now - int(timestamp)) > replay_window_s:
        raise InvalidSignature(
            f"{GENERIC_TIMESTAMP_HEADER} is outside the {replay_window_s} s replay window"
        )
    presented = [part.strip() for part in signature.split(",")]
    matched = False
    for secret in secrets:
        expected = generic_signature(secret, timestamp, body).encode()
        for candidate in presented:
            matched |= hmac.compare_digest(expected, candidate.encode())
    if not matched:
        raise InvalidSignature(f"{GENERIC_SIGNATURE_HEADER} does not match the body")


def _verify(
    storefront: Storefront,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    now: float,
    replay_window_s: int,
) -> None:
    verify_generic(headers, body, secrets, now=now, replay_window_s=replay_window_s)


def _properties(value: Any, where: str) -> tuple[Property, ...]:
    # Either [{"name": .., "value": ..}] or a plain {"name": "value"} object.
    if isinstance(value, dict):
        return tuple(Property(str(k), opt_str(v) or "") for k, v in value.items())
    return named_properties(value, where, "name", "value")


def _line_item(raw: dict[str, Any], where: str) -> LineItem:
    return LineItem(
        id=order_id(raw.get("id"), f"{where}.id"),
        name=str(raw.get("name") or ""),
        quantity=quantity(raw.get("quantity", 1), f"{where}.quantity"),
        sku=opt_str(raw.get("sku")),
        product_id=opt_str(raw.get("productId")),
        variant_id=opt_str(raw.get("variantId")),
        properties=_properties(raw.get("properties"), f"{where}.properties"),
    )


def normalise_generic(storefront_id: str, doc: dict[str, Any], headers: Mapping[str, str]) -> Order:
    """A generic order document (see README: generic storefronts) as an :class:`Order`."""
    return Order(
        key=OrderKey(storefront_id, order_id(doc.get("id"), "id")),
        platform=Platform.GENERIC.value,
        number=opt_str(doc.get("number")),
        name=opt_str(doc.get("name")),
        email=opt_str(doc.get("email")),
        currency=opt_str(doc.get("currency")),
        created_at=opt_str(doc.get("createdAt")),
        line_items=line_items(doc.get("lineItems"), "lineItems", _line_item),
    )


def _sign(body: bytes, secret: str, *, timestamp: int | None, topic: str | None) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/json",
        "X-PrintFlow-Timestamp": stamp,
        "X-PrintFlow-Signature": generic_signature(secret, stamp, body),
    }


PLATFORM = PlatformSpec(
    id=Platform.GENERIC,
    title="generic",
    verifier=_verify,
    normaliser=normalise_generic,
    signer=_sign,
)
