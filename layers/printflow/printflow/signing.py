"""Request signing shared by the webhooks PrintFlow accepts and the requests it sends.

The generic storefront platform signs its webhooks with this scheme, and the
``consume-rest-api`` step signs its requests with it, so a receiver verifies PrintFlow the way
PrintFlow verifies a generic shop: ``v1=`` + hex HMAC-SHA256 over ``{timestamp}.{body}``.
Pure functions: nothing is stored, nothing is left behind.
"""

from __future__ import annotations

import hashlib
import hmac

GENERIC_TIMESTAMP_HEADER = "x-printflow-timestamp"
GENERIC_SIGNATURE_HEADER = "x-printflow-signature"
GENERIC_SCHEME = "v1"


def hmac_sha256(secret: str, message: bytes) -> bytes:
    """The raw HMAC-SHA256 of ``message`` keyed with ``secret``."""
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def generic_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The generic scheme: ``v1=`` + hex HMAC-SHA256 over ``{timestamp}.{body}``."""
    digest = hmac_sha256(secret, timestamp.encode() + b"." + body).hex()
    return f"{GENERIC_SCHEME}={digest}"
