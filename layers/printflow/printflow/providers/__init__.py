"""Render providers: CHILI GraFx and Customer's Canvas behind one adapter protocol.

- ``protocol``: the adapter protocol (start, poll, recover, download headers) and its values;
- ``errors``: what adapters raise, transient or permanent;
- ``spec``: :class:`ProviderSpec`, what a provider module declares (settings parser, adapter
  factory, polling policy, formats and content types);
- ``chili``, ``customers_canvas``: one module per provider, each with its ``SPEC`` (the only
  modules that speak their APIs);
- ``registry``: the table of specs by provider name, and the adapters built from it;
- ``oauth``: client-credentials tokens, cached per client and shared by both providers;
- ``settings_fields``, ``http_answers``, ``urls``, ``content_types``: what the providers share.
"""

from printflow.providers.errors import (
    ProviderConflict,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    RecoveryRefused,
    TooSoon,
)
from printflow.providers.protocol import (
    ArtifactAuth,
    ArtifactSource,
    PollResult,
    PollState,
    RecoveryAction,
    RecoveryPlan,
    RenderProvider,
    RenderWork,
    WorkKind,
)
from printflow.providers.registry import (
    ProviderRegistry,
    parse_provider_settings,
    start_render,
)
from printflow.validators import UrlPolicy, check_url

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
