"""What a render provider is to PrintFlow: one :class:`ProviderSpec` per provider module.

A spec bundles the four things the rest of the code needs from a provider, so adding one is
a new ``providers/<name>.py`` that defines ``SPEC`` plus one entry in
:data:`printflow.providers.registry.PROVIDERS`:

1. ``parse_settings``: the storefront's ``provider`` object -> validated settings (at
   registration, at flow checks, and again before each start);
2. ``build_adapter``: validated settings + what the registry keeps between invocations
   (:class:`AdapterContext`) -> a :class:`~printflow.providers.protocol.RenderProvider`;
3. ``polling``: how often the poller asks about one job;
4. ``formats`` and ``content_types``: what a flow's ``fileFormat`` may ask for and how the
   finished files are labelled.

Specs are plain data built at import; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from printflow.domain.render_job import PollingPolicy
from printflow.domain.storefront import ProviderSettings
from printflow.providers.oauth import AccessTokens, TokenEndpoint
from printflow.providers.protocol import RenderProvider
from printflow.validators import UrlPolicy


class ProviderConfig(Protocol):
    """A provider's validated settings: at least where its credentials and tokens come from."""

    @property
    def credentials_secret(self) -> str: ...

    @property
    def token_endpoint(self) -> TokenEndpoint: ...


@dataclass(frozen=True, slots=True)
class AdapterContext:
    """What the registry hands an adapter factory for one storefront and one HTTP client.

    ``shared`` is what the spec's ``shared_state`` made once per registry (Customer's Canvas:
    its poll spacing), so it outlives the invocation's client.
    """

    http: httpx.AsyncClient
    tokens: AccessTokens
    url_policy: UrlPolicy
    clock: Callable[[], float]
    storefront_id: str
    shared: object = None


@dataclass(frozen=True, slots=True)
class FormatSupport:
    """What one provider can produce and how a step's format is applied to its settings.

    ``produces`` answers ``None`` when the formats are not knowable from the settings.
    """

    produces: Callable[[ProviderConfig], tuple[str, ...] | None]
    apply: Callable[[ProviderSettings, str], ProviderSettings]
    # How the list of formats is described in a refusal.
    described_as: str


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One render provider, as the registry, the poller and the flow checks see it."""

    name: str  # the storefront's provider.name
    parse_settings: Callable[[dict[str, Any], UrlPolicy, str], ProviderConfig]
    build_adapter: Callable[[ProviderConfig, AdapterContext], RenderProvider]
    polling: PollingPolicy
    formats: FormatSupport
    content_types: Mapping[str, str]
    # Made once per registry and passed to every adapter as AdapterContext.shared.
    shared_state: Callable[[Callable[[], float]], object] | None = None
