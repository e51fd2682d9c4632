"""Where provider URLs may point.

Configured and provider-supplied URLs are judged at config time by
:func:`printflow.validators.check_url` (syntax, https); every request then goes through the
guarded clients of :mod:`printflow.net`, whose SSRF guard judges the resolved address. What
is left here is the adapters' own rule: a download link the provider hands back is used only
when it stays on the provider's origin (CHILI), else the adapter builds the link itself.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def same_origin(url: str, base_url: str) -> bool:
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)
