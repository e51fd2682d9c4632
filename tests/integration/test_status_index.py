"""The StatusIndex on moto (built from template.yaml): orders by storefront and status."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from printflow.adapters.order_table import NewOrderRecord, OrderTable
from printflow.domain.order import Order, OrderKey, RawBodyRef
from printflow.operations.orders import ListingStats, list_orders
from printflow_tools.localstack.resources import create_table_from_template


@pytest.fixture
def table() -> Iterator[OrderTable]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        yield OrderTable(client, create_table_from_template(client, "status-index"))


def record(table: OrderTable, storefront: str, order_id: str, at: str) -> OrderKey:
    key = OrderKey(storefront, order_id)
    order = Order(key, "generic", order_id, f"#{order_id}", None, None, at)
    table.record_new_order(NewOrderRecord(order, RawBodyRef("b", "k"), "default", at, 0, 1))
    return key


def test_orders_are_listed_per_storefront_and_status_newest_first(table: OrderTable) -> None:
    for i in range(5):
        record(table, "acme", f"{i}", f"2026-12-02T10:0{i}:00.000+00:00")
    record(table, "other", "x", "2026-12-02T10:00:00.000+00:00")

    rows = list(list_orders(table, statuses=["Received"], storefronts=["acme"]))

    assert [r.order_id for r in rows] == ["4", "3", "2", "1", "0"]
    assert {r.status for r in rows} == {"Received"}
    assert list(list_orders(table, statuses=["Failed"], storefronts=["acme"])) == []


def test_since_and_older_than_bound_the_time(table: OrderTable) -> None:
    for i in range(5):
        record(table, "acme", f"{i}", f"2026-12-02T10:0{i}:00.000+00:00")

    recent = list_orders(table, statuses=["Received"], storefronts=["acme"],
                         since="2026-12-02T10:03:00+00:00")  # fmt: skip
    stuck = list_orders(table, statuses=["Received"], storefronts=["acme"],
                        until="2026-12-02T10:02:00+00:00")  # fmt: skip

    assert [r.order_id for r in recent] == ["4", "3"]
    assert [r.order_id for r in stuck] == ["1", "0"]


def test_a_retry_moves_the_order_to_retrying(table: OrderTable) -> None:
    key = record(table, "acme", "1", "2026-12-02T10:00:00.000+00:00")

    retry = {"attempt": 1, "from_step": "generate", "execution_name": "n-r1", "status": "Retrying"}
    assert table.record_retry(key, **retry, at="2026-12-02T11:00:00.000+00:00")  # type: ignore[arg-type]
    # a second operator racing with the same attempt number loses
    assert not table.record_retry(key, **retry, at="2026-12-02T11:00:01.000+00:00")  # type: ignore[arg-type]

    assert list(list_orders(table, statuses=["Received"], storefronts=["acme"])) == []
    (row,) = list_orders(table, statuses=["Retrying"], storefronts=["acme"])
    assert (row.order_id, row.retries, row.step) == ("1", 1, "generate")


def test_one_query_page_per_hundred_orders(table: OrderTable) -> None:
    for i in range(250):
        record(table, "acme", f"{i:03d}", f"2026-12-02T10:{i // 60:02d}:{i % 60:02d}.000+00:00")
    stats = ListingStats()

    rows = list(list_orders(table, statuses=["Received"], storefronts=["acme"], stats=stats))

    assert len(rows) == 250
    assert stats.pages == 3
