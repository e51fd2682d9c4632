"""Large orders: recorded up to the documented bound with a bounded item, refused above it."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from printflow.adapters.order_table import INLINE_ORDER_MAX_BYTES, OrderTable
from printflow.domain.order import OrderKey
from printflow.settings import MAX_WEBHOOK_BODY_BYTES
from printflow_tools.localstack.resources import LocalResources
from printflow_tools.webhook_events import payload

from .test_webhook import signed, snapshot, storefronts, webhook  # noqa: F401 (fixtures)

DYNAMODB_ITEM_LIMIT = 400 * 1024


def b2b_order(order_id: int, target_bytes: int, lines: int = 500) -> bytes:
    """A Shopify order of about ``target_bytes``: many line items with long properties."""
    doc = json.loads(payload("shopify-orders-create.json"))
    doc["id"] = order_id
    template = doc["line_items"][0]
    doc["line_items"] = [
        {
            **template,
            "id": 10_000 + n,
            "properties": [
                {"name": f"Line {k}", "value": "Company name and address " * 8} for k in range(4)
            ],
        }
        for n in range(lines)
    ]
    body = json.dumps(doc).encode()
    # Pad with a field no normaliser reads, to land exactly on the wanted size.
    # ("note": null becomes "note": "xx…": the quotes replace the four letters of null.)
    assert len(body) <= target_bytes, len(body)
    doc["note"] = "x" * (target_bytes - len(body) + len(b"null") - len(b'""'))
    body = json.dumps(doc).encode()
    assert len(body) == target_bytes
    return body


def item_size(item: dict[str, Any]) -> int:
    return len(json.dumps(item))


@pytest.mark.parametrize("size", [790 * 1024, MAX_WEBHOOK_BODY_BYTES - 1024])
def test_a_large_order_is_recorded_with_a_bounded_item_and_its_full_document_in_s3(
    local_aws: LocalResources,
    webhook: Any,  # noqa: F811
    size: int,
) -> None:
    body = b2b_order(7_000_001, size)

    status, answer = webhook(signed("shopify", "demo-shopify", body))

    assert status == 202, answer
    raw = boto3.client("dynamodb").get_item(
        TableName=local_aws.table(),
        Key={"pk": {"S": "ORDER#demo-shopify#7000001"}, "sk": {"S": "ORDER"}},
    )["Item"]
    assert item_size(raw) < DYNAMODB_ITEM_LIMIT
    assert "lineItems" not in raw["order"]["M"]
    assert raw["order"]["M"]["lineItemCount"]["N"] == "500"
    document_key = raw["orderDocument"]["M"]["key"]["S"]
    assert document_key.startswith("webhooks/demo-shopify/7000001/order-")

    # Every step reads the order through get_order: it sees all 800 line items.
    table = OrderTable(boto3.client("dynamodb"), local_aws.table())
    item = table.get_order(OrderKey("demo-shopify", "7000001"))
    assert item is not None
    assert len(item["order"]["lineItems"]) == 500
    assert item["order"]["lineItems"][499]["properties"][3]["name"] == "Line 3"
    bounded = table.get_order(OrderKey("demo-shopify", "7000001"), full_order=False)
    assert bounded is not None and "lineItems" not in bounded["order"]


def test_just_over_the_bound_is_a_413_that_writes_nothing(
    local_aws: LocalResources,
    webhook: Any,  # noqa: F811
) -> None:
    body = b2b_order(7_000_002, MAX_WEBHOOK_BODY_BYTES + 1)
    before = snapshot(local_aws)

    status, answer = webhook(signed("shopify", "demo-shopify", body))

    assert status == 413, answer
    assert f"the limit is {MAX_WEBHOOK_BODY_BYTES}" in answer["message"]
    assert snapshot(local_aws) == before


def test_a_small_order_stays_inline(
    local_aws: LocalResources,
    webhook: Any,  # noqa: F811
) -> None:
    body = b2b_order(7_000_003, INLINE_ORDER_MAX_BYTES // 2, lines=50)

    status, _ = webhook(signed("shopify", "demo-shopify", body))

    assert status == 202
    raw = boto3.client("dynamodb").get_item(
        TableName=local_aws.table(),
        Key={"pk": {"S": "ORDER#demo-shopify#7000003"}, "sk": {"S": "ORDER"}},
    )["Item"]
    assert "orderDocument" not in raw
    assert len(raw["order"]["M"]["lineItems"]["L"]) == 50
