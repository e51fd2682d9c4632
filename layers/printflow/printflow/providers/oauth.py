"""OAuth2 client credentials for the render providers: one cached token per client.

Both providers (CHILI GraFx, Customer's Canvas) authenticate with the client-credentials
grant. :class:`AccessTokens` keeps one client's token until shortly before it expires, lets
concurrent polls share one token fetch, and retries a call once with a fresh token when the
provider answers 401 (a token can be refused before its ``expires_in``: key rotation, clock
skew, a provider restart) and the endpoint hands out a different token; an endpoint that
caches (CHILI's) may return the refused token itself, and the request is then not repeated.

Why not Authlib (evaluated: 1.9.9, ``authlib.integrations.httpx_client``):

- ``AsyncOAuth2Client`` *is* an ``httpx.AsyncClient`` subclass. It cannot wrap the one
  injected, shared client the poller uses for connection reuse; every set of credentials
  would bring its own connection pool.
- It refreshes only on local expiry and never on a 401, so the retry-once-on-401 would be
  hand-written anyway.
- Its automatic client-credentials refresh calls ``fetch_token(url,
  grant_type="client_credentials")`` without the extra fields of the first fetch, so CHILI's
  required ``audience`` is lost on every renewal; CHILI's endpoint also takes JSON bodies.
- 1.9.x has moved its httpx integration to the ``httpx2`` package and warns with a
  deprecation on every import with httpx 0.28; it also pulls ``cryptography`` into the
  Lambda layer (several MB, slower cold starts) for a feature we would use ~40 lines of.

So this module is a small token cache over plain httpx. The cache holds no http client: a
token outlives the client of one invocation, so a warm Lambda that builds a new
``AsyncClient`` per ``asyncio.run`` still reuses its token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx

from printflow.adapters.config_secrets import read_json_secret
from printflow.errors import ValidationError
from printflow.providers.errors import ProviderRejected, ProviderUnavailable
from printflow.providers.http_answers import json_object, problem_detail, retry_after_s
from printflow.providers.protocol import ArtifactAuth, ArtifactSource
from printflow.validators import finite_float

# Refresh this long before expiry (but at most half the lifetime, for short-lived tokens).
REFRESH_MARGIN_S = 300.0
# Lifetime assumed when the token response has no usable ``expires_in``.
DEFAULT_LIFETIME_S = 300.0
# Longer-lived tokens are fetched again after a day anyway: a server's odd figure is not trusted
# for longer.
MAX_LIFETIME_S = 86_400.0


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    client_secret: str = field(repr=False)


class TokenRequestStyle(StrEnum):
    FORM = "form"  # application/x-www-form-urlencoded (RFC 6749; Customer's Canvas)
    JSON = "json"  # application/json (accepted by CHILI's endpoint, as in its samples)


@dataclass(frozen=True, slots=True)
class TokenEndpoint:
    """Where and how to ask for tokens. Extra fields (``audience``) are sent on every fetch."""

    url: str
    style: TokenRequestStyle = TokenRequestStyle.FORM
    audience: str | None = None
    scope: str | None = None


def load_client_credentials(secrets_client: Any, secret_name: str) -> ClientCredentials:
    """Read ``{"clientId", "clientSecret"}`` from Secrets Manager (a boto3 client).

    A missing or malformed secret is a storefront configuration error
    (:class:`ValidationError` naming the field); other AWS errors propagate.
    The secret's value never appears in a message.
    """
    field_name = "provider.credentialsSecret"
    doc = read_json_secret(secrets_client, secret_name, field_name)
    client_id, client_secret = doc.get("clientId"), doc.get("clientSecret")
    if not isinstance(client_id, str) or not client_id or not isinstance(client_secret, str):
        raise ValidationError(
            f'{field_name}: secret {secret_name!r} must be JSON {{"clientId", "clientSecret"}}'
        )
    return ClientCredentials(client_id, client_secret)


@dataclass(frozen=True, slots=True)
class _Token:
    value: str = field(repr=False)
    refresh_at: float


class AccessTokens:
    """The bearer tokens of one client at one token endpoint.

    Safe for many concurrent coroutines: one fetch at a time, the others wait for its
    result. Usable from successive event loops (``asyncio.run`` per Lambda invocation).
    """

    def __init__(
        self,
        endpoint: TokenEndpoint,
        credentials: ClientCredentials,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_margin_s: float = REFRESH_MARGIN_S,
    ) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self._clock = clock
        self._margin = refresh_margin_s
        self._token: _Token | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self.fetches = 0
        # 401s not retried because the endpoint returned the refused token again.
        self.same_token_after_401 = 0

    async def token(self, http: httpx.AsyncClient) -> str:
        """A valid access token, fetched only when the cached one is due for refresh."""
        cached = self._token
        if cached is not None and cached.refresh_at > self._clock():
            return cached.value
        async with self._loop_lock():
            cached = self._token
            if cached is not None and cached.refresh_at > self._clock():
                return cached.value
            self._token = await self._fetch(http)
            return self._token.value

    def forget(self, token: str) -> None:
        """Drop ``token`` if it is still the cached one (a 401 said it is no good).

        Comparing first means a burst of 401s for the same old token causes one refetch.
        """
        if self._token is not None and self._token.value == token:
            self._token = None

    async def request(
        self,
        http: httpx.AsyncClient,
        method: str,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send an authorised request; on 401 get a fresh token and try once more.

        A token endpoint that caches its tokens (CHILI's returns the same one until shortly
        before it expires) may hand back the very token that was refused: then the request
        is not sent again, since it would be refused again, and :class:`ProviderRejected`
        says why.
        Transport errors (connect, timeout, protocol) become :class:`ProviderUnavailable`.
        A second 401 is returned to the caller (it is the caller's to judge).
        """
        refused: tuple[str, httpx.Response] | None = None  # the refused token, its answer
        for attempt in (1, 2):
            token = await self.token(http)
            if refused is not None and token == refused[0]:
                self.same_token_after_401 += 1
                detail = problem_detail(refused[1]) or "no detail"
                raise ProviderRejected(
                    f"{what}: HTTP 401 ({detail}) with the token the token endpoint still "
                    "issues (it returns one cached token until shortly before it expires), "
                    f"so asking again cannot help: check client {self.credentials.client_id!r}'s "
                    "access",
                    status=401,
                )
            try:
                response = await http.request(
                    method,
                    url,
                    headers={**(headers or {}), "Authorization": f"Bearer {token}"},
                    **kwargs,
                )
            except httpx.HTTPError as exc:
                raise ProviderUnavailable(f"{what}: {type(exc).__name__}") from exc
            if response.status_code != 401 or attempt == 2:
                return response
            refused = (token, response)
            self.forget(token)
        raise AssertionError("unreachable")  # pragma: no cover

    def _loop_lock(self) -> asyncio.Lock:
        # An asyncio.Lock binds to the loop that first waits on it: keep one per loop.
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def _fetch(self, http: httpx.AsyncClient) -> _Token:
        endpoint = self.endpoint
        fields: dict[str, str] = {
            "grant_type": "client_credentials",
            "client_id": self.credentials.client_id,
            "client_secret": self.credentials.client_secret,
        }
        if endpoint.audience:
            fields["audience"] = endpoint.audience
        if endpoint.scope:
            fields["scope"] = endpoint.scope
        what = "token endpoint"
        started = self._clock()
        try:
            if endpoint.style is TokenRequestStyle.JSON:
                response = await http.post(endpoint.url, json=fields)
            else:
                response = await http.post(endpoint.url, data=fields)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"{what}: {type(exc).__name__}") from exc
        self.fetches += 1
        status = response.status_code
        if status in (400, 401, 403):
            # The OAuth error code says what is wrong; it never contains the secret.
            detail = _oauth_error(response) or problem_detail(response) or "no detail"
            raise ProviderRejected(
                f"{what} refused client {self.credentials.client_id!r}: HTTP {status} ({detail})",
                status=status,
            )
        if status != 200:
            raise ProviderUnavailable(
                f"{what}: HTTP {status}", status=status, retry_after_s=retry_after_s(response)
            )
        doc = json_object(response, what)
        value = doc.get("access_token")
        if not isinstance(value, str) or not value:
            raise ProviderUnavailable(f"{what}: no access_token in the response", status=status)
        token_type = doc.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise ProviderRejected(f"{what}: unsupported token_type {token_type!r}", status=status)
        lifetime = _lifetime(doc.get("expires_in"))
        margin = min(self._margin, lifetime / 2)
        # Measured from the request's start: the token's clock started no later than that.
        return _Token(value, started + lifetime - margin)


def _oauth_error(response: httpx.Response) -> str | None:
    """``error: error_description`` of an RFC 6749 error response, if it is one."""
    try:
        doc = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    error = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(error, str):
        return None
    description = doc.get("error_description")
    return f"{error}: {description}"[:300] if isinstance(description, str) else error[:100]


def _lifetime(expires_in: object) -> float:
    """``expires_in`` in seconds; some servers send it as a string, some not at all."""
    value = finite_float(expires_in, text=True)  # "inf" would keep one token forever
    if value is None or value <= 0:
        return DEFAULT_LIFETIME_S
    return min(value, MAX_LIFETIME_S)


async def artifact_headers(
    tokens: AccessTokens, http: httpx.AsyncClient, source: ArtifactSource
) -> dict[str, str]:
    """Headers to download ``source``: the bearer token, or none for a public URL."""
    if source.auth is ArtifactAuth.NONE:
        return {}
    return {"Authorization": f"Bearer {await tokens.token(http)}"}


def forget_bearer(tokens: AccessTokens, headers: Mapping[str, str]) -> None:
    """A download answered 401 with ``headers``: drop their token so the retry gets a new one."""
    scheme, _, token = (headers.get("Authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and token:
        tokens.forget(token)
