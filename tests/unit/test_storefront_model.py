from __future__ import annotations

from typing import Any

import pytest

from printflow.domain.order import OrderKey
from printflow.domain.storefront import Platform, ProviderName
from printflow.errors import ValidationError
from printflow.platforms.documents import parse_storefront

VALID: dict[str, Any] = {
    "storefrontId": "shop-1",
    "platform": "shopify",
    "webhookSecret": "a-long-enough-secret",
    "flow": "default",
    "shopDomain": "shop-1.myshopify.com",
    "provider": {"name": "chili", "environment": "acme"},
}


def test_valid_storefront_keeps_the_secret_out_of_the_record() -> None:
    storefront, secret = parse_storefront(VALID)
    assert storefront.platform is Platform.SHOPIFY
    assert storefront.provider is not None and storefront.provider.name is ProviderName.CHILI
    assert secret == "a-long-enough-secret"
    assert "webhookSecret" not in storefront.to_document()
    assert "a-long-enough-secret" not in repr(storefront.to_document())


def test_document_round_trip() -> None:
    storefront, _ = parse_storefront(VALID)
    again, secret = parse_storefront(storefront.to_document())
    assert again == storefront and secret is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"storefrontId": ""}, "storefront.storefrontId: required"),
        ({"storefrontId": "a/b"}, "storefront.storefrontId"),
        ({"storefrontId": "a#b"}, "storefront.storefrontId"),
        ({"platform": "magento"}, "'shop-1'.platform: must be one of shopify, woocommerce"),
        ({"flow": "Default Flow"}, "'shop-1'.flow"),
        ({"webhookSecret": "short"}, "'shop-1'.webhookSecret: must be a string of at least 16"),
        ({"provider": {"name": "acme"}}, "'shop-1'.provider.name: must be one of chili"),
        ({"provider": "chili"}, "'shop-1'.provider: expected an object"),
        ({"secretHeader": "Bad Header"}, "'shop-1'.secretHeader"),
        ({"colour": "blue"}, "unknown field(s) colour"),
    ],
)
def test_invalid_fields_are_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as error:
        parse_storefront({**VALID, **change})
    assert message in str(error.value)


def test_not_an_object() -> None:
    with pytest.raises(ValidationError, match="expected a JSON object"):
        parse_storefront(["shop-1"])


def test_secret_required_when_asked() -> None:
    doc = {k: v for k, v in VALID.items() if k != "webhookSecret"}
    with pytest.raises(ValidationError, match="webhookSecret: required"):
        parse_storefront(doc, require_secret=True)


@pytest.mark.parametrize(
    ("storefront_id", "order_id"),
    [("shop", "1001"), ("shop", "a/b c#d"), ("s" * 64, "9" * 128), ("shop", "ünïcödé")],
)
def test_execution_names_are_valid_and_distinct(storefront_id: str, order_id: str) -> None:
    name = OrderKey(storefront_id, order_id).execution_name
    assert 1 <= len(name) <= 80
    assert all(c.isascii() and (c.isalnum() or c in "-_") for c in name)
    assert name == OrderKey(storefront_id, order_id).execution_name
    assert name != OrderKey(storefront_id, order_id + "x").execution_name


def test_unsafe_characters_do_not_make_names_collide() -> None:
    assert OrderKey("shop", "a/b").execution_name != OrderKey("shop", "a_b").execution_name


BIGCOMMERCE: dict[str, Any] = {
    "storefrontId": "bc-1",
    "platform": "bigcommerce",
    "storeApi": {"storeHash": "abc123xyz", "credentialsSecret": "printflow/store-apis/bc-1"},
}


def test_a_bigcommerce_store_api_defaults_to_bigcommerce_and_round_trips() -> None:
    storefront, _ = parse_storefront(BIGCOMMERCE)
    assert storefront.store_api is not None
    assert storefront.store_api.base_url == "https://api.bigcommerce.com"
    assert parse_storefront(storefront.to_document())[0] == storefront


@pytest.mark.parametrize(
    ("store_api", "message"),
    [
        ({"storeHash": "ABC/../x", "credentialsSecret": "s"}, "storeApi.storeHash: required"),
        ({"storeHash": "abc"}, "storeApi.credentialsSecret: required"),
        ({"storeHash": "abc", "credentialsSecret": "a secret"}, "credentialsSecret"),
        ({"storeHash": "abc", "credentialsSecret": "s", "token": "x"}, "unknown field(s) token"),
        ({"storeHash": "abc", "credentialsSecret": "s", "baseUrl": ""}, "storeApi.baseUrl"),
        ("abc123xyz", "storeApi: expected an object"),
    ],
)
def test_invalid_store_api_fields_are_named(store_api: Any, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        parse_storefront({**BIGCOMMERCE, "storeApi": store_api})
    assert message in str(error.value)


def test_a_storefront_document_holds_only_its_own_platforms_settings() -> None:
    # Given a Shopify and a BigCommerce storefront
    shopify, _ = parse_storefront(VALID)
    bigcommerce, _ = parse_storefront(
        {"storefrontId": "bc-1", "platform": "bigcommerce", "secretHeader": "X-Hook-Secret"}
    )
    # Then only BigCommerce's document names the header its hook carries
    assert "secretHeader" not in shopify.to_document()
    assert shopify.to_document()["shopDomain"] == "shop-1.myshopify.com"
    assert bigcommerce.to_document()["secretHeader"] == "X-Hook-Secret"
    assert "shopDomain" not in bigcommerce.to_document()
    assert parse_storefront(bigcommerce.to_document())[0] == bigcommerce


def test_a_stored_document_with_the_default_header_on_another_platform_still_reads() -> None:
    legacy = {**VALID, "secretHeader": "X-PrintFlow-Webhook-Secret"}
    assert parse_storefront(legacy)[0] == parse_storefront(VALID)[0]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({**VALID, "secretHeader": "X-Hook-Secret"}, "secretHeader: only BigCommerce"),
        (
            {"storefrontId": "w", "platform": "woocommerce", "shopDomain": "w.example"},
            "shopDomain: only Shopify",
        ),
    ],
)
def test_another_platforms_setting_is_refused(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_storefront(doc)


# shopDomain is a Shopify setting: other platforms refuse it.
WITHOUT_SHOP_DOMAIN = {k: v for k, v in VALID.items() if k != "shopDomain"}


def test_generic_storefronts_have_no_store_api() -> None:
    generic = {**WITHOUT_SHOP_DOMAIN, "platform": "generic"}
    with pytest.raises(ValidationError, match=r"'shop-1'\.storeApi: generic storefronts have no"):
        parse_storefront({**generic, "storeApi": {"credentialsSecret": "s"}})


def test_a_shopify_store_api_defaults_to_the_shop_domain_and_a_pinned_version() -> None:
    doc = {**VALID, "shopDomain": "acme.myshopify.com", "storeApi": {"credentialsSecret": "s"}}
    storefront, _ = parse_storefront(doc)
    assert storefront.store_api is not None
    assert storefront.store_api.base_url == "https://acme.myshopify.com"
    assert storefront.store_api.api_version == "2025-10"
    assert parse_storefront(storefront.to_document())[0] == storefront
    with pytest.raises(ValidationError, match=r"storeApi\.apiVersion"):
        parse_storefront({**doc, "storeApi": {"credentialsSecret": "s", "apiVersion": "latest"}})
    with pytest.raises(ValidationError, match=r"storeApi: unknown field\(s\) storeHash"):
        parse_storefront({**doc, "storeApi": BIGCOMMERCE["storeApi"]})


def test_a_woocommerce_store_api_needs_the_site_url() -> None:
    woo = {**WITHOUT_SHOP_DOMAIN, "platform": "woocommerce"}
    with pytest.raises(ValidationError, match=r"storeApi\.baseUrl: required"):
        parse_storefront({**woo, "storeApi": {"credentialsSecret": "s"}})
    doc = {**woo, "storeApi": {"credentialsSecret": "s", "baseUrl": "https://shop.example.com/"}}
    storefront, _ = parse_storefront(doc)
    assert storefront.store_api is not None
    assert storefront.store_api.base_url == "https://shop.example.com"


def test_shopify_and_woocommerce_store_apis_and_the_pull_interval() -> None:
    shopify, _ = parse_storefront(
        {
            "storefrontId": "shop-2",
            "platform": "shopify",
            "shopDomain": "acme.myshopify.com",
            "storeApi": {"credentialsSecret": "printflow/store-apis/shop-2"},
        }
    )
    assert shopify.store_api is not None
    assert shopify.store_api.base_url == "https://acme.myshopify.com"
    assert shopify.store_api.api_version == "2025-10"
    assert shopify.store_api.reconcile_interval_s == 3600  # hourly by default
    assert parse_storefront(shopify.to_document())[0] == shopify

    woo = {"storefrontId": "woo-2", "platform": "woocommerce"}
    with pytest.raises(ValidationError, match=r"storeApi\.baseUrl: required"):
        parse_storefront({**woo, "storeApi": {"credentialsSecret": "s"}})
    store_api = {
        "credentialsSecret": "s",
        "baseUrl": "https://shop.example",
        "reconcileIntervalS": 60,
    }
    with pytest.raises(ValidationError, match=r"reconcileIntervalS: seconds between order pulls"):
        parse_storefront({**woo, "storeApi": store_api})
    parsed, _ = parse_storefront({**woo, "storeApi": {**store_api, "reconcileIntervalS": 900}})
    assert parsed.store_api is not None and parsed.store_api.reconcile_interval_s == 900
