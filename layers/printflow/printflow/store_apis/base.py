"""What every store API client shares: its error, a bounded JSON exchange, and a pacer that
waits out a store's rate limit within the step's time or hands the wait to the step's retry.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from printflow.errors import PrintFlowError
from printflow.providers.http_answers import retry_after_s
from printflow.validators import ascii_int

MAX_ANSWER_BYTES = 4 * 1024 * 1024
EXCERPT_CHARS = 200


class StoreApiError(PrintFlowError):
    """The store API did not do what was asked. ``transient``: a later retry may."""

    def __init__(
        self, message: str, *, transient: bool, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class StoreAnswer:
    """A store's answer: status, headers and the parsed JSON body (``None`` when empty)."""

    status: int
    headers: httpx.Headers
    body: Any

    @property
    def retry_after_s(self) -> float | None:
        """``Retry-After`` (Shopify sends decimals: ``2.0``), or BigCommerce's
        ``X-Rate-Limit-Time-Reset-Ms``."""
        try:
            seconds = float(self.headers.get("retry-after", "").strip())
        except ValueError:  # absent, or an HTTP date
            wait = retry_after_s(httpx.Response(self.status, headers=self.headers))
        else:
            wait = seconds if math.isfinite(seconds) and seconds >= 0 else None
        reset_ms = ascii_int(self.headers.get("x-rate-limit-time-reset-ms", ""))
        if wait is None and reset_ms is not None:
            wait = reset_ms / 1000
        return wait


class Pacer:
    """Waits a store asks for, when the wait fits this invocation; otherwise the step retries.

    ``max_wait_s`` bounds one wait and ``budget_s`` all of them: a Lambda that sleeps past its
    own timeout would repeat its writes on the retry, so a long wait becomes a transient
    :class:`StoreApiError` carrying the wait for the step's retry instead.
    """

    def __init__(
        self,
        budget_s: float,
        *,
        max_wait_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.budget_s = budget_s
        self.max_wait_s = max_wait_s
        self.waited_s = 0.0
        self._sleep = sleep

    def wait(self, seconds: float, why: str) -> None:
        seconds = max(seconds, 0.0)
        if seconds > self.max_wait_s or self.waited_s + seconds > self.budget_s:
            # The caller says how long the store asks to wait (retry_after_s).
            raise StoreApiError(why, transient=True, retry_after_s=seconds)
        self._sleep(seconds)
        self.waited_s += seconds


def exchange(
    http: httpx.Client,
    method: str,
    url: str,
    what: str,
    *,
    headers: Mapping[str, str],
    json_body: Any = None,
    params: Mapping[str, Any] | None = None,
    auth: httpx.Auth | None = None,
) -> StoreAnswer:
    """One request; the answer's JSON read up to :data:`MAX_ANSWER_BYTES`.

    Network errors and timeouts are transient :class:`StoreApiError`; the SSRF guard's own
    refusals (``BlockedDestination``...) propagate for the caller to judge.
    """
    content = None if json_body is None else json.dumps(json_body, separators=(",", ":"))
    request_headers = dict(headers)
    if content is not None:
        request_headers["Content-Type"] = "application/json"
    try:
        with http.stream(
            method,
            url,
            params=params,
            content=content,
            headers=request_headers,
            auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
        ) as response:
            raw = bytearray()
            for chunk in response.iter_bytes():
                raw += chunk
                if len(raw) > MAX_ANSWER_BYTES:
                    raise StoreApiError(
                        f"{what}: answer over {MAX_ANSWER_BYTES} bytes", transient=False
                    )
    except httpx.TimeoutException:
        raise StoreApiError(f"{what}: the store did not answer in time", transient=True) from None
    except httpx.HTTPError as exc:
        raise StoreApiError(f"{what}: {type(exc).__name__}", transient=True) from None
    body: Any = None
    if raw.strip():
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")[:EXCERPT_CHARS]
    return StoreAnswer(response.status_code, response.headers, body)


def exchange_paced(
    http: httpx.Client,
    method: str,
    url: str,
    what: str,
    pacer: Pacer,
    *,
    headers: Mapping[str, str],
    json_body: Any = None,
    params: Mapping[str, Any] | None = None,
    auth: httpx.Auth | None = None,
    ok: tuple[int, ...] = (200, 201, 204),
    refusal: Callable[[str, StoreAnswer], StoreApiError],
    default_wait_s: float = 2.0,
    attempts: int = 3,
) -> StoreAnswer:
    """:func:`exchange`, a 429 waited out within ``pacer`` (its ``Retry-After``, else
    ``default_wait_s``) and asked again. An answer in ``ok``, or the error ``refusal`` makes
    of it; a success that is not JSON (a proxy's error page) is worth a retry."""
    for _ in range(attempts):
        answer = exchange(
            http, method, url, what, headers=headers, json_body=json_body, params=params, auth=auth
        )
        if answer.status in ok:
            if isinstance(answer.body, str):
                raise StoreApiError(f"{what}: the answer is not JSON", transient=True)
            return answer
        if answer.status != 429:
            raise refusal(what, answer)
        wait = answer.retry_after_s
        pacer.wait(default_wait_s if wait is None else wait, f"{what}: HTTP 429")
    raise StoreApiError(f"{what}: still rate limited after {attempts} tries", transient=True)


def excerpt(body: Any) -> str:
    """A short, one-line piece of an error answer for messages (never credentials: stores do
    not echo them)."""
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"
