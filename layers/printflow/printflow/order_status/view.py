"""The order status document served by ``GET /orders/{storefrontId}/{orderId}``."""

from __future__ import annotations

from typing import Any

from printflow.adapters.order_table import OrderTable
from printflow.domain.order import OrderKey
from printflow.errors import NotFound


def order_status_view(item: dict[str, Any]) -> dict[str, Any]:
    """Project a stored order item onto the public status document (no internal fields)."""
    return {
        "storefrontId": item["storefrontId"],
        "orderId": item["orderId"],
        "status": item.get("status"),
        "currentStep": item.get("currentStep"),
        "statusHistory": item.get("statusHistory", []),
        "flow": item.get("flow"),
        "executionName": item.get("executionName"),
        "receivedAt": item.get("receivedAt"),
        "updatedAt": item.get("updatedAt"),
        "error": item.get("error"),
        "artifacts": item.get("artifacts", []),
        # Customer's Canvas: whether every design's project was found, or the deadline hit.
        "projectDiscovery": item.get("projectDiscovery"),
        "order": item.get("order"),
    }


def get_order_status(table: OrderTable, key: OrderKey) -> dict[str, Any]:
    """The order's status document; :class:`NotFound` when the table has no such order."""
    # A large order's status shows its bounded document (lineItemCount, no lineItems).
    item = table.get_order(key, full_order=False)
    if item is None:
        raise NotFound(f"order {key.order_id!r} of storefront {key.storefront_id!r} not found")
    return order_status_view(item)


class OrderStatusReader:
    """Reads orders' status documents (one read of the order item, nothing written)."""

    def __init__(self, table: OrderTable) -> None:
        self._table = table

    def status_of(self, key: OrderKey) -> dict[str, Any]:
        return get_order_status(self._table, key)
