"""Which platforms' Orders APIs can be pulled, one module each (the generic platform: none)."""

from __future__ import annotations

from printflow.domain.storefront import Platform
from printflow.store_apis import bigcommerce, shopify, woocommerce
from printflow.store_apis.pulls import PullerFactory

ORDER_PULLERS: dict[Platform, PullerFactory] = {
    Platform.SHOPIFY: shopify.order_puller,
    Platform.WOOCOMMERCE: woocommerce.order_puller,
    Platform.BIGCOMMERCE: bigcommerce.order_puller,
}


def order_puller_for(platform: Platform) -> PullerFactory | None:
    """The platform's puller factory; None for a platform without a store API (generic)."""
    return ORDER_PULLERS.get(platform)
