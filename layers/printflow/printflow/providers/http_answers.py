"""Reading a provider's HTTP answers: Retry-After, JSON bodies, problem details, and the error
an unexpected status becomes. Pure functions of one response; nothing is kept.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from printflow.providers.errors import (
    ProviderAnswerMalformed,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
)
from printflow.validators import ascii_int


def retry_after_s(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta or HTTP date); None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    seconds = ascii_int(value)
    if seconds is not None:
        return float(seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """The response body as a JSON object; :class:`ProviderUnavailable` when it is not one.

    A malformed answer is treated as transient: a proxy's error page or a half-deployed
    provider should not fail an order for good.
    """
    try:
        doc = response.json()
    except (ValueError, UnicodeDecodeError):
        raise ProviderAnswerMalformed(
            f"{what}: malformed JSON (status {response.status_code})", status=response.status_code
        ) from None
    if not isinstance(doc, dict):
        raise ProviderAnswerMalformed(
            f"{what}: expected a JSON object", status=response.status_code
        )
    return doc


def problem_detail(response: httpx.Response) -> str | None:
    """``detail`` (or ``title``) of a problem-details body; None when the body is not one."""
    try:
        doc = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    for key in ("detail", "title", "error_description", "error", "message"):
        value = doc.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:1000]
    return None


def unexpected(response: httpx.Response, what: str) -> ProviderError:
    """The error for a status an operation does not expect: permanent for the statuses
    that mean "your request or your rights are wrong", transient for everything else."""
    status = response.status_code
    detail = problem_detail(response)
    message = f"{what}: HTTP {status}" + (f" ({detail})" if detail else "")
    if status in (400, 401, 403, 405, 415, 422):
        return ProviderRejected(message, status=status)
    return ProviderUnavailable(message, status=status, retry_after_s=retry_after_s(response))
