"""Validly signed but hostile bodies: each gets a 4xx naming the problem and writes nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from printflow_tools.localstack.resources import LocalResources
from printflow_tools.webhook_events import payload, webhook_event

from .test_webhook import signed, snapshot, storefronts, webhook  # noqa: F401 (fixtures)

DEEP = 100_000


def _shopify(edit: Callable[[dict[str, Any]], None]) -> bytes:
    doc = json.loads(payload("shopify-orders-create.json"))
    edit(doc)
    return json.dumps(doc).encode()


def _splice(body: bytes, marker: bytes, replacement: bytes) -> bytes:
    assert marker in body
    return body.replace(marker, replacement, 1)


def _quantity_literal(literal: bytes) -> bytes:
    return _splice(
        _shopify(lambda d: d["line_items"][0].update(quantity=424242)), b"424242", literal
    )


HOSTILE: list[tuple[str, str, str, bytes, str]] = [
    ("deep arrays", "generic", "demo-generic", b"[" * DEEP + b"]" * DEEP, "deeper than 64"),
    (
        "deep objects",
        "generic",
        "demo-generic",
        b'{"id": "1", "x": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}",
        "deeper than 64",
    ),
    (
        "deep line item properties",
        "shopify",
        "demo-shopify",
        _splice(
            _shopify(lambda d: d["line_items"][0].update(properties="DEEP")),
            b'"DEEP"',
            b"[" * DEEP + b"]" * DEEP,
        ),
        "deeper than 64",
    ),
    (
        "5,000-digit order id",
        "shopify",
        "demo-shopify",
        _splice(_shopify(lambda d: d.update(id=4242)), b"4242", b"9" * 5000),
        "number of 5000 digits",
    ),
    (
        "5,000-digit order id as a string",
        "generic",
        "demo-generic",
        json.dumps({"id": "9" * 5000}).encode(),
        "1-128 printable characters",
    ),
    ("40-digit quantity", "shopify", "demo-shopify", _quantity_literal(b"1" * 40), "40 digits"),
    (
        "40-digit quantity as a string",
        "shopify",
        "demo-shopify",
        _shopify(lambda d: d["line_items"][0].update(quantity="1" * 40)),
        "must be at most 1000000000",
    ),
    ("Infinity", "shopify", "demo-shopify", _quantity_literal(b"Infinity"), "Infinity"),
    ("-Infinity", "shopify", "demo-shopify", _quantity_literal(b"-Infinity"), "-Infinity"),
    ("1e400", "shopify", "demo-shopify", _quantity_literal(b"1e400"), "out of range"),
    ("NaN", "shopify", "demo-shopify", _quantity_literal(b"NaN"), "NaN"),
    (
        "woocommerce huge quantity",
        "woocommerce",
        "demo-woo",
        _splice(
            payload("woocommerce-order-created.json"),
            b'"quantity": 2',
            b'"quantity": 2' + b"0" * 39,
        ),
        "40 digits",
    ),
    (
        "bigcommerce id beyond any integer type",
        "bigcommerce",
        "demo-bigcommerce",
        json.dumps(
            {"scope": "store/order/created", "data": {"type": "order", "id": "9" * 30}}
        ).encode(),
        "positive integer up to 9223372036854775807",
    ),
    (
        "bigcommerce 5,000-digit id",
        "bigcommerce",
        "demo-bigcommerce",
        b'{"scope": "store/order/created", "data": {"type": "order", "id": ' + b"9" * 5000 + b"}}",
        "number of 5000 digits",
    ),
    (
        "bigcommerce id that is not a number",
        "bigcommerce",
        "demo-bigcommerce",
        json.dumps({"scope": "store/order/created", "data": {"id": "../x"}}).encode(),
        "positive integer",
    ),
]


@pytest.mark.parametrize(
    ("platform", "storefront_id", "body", "message"),
    [h[1:] for h in HOSTILE],
    ids=[h[0] for h in HOSTILE],
)
def test_hostile_signed_bodies_get_a_4xx_and_write_nothing(
    local_aws: LocalResources,
    webhook: Any,  # noqa: F811
    platform: str,
    storefront_id: str,
    body: bytes,
    message: str,
) -> None:
    before = snapshot(local_aws)

    status, answer = webhook(signed(platform, storefront_id, body))

    assert status == 400, answer
    assert message in answer["message"]
    assert snapshot(local_aws) == before


@pytest.mark.parametrize("stamp", ["²", "¹²³", "١٢٣", "12a", "-5"])
def test_a_non_ascii_generic_timestamp_is_a_401_before_the_signature(
    local_aws: LocalResources,
    webhook: Any,  # noqa: F811
    stamp: str,
) -> None:
    before = snapshot(local_aws)
    event = webhook_event(
        "generic",
        "demo-generic",
        b"{}",
        {"X-PrintFlow-Timestamp": stamp, "X-PrintFlow-Signature": "v1=00"},
    )

    status, answer = webhook(event)

    assert status == 401, answer
    assert "must be unix seconds" in answer["message"]
    assert snapshot(local_aws) == before


UNSAFE_IDS = ["..", ".", "a/b", "a_b", "../../etc/passwd", "Zoë/ü.pdf", "x" * 128, "CON"]


def test_orders_with_unsafe_ids_get_safe_distinct_keys_and_keep_their_id(
    local_aws: LocalResources,
    webhook: Any,  # noqa: F811
) -> None:
    executions = set()
    prefixes = set()
    for order_id in UNSAFE_IDS:
        status, answer = webhook(
            signed("shopify", "demo-shopify", _shopify(lambda d, i=order_id: d.update(id=i)))
        )
        assert status == 202, answer

    state = snapshot(local_aws)
    bodies = [k for k in state["objects"] if k.startswith("webhooks/")]
    assert len(bodies) == len(UNSAFE_IDS)
    for key in bodies:
        segments = key.split("/")
        assert len(segments) == 4, key
        assert all(s and not s.startswith(".") for s in segments), key
        assert all(c.isprintable() for c in key), key
        prefixes.add(segments[2])
    assert len(prefixes) == len(UNSAFE_IDS)

    for name in state["executions"]:
        assert re.fullmatch(r"[0-9A-Za-z_-]{1,80}", name), name
        executions.add(name)
    assert len(executions) == len(UNSAFE_IDS)

    items = [json.loads(i) for i in state["items"]]
    stored_ids = {i["orderId"]["S"] for i in items if i["sk"]["S"] == "ORDER"}
    assert stored_ids == set(UNSAFE_IDS)
