"""The provider table, and the adapters built from it for each invocation.

:data:`PROVIDERS` maps a storefront's ``provider.name`` to its :class:`ProviderSpec` (each
defined in its own ``providers/<name>.py``). Every provider-specific decision (settings,
adapter, polling, formats) is looked up there; a name with no entry is a
:class:`ValidationError`, never another provider's default.

One :class:`ProviderRegistry` serves the start-render Lambda and the poller. It keeps
what should outlive one invocation's HTTP client: the credentials read from Secrets Manager
(for ``credentials_ttl_s``), one token cache per client, and each provider's shared state
(the Customer's Canvas poll spacing). Keep one registry per execution environment, and pass
each invocation's ``httpx.AsyncClient`` to :meth:`ProviderRegistry.adapter_for`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from printflow.domain.order import Order
from printflow.domain.storefront import ProviderName, ProviderSettings
from printflow.errors import ValidationError
from printflow.net.safe_http import guarded_async_client
from printflow.net.ssrf import EgressGuard
from printflow.providers.chili import SPEC as CHILI
from printflow.providers.customers_canvas import SPEC as CUSTOMERS_CANVAS
from printflow.providers.oauth import (
    AccessTokens,
    ClientCredentials,
    TokenEndpoint,
    load_client_credentials,
)
from printflow.providers.protocol import RenderProvider, RenderWork, WorkStarted
from printflow.providers.spec import AdapterContext, ProviderConfig, ProviderSpec
from printflow.validators import UrlPolicy

__all__ = [
    "PROVIDERS",
    "ProviderConfig",
    "ProviderRegistry",
    "parse_provider_settings",
    "register_provider",
    "spec_for",
    "start_render",
    "unregister_provider",
]

# One entry per provider module; a new provider adds its module's SPEC here.
BUILT_IN: tuple[ProviderSpec, ...] = (CHILI, CUSTOMERS_CANVAS)
PROVIDERS: dict[str, ProviderSpec] = {spec.name: spec for spec in BUILT_IN}


def spec_for(name: str, *, where: str = "provider") -> ProviderSpec:
    """The spec of provider ``name``; :class:`ValidationError` when none is registered."""
    spec = PROVIDERS.get(name)
    if spec is None:
        known = ", ".join(sorted(PROVIDERS))
        raise ValidationError(f"{where}.name: no render provider {name!r} (known: {known})")
    return spec


def register_provider(spec: ProviderSpec) -> ProviderName:
    """Add a provider to the table (a plug-in, or a test's fake); its id becomes a valid
    ``provider.name`` for storefronts. Refuses to replace a registered provider."""
    if spec.name in PROVIDERS:
        raise ValueError(f"render provider {spec.name!r} is already registered")
    PROVIDERS[spec.name] = spec
    return ProviderName.register(spec.name)


def unregister_provider(name: str) -> None:
    """Remove a provider :func:`register_provider` added (the built-ins stay)."""
    if any(spec.name == name for spec in BUILT_IN):
        raise ValueError(f"render provider {name!r} is built in")
    PROVIDERS.pop(name, None)
    ProviderName.unregister(name)


def parse_provider_settings(
    provider: ProviderSettings, policy: UrlPolicy | None = None, *, where: str = "provider"
) -> ProviderConfig:
    """Validate a storefront's provider settings; :class:`ValidationError` names the field."""
    spec = spec_for(provider.name.value, where=where)
    doc = {"name": provider.name.value, **provider.settings}
    return spec.parse_settings(doc, policy or UrlPolicy(), where)


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
        egress_guard: EgressGuard | None = None,
    ) -> None:
        """``egress_guard``: the SSRF guard for the clients the registry opens itself (see
        :meth:`open_client`); clients passed in are the caller's, guarded by the caller."""
        self._secrets = secrets_client
        self._egress_guard = egress_guard
        self.url_policy = url_policy or UrlPolicy()
        self._clock = clock
        self._monotonic = monotonic
        self._credentials_ttl_s = credentials_ttl_s
        self._credentials: dict[str, tuple[float, ClientCredentials]] = {}
        self._tokens: dict[tuple[TokenEndpoint, str], AccessTokens] = {}
        self._shared: dict[str, object] = {}

    def settings_for(self, provider: ProviderSettings) -> ProviderConfig:
        return parse_provider_settings(provider, self.url_policy)

    async def adapter_for(
        self, provider: ProviderSettings, http: httpx.AsyncClient, *, storefront_id: str = ""
    ) -> RenderProvider:
        """The adapter for a storefront's provider, using ``http`` for every request.

        ``storefront_id`` (PrintFlow's) scopes what the adapter keeps per order, such as the
        Customer's Canvas poll spacing: pass it wherever the storefront is known.
        """
        spec = spec_for(provider.name.value)
        settings = self.settings_for(provider)
        credentials = await self._load_credentials(settings.credentials_secret)
        context = AdapterContext(
            http=http,
            tokens=self.tokens_for(settings.token_endpoint, credentials),
            url_policy=self.url_policy,
            clock=self._clock,
            storefront_id=storefront_id,
            shared=self._shared_state(spec),
        )
        return spec.build_adapter(settings, context)

    def _shared_state(self, spec: ProviderSpec) -> object:
        if spec.shared_state is None:
            return None
        if spec.name not in self._shared:
            self._shared[spec.name] = spec.shared_state(self._clock)
        return self._shared[spec.name]

    def open_client(self, timeout_s: float) -> httpx.AsyncClient:
        """A client for one call's provider requests: through the SSRF guard when the registry
        has one (every deployed function does), a plain client otherwise (unit tests)."""
        if self._egress_guard is None:
            return httpx.AsyncClient(timeout=timeout_s)
        return guarded_async_client(self._egress_guard, timeout=timeout_s)

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
    ``AsyncClient`` belongs to the event loop it was first used on): through the registry's
    SSRF guard, like the poller's and the download's clients.
    """
    if http is not None:
        adapter = await registry.adapter_for(provider, http, storefront_id=order.storefront_id)
        return await adapter.start(order, skip_line_items=skip_line_items, started=started)
    async with registry.open_client(timeout_s) as client:
        adapter = await registry.adapter_for(provider, client, storefront_id=order.storefront_id)
        return await adapter.start(order, skip_line_items=skip_line_items, started=started)
