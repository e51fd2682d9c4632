"""Render providers: CHILI GraFx and Customer's Canvas behind one adapter protocol.

- ``base``: the protocol (start, poll, recover, download headers), its value types and
  errors, and the one function that judges provider URLs;
- ``oauth``: client-credentials tokens, cached per client and shared by both providers;
- ``chili``, ``customers_canvas``: the adapters (the only modules that speak their APIs);
- ``registry``: storefront provider settings -> validated settings -> adapter.
"""

from printflow.providers.base import (
    ArtifactAuth,
    ArtifactSource,
    PollResult,
    PollState,
    ProviderConflict,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    RecoveryAction,
    RecoveryPlan,
    RecoveryRefused,
    RenderProvider,
    RenderWork,
    TooSoon,
    UrlPolicy,
    WorkKind,
    check_url,
)
from printflow.providers.registry import (
    ProviderRegistry,
    parse_provider_settings,
    start_render,
)

__all__ = [
    "ArtifactAuth",
    "ArtifactSource",
    "PollResult",
    "PollState",
    "ProviderConflict",
    "ProviderError",
    "ProviderRegistry",
    "ProviderRejected",
    "ProviderUnavailable",
    "RecoveryAction",
    "RecoveryPlan",
    "RecoveryRefused",
    "RenderProvider",
    "RenderWork",
    "TooSoon",
    "UrlPolicy",
    "WorkKind",
    "check_url",
    "parse_provider_settings",
    "start_render",
]
