"""BigCommerce's thin webhooks: the order is read in full from the store before it renders.

The flow runs on moto with the real handlers; the store is the loopback BigCommerce sandbox
(real HTTP, X-Auth-Token checked, V2 pagination), the renderer the CHILI sandbox.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import boto3
import httpx
import pytest

from printflow.adapters.order_table import OrderTable
from printflow.domain.order import OrderKey, order_from_document
from printflow.domain.storefront import Platform
from printflow.orders.completion import OrderCompleter, OrderNotCompletable, StoreUnavailable
from printflow.platforms.documents import parse_storefront
from printflow.platforms.registry import normalise
from printflow.validators import UrlPolicy
from printflow_tools.sandboxes import Behaviour, BigCommerceSandbox
from printflow_tools.sandboxes.bigcommerce import DEMO_ACCESS_TOKEN, demo_order
from printflow_tools.webhook_events import payload

from .test_order_flow_end_to_end import run_to_completion

BIGCOMMERCE_ORDER = OrderKey("demo-bigcommerce", "250")


def test_a_bigcommerce_order_is_completed_from_the_store_and_rendered(world: Any) -> None:
    world.register_bigcommerce_storefront()
    world.post("bigcommerce", "demo-bigcommerce", "bigcommerce-order-created.json")
    assert world.order(BIGCOMMERCE_ORDER)["order"]["complete"] is False  # as the webhook had it

    execution = run_to_completion(world, BIGCOMMERCE_ORDER)

    assert execution["status"] == "SUCCEEDED", execution
    item = world.order(BIGCOMMERCE_ORDER)
    order = item["order"]
    assert order["complete"] is True and item["completedFromStoreAt"]
    assert order["email"] == "anna.peeters@example.com" and order["currency"] == "EUR"
    assert order["delivery"]["producer"] == "stores/abc123xyz"  # the webhook's, kept
    assert [(li["sku"], li["quantity"]) for li in order["lineItems"]] == [
        ("POSTER-A2", 2),
        ("CARD-A6", 1),
    ]
    # CHILI got one task per line item, the shopper's options as variables
    tasks = world.chili.tasks()
    assert len(tasks) == 2
    assert [task.variables for task in tasks] == [
        [{"Headline": "Happy birthday Anna", "Colour": "Ocean"}],
        [{"Headline": "See you soon"}],
    ]
    assert len(item["artifacts"]) == 2
    # the store was asked with the token, for exactly the order and its products
    paths = [r.path for r in world.store.requests]
    assert paths == [
        "/stores/abc123xyz/v2/orders/250",
        "/stores/abc123xyz/v2/orders/250/products",
    ]
    # later steps saw the full order: the success email went to the shopper
    (email,) = world.emails()
    assert email.destinations["ToAddresses"] == ["anna.peeters@example.com"]


def test_an_order_the_store_does_not_have_takes_the_error_path(world: Any) -> None:
    world.register_bigcommerce_storefront()
    world.store.remove_order(250)
    world.post("bigcommerce", "demo-bigcommerce", "bigcommerce-order-created.json")

    execution = world.wait_finished(BIGCOMMERCE_ORDER)

    assert execution["status"] == "FAILED"
    item = world.order(BIGCOMMERCE_ORDER)
    assert item["status"] == "Failed" and item["error"]["step"] == "generate"
    assert "no such order" in item["error"]["cause"]
    assert item["order"]["complete"] is False  # nothing half-written
    assert world.chili.tasks() == []  # and nothing rendered
    (email,) = world.emails()
    assert "no such order" in email.body


def test_a_storefront_without_store_api_says_what_is_missing(world: Any) -> None:
    world.register_bigcommerce_storefront(with_store_api=False)
    world.post("bigcommerce", "demo-bigcommerce", "bigcommerce-order-created.json")

    execution = world.wait_finished(BIGCOMMERCE_ORDER)

    assert execution["status"] == "FAILED"
    cause = world.order(BIGCOMMERCE_ORDER)["error"]["cause"]
    assert "storeApi" in cause and "without its line items" in cause
    assert world.store.requests == []


# -- the completer alone, against the sandbox ------------------------------------------------


@pytest.fixture
def store() -> Any:
    with BigCommerceSandbox() as sandbox:
        sandbox.add_order(*demo_order())
        yield sandbox


@pytest.fixture
def table(local_aws: Any) -> OrderTable:
    return OrderTable(boto3.client("dynamodb"), local_aws.table())


def storefront(store: BigCommerceSandbox, **store_api: Any) -> Any:
    secret = "printflow/store-apis/shop"
    secrets = boto3.client("secretsmanager")
    with contextlib.suppress(secrets.exceptions.ResourceExistsException):
        token = json.dumps({"accessToken": DEMO_ACCESS_TOKEN})
        secrets.create_secret(Name=secret, SecretString=token)
    doc = {
        "storefrontId": "shop",
        "platform": "bigcommerce",
        "storeApi": {
            "storeHash": store.store_hash,
            "credentialsSecret": secret,
            "baseUrl": store.base_url,
            **store_api,
        },
    }
    return parse_storefront(doc)[0]


def thin_order(producer: str = "stores/abc123xyz") -> Any:
    body = payload("bigcommerce-order-created.json").replace(b"stores/abc123xyz", producer.encode())
    return normalise(Platform.BIGCOMMERCE, "shop", body, {})


def completer(table: OrderTable) -> OrderCompleter:
    return OrderCompleter(
        table,
        boto3.client("secretsmanager"),
        lambda: httpx.Client(trust_env=False, timeout=5.0),
        UrlPolicy.loopback(),
    )


def test_a_throttled_store_is_worth_a_retry_after_its_reset_time(
    store: BigCommerceSandbox, table: OrderTable
) -> None:
    store.behaviour = Behaviour(throttle_rate=1.0, retry_after_s=3)
    with pytest.raises(StoreUnavailable) as raised:
        completer(table).complete(thin_order(), storefront(store))
    assert raised.value.retry_after_s == 3.0 and "429" in raised.value.message


def test_a_wrong_token_or_another_store_is_final(
    store: BigCommerceSandbox, table: OrderTable
) -> None:
    store.access_token = "rotated"
    with pytest.raises(OrderNotCompletable, match="refused the access token"):
        completer(table).complete(thin_order(), storefront(store))
    store.access_token = DEMO_ACCESS_TOKEN
    with pytest.raises(OrderNotCompletable, match="came from 'stores/other'"):
        completer(table).complete(thin_order("stores/other"), storefront(store))
    assert store.requests[-1].status == 401  # the mismatch never reached the store


def test_an_order_with_many_line_items_is_read_page_by_page(
    store: BigCommerceSandbox, table: OrderTable
) -> None:
    order, products = demo_order()
    many = [{**products[i % 2], "id": 1000 + i, "sku": f"SKU-{i}"} for i in range(300)]
    store.add_order(order, many)
    thin = thin_order()

    full = completer(table).complete(thin, storefront(store))

    assert [li.sku for li in full.line_items] == [f"SKU-{i}" for i in range(300)]
    pages = [r.query for r in store.requests if r.path.endswith("/products")]
    assert pages == ["page=1&limit=250", "page=2&limit=250"]


def test_a_completed_order_is_stored_once_and_not_overwritten(world: Any) -> None:
    table = OrderTable(boto3.client("dynamodb"), world.resources.table())
    world.register_bigcommerce_storefront()
    world.post("bigcommerce", "demo-bigcommerce", "bigcommerce-order-created.json")
    key = BIGCOMMERCE_ORDER
    thin = order_from_document(table.get_order(key)["order"])  # type: ignore[index]
    stored_storefront = table.get_storefront("demo-bigcommerce")
    assert stored_storefront is not None

    first = completer(table).complete(thin, stored_storefront)
    # A slower retry that read the store before the first write must not overwrite it.
    world.store.add_order({**demo_order()[0], "currency_code": "USD"}, demo_order()[1])
    completer(table).complete(thin, stored_storefront)

    assert table.get_order(key)["order"]["currency"] == first.currency == "EUR"  # type: ignore[index]


def test_a_thousand_line_items_fit_and_one_more_is_refused(
    store: BigCommerceSandbox, table: OrderTable
) -> None:
    order, products = demo_order()
    many = [{**products[0], "id": 1000 + i, "sku": f"SKU-{i}"} for i in range(1001)]

    store.add_order(order, many[:1000])  # four full pages, then 204
    full = completer(table).complete(thin_order(), storefront(store))
    assert len(full.line_items) == 1000

    store.add_order(order, many)
    with pytest.raises(OrderNotCompletable, match="more than 1000 line items"):
        completer(table).complete(thin_order(), storefront(store))


def test_an_oversized_store_answer_is_refused(store: BigCommerceSandbox, table: OrderTable) -> None:
    order, products = demo_order()
    huge = {"display_name": "Note", "display_value": "x" * 20_000}
    page = [{**products[0], "id": i, "product_options": [huge]} for i in range(250)]
    store.add_order(order, page)  # ~5 MiB in one page

    with pytest.raises(OrderNotCompletable, match="answer over 4194304 bytes"):
        completer(table).complete(thin_order(), storefront(store))
