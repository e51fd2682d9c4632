"""A Storefront built by hand (no ``shape``) writes a document that reads back as itself."""

from __future__ import annotations

import pytest

from printflow.domain.storefront import DEFAULT_BIGCOMMERCE_HEADER, Platform, Storefront
from printflow.platforms.documents import parse_storefront


@pytest.mark.parametrize(
    "storefront",
    [
        Storefront("shop-1", Platform.SHOPIFY, shop_domain="shop-1.myshopify.com"),
        Storefront("shop-2", Platform.BIGCOMMERCE, secret_header="X-Shop-Signature"),
        Storefront("shop-3", Platform.WOOCOMMERCE, description="by hand"),
        Storefront("shop-4", Platform.GENERIC),
    ],
    ids=lambda storefront: storefront.platform.value,
)
def test_a_hand_built_storefront_reads_back_as_itself(storefront: Storefront) -> None:
    again, secret = parse_storefront(storefront.to_document())
    assert again == storefront and secret is None


def test_a_hand_built_storefront_writes_its_platform_settings() -> None:
    shopify = Storefront("shop-1", Platform.SHOPIFY, shop_domain="shop-1.myshopify.com")
    bigcommerce = Storefront("shop-2", Platform.BIGCOMMERCE, secret_header="X-Shop-Signature")
    assert shopify.to_document()["shopDomain"] == "shop-1.myshopify.com"
    assert bigcommerce.to_document()["secretHeader"] == "X-Shop-Signature"
    # Without a shape the header is written on every platform: the default is tolerated.
    assert shopify.to_document()["secretHeader"] == DEFAULT_BIGCOMMERCE_HEADER


def test_a_parsed_storefront_writes_only_its_own_platform_settings() -> None:
    parsed, _ = parse_storefront(
        Storefront("shop-1", Platform.SHOPIFY, shop_domain="shop-1.myshopify.com").to_document()
    )
    assert parsed.shape is not None
    assert "secretHeader" not in parsed.to_document()
