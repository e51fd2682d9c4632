"""What every store API client shares: its error, bounded reads, and one JSON call.

Errors say whether a retry can help: 429, 5xx, network errors and a non-JSON answer (a proxy's
error page) can; 401/403 (the credentials) and other 4xx cannot.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from printflow.errors import PrintFlowError
from printflow.providers.base import retry_after_s

MAX_ANSWER_BYTES = 4 * 1024 * 1024


class StoreApiError(PrintFlowError):
    """The store API did not give what was asked. ``transient``: a later retry may."""

    def __init__(
        self, message: str, *, transient: bool, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.retry_after_s = retry_after_s


def read_at_most(response: httpx.Response, limit: int, what: str) -> bytes:
    """The body of a 200/201 answer, refused past ``limit`` bytes without reading further."""
    if response.status_code not in (200, 201):
        return b""  # the status says it all
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > limit:
            raise StoreApiError(f"{what}: answer over {limit} bytes", transient=False)
    return bytes(body)


def transient_error(what: str, response: httpx.Response) -> StoreApiError:
    """429 or 5xx, with the wait the store asked for (``Retry-After``), if any."""
    return StoreApiError(
        f"{what}: HTTP {response.status_code}",
        transient=True,
        retry_after_s=store_retry_after_s(response),
    )


def store_retry_after_s(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds; Shopify sends decimals (``Retry-After: 2.0``)."""
    value = response.headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return retry_after_s(response)  # absent, or an HTTP date
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def call_json(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    what: str,
    headers: Mapping[str, str],
    params: Mapping[str, Any] | None = None,
    json_body: Any = None,
    auth: httpx.Auth | None = None,
    transient: Callable[[str, httpx.Response], StoreApiError] | None = None,
) -> tuple[Any, httpx.Response]:
    """One call; the parsed JSON of a 2xx answer (None for 204) and the response.

    401/403 name the credentials; 429 and 5xx are transient (``transient`` builds the error
    where a store states its wait its own way); other statuses are not.
    """
    try:
        with http.stream(
            method, url, params=params, headers=headers, json=json_body, auth=auth
        ) as response:
            body = read_at_most(response, MAX_ANSWER_BYTES, what)
    except httpx.TimeoutException:
        raise StoreApiError(f"{what}: the store did not answer in time", transient=True) from None
    except httpx.HTTPError as exc:
        raise StoreApiError(f"{what}: {type(exc).__name__}", transient=True) from None
    status = response.status_code
    if status == 204:
        return None, response
    if status in (200, 201):
        try:
            return json.loads(body), response
        except ValueError:
            raise StoreApiError(f"{what}: the answer is not JSON", transient=True) from None
    if status in (401, 403):
        raise StoreApiError(
            f"{what}: HTTP {status}, the store refused the credentials "
            "(check storeApi.credentialsSecret and the credentials' Orders scope)",
            transient=False,
        )
    if status == 429 or status >= 500:
        raise (transient or transient_error)(what, response)
    raise StoreApiError(f"{what}: HTTP {status}", transient=False)
