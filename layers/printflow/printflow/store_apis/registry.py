"""The store APIs by platform: one entry per platform with one, found by the storefront's
platform (a platform missing here, such as ``generic``, has no store API).

Each entry says which fields its credentials secret holds and builds the platform's clients:
its write-back (the ``update-storefront-order`` step) and its order puller (reconciliation),
both in the platform's one module, and for a platform whose webhooks are thin (BigCommerce)
the read that completes such an order (the render start's :mod:`printflow.orders.completion`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from printflow.adapters.config_secrets import read_json_secret
from printflow.domain.order import Order
from printflow.domain.storefront import Platform, PlatformId, StoreApi
from printflow.errors import ValidationError
from printflow.store_apis.base import Pacer
from printflow.store_apis.bigcommerce import (
    BigCommerceOrderPuller,
    BigCommerceWriteBack,
    bigcommerce_status,
    complete_thin_order,
)
from printflow.store_apis.pulls import PullerFactory
from printflow.store_apis.shopify import ShopifyOrderPuller, ShopifyWriteBack
from printflow.store_apis.woocommerce import (
    WooCommerceOrderPuller,
    WooCommerceWriteBack,
    woocommerce_status,
)


class StoreWriteBack(Protocol):
    """What the write-back step asks of a platform's client."""

    def add_tags(self, order_id: str, tags: Sequence[str]) -> None: ...

    def set_status(self, order_id: str, status: str | int) -> None: ...

    def add_note(self, order_id: str, note: str, *, step_id: str, marker: str) -> None:
        """Write ``note`` once: it ends with ``marker`` (one per execution and step), and a
        note the shop holds with that marker already is not written again."""
        ...


WriteBackFactory = Callable[[httpx.Client, StoreApi, dict[str, str], Pacer], StoreWriteBack]
# Reads the full order behind a thin webhook's order (client, store API, credentials, order).
ThinOrderCompleter = Callable[[httpx.Client, StoreApi, Mapping[str, str], Order], Order]


def _no_status(status: str) -> str | int:
    raise ValidationError(
        "Shopify orders have no status PrintFlow can set (fulfilment is a workflow of its "
        "own); use tags"
    )


@dataclass(frozen=True, slots=True)
class StorePlatform:
    """One platform's store API: its credentials and its clients."""

    # Fields of the credentials secret's JSON object (all required, non-empty strings).
    credential_fields: tuple[str, ...]
    write_back: WriteBackFactory
    # Lists the orders created since a time (reconciliation).
    order_puller: PullerFactory
    # The platform's value for a flow's ``status`` option; ValidationError when it has none.
    status_value: Callable[[str], str | int]
    # Whether its orders have tags (otherwise the step writes them into the note).
    has_tags: bool
    # Completes the thin orders its webhooks carry; None: its webhooks carry whole orders.
    complete_thin_order: ThinOrderCompleter | None = None


STORE_PLATFORMS: dict[PlatformId, StorePlatform] = {
    Platform.SHOPIFY: StorePlatform(
        ("accessToken",), ShopifyWriteBack, ShopifyOrderPuller, _no_status, has_tags=True
    ),
    Platform.WOOCOMMERCE: StorePlatform(
        ("consumerKey", "consumerSecret"),
        WooCommerceWriteBack,
        WooCommerceOrderPuller,
        woocommerce_status,
        has_tags=False,
    ),
    Platform.BIGCOMMERCE: StorePlatform(
        ("accessToken",),
        BigCommerceWriteBack,
        BigCommerceOrderPuller,
        bigcommerce_status,
        has_tags=False,
        complete_thin_order=complete_thin_order,
    ),
}


def store_platform(platform: PlatformId, where: str) -> StorePlatform:
    """The platform's entry; :class:`ValidationError` when it has no store API."""
    found = STORE_PLATFORMS.get(platform)
    if found is None:
        raise ValidationError(
            f"{where}: {platform.value} storefronts have no store API to write back to "
            "(a consume-rest-api step can tell such a shop)"
        )
    return found


def load_store_credentials(
    secretsmanager: Any, platform: PlatformId, api: StoreApi, where: str
) -> dict[str, str]:
    """The credentials the platform needs from ``api.credentials_secret``, checked.

    :class:`ValidationError` names the secret and the fields, never a value; other AWS errors
    (throttling, outages) propagate as ``ClientError``.
    """
    entry = store_platform(platform, where)
    field = f"{where}.storeApi.credentialsSecret"
    doc = read_json_secret(secretsmanager, api.credentials_secret, field)
    values = {name: doc.get(name) for name in entry.credential_fields}
    if not all(isinstance(v, str) and v for v in values.values()):
        shape = ", ".join(f'"{name}"' for name in entry.credential_fields)
        raise ValidationError(
            f"{field}: secret {api.credentials_secret!r} must be a JSON object with {shape} "
            f"(the {platform.value} store API's credentials)"
        )
    return {name: str(value) for name, value in values.items()}
