"""Flows against storefronts from the command line (issue 12 §1 and §4), on moto:
`storefronts put` checks the storefront's flow and its store API credentials, `flow check`
checks a flow against the storefronts registered on it. Nothing is written when refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest

from printflow.adapters.order_table import OrderTable
from printflow_tools.cli import main
from printflow_tools.localstack.resources import LocalResources

SEED = Path(__file__).parents[1] / "unit" / "fixtures" / "seed_flow.json"
CHILI = {
    "name": "chili",
    "environment": "acme",
    "baseUrl": "https://acme.chili-publish.online",
    "credentialsSecret": "printflow/providers/acme/chili",
    "templateId": "poster",
    "outputSettingsId": "print-pdf",
}
CANVAS = {
    "name": "customers-canvas",
    "baseUrl": "https://api.customerscanvashub.com",
    "credentialsSecret": "printflow/providers/acme/cc",
    "storefrontId": 42,
}
REFUSAL = "step 'generate': fileFormat 'stl' cannot be produced by provider chili"


def put(tmp_path: Path, table: str, doc: Any, *extra: str) -> int:
    path = tmp_path / f"{doc['storefrontId']}.json"
    path.write_text(json.dumps(doc))
    return main(["storefronts", "put", str(path), "--table", table, *extra])


def storefront(storefront_id: str, provider: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "storefrontId": storefront_id,
        "platform": "shopify",
        "flow": "seed",
        "webhookSecret": "acme-secret-123456789",
        "provider": provider,
        **extra,
    }


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir()
    shutil.copy(SEED, folder / "seed.json")
    return folder


def test_a_storefront_whose_provider_cannot_make_its_flow_s_format_is_refused(
    local_aws: LocalResources, tmp_path: Path, flows_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = ("--known-flows", "seed", "--flows-dir", str(flows_dir))

    assert put(tmp_path, local_aws.table(), storefront("acme", CHILI), *options) == 2
    assert put(tmp_path, local_aws.table(), storefront("acme-cc", CANVAS), *options) == 0

    err = capsys.readouterr().err
    assert f"storefront 'acme' with flow 'seed': {REFUSAL}" in err
    table = OrderTable(boto3.client("dynamodb"), local_aws.table())
    assert table.get_storefront("acme") is None
    assert table.get_storefront("acme-cc") is not None


def test_flow_check_names_every_storefront_the_flow_does_not_fit(
    local_aws: LocalResources, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_flows = ("--known-flows", "seed", "--flows-dir", str(tmp_path / "none"))
    assert put(tmp_path, local_aws.table(), storefront("acme", CHILI), *no_flows) == 0
    assert put(tmp_path, local_aws.table(), storefront("acme-cc", CANVAS), *no_flows) == 0
    seed = tmp_path / "seed.json"
    shutil.copy(SEED, seed)
    capsys.readouterr()

    assert main(["flow", "check", str(seed), "--table", local_aws.table()]) == 1

    err = capsys.readouterr().err
    assert f"storefront 'acme' with flow 'seed': {REFUSAL}" in err
    assert "acme-cc" not in err
    pdf = tmp_path / "pdf.json"
    pdf.write_text(SEED.read_text().replace('"stl"', '"pdf"'))
    assert main(["flow", "check", str(pdf), "--name", "seed", "--table", local_aws.table()]) == 0
    assert "fits the 2 storefront(s) on flow 'seed'" in capsys.readouterr().out


def test_store_api_credentials_are_checked_when_the_storefront_is_registered(
    local_aws: LocalResources, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = {
        "storefrontId": "acme",
        "platform": "shopify",
        "webhookSecret": "acme-secret-123456789",
        "shopDomain": "acme.myshopify.com",
        "storeApi": {"credentialsSecret": "printflow/store-apis/acme"},
    }
    secrets = boto3.client("secretsmanager")

    assert put(tmp_path, local_aws.table(), doc) == 2
    assert "secret 'printflow/store-apis/acme' not found" in capsys.readouterr().err
    secrets.create_secret(Name="printflow/store-apis/acme", SecretString='{"token": "x"}')
    assert put(tmp_path, local_aws.table(), doc) == 2
    assert 'must be a JSON object with "accessToken"' in capsys.readouterr().err
    table = OrderTable(boto3.client("dynamodb"), local_aws.table())
    assert table.get_storefront("acme") is None

    secrets.put_secret_value(
        SecretId="printflow/store-apis/acme", SecretString='{"accessToken": "shpat_x"}'
    )
    assert put(tmp_path, local_aws.table(), doc) == 0
    stored = table.get_storefront("acme")
    assert stored is not None and stored.store_api is not None
    assert stored.store_api.base_url == "https://acme.myshopify.com"
    assert "shpat_x" not in json.dumps(boto3.client("dynamodb").scan(TableName=local_aws.table()))
