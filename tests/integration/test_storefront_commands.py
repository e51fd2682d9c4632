"""`printflow storefronts` against moto: validation, secrets kept out of the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from printflow_tools.cli import main
from printflow_tools.localstack.resources import LocalResources

CHILI = {
    "name": "chili",
    "environment": "acme",
    "baseUrl": "https://acme.chili-publish.online",
    "credentialsSecret": "printflow/providers/acme/chili",
    "templateId": "poster",
    "outputSettingsId": "print-pdf",
}


def put(tmp_path: Path, table: str, doc: Any, *extra: str) -> int:
    path = tmp_path / "storefront.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return main(["storefronts", "put", str(path), "--table", table, *extra])


def test_put_list_show(
    local_aws: LocalResources, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = {
        "storefrontId": "acme",
        "platform": "shopify",
        "webhookSecret": "acme-secret-123456789",
        "provider": CHILI,
    }

    assert put(tmp_path, local_aws.table(), doc) == 0
    assert main(["storefronts", "list", "--table", local_aws.table()]) == 0
    assert main(["storefronts", "show", "acme", "--table", local_aws.table()]) == 0

    out = capsys.readouterr().out
    assert "acme" in out and "provider=chili" in out
    # A Shopify storefront shows no BigCommerce setting
    assert "secretHeader" not in out
    assert "acme-secret-123456789" not in out
    items = boto3.client("dynamodb").scan(TableName=local_aws.table())["Items"]
    assert "acme-secret-123456789" not in json.dumps(items)
    secret = boto3.client("secretsmanager").get_secret_value(
        SecretId="printflow/storefronts/acme/webhook"
    )
    assert json.loads(secret["SecretString"]) == {"current": "acme-secret-123456789"}


def test_rotation_keeps_the_previous_secret(local_aws: LocalResources, tmp_path: Path) -> None:
    doc = {"storefrontId": "acme", "platform": "shopify", "webhookSecret": "first-secret-0000001"}
    assert put(tmp_path, local_aws.table(), doc) == 0
    assert put(tmp_path, local_aws.table(), {**doc, "webhookSecret": "second-secret-000002"}) == 0
    secret = boto3.client("secretsmanager").get_secret_value(
        SecretId="printflow/storefronts/acme/webhook"
    )
    assert json.loads(secret["SecretString"]) == {
        "current": "second-secret-000002",
        "previous": "first-secret-0000001",
    }


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{not json", "is not valid JSON"),
        (
            {"storefrontId": "acme", "platform": "magento", "webhookSecret": "x" * 20},
            "platform: must be one of",
        ),
        ({"storefrontId": "acme", "platform": "shopify"}, "webhookSecret: required"),
        (
            {
                "storefrontId": "acme",
                "platform": "shopify",
                "webhookSecret": "x" * 20,
                "flow": "nightly",
            },
            "unknown flow 'nightly'; deployed flows: default",
        ),
        (
            {
                "storefrontId": "acme",
                "platform": "shopify",
                "webhookSecret": "x" * 20,
                "provider": {**CHILI, "templateId": None},
            },
            "provider.templateId: required",
        ),
        (
            {
                "storefrontId": "acme",
                "platform": "shopify",
                "webhookSecret": "x" * 20,
                "provider": {**CHILI, "baseUrl": "http://acme.example.com"},
            },
            "provider.baseUrl",
        ),
        (
            {
                "storefrontId": "acme-bc",
                "platform": "bigcommerce",
                "webhookSecret": "x" * 20,
                "storeApi": {
                    "storeHash": "abc123",
                    "credentialsSecret": "printflow/store-apis/acme-bc",
                    "baseUrl": "http://api.bigcommerce.com",
                },
            },
            "'acme-bc'.storeApi.baseUrl: must be an https URL",
        ),
    ],
)
def test_invalid_documents_are_refused_and_nothing_is_written(
    local_aws: LocalResources,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    doc: Any,
    message: str,
) -> None:
    assert put(tmp_path, local_aws.table(), doc) == 2
    assert message in capsys.readouterr().err
    assert boto3.client("dynamodb").scan(TableName=local_aws.table())["Items"] == []
    assert boto3.client("secretsmanager").list_secrets()["SecretList"] == []


def test_show_unknown_storefront(
    local_aws: LocalResources, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["storefronts", "show", "ghost", "--table", local_aws.table()]) == 2
    assert "'ghost' is not registered" in capsys.readouterr().err


def test_missing_table_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRINTFLOW_TABLE", raising=False)
    assert main(["storefronts", "list", "--table", ""]) == 2
    assert "no table" in capsys.readouterr().err
