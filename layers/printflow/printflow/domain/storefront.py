"""Storefront registrations: which platform signs the webhooks, which flow and provider run.

The fields every storefront has are parsed here; what a platform adds (Shopify's
``shopDomain``, BigCommerce's ``secretHeader``, each platform's ``storeApi`` fields) is declared
by the platform's module in :mod:`printflow.platforms` with the types below
(:class:`StorefrontSetting`, :class:`StoreApiShape`) and found through the platform table.
Parsing is pure: nothing is stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, Protocol

STOREFRONT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
FLOW_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")
MIN_SECRET_LENGTH = 16


class PlatformId(str):
    """A storefront platform's id, as in ``/webhooks/{platform}/...``.

    Which ids exist is the platform table's business
    (:mod:`printflow.platforms.registry`), not an enum's: a platform is added by
    registering its module. The built-in ids are the members of :class:`Platform`, and parsing
    returns those very members, so ``storefront.platform is Platform.SHOPIFY`` holds.
    """

    __slots__ = ()

    @property
    def value(self) -> str:
        """The id as a plain string (as an enum member's ``value`` is)."""
        return str.__str__(self)


class Platform(PlatformId, Enum):
    """The platforms PrintFlow ships with (each has its module in ``printflow/platforms``)."""

    SHOPIFY = "shopify"
    WOOCOMMERCE = "woocommerce"
    BIGCOMMERCE = "bigcommerce"
    GENERIC = "generic"

    def __str__(self) -> str:
        return self.value


class ProviderName(StrEnum):
    """A render provider's id. The built-in providers are members; a provider registered at
    run time (``printflow.providers.registry.register_provider``) gets a pseudo-member from
    :meth:`register`, so storefronts and stored render work can name it too."""

    CHILI = "chili"
    CUSTOMERS_CANVAS = "customers-canvas"

    @classmethod
    def register(cls, value: str) -> ProviderName:
        """The id ``value`` as a ProviderName, made one if it is not yet (idempotent)."""
        if value in cls._value2member_map_:
            return cls(value)
        registered = _REGISTERED_PROVIDERS.get(value)
        if registered is not None:
            return registered
        member = str.__new__(cls, value)
        member._name_ = value.upper().replace("-", "_")
        member._value_ = value
        _REGISTERED_PROVIDERS[value] = member
        return member

    @classmethod
    def unregister(cls, value: str) -> None:
        """Forget a registered id (tests); built-in members stay."""
        _REGISTERED_PROVIDERS.pop(value, None)

    @classmethod
    def _missing_(cls, value: object) -> ProviderName | None:
        return _REGISTERED_PROVIDERS.get(value) if isinstance(value, str) else None


# Ids registered at run time (not members: iterating ProviderName lists the built-ins only).
_REGISTERED_PROVIDERS: dict[str, ProviderName] = {}


# BigCommerce hooks authenticate with custom headers chosen when the hook is created.
DEFAULT_BIGCOMMERCE_HEADER = "X-PrintFlow-Webhook-Secret"
BIGCOMMERCE_API = "https://api.bigcommerce.com"
STORE_HASH = re.compile(r"^[a-z0-9]{1,32}$")
# Shopify's Admin API versions are dated: 2025-10, 2026-01, ...
SHOPIFY_API_VERSION = re.compile(r"^20[0-9]{2}-(01|04|07|10)$")
DEFAULT_SHOPIFY_API_VERSION = "2025-10"
# How often reconciliation pulls a storefront's orders (storeApi.reconcileIntervalS).
DEFAULT_RECONCILE_INTERVAL_S = 3600
MIN_RECONCILE_INTERVAL_S = 300
MAX_RECONCILE_INTERVAL_S = 7 * 24 * 3600
# The fields every storefront document may have; each platform adds its own settings.
COMMON_FIELDS = frozenset(
    {
        "storefrontId",
        "platform",
        "flow",
        "provider",
        "description",
        "webhookSecret",
        "storeApi",
    }
)
# What each platform's storeApi adds: (store hash, API version, default base URL).
StoreApiParts = tuple[str, str | None, str | None]


def _is_set(value: Any) -> bool:
    return bool(value)


@dataclass(frozen=True, slots=True)
class StorefrontSetting:
    """A setting one platform adds to its storefronts (Shopify's ``shopDomain``).

    ``parse(value, where)`` returns the value for the :class:`Storefront` attribute
    ``attribute`` or raises :class:`~printflow.errors.ValidationError` naming ``where``;
    ``in_document`` says whether ``to_document`` writes the value. Another platform's document
    carrying the field is refused, except with ``tolerated_elsewhere`` (a value documents
    stored before platform-specific output carry on every platform).
    """

    field: str
    attribute: str
    parse: Callable[[Any, str], Any]
    in_document: Callable[[Any], bool] = _is_set
    tolerated_elsewhere: Any = None


@dataclass(frozen=True, slots=True)
class StoreApiShape:
    """The ``storeApi`` a platform takes: its fields, and what it adds to the common ones.

    ``parts(doc, where, settings)`` gets the document, the field's path and the storefront's
    own platform settings (by attribute) and returns the store hash, the API version and the
    default base URL (None: the document must give one; ``base_url_hint`` says how).
    """

    fields: frozenset[str]
    parts: Callable[[dict[str, Any], str, Mapping[str, Any]], StoreApiParts]
    base_url_hint: str = ""


class StorefrontShape(Protocol):
    """What a storefront document of one platform may hold besides the common fields."""

    @property
    def id(self) -> PlatformId: ...

    @property
    def title(self) -> str: ...

    @property
    def settings(self) -> tuple[StorefrontSetting, ...]: ...

    @property
    def store_api(self) -> StoreApiShape | None: ...


@dataclass(frozen=True, slots=True)
class StoreApi:
    """How PrintFlow reaches a storefront's own store API (read orders, write back to them).

    ``credentials_secret`` names a Secrets Manager secret holding the platform's credentials
    (BigCommerce and Shopify ``{"accessToken": "..."}``, WooCommerce ``{"consumerKey": "...",
    "consumerSecret": "..."}``); the credentials themselves are never stored here. Which
    fields a platform takes is its :class:`StoreApiShape` (in its ``printflow/platforms`` module):

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
    platform: PlatformId
    flow: str = "default"
    provider: ProviderSettings | None = None
    shop_domain: str | None = None
    secret_header: str = DEFAULT_BIGCOMMERCE_HEADER
    description: str = ""
    store_api: StoreApi | None = None
    # The platform's entry in the platform table, set by the parser
    # (:func:`printflow.platforms.documents.parse_storefront`). Typed by the protocol this
    # module declares, so the model does not import the platform modules that build on it
    # (no import cycle). Not compared: it follows from ``platform``.
    shape: StorefrontShape | None = field(default=None, compare=False, repr=False)

    def to_document(self) -> dict[str, Any]:
        """The storefront as registered: only the settings its own platform uses.

        Which of them, and when, is the platform's (:attr:`shape`): Shopify writes its
        ``shopDomain`` when set, BigCommerce always writes its ``secretHeader``. A storefront
        built by hand, without a shape, looks nothing up: it writes every platform setting
        it holds (:data:`_ATTRIBUTE_FIELDS`), so its document still reads back as the same
        storefront (a default ``secretHeader`` is tolerated on every platform).
        """
        doc: dict[str, Any] = {
            "storefrontId": self.storefront_id,
            "platform": self.platform.value,
            "flow": self.flow,
            "description": self.description,
        }
        if self.shape is not None:
            for setting in self.shape.settings:
                value = getattr(self, setting.attribute)
                if setting.in_document(value):
                    doc[setting.field] = value
        else:
            for attribute, name in _ATTRIBUTE_FIELDS:
                if (value := getattr(self, attribute)) is not None:
                    doc[name] = value
        if self.provider:
            doc["provider"] = {"name": self.provider.name.value, **self.provider.settings}
        if self.store_api:
            doc["storeApi"] = self.store_api.to_document()
        return doc


# The platform settings a Storefront holds, by attribute and document field: what a storefront
# without a shape writes. A platform that adds a Storefront attribute adds it here too.
_ATTRIBUTE_FIELDS: tuple[tuple[str, str], ...] = (
    ("shop_domain", "shopDomain"),
    ("secret_header", "secretHeader"),
)
