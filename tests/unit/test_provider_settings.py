"""Provider settings validation, the URL policy, and the registry that builds adapters."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from printflow.domain.storefront import ProviderName, ProviderSettings
from printflow.errors import ValidationError
from printflow.platforms.documents import parse_storefront
from printflow.providers import (
    ProviderRegistry,
    RecoveryAction,
    UrlPolicy,
    check_url,
    parse_provider_settings,
)
from printflow.providers.chili import ChiliAdapter, ChiliSettings
from printflow.providers.customers_canvas import CustomersCanvasAdapter, CustomersCanvasSettings

CHILI: dict[str, Any] = {
    "environment": "acme",
    "baseUrl": "https://acme.chili-publish.online/",
    "credentialsSecret": "printflow/providers/chili",
    "templateId": "tpl-1",
    "outputSettingsId": "print-pdf",
}
CC: dict[str, Any] = {
    "baseUrl": "https://api.customerscanvashub.com",
    "tokenUrl": "https://api.customerscanvashub.com/connect/token",
    "credentialsSecret": "printflow/providers/cc",
    "storefrontId": 42,
}


def chili(**changes: Any) -> ProviderSettings:
    settings = {**CHILI, **changes}
    return ProviderSettings(
        ProviderName.CHILI, {k: v for k, v in settings.items() if v is not None}
    )


def cc(**changes: Any) -> ProviderSettings:
    settings = {**CC, **changes}
    return ProviderSettings(
        ProviderName.CUSTOMERS_CANVAS, {k: v for k, v in settings.items() if v is not None}
    )


def error_of(provider: ProviderSettings, policy: UrlPolicy | None = None) -> str:
    with pytest.raises(ValidationError) as caught:
        parse_provider_settings(provider, policy)
    return str(caught.value)


# -- CHILI -------------------------------------------------------------------------------


def test_chili_settings_with_defaults() -> None:
    settings = parse_provider_settings(chili())

    assert settings == ChiliSettings(
        environment="acme",
        base_url="https://acme.chili-publish.online",
        credentials_secret="printflow/providers/chili",
        output_settings_id="print-pdf",
        template_id="tpl-1",
    )
    assert settings.token_url == "https://integration-login.chiligrafx.com/oauth/token"
    assert settings.environment_url == (
        "https://acme.chili-publish.online/grafx/api/v1/environment/acme"
    )
    assert settings.token_endpoint.audience == "https://chiligrafx.com"


def test_chili_settings_with_every_option() -> None:
    settings = parse_provider_settings(
        chili(
            templateId=None,
            projectId="proj-1",
            format="png",
            layoutsToExport=["0", 2],
            tokenUrl="https://login.example.com/oauth/token",
            audience="https://other-audience",
        )
    )

    assert isinstance(settings, ChiliSettings)
    assert settings.project_id == "proj-1" and settings.template_id is None
    assert settings.output_format == "png"
    assert settings.layouts_to_export == ("0", 2)
    assert settings.token_url == "https://login.example.com/oauth/token"
    assert settings.audience == "https://other-audience"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"templateId": None}, "provider.templateId: required (or provider.projectId)"),
        ({"projectId": "p"}, "provider.projectId: give templateId or projectId, not both"),
        ({"templateId": ""}, "provider.templateId: required"),
        ({"environment": None}, "provider.environment: required"),
        ({"environment": "a/../b"}, "provider.environment: required"),
        ({"outputSettingsId": None}, "provider.outputSettingsId: required"),
        ({"outputSettingsId": 5}, "provider.outputSettingsId: required"),
        ({"credentialsSecret": None}, "provider.credentialsSecret: required"),
        ({"credentialsSecret": "has space"}, "provider.credentialsSecret: required"),
        ({"baseUrl": None}, "provider.baseUrl: required"),
        ({"format": "docx"}, "provider.format: must be one of pdf, png, jpg, gif, mp4"),
        ({"layoutsToExport": []}, "provider.layoutsToExport: a non-empty list"),
        ({"layoutsToExport": [True]}, "provider.layoutsToExport: a non-empty list"),
        ({"layoutsToExport": "0"}, "provider.layoutsToExport: a non-empty list"),
        ({"audience": ""}, "provider.audience: a non-empty string"),
        ({"storefrontId": 42}, "provider: unknown field(s) storefrontId"),
    ],
)
def test_chili_errors_name_the_field(changes: dict[str, Any], message: str) -> None:
    assert error_of(chili(**changes)).startswith(message)


# -- Customer's Canvas -------------------------------------------------------------------


def test_cc_settings_with_defaults() -> None:
    settings = parse_provider_settings(cc(tokenUrl=None))

    assert settings == CustomersCanvasSettings(
        base_url="https://api.customerscanvashub.com",
        credentials_secret="printflow/providers/cc",
        storefront_id=42,
    )
    assert settings.recovery is RecoveryAction.RESUME
    assert settings.max_recovery_attempts == 3
    # The vendor's API gateway issues the tokens (not the web app's host)
    assert settings.token_url == "https://api.customerscanvashub.com/connect/token"


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("us", "https://api.customerscanvashub.com"),
        ("eu", "https://api.eu.customerscanvashub.com"),
        ("au", "https://api.au.customerscanvashub.com"),
    ],
)
def test_cc_region_chooses_the_api_host_and_its_token_endpoint(region: str, host: str) -> None:
    settings = parse_provider_settings(cc(region=region, baseUrl=None, tokenUrl=None))
    assert isinstance(settings, CustomersCanvasSettings)
    assert settings.base_url == host
    assert settings.token_url == f"{host}/connect/token"
    assert settings.region == region


def test_cc_explicit_urls_win_over_the_region() -> None:
    settings = parse_provider_settings(
        cc(region="eu", baseUrl="https://cc.example.com", tokenUrl="https://id.example.com/t")
    )
    assert isinstance(settings, CustomersCanvasSettings)
    assert (settings.base_url, settings.token_url) == (
        "https://cc.example.com",
        "https://id.example.com/t",
    )


@pytest.mark.parametrize("region", ["mars", "EU", 3, ["eu"]])
def test_cc_unknown_region_is_refused(region: Any) -> None:
    assert error_of(cc(region=region)).startswith("provider.region: must be one of us, eu, au")


def test_cc_settings_with_every_option() -> None:
    settings = parse_provider_settings(
        cc(tenantId=7, recovery="restart", maxRecoveryAttempts=0, scope="Projects_full")
    )

    assert isinstance(settings, CustomersCanvasSettings)
    assert settings.tenant_id == 7
    assert settings.recovery is RecoveryAction.RESTART
    assert settings.max_recovery_attempts == 0
    assert settings.token_endpoint.scope == "Projects_full"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"storefrontId": None}, "provider.storefrontId: required"),
        ({"storefrontId": "42"}, "provider.storefrontId: must be an integer"),
        ({"storefrontId": True}, "provider.storefrontId: must be an integer"),
        ({"storefrontId": 0}, "provider.storefrontId: must be an integer from 1"),
        ({"tenantId": "t"}, "provider.tenantId: must be an integer"),
        ({"recovery": "retry"}, "provider.recovery: must be 'resume' or 'restart'"),
        (
            {"maxRecoveryAttempts": 11},
            "provider.maxRecoveryAttempts: must be an integer from 0 to 10",
        ),
        ({"maxRecoveryAttempts": -1}, "provider.maxRecoveryAttempts: must be an integer"),
        ({"scope": ""}, "provider.scope:"),
        ({"tokenUrl": "ftp://x"}, "provider.tokenUrl: must be an https URL"),
        ({"templateId": "t"}, "provider: unknown field(s) templateId"),
    ],
)
def test_cc_errors_name_the_field(changes: dict[str, Any], message: str) -> None:
    assert error_of(cc(**changes)).startswith(message)


def test_the_prefix_can_name_the_storefront() -> None:
    with pytest.raises(ValidationError, match=r"^storefront 'shop'\.provider\.storefrontId"):
        parse_provider_settings(cc(storefrontId=None), where="storefront 'shop'.provider")


def test_settings_from_a_parsed_storefront_document() -> None:
    storefront, _ = parse_storefront(
        {"storefrontId": "shop", "platform": "shopify", "provider": {"name": "chili", **CHILI}}
    )

    assert storefront.provider is not None
    assert isinstance(parse_provider_settings(storefront.provider), ChiliSettings)


# -- URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://acme.chili-publish.online", "must be an https URL"),
        ("http://127.0.0.1:8080", "must be an https URL"),
        ("ftp://acme", "must be an https URL"),
        ("https://user:pw@acme.example", "credentials in the URL"),
        ("https://acme.example/?a=1", "must not have a query"),
        ("https://acme.example/#x", "must not have a query"),
        ("https://", "no host"),
        ("https://acme.example:99999", "not a valid URL"),
        ("https://acme example", "not a valid URL"),
        ("", "required"),
    ],
)
def test_urls_must_be_https_by_default(url: str, message: str) -> None:
    assert message in error_of(chili(baseUrl=url))


def test_loopback_http_needs_an_explicit_policy() -> None:
    provider = chili(baseUrl="http://127.0.0.1:8080", tokenUrl="http://localhost:8080/oauth/token")

    settings = parse_provider_settings(provider, UrlPolicy.loopback())

    assert isinstance(settings, ChiliSettings)
    assert settings.base_url == "http://127.0.0.1:8080"
    assert "must be an https URL" in error_of(provider)
    policy = UrlPolicy(allow_insecure_hosts=frozenset({"127.0.0.1"}))
    assert "provider.tokenUrl: must be an https URL" in error_of(provider, policy)


def test_provider_supplied_urls_may_carry_a_query() -> None:
    signed = "https://files.example.com/a.pdf?signature=abc&expires=1"

    assert check_url(signed, "url", UrlPolicy(), allow_query=True) == signed
    with pytest.raises(ValidationError, match=r"^url: must be an https URL"):
        check_url("http://files.example.com/a.pdf", "url", UrlPolicy(), allow_query=True)


# -- the registry ------------------------------------------------------------------------


class FakeSecrets:
    def __init__(self, secrets: dict[str, dict[str, str]]) -> None:
        self.secrets = secrets
        self.reads: list[str] = []

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        self.reads.append(SecretId)
        if SecretId not in self.secrets:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "GetSecretValue")
        return {"SecretString": json.dumps(self.secrets[SecretId])}


SECRETS = {
    "printflow/providers/chili": {"clientId": "chili-client", "clientSecret": "s1"},
    "printflow/providers/cc": {"clientId": "cc-client", "clientSecret": "s2"},
}


def test_registry_builds_the_adapter_for_each_provider() -> None:
    secrets = FakeSecrets(SECRETS)
    registry = ProviderRegistry(secrets)

    async def scenario() -> tuple[object, object, object]:
        async with httpx.AsyncClient() as http:
            return (
                await registry.adapter_for(chili(), http),
                await registry.adapter_for(cc(), http),
                await registry.adapter_for(chili(), http),
            )

    first, second, third = asyncio.run(scenario())

    assert isinstance(first, ChiliAdapter) and isinstance(third, ChiliAdapter)
    assert isinstance(second, CustomersCanvasAdapter)
    # The secret is read once per TTL and the token cache is shared between adapters.
    assert secrets.reads == ["printflow/providers/chili", "printflow/providers/cc"]
    assert first._tokens is third._tokens


def test_registry_rereads_credentials_after_their_ttl_and_renews_the_cache() -> None:
    secrets = FakeSecrets(dict(SECRETS))
    now = [0.0]
    registry = ProviderRegistry(secrets, monotonic=lambda: now[0], credentials_ttl_s=60)

    async def tokens_of_adapter() -> object:
        async with httpx.AsyncClient() as http:
            adapter = await registry.adapter_for(chili(), http)
            assert isinstance(adapter, ChiliAdapter)
            return adapter._tokens

    before = asyncio.run(tokens_of_adapter())
    secrets.secrets["printflow/providers/chili"] = {
        "clientId": "chili-client",
        "clientSecret": "s9",
    }
    now[0] = 61
    after = asyncio.run(tokens_of_adapter())

    assert len(secrets.reads) == 2
    assert before is not after  # a rotated secret must not keep using the old cache


def test_registry_refuses_invalid_settings_before_reading_secrets() -> None:
    secrets = FakeSecrets(SECRETS)
    registry = ProviderRegistry(secrets)

    async def scenario() -> None:
        async with httpx.AsyncClient() as http:
            await registry.adapter_for(chili(baseUrl="http://127.0.0.1:1"), http)

    with pytest.raises(ValidationError, match=r"provider\.baseUrl"):
        asyncio.run(scenario())
    assert secrets.reads == []


def test_registry_reports_a_missing_secret() -> None:
    registry = ProviderRegistry(FakeSecrets({}))

    async def scenario() -> None:
        async with httpx.AsyncClient() as http:
            await registry.adapter_for(cc(), http)

    with pytest.raises(ValidationError, match=r"provider\.credentialsSecret: secret .* not found"):
        asyncio.run(scenario())
