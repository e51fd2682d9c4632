"""Checks every platform's webhook verifier is built from, always in constant time.

Each verifier (one per platform, in :mod:`printflow.platforms`) gets the raw body exactly
as delivered and every secret currently accepted for the storefront (the current one and,
during a rotation, the previous one). Nothing here knows a platform.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence

from printflow.errors import InvalidSignature
from printflow.signing import hmac_sha256

__all__ = ["any_secret_matches", "b64_header", "hmac_sha256", "verify_shared_secret_header"]


def any_secret_matches(
    secrets: Sequence[str], expected: Callable[[str], bytes], presented: bytes
) -> bool:
    """Whether ``presented`` equals ``expected(secret)`` for any of ``secrets``."""
    # compare_digest against every secret (no early exit) keeps the timing independent of
    # which secret matched.
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(expected(secret), presented)
    return matched


def b64_header(headers: Mapping[str, str], name: str) -> bytes:
    """The base64 value of header ``name``; :class:`InvalidSignature` if missing or not base64."""
    value = headers.get(name)
    if not value:
        raise InvalidSignature(f"missing {name} header")
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (ValueError, TypeError):
        raise InvalidSignature(f"{name} header is not base64") from None


def verify_base64_hmac(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str], header: str
) -> None:
    """``header`` holds the base64 HMAC-SHA256 of the raw body under one of ``secrets``
    (Shopify's and WooCommerce's scheme); :class:`InvalidSignature` otherwise."""
    presented = b64_header(headers, header)
    if not any_secret_matches(secrets, lambda s: hmac_sha256(s, body), presented):
        raise InvalidSignature(f"{header} does not match the body")


def verify_shared_secret_header(
    headers: Mapping[str, str], header: str, secrets: Sequence[str]
) -> None:
    """A header carrying the secret itself (BigCommerce: its ``hash`` is not keyed)."""
    name = header.lower()
    presented = headers.get(name)
    if not presented:
        raise InvalidSignature(f"missing {name} header")
    if not any_secret_matches(
        secrets,
        lambda s: hashlib.sha256(s.encode()).digest(),
        hashlib.sha256(presented.encode()).digest(),
    ):
        raise InvalidSignature(f"{name} header does not match")
