"""Each platform's order listing against its loopback store sandbox (reconciliation's pulls)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from printflow.domain.storefront import Platform, StoreApi
from printflow.errors import ValidationError
from printflow.platforms.registry import normalise
from printflow.store_apis.base import Pacer, StoreApiError
from printflow.store_apis.pulls import OrderPage, OrderPuller
from printflow.store_apis.registry import STORE_PLATFORMS, load_store_credentials
from printflow_tools.sandboxes import (
    BigCommerceSandbox,
    ManualClock,
    ShopifySandbox,
    WooCommerceSandbox,
)
from printflow_tools.sandboxes.bigcommerce import DEMO_ACCESS_TOKEN, demo_order
from printflow_tools.sandboxes.shopify import DEMO_SHOP_TOKEN
from printflow_tools.sandboxes.woocommerce import DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET

PAYLOADS = Path(__file__).resolve().parents[2] / "events" / "payloads"
SINCE = datetime(2026, 12, 1, tzinfo=UTC)


def payload(name: str) -> dict[str, Any]:
    return dict(json.loads((PAYLOADS / name).read_text()))


def shopify_order(order_id: int, created: str, items: int = 2) -> dict[str, Any]:
    order = payload("shopify-orders-create.json")
    line = order["line_items"][0]
    order.update(id=order_id, name=f"#{order_id}", order_number=order_id, created_at=created)
    order["line_items"] = [{**line, "id": order_id * 1000 + n} for n in range(items)]
    return order


def woo_order(order_id: int, created: str) -> dict[str, Any]:
    order = payload("woocommerce-order-created.json")
    order.update(id=order_id, number=str(order_id), date_created_gmt=created)
    order["date_created"] = created
    return order


def bigcommerce_order(order_id: int, created: str) -> dict[str, Any]:
    order, _ = demo_order(order_id)
    order["date_created"] = created
    return order


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


def pull_all(puller: OrderPuller, since: datetime = SINCE) -> list[OrderPage]:
    pages, ref = [], None
    while True:
        page = puller.orders_since(since, ref)
        pages.append(page)
        if page.next_page is None:
            return pages
        ref = page.next_page


# A pacer waits what a store asks within its budget; ``Pacer(0.0)`` (no budget left) shows
# the wait a store asked for, which reconciliation turns into the storefront's next pull.
def shopify_puller(
    http: httpx.Client,
    shop: ShopifySandbox,
    token: str = DEMO_SHOP_TOKEN,
    pacer: Pacer | None = None,
) -> Any:
    api = StoreApi("", "printflow/store-apis/shop", shop.base_url, api_version="2025-10")
    return STORE_PLATFORMS[Platform.SHOPIFY].order_puller(
        http, api, {"accessToken": token}, pacer or Pacer(10.0)
    )


def woo_puller(
    http: httpx.Client,
    shop: WooCommerceSandbox,
    secret: str = DEMO_CONSUMER_SECRET,
    pacer: Pacer | None = None,
) -> Any:
    api = StoreApi("", "printflow/store-apis/woo", shop.base_url)
    credentials = {"consumerKey": DEMO_CONSUMER_KEY, "consumerSecret": secret}
    return STORE_PLATFORMS[Platform.WOOCOMMERCE].order_puller(
        http, api, credentials, pacer or Pacer(10.0)
    )


def bigcommerce_puller(
    http: httpx.Client,
    store: BigCommerceSandbox,
    token: str = DEMO_ACCESS_TOKEN,
    pacer: Pacer | None = None,
) -> Any:
    api = StoreApi(store.store_hash, "printflow/store-apis/bc", store.base_url)
    return STORE_PLATFORMS[Platform.BIGCOMMERCE].order_puller(
        http, api, {"accessToken": token}, pacer or Pacer(10.0)
    )


# -- the registry ----------------------------------------------------------------------------


def test_the_generic_platform_has_no_pull() -> None:
    assert Platform.GENERIC not in STORE_PLATFORMS
    assert all(
        STORE_PLATFORMS[p].order_puller
        for p in (Platform.SHOPIFY, Platform.WOOCOMMERCE, Platform.BIGCOMMERCE)
    )


def test_a_secret_without_the_credentials_is_named_not_shown() -> None:
    class Secrets:
        def get_secret_value(self, SecretId: str) -> dict[str, str]:
            return {"SecretString": json.dumps({"consumerKey": "ck_x"})}

    api = StoreApi("", "s", "https://shop.example")
    with pytest.raises(ValidationError, match='"consumerSecret"') as caught:
        load_store_credentials(Secrets(), Platform.WOOCOMMERCE, api, "storefront 'woo'")
    assert "ck_x" not in str(caught.value)


# -- Shopify -------------------------------------------------------------------------------


def test_shopify_lists_orders_since_the_time_across_pages_as_webhook_json(
    http: httpx.Client,
) -> None:
    with ShopifySandbox(max_page_size=2) as shop:
        shop.add_order(shopify_order(1, "2026-11-30T23:59:59Z"))  # before: not listed
        for n in range(2, 7):
            shop.add_order(shopify_order(n, f"2026-12-01T0{n}:00:00Z"))
        pages = pull_all(shopify_puller(http, shop))

    assert [[o.order_id for o in p.orders] for p in pages] == [["2", "3"], ["4", "5"], ["6"]]
    first = pages[0].orders[0]
    assert first.created_at == datetime(2026, 12, 1, 2, tzinfo=UTC)
    order = normalise(Platform.SHOPIFY, "shop", first.body, {})  # the webhook's normaliser
    assert order.order_id == "2" and order.name == "#2" and order.number == "2"
    assert [li.id for li in order.line_items] == ["2000", "2001"]
    assert order.line_items[0].properties  # customAttributes became the webhook's properties


def test_shopify_reads_the_rest_of_a_long_order_s_line_items(http: httpx.Client) -> None:
    with ShopifySandbox() as shop:
        shop.add_order(shopify_order(9, "2026-12-01T10:00:00Z", items=130))
        (page,) = pull_all(shopify_puller(http, shop))

    order = normalise(Platform.SHOPIFY, "shop", page.orders[0].body, {})
    assert len(order.line_items) == 130
    assert len({li.id for li in order.line_items}) == 130


def test_shopify_throttled_waits_what_the_cost_says(http: httpx.Client) -> None:
    clock = ManualClock()
    with ShopifySandbox(restore_rate=100, clock=clock) as shop:
        shop.add_order(shopify_order(2, "2026-12-01T10:00:00Z"))
        shop.drain(900)  # another app spent the bucket: 100 of 1000 points left
        puller = shopify_puller(http, shop, pacer=Pacer(0.0))
        with pytest.raises(StoreApiError) as caught:
            puller.orders_since(SINCE, None)
        clock.advance((caught.value.retry_after_s or 0) + 0.1)
        again = puller.orders_since(SINCE, None)

    # a page of 25 orders x 20 line items asks for 502 points, restored at 100 a second
    assert caught.value.transient and "THROTTLED" in caught.value.message
    assert caught.value.retry_after_s == pytest.approx((502 - 100) / 100)
    assert [o.order_id for o in again.orders] == ["2"]


@pytest.mark.parametrize(("status", "wait"), [(429, 1.0), (503, None)])
def test_shopify_429_and_5xx_are_transient(
    http: httpx.Client, status: int, wait: float | None
) -> None:
    with ShopifySandbox() as shop:
        shop.fail_next(status)
        with pytest.raises(StoreApiError) as caught:
            shopify_puller(http, shop, pacer=Pacer(0.0)).orders_since(SINCE, None)
    assert caught.value.transient and caught.value.retry_after_s == wait


@pytest.mark.parametrize("platform", ["shopify", "woocommerce", "bigcommerce"])
def test_a_429_within_the_pacer_s_budget_is_waited_out_then_the_page_read(
    http: httpx.Client, platform: str
) -> None:
    sleeps: list[float] = []
    pacer = Pacer(10.0, sleep=sleeps.append)
    with ShopifySandbox() as shop, WooCommerceSandbox() as woo, BigCommerceSandbox() as bc:
        shop.add_order(shopify_order(2, "2026-12-01T10:00:00Z"))
        woo.add_order(woo_order(101, "2026-12-01T10:00:00"))
        bc.add_order(bigcommerce_order(250, "Tue, 01 Dec 2026 10:00:00 +0000"), [])
        puller = {
            "shopify": lambda: (shop.fail_next(429), shopify_puller(http, shop, pacer=pacer)),
            "woocommerce": lambda: (woo.fail_next(429), woo_puller(http, woo, pacer=pacer)),
            "bigcommerce": lambda: (bc.fail_next(429), bigcommerce_puller(http, bc, pacer=pacer)),
        }[platform]()[1]
        page = puller.orders_since(SINCE, None)

    assert len(page.orders) == 1
    assert sleeps == [1.0]  # Retry-After (BigCommerce: X-Rate-Limit-Time-Reset-Ms)


def test_shopify_refused_token_is_not_transient(http: httpx.Client) -> None:
    with ShopifySandbox() as shop, pytest.raises(StoreApiError) as caught:
        shopify_puller(http, shop, token="shpat_wrong").orders_since(SINCE, None)
    assert not caught.value.transient and "HTTP 401" in caught.value.message


# -- WooCommerce ---------------------------------------------------------------------------


def test_woocommerce_lists_orders_after_the_time_across_pages(http: httpx.Client) -> None:
    with WooCommerceSandbox(max_per_page=2) as shop:
        shop.add_order(woo_order(100, "2026-11-30T23:59:58"))
        shop.add_order(woo_order(101, "2026-12-01T00:00:00"))  # exactly at: listed
        for n in range(102, 105):
            shop.add_order(woo_order(n, f"2026-12-01T1{n - 100}:00:00"))
        draft = {**woo_order(105, "2026-12-01T16:00:00"), "status": "checkout-draft"}
        shop.add_order(draft)  # a cart in the block checkout: no webhook, no pull
        pages = pull_all(woo_puller(http, shop))
        listing = shop.requests[0].query

    assert [[o.order_id for o in p.orders] for p in pages] == [["101", "102"], ["103", "104"], []]
    assert "dates_are_gmt=true" in listing and "orderby=date" in listing and "order=asc" in listing
    order = normalise(Platform.WOOCOMMERCE, "woo", pages[0].orders[0].body, {})
    assert order.order_id == "101" and order.line_items


def test_woocommerce_wrong_secret_and_429(http: httpx.Client) -> None:
    with WooCommerceSandbox() as shop:
        with pytest.raises(StoreApiError) as refused:
            woo_puller(http, shop, secret="cs_wrong").orders_since(SINCE, None)
        shop.fail_next(429)
        with pytest.raises(StoreApiError) as throttled:
            woo_puller(http, shop, pacer=Pacer(0.0)).orders_since(SINCE, None)

    assert not refused.value.transient and "HTTP 401" in refused.value.message
    assert throttled.value.transient and throttled.value.retry_after_s == 1.0


# -- BigCommerce ---------------------------------------------------------------------------


def test_bigcommerce_lists_orders_since_the_time_as_thin_callbacks(http: httpx.Client) -> None:
    with BigCommerceSandbox(max_page_size=2) as store:
        store.add_order(bigcommerce_order(249, "Mon, 30 Nov 2026 23:00:00 +0000"), [])
        for n in range(250, 253):
            store.add_order(bigcommerce_order(n, f"Tue, 01 Dec 2026 0{n - 249}:00:00 +0000"), [])
        pages = pull_all(bigcommerce_puller(http, store))

    ids = [[o.order_id for o in p.orders] for p in pages]
    assert ids == [["250", "251"], ["252"], []]  # the page after the last answers 204
    order = normalise(Platform.BIGCOMMERCE, "bc", pages[0].orders[0].body, {})
    assert order.order_id == "250" and not order.complete  # the render step reads the rest
    assert order.delivery["producer"] == f"stores/{store.store_hash}"


@pytest.mark.parametrize("status", [429, 500])
def test_bigcommerce_429_and_5xx_are_transient(http: httpx.Client, status: int) -> None:
    with BigCommerceSandbox() as store:
        store.fail_next(status)
        with pytest.raises(StoreApiError) as caught:
            bigcommerce_puller(http, store, pacer=Pacer(0.0)).orders_since(SINCE, None)
        with pytest.raises(StoreApiError) as refused:
            bigcommerce_puller(http, store, token="wrong").orders_since(SINCE, None)

    assert caught.value.transient
    assert caught.value.retry_after_s == (1.0 if status == 429 else None)
    assert not refused.value.transient and "HTTP 401" in refused.value.message
