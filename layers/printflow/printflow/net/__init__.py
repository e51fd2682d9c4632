"""Outgoing HTTP to user-configured URLs, guarded against SSRF.

- :mod:`printflow.net.ssrf`: the rules (:func:`check_url`, :class:`EgressGuard`,
  :class:`EgressPolicy`, :class:`BlockedDestination`).
- :mod:`printflow.net.safe_http`: httpx clients that connect only to checked addresses.
- :mod:`printflow.net.egress`: a function's egress policy, read from its settings.
"""

from printflow.net.safe_http import (
    AsyncPinnedTransport,
    PinnedTransport,
    guarded_async_client,
    guarded_client,
)
from printflow.net.ssrf import (
    BlockedDestination,
    CheckedTarget,
    EgressGuard,
    EgressPolicy,
    UnresolvableDestination,
    check_url,
)

__all__ = [
    "AsyncPinnedTransport",
    "BlockedDestination",
    "CheckedTarget",
    "EgressGuard",
    "EgressPolicy",
    "PinnedTransport",
    "UnresolvableDestination",
    "check_url",
    "guarded_async_client",
    "guarded_client",
]
