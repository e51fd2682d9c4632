"""Storefront registrations: which platform signs the webhooks, which flow and provider run."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from printflow.errors import ValidationError

STOREFRONT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
FLOW_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")
MIN_SECRET_LENGTH = 16


class Platform(StrEnum):
    SHOPIFY = "shopify"
    WOOCOMMERCE = "woocommerce"
    BIGCOMMERCE = "bigcommerce"
    GENERIC = "generic"


class ProviderName(StrEnum):
    CHILI = "chili"
    CUSTOMERS_CANVAS = "customers-canvas"


# BigCommerce hooks authenticate with custom headers chosen when the hook is created.
DEFAULT_BIGCOMMERCE_HEADER = "X-PrintFlow-Webhook-Secret"
BIGCOMMERCE_API = "https://api.bigcommerce.com"
SHOPIFY_API_VERSION = "2025-10"
API_VERSION = re.compile(r"^\d{4}-\d{2}$")
DEFAULT_RECONCILE_INTERVAL_S = 3600
MIN_RECONCILE_INTERVAL_S = 300
MAX_RECONCILE_INTERVAL_S = 7 * 24 * 3600
STORE_HASH = re.compile(r"^[a-z0-9]{1,32}$")
# Secrets Manager names: 1-512 of letters, digits and /_+=.@-
SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")


@dataclass(frozen=True, slots=True)
class StoreApi:
    """The storefront's own Orders API: where a thin webhook's full order is read
    (BigCommerce) and where reconciliation pulls orders the webhook missed.

    ``credentials_secret`` names a Secrets Manager secret: ``{"accessToken": "..."}`` for
    BigCommerce (API account, read-only Orders scope) and Shopify (Admin API, ``read_orders``),
    ``{"consumerKey": "...", "consumerSecret": "..."}`` for WooCommerce. The secret's value
    is never stored here. ``reconcile_interval_s``: how often the orders are pulled.
    """

    credentials_secret: str
    base_url: str
    store_hash: str = ""  # BigCommerce
    api_version: str = ""  # Shopify, e.g. "2025-10"
    reconcile_interval_s: int = DEFAULT_RECONCILE_INTERVAL_S

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "storeHash": self.store_hash,
            "credentialsSecret": self.credentials_secret,
            "baseUrl": self.base_url,
            "apiVersion": self.api_version,
            "reconcileIntervalS": self.reconcile_interval_s,
        }
        return {k: v for k, v in doc.items() if v != ""}


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """Which render provider makes this storefront's files, and how (validated per provider)."""

    name: ProviderName
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Storefront:
    """A registered storefront. The webhook secret is never part of this record."""

    storefront_id: str
    platform: Platform
    flow: str = "default"
    provider: ProviderSettings | None = None
    shop_domain: str | None = None
    secret_header: str = DEFAULT_BIGCOMMERCE_HEADER
    description: str = ""
    store_api: StoreApi | None = None

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "storefrontId": self.storefront_id,
            "platform": self.platform.value,
            "flow": self.flow,
            "secretHeader": self.secret_header,
            "description": self.description,
        }
        if self.shop_domain:
            doc["shopDomain"] = self.shop_domain
        if self.provider:
            doc["provider"] = {"name": self.provider.name.value, **self.provider.settings}
        if self.store_api:
            doc["storeApi"] = self.store_api.to_document()
        return doc


def parse_storefront(doc: Any, *, require_secret: bool = False) -> tuple[Storefront, str | None]:
    """Validate a storefront document; return the storefront and its webhook secret, if any.

    Every message names the field, so an operator can fix the file without guessing.
    """
    if not isinstance(doc, dict):
        raise ValidationError("storefront: expected a JSON object")
    known = {
        "storefrontId",
        "platform",
        "flow",
        "provider",
        "shopDomain",
        "secretHeader",
        "description",
        "webhookSecret",
        "storeApi",
    }
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ValidationError(f"storefront: unknown field(s) {', '.join(unknown)}")

    storefront_id = doc.get("storefrontId")
    if not isinstance(storefront_id, str) or not STOREFRONT_ID.match(storefront_id):
        raise ValidationError(
            "storefront.storefrontId: required, 1-64 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    where = f"storefront {storefront_id!r}"

    platform_value = doc.get("platform")
    try:
        platform = Platform(platform_value if isinstance(platform_value, str) else "")
    except ValueError:
        allowed = ", ".join(p.value for p in Platform)
        raise ValidationError(f"{where}.platform: must be one of {allowed}") from None

    flow = doc.get("flow", "default")
    if not isinstance(flow, str) or not FLOW_NAME.match(flow):
        raise ValidationError(f"{where}.flow: lowercase letters, digits and '-', up to 40")

    secret = doc.get("webhookSecret")
    if secret is not None and (not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH):
        raise ValidationError(
            f"{where}.webhookSecret: must be a string of at least {MIN_SECRET_LENGTH} characters"
        )
    if require_secret and secret is None:
        raise ValidationError(f"{where}.webhookSecret: required when registering a storefront")

    shop_domain = doc.get("shopDomain")
    if shop_domain is not None and (not isinstance(shop_domain, str) or not shop_domain):
        raise ValidationError(f"{where}.shopDomain: must be a non-empty string")

    secret_header = doc.get("secretHeader", DEFAULT_BIGCOMMERCE_HEADER)
    if not isinstance(secret_header, str) or not HEADER_NAME.match(secret_header):
        raise ValidationError(f"{where}.secretHeader: a header name of letters, digits and '-'")

    description = doc.get("description", "")
    if not isinstance(description, str) or len(description) > 500:
        raise ValidationError(f"{where}.description: a string of at most 500 characters")

    provider = _parse_provider(doc.get("provider"), where)
    store_api = _parse_store_api(doc.get("storeApi"), platform, shop_domain, where)
    return (
        Storefront(
            storefront_id=storefront_id,
            platform=platform,
            flow=flow,
            provider=provider,
            shop_domain=shop_domain,
            secret_header=secret_header,
            description=description,
            store_api=store_api,
        ),
        secret,
    )


def _parse_store_api(
    doc: Any, platform: Platform, shop_domain: str | None, where: str
) -> StoreApi | None:
    if doc is None:
        return None
    where = f"{where}.storeApi"
    parse = _STORE_API_PARSERS.get(platform)
    if parse is None:
        raise ValidationError(f"{where}: the {platform.value} platform has no store API")
    if not isinstance(doc, dict):
        raise ValidationError(f"{where}: expected an object with credentialsSecret")
    return parse(doc, shop_domain, where)


def _store_api_common(doc: dict[str, Any], extra_fields: set[str], where: str) -> tuple[str, int]:
    """The fields every platform's store API has: the secret and the pull interval."""
    unknown = sorted(
        set(doc) - {"credentialsSecret", "baseUrl", "reconcileIntervalS"} - extra_fields
    )
    if unknown:
        raise ValidationError(f"{where}: unknown field(s) {', '.join(unknown)}")
    secret = doc.get("credentialsSecret")
    if not isinstance(secret, str) or not SECRET_NAME.match(secret):
        raise ValidationError(
            f"{where}.credentialsSecret: required, a Secrets Manager secret name "
            "(letters, digits and /_+=.@-)"
        )
    interval = doc.get("reconcileIntervalS", DEFAULT_RECONCILE_INTERVAL_S)
    if (
        isinstance(interval, bool)
        or not isinstance(interval, int)
        or not MIN_RECONCILE_INTERVAL_S <= interval <= MAX_RECONCILE_INTERVAL_S
    ):
        raise ValidationError(
            f"{where}.reconcileIntervalS: seconds between order pulls, an integer from "
            f"{MIN_RECONCILE_INTERVAL_S} to {MAX_RECONCILE_INTERVAL_S}"
        )
    return secret, interval


def _base_url(doc: dict[str, Any], default: str | None, where: str) -> str:
    base_url = doc.get("baseUrl", default)
    if not isinstance(base_url, str) or not base_url:
        # Judged fully (https, no credentials...) by printflow.storefronts at registration.
        raise ValidationError(f"{where}.baseUrl: an https URL")
    return base_url.rstrip("/")


def _bigcommerce_store_api(doc: dict[str, Any], shop_domain: str | None, where: str) -> StoreApi:
    secret, interval = _store_api_common(doc, {"storeHash"}, where)
    store_hash = doc.get("storeHash")
    if not isinstance(store_hash, str) or not STORE_HASH.match(store_hash):
        raise ValidationError(
            f"{where}.storeHash: required, the store hash of api.bigcommerce.com/stores/{{hash}} "
            "(lowercase letters and digits)"
        )
    return StoreApi(
        secret, _base_url(doc, BIGCOMMERCE_API, where), store_hash, reconcile_interval_s=interval
    )


def _shopify_store_api(doc: dict[str, Any], shop_domain: str | None, where: str) -> StoreApi:
    secret, interval = _store_api_common(doc, {"apiVersion"}, where)
    version = doc.get("apiVersion", SHOPIFY_API_VERSION)
    if not isinstance(version, str) or not API_VERSION.match(version):
        raise ValidationError(f"{where}.apiVersion: a dated Admin API version such as 2025-10")
    default = f"https://{shop_domain}" if shop_domain else None
    if default is None and "baseUrl" not in doc:
        raise ValidationError(
            f"{where}.baseUrl: required when the storefront has no shopDomain "
            "(https://{shop}.myshopify.com)"
        )
    return StoreApi(
        secret, _base_url(doc, default, where), api_version=version, reconcile_interval_s=interval
    )


def _woocommerce_store_api(doc: dict[str, Any], shop_domain: str | None, where: str) -> StoreApi:
    secret, interval = _store_api_common(doc, set(), where)
    if "baseUrl" not in doc:
        raise ValidationError(f"{where}.baseUrl: required, the shop's https URL (no /wp-json)")
    return StoreApi(secret, _base_url(doc, None, where), reconcile_interval_s=interval)


_STORE_API_PARSERS: dict[Platform, Callable[[dict[str, Any], str | None, str], StoreApi]] = {
    Platform.BIGCOMMERCE: _bigcommerce_store_api,
    Platform.SHOPIFY: _shopify_store_api,
    Platform.WOOCOMMERCE: _woocommerce_store_api,
}


def _parse_provider(doc: Any, where: str) -> ProviderSettings | None:
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise ValidationError(f"{where}.provider: expected an object with a 'name'")
    try:
        name = ProviderName(str(doc.get("name", "")))
    except ValueError:
        allowed = ", ".join(p.value for p in ProviderName)
        raise ValidationError(f"{where}.provider.name: must be one of {allowed}") from None
    settings = {k: v for k, v in doc.items() if k != "name"}
    return ProviderSettings(name=name, settings=settings)


def storefront_from_document(doc: dict[str, Any]) -> Storefront:
    """Rebuild a stored storefront (already validated when it was put)."""
    storefront, _ = parse_storefront(doc)
    return storefront
