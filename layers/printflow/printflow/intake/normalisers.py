"""Turn each platform's order payload into the one ``Order`` model.

Every function takes the parsed JSON object and the headers, and raises
:class:`MalformedPayload` naming the field when the payload cannot be an order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from printflow.domain.order import LineItem, Order, OrderKey, Property
from printflow.domain.storefront import Platform
from printflow.errors import MalformedPayload
from printflow.intake.json_body import parse_json_object

MAX_ORDER_ID_LENGTH = 128
MAX_LINE_ITEMS = 1000
# No print order needs more; the bound keeps every quantity an exact number in DynamoDB,
# JSON and every provider's API.
MAX_QUANTITY = 1_000_000_000
# BigCommerce order ids are integers; anything beyond a signed 64-bit one names no order.
MAX_BIGCOMMERCE_ORDER_ID = 2**63 - 1


def _order_id(value: Any, field: str) -> str:
    if isinstance(value, bool) or value is None or value == "":
        raise MalformedPayload(f"order id missing: expected field '{field}'")
    if not isinstance(value, int | str):
        raise MalformedPayload(f"field '{field}' must be a string or an integer")
    order_id = str(value).strip()
    if not order_id or len(order_id) > MAX_ORDER_ID_LENGTH or not order_id.isprintable():
        raise MalformedPayload(
            f"field '{field}' must be 1-{MAX_ORDER_ID_LENGTH} printable characters"
        )
    return order_id


def _opt_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def _quantity(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise MalformedPayload(f"field '{field}' must be an integer")
    if isinstance(value, str) and len(value.strip()) > len(str(MAX_QUANTITY)):
        raise MalformedPayload(f"field '{field}' must be at most {MAX_QUANTITY}")
    try:
        quantity = int(value)
    except (TypeError, ValueError, OverflowError):
        raise MalformedPayload(f"field '{field}' must be an integer") from None
    if quantity < 0:
        raise MalformedPayload(f"field '{field}' must not be negative")
    if quantity > MAX_QUANTITY:
        raise MalformedPayload(f"field '{field}' must be at most {MAX_QUANTITY}")
    return quantity


def _line_items(
    value: Any, field: str, build: Callable[[dict[str, Any], str], LineItem]
) -> tuple[LineItem, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise MalformedPayload(f"field '{field}' must be a list")
    if len(value) > MAX_LINE_ITEMS:
        raise MalformedPayload(f"field '{field}' has more than {MAX_LINE_ITEMS} entries")
    items = []
    for index, raw in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(raw, dict):
            raise MalformedPayload(f"field '{where}' must be an object")
        items.append(build(raw, where))
    return tuple(items)


def _named_properties(
    value: Any, where: str, name_key: str, value_key: str
) -> tuple[Property, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise MalformedPayload(f"field '{where}' must be a list")
    props = []
    for entry in value:
        if not isinstance(entry, dict) or entry.get(name_key) in (None, ""):
            raise MalformedPayload(f"field '{where}' entries need a '{name_key}'")
        props.append(Property(str(entry[name_key]), _opt_str(entry.get(value_key)) or ""))
    return tuple(props)


# -- Shopify ------------------------------------------------------------------------------


def _shopify_line_item(raw: dict[str, Any], where: str) -> LineItem:
    return LineItem(
        id=_order_id(raw.get("id"), f"{where}.id"),
        name=str(raw.get("name") or raw.get("title") or ""),
        quantity=_quantity(raw.get("quantity", 1), f"{where}.quantity"),
        sku=_opt_str(raw.get("sku")),
        product_id=_opt_str(raw.get("product_id")),
        variant_id=_opt_str(raw.get("variant_id")),
        properties=_named_properties(raw.get("properties"), f"{where}.properties", "name", "value"),
    )


def normalise_shopify(storefront_id: str, doc: dict[str, Any], headers: Mapping[str, str]) -> Order:
    delivery = {
        name: headers[header]
        for name, header in (
            ("eventId", "x-shopify-event-id"),
            ("webhookId", "x-shopify-webhook-id"),
            ("topic", "x-shopify-topic"),
            ("shopDomain", "x-shopify-shop-domain"),
            ("apiVersion", "x-shopify-api-version"),
            ("triggeredAt", "x-shopify-triggered-at"),
        )
        if headers.get(header)
    }
    return Order(
        key=OrderKey(storefront_id, _order_id(doc.get("id"), "id")),
        platform=Platform.SHOPIFY.value,
        number=_opt_str(doc.get("order_number")),
        name=_opt_str(doc.get("name")),
        email=_opt_str(doc.get("email") or doc.get("contact_email")),
        currency=_opt_str(doc.get("currency")),
        created_at=_opt_str(doc.get("created_at")),
        line_items=_line_items(doc.get("line_items"), "line_items", _shopify_line_item),
        delivery=delivery,
    )


# -- WooCommerce --------------------------------------------------------------------------


def _woo_properties(value: Any, where: str) -> tuple[Property, ...]:
    # Keys starting with "_" are WooCommerce's hidden internals, not customer choices.
    props = _named_properties(value, where, "key", "value")
    return tuple(p for p in props if not p.name.startswith("_"))


def _woo_line_item(raw: dict[str, Any], where: str) -> LineItem:
    return LineItem(
        id=_order_id(raw.get("id"), f"{where}.id"),
        name=str(raw.get("name") or ""),
        quantity=_quantity(raw.get("quantity", 1), f"{where}.quantity"),
        sku=_opt_str(raw.get("sku")),
        product_id=_opt_str(raw.get("product_id")),
        variant_id=_opt_str(raw.get("variation_id")) if raw.get("variation_id") else None,
        properties=_woo_properties(raw.get("meta_data"), f"{where}.meta_data"),
    )


def normalise_woocommerce(
    storefront_id: str, doc: dict[str, Any], headers: Mapping[str, str]
) -> Order:
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
    number = _opt_str(doc.get("number"))
    return Order(
        key=OrderKey(storefront_id, _order_id(doc.get("id"), "id")),
        platform=Platform.WOOCOMMERCE.value,
        number=number,
        name=f"#{number}" if number else None,
        email=_opt_str(billing.get("email")),
        currency=_opt_str(doc.get("currency")),
        created_at=_opt_str(doc.get("date_created_gmt") or doc.get("date_created")),
        line_items=_line_items(doc.get("line_items"), "line_items", _woo_line_item),
        delivery=delivery,
    )


# -- BigCommerce --------------------------------------------------------------------------


def normalise_bigcommerce(
    storefront_id: str, doc: dict[str, Any], headers: Mapping[str, str]
) -> Order:
    """BigCommerce callbacks carry only the order id: the order is recorded as incomplete."""
    data = doc.get("data")
    if not isinstance(data, dict):
        raise MalformedPayload("order id missing: expected field 'data.id'")
    order_id = _bigcommerce_order_id(data.get("id"), "data.id")
    delivery = {
        "scope": str(doc.get("scope") or ""),
        "storeId": str(doc.get("store_id") or ""),
        "producer": str(doc.get("producer") or ""),
        "hash": str(doc.get("hash") or ""),
    }
    created = doc.get("created_at")
    return Order(
        key=OrderKey(storefront_id, order_id),
        platform=Platform.BIGCOMMERCE.value,
        number=order_id,
        name=f"#{order_id}",
        email=None,
        currency=None,
        created_at=str(created) if created is not None else None,
        line_items=(),
        complete=False,
        delivery={k: v for k, v in delivery.items() if v},
    )


def _bigcommerce_order_id(value: Any, field: str) -> str:
    order_id = _order_id(value, field)
    if not (order_id.isascii() and order_id.isdigit()) or not (
        0 < int(order_id) <= MAX_BIGCOMMERCE_ORDER_ID
    ):
        raise MalformedPayload(
            f"field '{field}' must be a positive integer up to {MAX_BIGCOMMERCE_ORDER_ID}"
        )
    return str(int(order_id))


def _bigcommerce_line_item(raw: dict[str, Any], where: str) -> LineItem:
    return LineItem(
        id=_order_id(raw.get("id"), f"{where}.id"),
        name=str(raw.get("name") or ""),
        quantity=_quantity(raw.get("quantity", 1), f"{where}.quantity"),
        sku=_opt_str(raw.get("sku")),
        product_id=_opt_str(raw.get("product_id")),
        variant_id=_opt_str(raw.get("variant_id")),
        # The shopper's choices, as the storefront showed them ("Text on front" = "Anna").
        properties=_named_properties(
            raw.get("product_options"), f"{where}.product_options", "display_name", "display_value"
        ),
    )


def complete_bigcommerce(thin: Order, doc: dict[str, Any], products: list[Any]) -> Order:
    """The thin webhook order completed from the store API.

    ``doc`` is ``GET /v2/orders/{id}``, ``products`` the (concatenated pages of)
    ``GET /v2/orders/{id}/products``. The key and delivery details stay the webhook's.
    """
    if _order_id(doc.get("id"), "id") != thin.order_id:
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
        email=_opt_str(billing.get("email")),
        currency=_opt_str(doc.get("currency_code")),
        created_at=_opt_str(doc.get("date_created")) or thin.created_at,
        line_items=_line_items(products, "products", _bigcommerce_line_item),
        complete=True,
        delivery=thin.delivery,
    )


# -- generic ------------------------------------------------------------------------------


def _generic_properties(value: Any, where: str) -> tuple[Property, ...]:
    # Either [{"name": .., "value": ..}] or a plain {"name": "value"} object.
    if isinstance(value, dict):
        return tuple(Property(str(k), _opt_str(v) or "") for k, v in value.items())
    return _named_properties(value, where, "name", "value")


def _generic_line_item(raw: dict[str, Any], where: str) -> LineItem:
    return LineItem(
        id=_order_id(raw.get("id"), f"{where}.id"),
        name=str(raw.get("name") or ""),
        quantity=_quantity(raw.get("quantity", 1), f"{where}.quantity"),
        sku=_opt_str(raw.get("sku")),
        product_id=_opt_str(raw.get("productId")),
        variant_id=_opt_str(raw.get("variantId")),
        properties=_generic_properties(raw.get("properties"), f"{where}.properties"),
    )


def normalise_generic(storefront_id: str, doc: dict[str, Any], headers: Mapping[str, str]) -> Order:
    return Order(
        key=OrderKey(storefront_id, _order_id(doc.get("id"), "id")),
        platform=Platform.GENERIC.value,
        number=_opt_str(doc.get("number")),
        name=_opt_str(doc.get("name")),
        email=_opt_str(doc.get("email")),
        currency=_opt_str(doc.get("currency")),
        created_at=_opt_str(doc.get("createdAt")),
        line_items=_line_items(doc.get("lineItems"), "lineItems", _generic_line_item),
    )


NORMALISERS: dict[Platform, Callable[[str, dict[str, Any], Mapping[str, str]], Order]] = {
    Platform.SHOPIFY: normalise_shopify,
    Platform.WOOCOMMERCE: normalise_woocommerce,
    Platform.BIGCOMMERCE: normalise_bigcommerce,
    Platform.GENERIC: normalise_generic,
}


def normalise(
    platform: Platform, storefront_id: str, body: bytes, headers: Mapping[str, str]
) -> Order:
    return NORMALISERS[platform](storefront_id, parse_json_object(body), headers)
