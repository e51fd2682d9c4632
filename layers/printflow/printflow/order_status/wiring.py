"""Composition root of the order-status function."""

from __future__ import annotations

from typing import Any

from printflow.adapters import aws
from printflow.adapters.order_table import OrderTable
from printflow.order_status.view import OrderStatusReader
from printflow.settings import CoreSettings


def build_order_status_reader(settings: CoreSettings, *, dynamodb: Any = None) -> OrderStatusReader:
    return OrderStatusReader(OrderTable(dynamodb or aws.client("dynamodb"), settings.order_table))
