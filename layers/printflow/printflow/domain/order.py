"""The normalised order every storefront platform is turned into."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

# Step Functions execution names: 1-80 chars of [0-9A-Za-z_-]; anything else is replaced.
_EXECUTION_NAME_UNSAFE = re.compile(r"[^0-9A-Za-z_-]")


class OrderStatus(StrEnum):
    """Statuses PrintFlow itself sets; flows add their own ``successStatus`` values."""

    RECEIVED = "Received"
    FAILED = "Failed"


@dataclass(frozen=True, slots=True)
class OrderKey:
    """Identifies an order: storefront ids are unique, order ids are unique per storefront."""

    storefront_id: str
    order_id: str

    def __str__(self) -> str:
        return f"{self.storefront_id}/{self.order_id}"

    @property
    def execution_name(self) -> str:
        """Deterministic Step Functions execution name.

        Standard executions deduplicate by name, so a retried start never runs an order twice.
        A hash of the exact key keeps names unique after unsafe characters are replaced.
        """
        digest = hashlib.sha256(str(self).encode()).hexdigest()[:12]
        readable = _EXECUTION_NAME_UNSAFE.sub("_", f"{self.storefront_id}-{self.order_id}")
        return f"{readable[:67]}-{digest}"


@dataclass(frozen=True, slots=True)
class Property:
    """A line item's customisation option (Shopify ``properties``, WooCommerce ``meta_data``)."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class LineItem:
    id: str
    name: str
    quantity: int
    sku: str | None = None
    product_id: str | None = None
    variant_id: str | None = None
    properties: tuple[Property, ...] = ()

    def property_map(self) -> dict[str, str]:
        return {p.name: p.value for p in self.properties}


@dataclass(frozen=True, slots=True)
class RawBodyRef:
    """Where the exact delivered webhook body is kept (for audit and re-processing)."""

    bucket: str
    key: str


@dataclass(frozen=True, slots=True)
class Order:
    """An order as PrintFlow knows it, whatever platform it came from.

    ``complete`` is False for thin payloads (BigCommerce sends only the order id); such an
    order has no line items until someone fetches the full order from the store API.
    """

    key: OrderKey
    platform: str
    number: str | None
    name: str | None
    email: str | None
    currency: str | None
    created_at: str | None
    line_items: tuple[LineItem, ...] = ()
    complete: bool = True
    delivery: dict[str, str] = field(default_factory=dict)

    @property
    def storefront_id(self) -> str:
        return self.key.storefront_id

    @property
    def order_id(self) -> str:
        return self.key.order_id

    def to_document(self) -> dict[str, Any]:
        """JSON-ready form used in the order table, REST documents and email templates."""
        doc = asdict(self)
        doc.pop("key")
        doc["storefrontId"] = self.storefront_id
        doc["orderId"] = self.order_id
        doc["createdAt"] = doc.pop("created_at")
        doc["lineItems"] = [_line_item_document(li) for li in self.line_items]
        doc.pop("line_items")
        return doc


def _line_item_document(item: LineItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "quantity": item.quantity,
        "sku": item.sku,
        "productId": item.product_id,
        "variantId": item.variant_id,
        "properties": [{"name": p.name, "value": p.value} for p in item.properties],
    }


def order_from_document(doc: dict[str, Any]) -> Order:
    """Inverse of :meth:`Order.to_document`."""
    return Order(
        key=OrderKey(str(doc["storefrontId"]), str(doc["orderId"])),
        platform=str(doc["platform"]),
        number=doc.get("number"),
        name=doc.get("name"),
        email=doc.get("email"),
        currency=doc.get("currency"),
        created_at=doc.get("createdAt"),
        line_items=tuple(
            LineItem(
                id=str(li["id"]),
                name=str(li.get("name") or ""),
                quantity=int(li.get("quantity") or 0),
                sku=li.get("sku"),
                product_id=li.get("productId"),
                variant_id=li.get("variantId"),
                properties=tuple(
                    Property(str(p["name"]), str(p["value"])) for p in li.get("properties") or ()
                ),
            )
            for li in doc.get("lineItems") or ()
        ),
        complete=bool(doc.get("complete", True)),
        delivery={str(k): str(v) for k, v in (doc.get("delivery") or {}).items()},
    )
