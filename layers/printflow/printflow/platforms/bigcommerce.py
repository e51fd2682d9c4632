"""BigCommerce: thin ``store/order/created`` callbacks authenticated by a secret header.

Quirks: BigCommerce's ``hash`` is not keyed, so each hook carries a header PrintFlow chose
(``secretHeader``, default ``X-PrintFlow-Webhook-Secret``) holding the secret itself. A callback
carries only the order id: the order is recorded incomplete, and the render step completes it
from the store API (:func:`complete_bigcommerce`). The scope is in the body, so other scopes are
ignored once the body is read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from printflow.domain.order import LineItem, Order, OrderKey
from printflow.domain.storefront import (
    BIGCOMMERCE_API,
    DEFAULT_BIGCOMMERCE_HEADER,
    HEADER_NAME,
    STORE_HASH,
    Platform,
    StoreApiParts,
    StoreApiShape,
    Storefront,
    StorefrontSetting,
)
from printflow.errors import MalformedPayload, ValidationError
from printflow.platforms.base import PlatformSpec
from printflow.platforms.fields import (
    line_items,
    named_properties,
    opt_str,
    order_id,
    quantity,
)
from printflow.platforms.signatures import verify_shared_secret_header

ORDER_SCOPE = "store/order/created"
# BigCommerce order ids are integers; anything beyond a signed 64-bit one names no order.
MAX_BIGCOMMERCE_ORDER_ID = 2**63 - 1


def _verify(
    storefront: Storefront,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    now: float,
    replay_window_s: int,
) -> None:
    verify_shared_secret_header(headers, storefront.secret_header, secrets)


def _bigcommerce_order_id(value: Any, field: str) -> str:
    text = order_id(value, field)
    if not (text.isascii() and text.isdigit()) or not (0 < int(text) <= MAX_BIGCOMMERCE_ORDER_ID):
        raise MalformedPayload(
            f"field '{field}' must be a positive integer up to {MAX_BIGCOMMERCE_ORDER_ID}"
        )
    return str(int(text))


def normalise_bigcommerce(
    storefront_id: str, doc: dict[str, Any], headers: Mapping[str, str]
) -> Order:
    """BigCommerce callbacks carry only the order id: the order is recorded as incomplete."""
    data = doc.get("data")
    if not isinstance(data, dict):
        raise MalformedPayload("order id missing: expected field 'data.id'")
    number = _bigcommerce_order_id(data.get("id"), "data.id")
    delivery = {
        "scope": str(doc.get("scope") or ""),
        "storeId": str(doc.get("store_id") or ""),
        "producer": str(doc.get("producer") or ""),
        "hash": str(doc.get("hash") or ""),
    }
    created = doc.get("created_at")
    return Order(
        key=OrderKey(storefront_id, number),
        platform=Platform.BIGCOMMERCE.value,
        number=number,
        name=f"#{number}",
        email=None,
        currency=None,
        created_at=str(created) if created is not None else None,
        line_items=(),
        complete=False,
        delivery={k: v for k, v in delivery.items() if v},
    )


def _ignored_scope(order: Order) -> str | None:
    # "" (no scope at all) is ignored too, and reported as no topic.
    scope = order.delivery.get("scope", "")
    return None if scope == ORDER_SCOPE else scope


def _line_item(raw: dict[str, Any], where: str) -> LineItem:
    return LineItem(
        id=order_id(raw.get("id"), f"{where}.id"),
        name=str(raw.get("name") or ""),
        quantity=quantity(raw.get("quantity", 1), f"{where}.quantity"),
        sku=opt_str(raw.get("sku")),
        product_id=opt_str(raw.get("product_id")),
        variant_id=opt_str(raw.get("variant_id")),
        # The shopper's choices, as the storefront showed them ("Text on front" = "Anna").
        properties=named_properties(
            raw.get("product_options"), f"{where}.product_options", "display_name", "display_value"
        ),
    )


def complete_bigcommerce(thin: Order, doc: dict[str, Any], products: list[Any]) -> Order:
    """The thin webhook order completed from the store API.

    ``doc`` is ``GET /v2/orders/{id}``, ``products`` the (concatenated pages of)
    ``GET /v2/orders/{id}/products``. The key and delivery details stay the webhook's.
    """
    if order_id(doc.get("id"), "id") != thin.order_id:
        raise MalformedPayload(
            f"the store API answered order {doc.get('id')!r}, not {thin.order_id!r}"
        )
    billing = doc.get("billing_address")
    billing = billing if isinstance(billing, dict) else {}
    return Order(
        key=thin.key,
        platform=thin.platform,
        number=thin.order_id,
        name=f"#{thin.order_id}",
        email=opt_str(billing.get("email")),
        currency=opt_str(doc.get("currency_code")),
        created_at=opt_str(doc.get("date_created")) or thin.created_at,
        line_items=line_items(products, "products", _line_item),
        complete=True,
        delivery=thin.delivery,
    )


def _sign(body: bytes, secret: str, *, timestamp: int | None, topic: str | None) -> dict[str, str]:
    return {"Content-Type": "application/json", DEFAULT_BIGCOMMERCE_HEADER: secret}


def _secret_header(value: Any, where: str) -> str:
    if not isinstance(value, str) or not HEADER_NAME.match(value):
        raise ValidationError(f"{where}: a header name of letters, digits and '-'")
    return value


def _store_api_parts(doc: dict[str, Any], where: str, settings: Mapping[str, Any]) -> StoreApiParts:
    store_hash = doc.get("storeHash")
    if not isinstance(store_hash, str) or not STORE_HASH.match(store_hash):
        raise ValidationError(
            f"{where}.storeHash: required, the store hash of "
            "api.bigcommerce.com/stores/{hash} (lowercase letters and digits)"
        )
    return store_hash, None, BIGCOMMERCE_API


PLATFORM = PlatformSpec(
    id=Platform.BIGCOMMERCE,
    title="BigCommerce",
    verifier=_verify,
    normaliser=normalise_bigcommerce,
    signer=_sign,
    ignored_order=_ignored_scope,
    settings=(
        StorefrontSetting(
            "secretHeader",
            "secret_header",
            _secret_header,
            # Always written: the hook must be created with this very header.
            in_document=lambda value: True,
            # Documents stored before platform-specific output carry the default on every
            # platform: that stays readable; a header another platform would ignore does not.
            tolerated_elsewhere=DEFAULT_BIGCOMMERCE_HEADER,
        ),
    ),
    store_api=StoreApiShape(
        fields=frozenset({"storeHash", "credentialsSecret", "baseUrl", "reconcileIntervalS"}),
        parts=_store_api_parts,
    ),
)
