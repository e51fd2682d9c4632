"""Storefront provider settings → a ready adapter.

:func:`parse_provider_settings` validates a storefront's ``provider`` object (every message
names the field, e.g. ``provider.templateId: required``); call it when a storefront is
registered, so a bad config is refused before any order needs it.

:class:`ProviderRegistry` builds adapters for the start-render Lambda and the poller. It keeps
what should outlive one invocation's HTTP client: the credentials read from Secrets Manager
(for ``credentials_ttl_s``), one token cache per client, and the Customer's Canvas poll
spacing. Keep one registry per execution environment, and pass each invocation's
``httpx.AsyncClient`` to :meth:`ProviderRegistry.adapter_for`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import httpx

from printflow.domain.order import Order
from printflow.domain.storefront import SECRET_NAME, ProviderName, ProviderSettings
from printflow.errors import ValidationError
from printflow.providers.base import (
    RecoveryAction,
    RenderProvider,
    RenderWork,
    UrlPolicy,
    WorkStarted,
    check_url,
)
from printflow.providers.chili import (
    CHILI_AUDIENCE,
    CHILI_FORMATS,
    CHILI_TOKEN_URL,
    ChiliAdapter,
    ChiliSettings,
)
from printflow.providers.customers_canvas import (
    CC_DEFAULT_REGION,
    CC_REGION_HOSTS,
    DEFAULT_DISCOVERY_DEADLINE_S,
    MIN_POLL_INTERVAL_S,
    CustomersCanvasAdapter,
    CustomersCanvasSettings,
    PollSpacing,
    cc_token_url,
)
from printflow.providers.oauth import (
    AccessTokens,
    ClientCredentials,
    TokenEndpoint,
    load_client_credentials,
)

# CHILI environment names are the subdomain of ``{environment}.chili-publish.online``.
ENVIRONMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
MAX_ID_LENGTH = 256
MAX_RECOVERY_ATTEMPTS = 10
MAX_DISCOVERY_DEADLINE_S = 7 * 24 * 3600  # the longest a flow's wait can sensibly be

ProviderConfig = ChiliSettings | CustomersCanvasSettings

_CHILI_FIELDS = {
    "name",
    "environment",
    "baseUrl",
    "tokenUrl",
    "audience",
    "credentialsSecret",
    "templateId",
    "projectId",
    "outputSettingsId",
    "format",
    "layoutsToExport",
}
_CC_FIELDS = {
    "name",
    "region",
    "baseUrl",
    "tokenUrl",
    "scope",
    "credentialsSecret",
    "storefrontId",
    "tenantId",
    "recovery",
    "maxRecoveryAttempts",
    "outputFormats",
    "discoveryDeadlineS",
    "designProperty",
}
_FORMAT_NAME = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,31}$")
MAX_OUTPUT_FORMATS = 20


def parse_provider_settings(
    provider: ProviderSettings, policy: UrlPolicy | None = None, *, where: str = "provider"
) -> ProviderConfig:
    """Validate a storefront's provider settings; :class:`ValidationError` names the field."""
    policy = policy or UrlPolicy()
    doc = {"name": provider.name.value, **provider.settings}
    if provider.name is ProviderName.CHILI:
        return _chili(doc, policy, where)
    return _customers_canvas(doc, policy, where)


def _unknown(doc: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ValidationError(f"{where}: unknown field(s) {', '.join(unknown)}")


def _optional_identifier(doc: dict[str, Any], key: str, where: str) -> str | None:
    return None if doc.get(key) is None else _identifier(doc, key, where)


def _identifier(doc: dict[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
        raise ValidationError(f"{where}.{key}: required, a non-empty string")
    if not value.isprintable():
        raise ValidationError(f"{where}.{key}: must be printable text")
    return value


def _secret_name(doc: dict[str, Any], where: str) -> str:
    value = doc.get("credentialsSecret")
    if not isinstance(value, str) or not SECRET_NAME.match(value):
        raise ValidationError(
            f"{where}.credentialsSecret: required, a Secrets Manager secret name "
            "(letters, digits and /_+=.@-)"
        )
    return value


def _int(doc: dict[str, Any], key: str, where: str, *, minimum: int, maximum: int) -> int:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ValidationError(f"{where}.{key}: must be an integer from {minimum} to {maximum}")
    return value


def _chili(doc: dict[str, Any], policy: UrlPolicy, where: str) -> ChiliSettings:
    _unknown(doc, _CHILI_FIELDS, where)
    environment = doc.get("environment")
    if not isinstance(environment, str) or not ENVIRONMENT.match(environment):
        raise ValidationError(
            f"{where}.environment: required, the environment name (letters, digits and '-')"
        )
    base_url = check_url(doc.get("baseUrl"), f"{where}.baseUrl", policy)
    token_url = check_url(doc.get("tokenUrl", CHILI_TOKEN_URL), f"{where}.tokenUrl", policy)
    template_id = _optional_identifier(doc, "templateId", where)
    project_id = _optional_identifier(doc, "projectId", where)
    if template_id is None and project_id is None:
        raise ValidationError(f"{where}.templateId: required (or {where}.projectId)")
    if template_id is not None and project_id is not None:
        raise ValidationError(f"{where}.projectId: give templateId or projectId, not both")
    output_settings_id = _identifier(doc, "outputSettingsId", where)
    output_format = doc.get("format", "pdf")
    if output_format not in CHILI_FORMATS:
        raise ValidationError(f"{where}.format: must be one of {', '.join(CHILI_FORMATS)}")
    layouts = doc.get("layoutsToExport")
    if layouts is not None and (
        not isinstance(layouts, list)
        or not layouts
        or not all(
            isinstance(x, str | int) and not isinstance(x, bool) and str(x).strip() for x in layouts
        )
    ):
        raise ValidationError(f"{where}.layoutsToExport: a non-empty list of layout ids")
    audience = doc.get("audience", CHILI_AUDIENCE)
    if not isinstance(audience, str) or not audience:
        raise ValidationError(f"{where}.audience: a non-empty string")
    return ChiliSettings(
        environment=environment,
        base_url=base_url,
        token_url=token_url,
        credentials_secret=_secret_name(doc, where),
        template_id=template_id,
        project_id=project_id,
        output_settings_id=output_settings_id,
        output_format=output_format,
        layouts_to_export=tuple(layouts) if layouts else None,
        audience=audience,
    )


def _customers_canvas(
    doc: dict[str, Any], policy: UrlPolicy, where: str
) -> CustomersCanvasSettings:
    _unknown(doc, _CC_FIELDS, where)
    region = doc.get("region", CC_DEFAULT_REGION)
    if not isinstance(region, str) or region not in CC_REGION_HOSTS:
        raise ValidationError(f"{where}.region: must be one of {', '.join(CC_REGION_HOSTS)}")
    # The region chooses the API gateway and its token endpoint; explicit URLs still win.
    base_url = check_url(doc.get("baseUrl", CC_REGION_HOSTS[region]), f"{where}.baseUrl", policy)
    token_url = check_url(doc.get("tokenUrl", cc_token_url(region)), f"{where}.tokenUrl", policy)
    if "storefrontId" not in doc:
        raise ValidationError(
            f"{where}.storefrontId: required, Customer's Canvas's own storefront id (an integer)"
        )
    storefront_id = _int(doc, "storefrontId", where, minimum=1, maximum=2**63 - 1)
    tenant_id = (
        None
        if doc.get("tenantId") is None
        else _int(doc, "tenantId", where, minimum=1, maximum=2**63 - 1)
    )
    try:
        recovery = RecoveryAction(doc.get("recovery", RecoveryAction.RESUME.value))
    except ValueError:
        raise ValidationError(f"{where}.recovery: must be 'resume' or 'restart'") from None
    attempts = (
        3
        if doc.get("maxRecoveryAttempts") is None
        else _int(doc, "maxRecoveryAttempts", where, minimum=0, maximum=MAX_RECOVERY_ATTEMPTS)
    )
    scope = doc.get("scope")
    if scope is not None and (not isinstance(scope, str) or not scope.strip()):
        raise ValidationError(f"{where}.scope: a space-separated list of scopes")
    deadline = (
        DEFAULT_DISCOVERY_DEADLINE_S
        if doc.get("discoveryDeadlineS") is None
        else _int(doc, "discoveryDeadlineS", where, minimum=0, maximum=MAX_DISCOVERY_DEADLINE_S)
    )
    design_property = doc.get("designProperty")
    if design_property is not None and (
        not isinstance(design_property, str) or not 0 < len(design_property) <= 255
    ):
        raise ValidationError(f"{where}.designProperty: a line item property name (1-255 chars)")
    return CustomersCanvasSettings(
        output_formats=_output_formats(doc.get("outputFormats"), f"{where}.outputFormats"),
        base_url=base_url,
        token_url=token_url,
        credentials_secret=_secret_name(doc, where),
        storefront_id=storefront_id,
        tenant_id=tenant_id,
        recovery=recovery,
        max_recovery_attempts=attempts,
        scope=scope,
        region=region,
        discovery_deadline_s=deadline,
        design_property=design_property,
    )


def _output_formats(value: Any, where: str) -> tuple[str, ...] | None:
    """The declared outputs of a Customer's Canvas pipeline: lower-case format names."""
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= MAX_OUTPUT_FORMATS
        or not all(isinstance(v, str) and _FORMAT_NAME.match(v) for v in value)
    ):
        raise ValidationError(
            f'{where}: a list of 1-{MAX_OUTPUT_FORMATS} lower-case format names (e.g. ["pdf"])'
        )
    return tuple(dict.fromkeys(value))


class ProviderRegistry:
    """Builds adapters; owns the caches that should outlive one invocation's HTTP client."""

    def __init__(
        self,
        secrets_client: Any,
        *,
        url_policy: UrlPolicy | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        credentials_ttl_s: float = 300.0,
    ) -> None:
        self._secrets = secrets_client
        self.url_policy = url_policy or UrlPolicy()
        self._clock = clock
        self._monotonic = monotonic
        self._credentials_ttl_s = credentials_ttl_s
        self._credentials: dict[str, tuple[float, ClientCredentials]] = {}
        self._tokens: dict[tuple[TokenEndpoint, str], AccessTokens] = {}
        self.spacing = PollSpacing(MIN_POLL_INTERVAL_S, clock)

    def settings_for(self, provider: ProviderSettings) -> ProviderConfig:
        return parse_provider_settings(provider, self.url_policy)

    async def adapter_for(
        self, provider: ProviderSettings, http: httpx.AsyncClient, *, storefront_id: str = ""
    ) -> RenderProvider:
        """The adapter for a storefront's provider, using ``http`` for every request.

        ``storefront_id`` (PrintFlow's) scopes what the adapter keeps per order, such as the
        Customer's Canvas poll spacing: pass it wherever the storefront is known.
        """
        settings = self.settings_for(provider)
        credentials = await self._load_credentials(settings.credentials_secret)
        tokens = self.tokens_for(settings.token_endpoint, credentials)
        if isinstance(settings, ChiliSettings):
            return ChiliAdapter(settings, tokens, http, url_policy=self.url_policy)
        return CustomersCanvasAdapter(
            settings,
            tokens,
            http,
            url_policy=self.url_policy,
            clock=self._clock,
            spacing=self.spacing,
            storefront_id=storefront_id,
        )

    def tokens_for(self, endpoint: TokenEndpoint, credentials: ClientCredentials) -> AccessTokens:
        """One token cache per (endpoint, client); a rotated secret gets a fresh cache."""
        key = (endpoint, credentials.client_id)
        tokens = self._tokens.get(key)
        if tokens is None or tokens.credentials != credentials:
            tokens = AccessTokens(endpoint, credentials, clock=self._monotonic)
            self._tokens[key] = tokens
        return tokens

    async def _load_credentials(self, secret_name: str) -> ClientCredentials:
        now = self._monotonic()
        cached = self._credentials.get(secret_name)
        if cached is not None and cached[0] > now:
            return cached[1]
        # boto3 is synchronous: keep the event loop (and the other polls) running meanwhile.
        credentials = await asyncio.to_thread(load_client_credentials, self._secrets, secret_name)
        self._credentials[secret_name] = (now + self._credentials_ttl_s, credentials)
        return credentials


async def start_render(
    registry: ProviderRegistry,
    provider: ProviderSettings,
    order: Order,
    *,
    http: httpx.AsyncClient | None = None,
    timeout_s: float = 10.0,
    skip_line_items: frozenset[str] = frozenset(),
    started: WorkStarted | None = None,
) -> tuple[RenderWork, ...]:
    """Start (or find) an order's render work: for the start-render Lambda, which runs
    ``asyncio.run(start_render(registry, storefront.provider, order, started=record))``.

    Without ``http`` a client is created for this call and closed after it (an
    ``AsyncClient`` belongs to the event loop it was first used on).
    """
    if http is not None:
        adapter = await registry.adapter_for(provider, http, storefront_id=order.storefront_id)
        return await adapter.start(order, skip_line_items=skip_line_items, started=started)
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        adapter = await registry.adapter_for(provider, client, storefront_id=order.storefront_id)
        return await adapter.start(order, skip_line_items=skip_line_items, started=started)
