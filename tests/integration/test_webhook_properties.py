"""Arbitrary requests at the webhook: never a 5xx, never a write unless the request is valid."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from printflow.adapters import aws
from printflow.adapters.order_table import OrderTable
from printflow.adapters.webhook_secrets import WebhookSecrets
from printflow.storefronts import register_storefront
from printflow_tools.localstack.fidelity import make_moto_behave_like_aws
from printflow_tools.localstack.handlers import load_handler
from printflow_tools.localstack.resources import LocalResources, create_resources
from printflow_tools.webhook_events import DEMO_SECRETS, signed_headers, webhook_event

from .test_webhook import Context


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[LocalResources, Any]]:
    # Module-scoped: hypothesis runs many examples against one moto world.
    make_moto_behave_like_aws()
    with mock_aws():
        aws.client.cache_clear()
        resources = create_resources(boto3.Session(region_name="us-east-1"))
        table = OrderTable(boto3.client("dynamodb"), resources.table())
        secrets = WebhookSecrets(boto3.client("secretsmanager"), "printflow")
        for platform in DEMO_SECRETS:
            register_storefront(
                {
                    "storefrontId": f"p-{platform}",
                    "platform": platform,
                    "webhookSecret": DEMO_SECRETS[platform],
                },
                table,
                secrets,
            )
        yield resources, load_handler(resources.functions["WebhookFunction"])
    aws.client.cache_clear()


def order_items(resources: LocalResources) -> int:
    items = boto3.client("dynamodb").scan(TableName=resources.table())["Items"]
    return sum(1 for i in items if i["pk"]["S"].startswith("ORDER#"))


def object_count(resources: LocalResources) -> int:
    listing = boto3.client("s3").list_objects_v2(Bucket=resources.bucket())
    return int(listing.get("KeyCount", 0))


platforms = st.sampled_from(["shopify", "woocommerce", "bigcommerce", "generic", "magento", ""])
storefront_ids = st.sampled_from(
    ["p-shopify", "p-woocommerce", "p-bigcommerce", "p-generic", "nobody", "", "../etc"]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"id": json_values}).map(lambda v: json.dumps(v).encode()),
)
header_names = st.sampled_from(
    [
        "x-shopify-hmac-sha256",
        "x-wc-webhook-signature",
        "x-printflow-webhook-secret",
        "x-printflow-timestamp",
        "x-printflow-signature",
        "x-shopify-topic",
        "content-type",
    ]
)
headers = st.dictionaries(header_names, st.text(max_size=60), max_size=5)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["POST", "GET", "PUT", "DELETE"]),
    platform=platforms,
    storefront_id=storefront_ids,
    body=bodies,
    request_headers=headers,
    base64_body=st.booleans(),
    sign=st.booleans(),
)
def test_arbitrary_requests_never_fail_the_server_nor_write_unless_valid(
    stack: tuple[LocalResources, Any],
    method: str,
    platform: str,
    storefront_id: str,
    body: bytes,
    request_headers: dict[str, str],
    base64_body: bool,
    sign: bool,
) -> None:
    resources, handler = stack
    if sign and platform in DEMO_SECRETS:
        request_headers = {
            **request_headers,
            **signed_headers(platform, body, DEMO_SECRETS[platform]),
        }
    try:
        event = webhook_event(
            platform, storefront_id, body, request_headers, method=method, base64_body=base64_body
        )
    except UnicodeDecodeError:
        event = webhook_event(
            platform, storefront_id, body, request_headers, method=method, base64_body=True
        )
    orders_before, objects_before = order_items(resources), object_count(resources)

    response = handler(event, Context())

    status = response["statusCode"]
    assert status < 500, response["body"]
    assert json.loads(response["body"])
    written = order_items(resources) - orders_before
    if status == 202:
        assert written == 1 and object_count(resources) == objects_before + 1
    else:
        assert written == 0 and object_count(resources) == objects_before
    # a 202 needs a valid signature for the storefront's own platform
    if status == 202:
        assert sign and storefront_id == f"p-{platform}"
