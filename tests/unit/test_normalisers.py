"""Each platform's payload (real-shaped, from events/payloads) becomes the same Order."""

from __future__ import annotations

import json

import pytest

from printflow.domain.order import OrderKey, order_from_document
from printflow.domain.storefront import Platform
from printflow.errors import MalformedPayload
from printflow.platforms.bigcommerce import complete_bigcommerce
from printflow.platforms.registry import normalise
from printflow_tools.webhook_events import payload


def test_shopify_orders_create() -> None:
    headers = {
        "x-shopify-event-id": "evt-1",
        "x-shopify-webhook-id": "wh-1",
        "x-shopify-topic": "orders/create",
    }
    order = normalise(Platform.SHOPIFY, "sf", payload("shopify-orders-create.json"), headers)

    assert order.key == OrderKey("sf", "5678901234567")
    assert (order.number, order.name, order.email, order.currency) == (
        "1042",
        "#1042",
        "jane.doe@example.com",
        "EUR",
    )
    assert order.created_at == "2026-11-20T10:15:42-05:00"
    assert [li.sku for li in order.line_items] == ["POSTER-A2-MATTE", "CARD-SQ"]
    assert [li.quantity for li in order.line_items] == [1, 2]
    poster = order.line_items[0]
    assert poster.property_map()["Headline"] == "Happy 40th, Sam!"
    assert poster.product_id == "8123456789012" and poster.variant_id == "44012345678901"
    assert order.delivery["eventId"] == "evt-1" and order.delivery["webhookId"] == "wh-1"
    assert order.complete


def test_woocommerce_order_created_hides_internal_meta() -> None:
    order = normalise(Platform.WOOCOMMERCE, "woo", payload("woocommerce-order-created.json"), {})

    assert order.key == OrderKey("woo", "7311")
    assert (order.number, order.name, order.email, order.currency) == (
        "7311",
        "#7311",
        "alex.rivera@example.org",
        "USD",
    )
    assert order.created_at == "2026-11-21T00:02:11"
    (mug,) = order.line_items
    assert mug.quantity == 2 and mug.sku == "MUG-11OZ" and mug.variant_id is None
    assert mug.property_map() == {"Design": "cc-project-4567", "Text": "World's best dad"}


def test_bigcommerce_is_thin_and_marked_incomplete() -> None:
    order = normalise(Platform.BIGCOMMERCE, "bc", payload("bigcommerce-order-created.json"), {})

    assert order.key == OrderKey("bc", "250")
    assert not order.complete
    assert order.line_items == ()
    assert order.delivery["scope"] == "store/order/created"
    assert order.delivery["storeId"] == "1025646"


def test_generic_accepts_properties_as_an_object() -> None:
    order = normalise(Platform.GENERIC, "gen", payload("generic-order.json"), {})

    assert order.key == OrderKey("gen", "GEN-2026-000123")
    assert order.line_items[0].property_map()["Name"] == "Dr. Ada Lovelace"


def test_document_round_trip_keeps_everything() -> None:
    order = normalise(Platform.SHOPIFY, "sf", payload("shopify-orders-create.json"), {})
    assert order_from_document(json.loads(json.dumps(order.to_document()))) == order


@pytest.mark.parametrize(
    ("platform", "body", "message"),
    [
        (Platform.SHOPIFY, b"{not json", "not valid JSON"),
        (Platform.SHOPIFY, b"[1, 2]", "must be a JSON object"),
        (Platform.SHOPIFY, b'{"name": "#1"}', "order id missing: expected field 'id'"),
        (Platform.SHOPIFY, b'{"id": true}', "order id missing"),
        (Platform.SHOPIFY, b'{"id": {"a": 1}}', "field 'id' must be a string or an integer"),
        (Platform.SHOPIFY, b'{"id": 1, "line_items": {}}', "'line_items' must be a list"),
        (
            Platform.SHOPIFY,
            b'{"id": 1, "line_items": [{"id": 2, "quantity": "x"}]}',
            "line_items[0].quantity' must be an integer",
        ),
        (
            Platform.SHOPIFY,
            b'{"id": 1, "line_items": [{"quantity": 1}]}',
            "expected field 'line_items[0].id'",
        ),
        (Platform.WOOCOMMERCE, b'{"number": "12"}', "expected field 'id'"),
        (Platform.BIGCOMMERCE, b'{"scope": "store/order/created"}', "expected field 'data.id'"),
        (Platform.GENERIC, b'{"id": "' + b"x" * 200 + b'"}', "1-128 printable characters"),
        (Platform.GENERIC, b'{"id": "a\\nb"}', "printable"),
        (Platform.GENERIC, b"\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_payloads_name_the_problem(platform: Platform, body: bytes, message: str) -> None:
    with pytest.raises(MalformedPayload) as error:
        normalise(platform, "sf", body, {})
    assert message in error.value.message


def test_a_thin_bigcommerce_order_is_completed_from_the_store_answer() -> None:
    thin = normalise(Platform.BIGCOMMERCE, "bc", payload("bigcommerce-order-created.json"), {})
    doc = {"id": 250, "currency_code": "EUR", "billing_address": {"email": "a@example.com"}}
    products = [
        {
            "id": 9,
            "name": "Poster",
            "quantity": 3,
            "sku": "P-1",
            "product_id": 77,
            "variant_id": 310,
            "product_options": [{"display_name": "Headline", "display_value": "Hi"}],
        }
    ]

    full = complete_bigcommerce(thin, doc, products)

    assert full.complete and full.key == thin.key and full.delivery == thin.delivery
    assert (full.email, full.currency, full.name) == ("a@example.com", "EUR", "#250")
    (item,) = full.line_items
    assert (item.id, item.quantity, item.product_id, item.variant_id) == ("9", 3, "77", "310")
    assert item.property_map() == {"Headline": "Hi"}


def test_a_store_answer_for_another_order_or_without_option_names_is_refused() -> None:
    thin = normalise(Platform.BIGCOMMERCE, "bc", payload("bigcommerce-order-created.json"), {})
    with pytest.raises(MalformedPayload, match="answered order 251"):
        complete_bigcommerce(thin, {"id": 251}, [])
    with pytest.raises(MalformedPayload, match=r"products\[0\].product_options"):
        complete_bigcommerce(thin, {"id": 250}, [{"id": 1, "product_options": [{"x": 1}]}])
