"""The store sandboxes behave like the real APIs, auth failures and rate limits included."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from printflow.store_apis.shopify import METAFIELDS_SET, TAGS_ADD
from printflow_tools.sandboxes import (
    Behaviour,
    BigCommerceSandbox,
    ManualClock,
    ShopifySandbox,
    WooCommerceSandbox,
)
from printflow_tools.sandboxes.bigcommerce import demo_order
from printflow_tools.sandboxes.shopify import DEMO_SHOP_TOKEN


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=5) as client:
        yield client


def tags_add(
    http: httpx.Client, shop: ShopifySandbox, tags: list[str], token: str = DEMO_SHOP_TOKEN
) -> httpx.Response:
    return http.post(
        f"{shop.base_url}/admin/api/2025-10/graphql.json",
        json={"query": TAGS_ADD, "variables": {"id": "gid://shopify/Order/1", "tags": tags}},
        headers={"X-Shopify-Access-Token": token},
    )


def test_shopify_adds_tags_never_replacing_and_reports_its_cost(http: httpx.Client) -> None:
    with ShopifySandbox() as shop:
        shop.add_order(1, tags=["VIP"])
        answer = tags_add(http, shop, ["vip", "printed"]).json()
        tags_add(http, shop, ["printed"])
        assert shop.order(1).tags == ["VIP", "printed"]
        assert answer["data"]["tagsAdd"]["userErrors"] == []
        throttle = answer["extensions"]["cost"]["throttleStatus"]
        assert throttle["maximumAvailable"] == 1000 and throttle["restoreRate"] == 50


def test_shopify_refuses_a_wrong_token(http: httpx.Client) -> None:
    with ShopifySandbox() as shop:
        shop.add_order(1)
        response = tags_add(http, shop, ["x"], token="shpat_wrong")
        assert response.status_code == 401
        assert "Invalid API key or access token" in response.json()["errors"]
        assert shop.order(1).tags == []


def test_shopify_throttles_with_200_and_refills_at_its_restore_rate(http: httpx.Client) -> None:
    clock = ManualClock()
    with ShopifySandbox(bucket_size=100, restore_rate=10, clock=clock) as shop:
        shop.add_order(1)
        shop.drain(95)
        throttled = tags_add(http, shop, ["x"])
        assert throttled.status_code == 200
        doc = throttled.json()
        assert doc["errors"][0]["extensions"]["code"] == "THROTTLED"
        assert doc["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 5
        assert shop.order(1).tags == []  # nothing done
        clock.advance(0.5)  # +5 points: 10, one mutation
        assert "errors" not in tags_add(http, shop, ["x"]).json()
        assert shop.order(1).tags == ["x"]


def test_shopify_injected_429_carries_retry_after(http: httpx.Client) -> None:
    with ShopifySandbox(behaviour=Behaviour(throttle_rate=1.0, retry_after_s=3)) as shop:
        shop.add_order(1)
        response = tags_add(http, shop, ["x"])
        assert response.status_code == 429 and response.headers["Retry-After"] == "3"


def test_shopify_unknown_orders_and_bad_metafields_are_user_errors(http: httpx.Client) -> None:
    with ShopifySandbox() as shop:
        answer = tags_add(http, shop, ["x"]).json()["data"]["tagsAdd"]
        assert (
            answer["node"] is None and answer["userErrors"][0]["message"] == "Order does not exist"
        )
        shop.add_order(1)
        bad: dict[str, Any] = {
            "ownerId": "gid://shopify/Order/1",
            "namespace": "printflow",
            "key": "x",
            "type": "single_line_text_field",
            "value": "v",
        }
        result = http.post(
            f"{shop.base_url}/admin/api/2025-10/graphql.json",
            json={
                "query": METAFIELDS_SET,
                "variables": {"metafields": [bad]},
            },
            headers={"X-Shopify-Access-Token": DEMO_SHOP_TOKEN},
        ).json()
        assert result["data"]["metafieldsSet"]["userErrors"][0]["message"] == "Key is invalid"
        assert shop.order(1).metafields == {}


def test_woocommerce_checks_the_key_pair_and_the_status(http: httpx.Client) -> None:
    with WooCommerceSandbox() as site:
        site.add_order(7311)
        url = f"{site.base_url}/wp-json/wc/v3/orders/7311"
        wrong = http.put(url, json={"status": "completed"}, auth=("ck_x", "cs_x"))
        assert wrong.status_code == 401 and wrong.json()["code"] == "woocommerce_rest_cannot_view"
        bad = http.put(
            url, json={"status": "shipped"}, auth=(site.consumer_key, site.consumer_secret)
        )
        assert bad.status_code == 400 and bad.json()["code"] == "rest_invalid_param"
        good = http.put(
            url, json={"status": "completed"}, auth=(site.consumer_key, site.consumer_secret)
        )
        assert good.status_code == 200 and site.order(7311).status == "completed"
        note = http.post(
            url + "/notes",
            json={"note": "files"},
            params={"consumer_key": site.consumer_key, "consumer_secret": site.consumer_secret},
        )
        assert note.status_code == 201 and site.order(7311).notes[0]["note"] == "files"
        missing = http.post(
            f"{site.base_url}/wp-json/wc/v3/orders/1/notes",
            json={"note": "x"},
            auth=(site.consumer_key, site.consumer_secret),
        )
        assert (
            missing.status_code == 404
            and missing.json()["code"] == "woocommerce_rest_shop_order_invalid_id"
        )


def test_woocommerce_read_only_keys_cannot_write(http: httpx.Client) -> None:
    with WooCommerceSandbox(read_only=True) as site:
        site.add_order(7311)
        response = http.post(
            f"{site.base_url}/wp-json/wc/v3/orders/7311/notes",
            json={"note": "x"},
            auth=(site.consumer_key, site.consumer_secret),
        )
        assert (
            response.status_code == 401
            and response.json()["code"] == "woocommerce_rest_cannot_edit"
        )
        assert site.order(7311).notes == []


def test_bigcommerce_updates_status_and_staff_notes(http: httpx.Client) -> None:
    with BigCommerceSandbox() as store:
        store.add_order(*demo_order())
        url = f"{store.base_url}/stores/{store.store_hash}/v2/orders/250"
        headers = {"X-Auth-Token": store.access_token}
        assert http.put(url, json={"status_id": 99}, headers=headers).status_code == 400
        assert (
            http.put(url, json={"status_id": 10}, headers={"X-Auth-Token": "x"}).status_code == 401
        )
        answer = http.put(url, json={"status_id": 10, "staff_notes": "files"}, headers=headers)
        assert answer.status_code == 200
        assert (answer.json()["status"], store.order(250)["staff_notes"]) == ("Completed", "files")
