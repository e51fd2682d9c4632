"""Client-credentials tokens: cached, refreshed before expiry and on 401, errors classified."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from printflow.errors import ValidationError
from printflow.providers.errors import ProviderRejected, ProviderUnavailable
from printflow.providers.oauth import (
    AccessTokens,
    ClientCredentials,
    TokenEndpoint,
    TokenRequestStyle,
    artifact_headers,
    forget_bearer,
    load_client_credentials,
)
from printflow.providers.protocol import ArtifactAuth, ArtifactSource
from printflow_tools.sandboxes import ChiliSandbox, CustomersCanvasSandbox, ManualClock

CC_CREDENTIALS = ClientCredentials("cc-client", "cc-secret")
CHILI_CREDENTIALS = ClientCredentials("chili-client", "chili-secret")


def cc_tokens(cc: CustomersCanvasSandbox, clock: Callable[[], float]) -> AccessTokens:
    return AccessTokens(TokenEndpoint(cc.token_url), CC_CREDENTIALS, clock=clock)


def projects_url(cc: CustomersCanvasSandbox) -> str:
    return f"{cc.base_url}/api/storefront/v1/projects"


def token_response(
    request: httpx.Request, *, expires_in: object = 3600, n: list[int]
) -> httpx.Response:
    n.append(1)
    return httpx.Response(
        200, json={"access_token": f"t{len(n)}", "token_type": "Bearer", "expires_in": expires_in}
    )


# -- the cache ---------------------------------------------------------------------------


def test_token_is_fetched_once_and_reused() -> None:
    async def scenario(cc: CustomersCanvasSandbox) -> list[str]:
        tokens = cc_tokens(cc, ManualClock())
        async with httpx.AsyncClient() as http:
            return [await tokens.token(http) for _ in range(3)]

    with CustomersCanvasSandbox() as cc:
        values = asyncio.run(scenario(cc))
        issued = cc.tokens.issued

    assert len(set(values)) == 1
    assert issued == 1


def test_token_is_refreshed_shortly_before_expiry() -> None:
    clock = ManualClock()

    async def scenario(cc: CustomersCanvasSandbox) -> list[str]:
        tokens = cc_tokens(cc, clock)
        async with httpx.AsyncClient() as http:
            first = await tokens.token(http)
            clock.advance(3600 - 300 - 1)  # inside the 5-minute margin: still the same token
            same = await tokens.token(http)
            clock.advance(2)
            renewed = await tokens.token(http)
        return [first, same, renewed]

    with CustomersCanvasSandbox(token_ttl_s=3600, clock=clock) as cc:
        first, same, renewed = asyncio.run(scenario(cc))

    assert first == same != renewed


def test_short_lived_tokens_are_refreshed_at_half_their_life() -> None:
    clock = ManualClock()
    fetched: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return token_response(request, expires_in=60, n=fetched)

    async def scenario() -> list[str]:
        tokens = AccessTokens(TokenEndpoint("https://auth.test/token"), CC_CREDENTIALS, clock=clock)
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            values = [await tokens.token(http)]
            clock.advance(29)
            values.append(await tokens.token(http))
            clock.advance(2)
            values.append(await tokens.token(http))
        return values

    assert asyncio.run(scenario()) == ["t1", "t1", "t2"]


@pytest.mark.parametrize("expires_in", [None, "oops", True, -5, "inf", "NaN", 10**400, "9" * 400])
def test_a_missing_or_odd_expires_in_gets_a_short_default_lifetime(expires_in: object) -> None:
    clock = ManualClock()
    fetched: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return token_response(request, expires_in=expires_in, n=fetched)

    async def scenario() -> list[str]:
        tokens = AccessTokens(TokenEndpoint("https://auth.test/token"), CC_CREDENTIALS, clock=clock)
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            first = await tokens.token(http)
            clock.advance(151)  # default 300 s lifetime, refreshed at half of it
            return [first, await tokens.token(http)]

    assert asyncio.run(scenario()) == ["t1", "t2"]


def test_concurrent_callers_share_one_fetch() -> None:
    fetched: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)
        return token_response(request, n=fetched)

    async def scenario() -> set[str]:
        tokens = AccessTokens(TokenEndpoint("https://auth.test/token"), CC_CREDENTIALS)
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return set(await asyncio.gather(*(tokens.token(http) for _ in range(25))))

    assert asyncio.run(scenario()) == {"t1"}
    assert len(fetched) == 1


def test_the_cache_survives_successive_event_loops_and_clients() -> None:
    """A warm Lambda runs asyncio.run per invocation with a new client each time."""
    with CustomersCanvasSandbox() as cc:
        tokens = cc_tokens(cc, ManualClock())

        async def invocation() -> str:
            async with httpx.AsyncClient() as http:
                response = await tokens.request(http, "GET", projects_url(cc), what="list")
                assert response.status_code == 200
                return await tokens.token(http)

        first, second = asyncio.run(invocation()), asyncio.run(invocation())
        issued = cc.tokens.issued

    assert first == second
    assert issued == 1


# -- 401 handling ------------------------------------------------------------------------


def test_a_401_refreshes_the_token_and_retries_once() -> None:
    async def scenario(cc: CustomersCanvasSandbox) -> tuple[int, int]:
        tokens = cc_tokens(cc, ManualClock())
        async with httpx.AsyncClient() as http:
            await tokens.token(http)
            cc.expire_tokens()  # the provider stops accepting it before its expires_in
            response = await tokens.request(http, "GET", projects_url(cc), what="list")
        return response.status_code, tokens.fetches

    with CustomersCanvasSandbox() as cc:
        status, fetches = asyncio.run(scenario(cc))
        statuses = [r.status for r in cc.requests if r.path.endswith("/projects")]

    assert status == 200
    assert fetches == 2
    assert statuses == [401, 200]


def test_a_second_401_is_handed_back_not_retried_forever() -> None:
    fetched: list[int] = []
    api_calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            return token_response(request, n=fetched)
        api_calls.append(request.headers["authorization"])
        return httpx.Response(401)

    async def scenario() -> int:
        tokens = AccessTokens(TokenEndpoint("https://auth.test/token"), CC_CREDENTIALS)
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            response = await tokens.request(http, "GET", "https://api.test/x", what="x")
        return response.status_code

    assert asyncio.run(scenario()) == 401
    assert api_calls == ["Bearer t1", "Bearer t2"]


def test_forget_drops_only_the_token_it_names() -> None:
    fetched: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return token_response(request, n=fetched)

    async def scenario() -> list[str]:
        tokens = AccessTokens(TokenEndpoint("https://auth.test/token"), CC_CREDENTIALS)
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            first = await tokens.token(http)
            tokens.forget(first)
            second = await tokens.token(http)
            tokens.forget(first)  # a late 401 for the old token: keep the new one
            return [first, second, await tokens.token(http)]

    assert asyncio.run(scenario()) == ["t1", "t2", "t2"]


def test_download_headers_follow_the_source_auth() -> None:
    fetched: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return token_response(request, n=fetched)

    def source(auth: ArtifactAuth) -> ArtifactSource:
        return ArtifactSource(url="https://files.test/a.pdf", auth=auth, filename="a.pdf")

    async def scenario() -> list[dict[str, str]]:
        tokens = AccessTokens(TokenEndpoint("https://auth.test/token"), CC_CREDENTIALS)
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            bearer = await artifact_headers(tokens, http, source(ArtifactAuth.BEARER))
            public = await artifact_headers(tokens, http, source(ArtifactAuth.NONE))
            forget_bearer(tokens, bearer)
            renewed = await artifact_headers(tokens, http, source(ArtifactAuth.BEARER))
        return [bearer, public, renewed]

    assert asyncio.run(scenario()) == [
        {"Authorization": "Bearer t1"},
        {},
        {"Authorization": "Bearer t2"},
    ]


# -- the token request -------------------------------------------------------------------


def test_chili_style_sends_json_with_the_audience_on_every_fetch() -> None:
    async def scenario(chili: ChiliSandbox) -> int:
        endpoint = TokenEndpoint(
            chili.token_url, TokenRequestStyle.JSON, audience="https://chiligrafx.com"
        )
        tokens = AccessTokens(endpoint, CHILI_CREDENTIALS)
        url = f"{chili.environment_url}/output/settings"
        async with httpx.AsyncClient() as http:
            await tokens.request(http, "GET", url, what="settings")
            chili.expire_tokens()
            response = await tokens.request(http, "GET", url, what="settings")
        return response.status_code

    with ChiliSandbox() as chili:
        status = asyncio.run(scenario(chili))
        token_statuses = [r.status for r in chili.requests if r.path == "/oauth/token"]

    assert status == 200
    assert token_statuses == [200, 200]


def test_form_style_sends_the_scope() -> None:
    bodies: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content.decode())
        return httpx.Response(200, json={"access_token": "t", "expires_in": 60})

    async def scenario() -> None:
        endpoint = TokenEndpoint("https://auth.test/token", scope="Projects_full Artifacts_read")
        tokens = AccessTokens(endpoint, CC_CREDENTIALS)
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            await tokens.token(http)

    asyncio.run(scenario())
    assert "grant_type=client_credentials" in bodies[0]
    assert "scope=Projects_full+Artifacts_read" in bodies[0]


def fetch_with(handler: Callable[[httpx.Request], httpx.Response]) -> str:
    async def scenario() -> str:
        tokens = AccessTokens(TokenEndpoint("https://auth.test/token"), CC_CREDENTIALS)
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await tokens.token(http)

    return asyncio.run(scenario())


def test_wrong_credentials_are_a_permanent_error_without_the_secret() -> None:
    with CustomersCanvasSandbox(client_secret="other") as cc:

        async def scenario() -> None:
            async with httpx.AsyncClient() as http:
                await cc_tokens(cc, ManualClock()).token(http)

        with pytest.raises(ProviderRejected) as caught:
            asyncio.run(scenario())

    assert caught.value.status == 401
    assert "cc-client" in caught.value.message
    assert "invalid_client" in caught.value.message
    assert "cc-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("response", "retry_after"),
    [
        (httpx.Response(503, headers={"Retry-After": "12"}), 12.0),
        (httpx.Response(429), None),
        (httpx.Response(200, content=b"<html>oops</html>"), None),
        (httpx.Response(200, json=["not", "an", "object"]), None),
        (httpx.Response(200, json={"token_type": "Bearer"}), None),
    ],
)
def test_token_endpoint_trouble_is_transient(
    response: httpx.Response, retry_after: float | None
) -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        fetch_with(lambda request: response)

    assert caught.value.retry_after_s == retry_after


def test_unreachable_token_endpoint_is_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ProviderUnavailable, match="ConnectError"):
        fetch_with(handler)


def test_a_non_bearer_token_type_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": "t", "token_type": "mac"})

    with pytest.raises(ProviderRejected, match="token_type"):
        fetch_with(handler)


def test_api_transport_errors_are_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            return httpx.Response(200, json={"access_token": "t"})
        raise httpx.ReadTimeout("slow", request=request)

    async def scenario() -> None:
        tokens = AccessTokens(TokenEndpoint("https://auth.test/token"), CC_CREDENTIALS)
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            await tokens.request(http, "GET", "https://api.test/x", what="the call")

    with pytest.raises(ProviderUnavailable, match="the call: ReadTimeout"):
        asyncio.run(scenario())


# -- credentials from Secrets Manager ------------------------------------------------------


class FakeSecrets:
    """The slice of a boto3 secretsmanager client the loader uses."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.reads: list[str] = []

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        self.reads.append(SecretId)
        if SecretId not in self.secrets:
            raise ClientError(
                {"Error": {"Code": "ResourceNotFoundException", "Message": "not found"}},
                "GetSecretValue",
            )
        return {"SecretString": self.secrets[SecretId]}


def test_credentials_are_read_from_a_json_secret() -> None:
    secrets = FakeSecrets({"printflow/cc": json.dumps({"clientId": "a", "clientSecret": "b"})})

    credentials = load_client_credentials(secrets, "printflow/cc")

    assert credentials == ClientCredentials("a", "b")
    assert "b" not in repr(credentials)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "not found"),
        ("not json", "must be JSON"),
        (json.dumps({"clientId": "a"}), "must be JSON"),
        (json.dumps({"clientId": "", "clientSecret": "b"}), "must be JSON"),
        (json.dumps(["a", "b"]), "must be JSON"),
    ],
)
def test_a_missing_or_malformed_secret_names_the_field(value: str | None, message: str) -> None:
    secrets = FakeSecrets({} if value is None else {"s": value})

    with pytest.raises(ValidationError) as caught:
        load_client_credentials(secrets, "s")

    assert str(caught.value).startswith("provider.credentialsSecret: secret 's'")
    assert message in str(caught.value)
    if value:
        assert 'clientSecret": "b' not in str(caught.value)


def test_other_aws_errors_propagate() -> None:
    class Throttled(FakeSecrets):
        def get_secret_value(self, SecretId: str) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "ThrottlingException"}}, "GetSecretValue")

    with pytest.raises(ClientError):
        load_client_credentials(Throttled({}), "s")


def test_a_very_long_expires_in_is_trusted_for_a_day() -> None:
    clock = ManualClock()
    fetched: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return token_response(request, expires_in=10**9, n=fetched)

    async def scenario() -> list[str]:
        tokens = AccessTokens(TokenEndpoint("https://auth.test/token"), CC_CREDENTIALS, clock=clock)
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            first = await tokens.token(http)
            clock.advance(86_099)  # kept a day, refreshed 300 s before it ends
            second = await tokens.token(http)
            clock.advance(2)
            return [first, second, await tokens.token(http)]

    assert asyncio.run(scenario()) == ["t1", "t1", "t2"]
