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
STORE_HASH = re.compile(r"^[a-z0-9]{1,32}$")
# Secrets Manager names: 1-512 of letters, digits and /_+=.@-
SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
# Shopify's Admin API versions are dated: 2025-10, 2026-01, ...
SHOPIFY_API_VERSION = re.compile(r"^20[0-9]{2}-(01|04|07|10)$")
DEFAULT_SHOPIFY_API_VERSION = "2025-10"
# How often reconciliation pulls a storefront's orders (storeApi.reconcileIntervalS).
DEFAULT_RECONCILE_INTERVAL_S = 3600
MIN_RECONCILE_INTERVAL_S = 300
MAX_RECONCILE_INTERVAL_S = 7 * 24 * 3600
# The storeApi fields each platform takes; a platform missing here has no store API.
STORE_API_FIELDS: dict[Platform, frozenset[str]] = {
    Platform.BIGCOMMERCE: frozenset(
        {"storeHash", "credentialsSecret", "baseUrl", "reconcileIntervalS"}
    ),
    Platform.SHOPIFY: frozenset(
        {"credentialsSecret", "baseUrl", "apiVersion", "reconcileIntervalS"}
    ),
    Platform.WOOCOMMERCE: frozenset({"credentialsSecret", "baseUrl", "reconcileIntervalS"}),
}


@dataclass(frozen=True, slots=True)
class StoreApi:
    """How PrintFlow reaches a storefront's own store API (read orders, write back to them).

    ``credentials_secret`` names a Secrets Manager secret holding the platform's credentials
    (BigCommerce and Shopify ``{"accessToken": "..."}``, WooCommerce ``{"consumerKey": "...",
    "consumerSecret": "..."}``); the credentials themselves are never stored here. Which
    fields a platform takes is :data:`STORE_API_FIELDS`:

    - BigCommerce: ``storeHash`` (required), ``baseUrl`` (default ``api.bigcommerce.com``);
    - Shopify: ``baseUrl`` (default ``https://{shopDomain}``), ``apiVersion`` (dated, pinned);
    - WooCommerce: ``baseUrl`` (required: the site, e.g. ``https://shop.example.com``).

    ``reconcile_interval_s`` (``reconcileIntervalS``, every platform): how often
    reconciliation pulls the orders the webhook may have missed (default hourly).
    """

    store_hash: str
    credentials_secret: str
    base_url: str = BIGCOMMERCE_API
    api_version: str | None = None
    reconcile_interval_s: int = DEFAULT_RECONCILE_INTERVAL_S

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "credentialsSecret": self.credentials_secret,
            "baseUrl": self.base_url,
        }
        if self.store_hash:
            doc = {"storeHash": self.store_hash, **doc}
        if self.api_version:
            doc["apiVersion"] = self.api_version
        if self.reconcile_interval_s != DEFAULT_RECONCILE_INTERVAL_S:
            doc["reconcileIntervalS"] = self.reconcile_interval_s
        return doc


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
        """The storefront as registered: only the settings its own platform uses."""
        doc: dict[str, Any] = {
            "storefrontId": self.storefront_id,
            "platform": self.platform.value,
            "flow": self.flow,
            "description": self.description,
        }
        if self.platform is Platform.BIGCOMMERCE:
            doc["secretHeader"] = self.secret_header
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
    if shop_domain is not None and platform is not Platform.SHOPIFY:
        raise ValidationError(f"{where}.shopDomain: only Shopify storefronts use it")

    secret_header = doc.get("secretHeader", DEFAULT_BIGCOMMERCE_HEADER)
    if not isinstance(secret_header, str) or not HEADER_NAME.match(secret_header):
        raise ValidationError(f"{where}.secretHeader: a header name of letters, digits and '-'")
    # Documents stored before platform-specific output carry the default on every platform:
    # that stays readable, a header another platform would silently ignore does not.
    if platform is not Platform.BIGCOMMERCE and secret_header != DEFAULT_BIGCOMMERCE_HEADER:
        raise ValidationError(f"{where}.secretHeader: only BigCommerce storefronts use it")

    description = doc.get("description", "")
    if not isinstance(description, str) or len(description) > 500:
        raise ValidationError(f"{where}.description: a string of at most 500 characters")

    provider = _parse_provider(doc.get("provider"), where)
    store_api = _parse_store_api(doc.get("storeApi"), platform, where, shop_domain)
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
    doc: Any, platform: Platform, where: str, shop_domain: str | None = None
) -> StoreApi | None:
    if doc is None:
        return None
    where = f"{where}.storeApi"
    known = STORE_API_FIELDS.get(platform)
    if known is None:
        raise ValidationError(f"{where}: {platform.value} storefronts have no store API")
    if not isinstance(doc, dict):
        raise ValidationError(f"{where}: expected an object with credentialsSecret")
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ValidationError(f"{where}: unknown field(s) {', '.join(unknown)}")
    secret = doc.get("credentialsSecret")
    if not isinstance(secret, str) or not SECRET_NAME.match(secret):
        raise ValidationError(
            f"{where}.credentialsSecret: required, a Secrets Manager secret name "
            "(letters, digits and /_+=.@-)"
        )
    store_hash, api_version, default_base = _STORE_API_PARTS[platform](doc, where, shop_domain)
    base_url = doc.get("baseUrl", default_base)
    if not isinstance(base_url, str) or not base_url:
        # Judged fully (https, no credentials...) by printflow.storefronts at registration.
        hint = " (or the storefront's shopDomain)" if platform is Platform.SHOPIFY else ""
        raise ValidationError(f"{where}.baseUrl: required, an https URL{hint}")
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
    return StoreApi(store_hash, secret, base_url.rstrip("/"), api_version, interval)


# What each platform's storeApi adds: (store hash, API version, default base URL).
_StoreApiParts = tuple[str, str | None, str | None]


def _bigcommerce_parts(doc: dict[str, Any], where: str, shop_domain: str | None) -> _StoreApiParts:
    store_hash = doc.get("storeHash")
    if not isinstance(store_hash, str) or not STORE_HASH.match(store_hash):
        raise ValidationError(
            f"{where}.storeHash: required, the store hash of "
            "api.bigcommerce.com/stores/{hash} (lowercase letters and digits)"
        )
    return store_hash, None, BIGCOMMERCE_API


def _shopify_parts(doc: dict[str, Any], where: str, shop_domain: str | None) -> _StoreApiParts:
    api_version = doc.get("apiVersion", DEFAULT_SHOPIFY_API_VERSION)
    if not isinstance(api_version, str) or not SHOPIFY_API_VERSION.match(api_version):
        raise ValidationError(
            f"{where}.apiVersion: a dated Admin API version such as {DEFAULT_SHOPIFY_API_VERSION!r}"
        )
    return "", api_version, f"https://{shop_domain}" if shop_domain else None


def _woocommerce_parts(doc: dict[str, Any], where: str, shop_domain: str | None) -> _StoreApiParts:
    return "", None, None  # the site's URL has no default


_STORE_API_PARTS: dict[Platform, Callable[[dict[str, Any], str, str | None], _StoreApiParts]] = {
    Platform.BIGCOMMERCE: _bigcommerce_parts,
    Platform.SHOPIFY: _shopify_parts,
    Platform.WOOCOMMERCE: _woocommerce_parts,
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
