"""The deployment's egress policy: which hosts the SSRF guard lets through and where the
local stack reroutes them, read from a function's settings.

One function for every composition root that builds guarded clients (render, download,
reconciliation, the steps), so they all read ``EGRESS_ALLOWLIST`` / ``EGRESS_REROUTES`` the
same way; the settings models carry the two variables through
:class:`printflow.settings.EgressFields`. Pure: it parses settings and keeps nothing.
"""

from __future__ import annotations

from typing import Protocol

from printflow.net.ssrf import EgressPolicy


class EgressSettings(Protocol):
    """Any settings model that carries the two egress variables."""

    @property
    def egress_allowlist(self) -> str: ...

    @property
    def egress_reroutes(self) -> str: ...


def egress_policy(settings: EgressSettings) -> EgressPolicy:
    """The SSRF guard's policy for a function: its allowlist and its reroutes."""
    return EgressPolicy.from_env(
        {"EGRESS_ALLOWLIST": settings.egress_allowlist, "EGRESS_REROUTES": settings.egress_reroutes}
    )
