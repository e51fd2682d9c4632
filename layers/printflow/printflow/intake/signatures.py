"""Webhook signature verification, one scheme per platform, always in constant time.

Each verifier gets the raw body exactly as delivered and every secret currently accepted for
the storefront (the current one and, during a rotation, the previous one).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence

from printflow.domain.storefront import Platform, Storefront
from printflow.errors import InvalidSignature

GENERIC_TIMESTAMP_HEADER = "x-printflow-timestamp"
GENERIC_SIGNATURE_HEADER = "x-printflow-signature"
GENERIC_SCHEME = "v1"


def hmac_sha256(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def _any_secret_matches(
    secrets: Sequence[str], expected: Callable[[str], bytes], presented: bytes
) -> bool:
    # compare_digest against every secret (no early exit) keeps the timing independent of
    # which secret matched.
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(expected(secret), presented)
    return matched


def _b64_header(headers: Mapping[str, str], name: str) -> bytes:
    value = headers.get(name)
    if not value:
        raise InvalidSignature(f"missing {name} header")
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (ValueError, TypeError):
        raise InvalidSignature(f"{name} header is not base64") from None


def verify_shopify(headers: Mapping[str, str], body: bytes, secrets: Sequence[str]) -> None:
    """``X-Shopify-Hmac-Sha256``: base64 HMAC-SHA256 of the raw body with the app secret."""
    presented = _b64_header(headers, "x-shopify-hmac-sha256")
    if not _any_secret_matches(secrets, lambda s: hmac_sha256(s, body), presented):
        raise InvalidSignature("x-shopify-hmac-sha256 does not match the body")


def verify_woocommerce(headers: Mapping[str, str], body: bytes, secrets: Sequence[str]) -> None:
    """``X-WC-Webhook-Signature``: base64 HMAC-SHA256 of the delivered body."""
    presented = _b64_header(headers, "x-wc-webhook-signature")
    if not _any_secret_matches(secrets, lambda s: hmac_sha256(s, body), presented):
        raise InvalidSignature("x-wc-webhook-signature does not match the body")


def verify_shared_secret_header(
    headers: Mapping[str, str], header: str, secrets: Sequence[str]
) -> None:
    """BigCommerce: its ``hash`` is not keyed, so the hook carries a secret header we chose."""
    name = header.lower()
    presented = headers.get(name)
    if not presented:
        raise InvalidSignature(f"missing {name} header")
    if not _any_secret_matches(
        secrets,
        lambda s: hashlib.sha256(s.encode()).digest(),
        hashlib.sha256(presented.encode()).digest(),
    ):
        raise InvalidSignature(f"{name} header does not match")


def generic_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The generic scheme: ``v1=`` + hex HMAC-SHA256 over ``{timestamp}.{body}``."""
    digest = hmac_sha256(secret, timestamp.encode() + b"." + body).hex()
    return f"{GENERIC_SCHEME}={digest}"


def verify_generic(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    now: float,
    replay_window_s: int,
) -> None:
    """Timestamped HMAC so a captured request cannot be replayed after the window."""
    timestamp = headers.get(GENERIC_TIMESTAMP_HEADER, "").strip()
    signature = headers.get(GENERIC_SIGNATURE_HEADER, "").strip()
    if not timestamp or not signature:
        raise InvalidSignature(
            f"missing {GENERIC_TIMESTAMP_HEADER} or {GENERIC_SIGNATURE_HEADER} header"
        )
    # isascii(): str.isdigit() also accepts "²" and "¹²³", which int() then refuses.
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise InvalidSignature(f"{GENERIC_TIMESTAMP_HEADER} must be unix seconds")
    if abs(now - int(timestamp)) > replay_window_s:
        raise InvalidSignature(
            f"{GENERIC_TIMESTAMP_HEADER} is outside the {replay_window_s} s replay window"
        )
    presented = [part.strip() for part in signature.split(",")]
    matched = False
    for secret in secrets:
        expected = generic_signature(secret, timestamp, body).encode()
        for candidate in presented:
            matched |= hmac.compare_digest(expected, candidate.encode())
    if not matched:
        raise InvalidSignature(f"{GENERIC_SIGNATURE_HEADER} does not match the body")


def verify_webhook(
    storefront: Storefront,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    now: float,
    replay_window_s: int,
) -> None:
    """Verify a delivery for ``storefront``'s platform; raise :class:`InvalidSignature`."""
    if not secrets:
        raise InvalidSignature("no webhook secret is configured for this storefront")
    match storefront.platform:
        case Platform.SHOPIFY:
            verify_shopify(headers, body, secrets)
        case Platform.WOOCOMMERCE:
            verify_woocommerce(headers, body, secrets)
        case Platform.BIGCOMMERCE:
            verify_shared_secret_header(headers, storefront.secret_header, secrets)
        case Platform.GENERIC:
            verify_generic(headers, body, secrets, now=now, replay_window_s=replay_window_s)
