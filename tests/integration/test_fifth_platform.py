"""A fifth storefront platform, added in this module alone, takes a signed order to the table.

"Acme" is not a real platform: it signs its webhooks with ``X-Acme-Signature: sha256=<hex
HMAC of the body>``, names the event in ``X-Acme-Event`` and sends ``{"orderRef", "items"}``.
Everything it needs is one spec registered through the platform table; the webhook handler,
the intake service, the storefront registration and the sample signer find it there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import boto3
import pytest

from printflow.adapters.order_table import OrderTable
from printflow.adapters.webhook_secrets import WebhookSecrets
from printflow.domain.order import LineItem, Order, OrderKey
from printflow.domain.storefront import PlatformId, Storefront
from printflow.errors import InvalidSignature, ValidationError
from printflow.platforms.base import PlatformSpec
from printflow.platforms.fields import line_items, order_id, quantity
from printflow.platforms.registry import registered_platform
from printflow.platforms.signatures import any_secret_matches
from printflow.storefronts import register_storefront
from printflow_tools.localstack.resources import LocalResources
from printflow_tools.webhook_events import signed_headers, webhook_event

ACME = PlatformId("acme")
SECRET = "acme-shared-secret-0005"
SIGNATURE_HEADER = "x-acme-signature"
BODY = json.dumps(
    {"orderRef": "AC-77", "items": [{"ref": "L1", "title": "Poster", "qty": 2}]}
).encode()


def _verify(
    storefront: Storefront,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    now: float,
    replay_window_s: int,
) -> None:
    presented = headers.get(SIGNATURE_HEADER, "").removeprefix("sha256=").encode()
    if not any_secret_matches(
        secrets,
        lambda s: hmac.new(s.encode(), body, hashlib.sha256).hexdigest().encode(),
        presented,
    ):
        raise InvalidSignature(f"{SIGNATURE_HEADER} does not match the body")


def _line_item(raw: dict[str, Any], where: str) -> LineItem:
    return LineItem(
        id=order_id(raw.get("ref"), f"{where}.ref"),
        name=str(raw.get("title") or ""),
        quantity=quantity(raw.get("qty", 1), f"{where}.qty"),
    )


def _normalise(storefront_id: str, doc: dict[str, Any], headers: Mapping[str, str]) -> Order:
    return Order(
        key=OrderKey(storefront_id, order_id(doc.get("orderRef"), "orderRef")),
        platform=ACME.value,
        number=None,
        name=None,
        email=None,
        currency=None,
        created_at=None,
        line_items=line_items(doc.get("items"), "items", _line_item),
    )


def _sign(body: bytes, secret: str, *, timestamp: int | None, topic: str | None) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Acme-Event": topic or "order.placed",
        "X-Acme-Signature": f"sha256={digest}",
    }


ACME_PLATFORM = PlatformSpec(
    id=ACME,
    title="Acme",
    verifier=_verify,
    normaliser=_normalise,
    signer=_sign,
    order_topic=("x-acme-event", "order.placed"),
)


class Context:
    function_name = "WebhookFunction"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:WebhookFunction"
    aws_request_id = "test-request"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 6000


@pytest.fixture
def acme() -> Iterator[None]:
    with registered_platform(ACME_PLATFORM):
        yield


@pytest.fixture
def secrets(local_aws: LocalResources) -> WebhookSecrets:
    return WebhookSecrets(boto3.client("secretsmanager"), "printflow")


@pytest.fixture
def webhook(handler_of: Any) -> Any:
    handler = handler_of("WebhookFunction")

    def _call(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = handler(event, Context())
        return response["statusCode"], json.loads(response["body"])

    return _call


def _register(order_table: OrderTable, secrets: WebhookSecrets) -> Storefront:
    doc = {"storefrontId": "acme-1", "platform": "acme", "webhookSecret": SECRET}
    return register_storefront(doc, order_table, secrets)


def test_a_registered_fifth_platform_records_a_signed_order(
    acme: None,
    local_aws: LocalResources,
    order_table: OrderTable,
    secrets: WebhookSecrets,
    webhook: Any,
) -> None:
    # Given an Acme storefront, registered the way `printflow storefronts put` does
    storefront = _register(order_table, secrets)
    assert storefront.to_document() == {
        "storefrontId": "acme-1",
        "platform": "acme",
        "flow": "default",
        "description": "",
    }

    # When Acme delivers a signed order (headers from the sample signer, found by id)
    headers = signed_headers("acme", BODY, SECRET)
    status, answer = webhook(webhook_event("acme", "acme-1", BODY, headers))

    # Then it is recorded and its flow started, like any platform's order
    assert (status, answer["orderKey"]) == (202, "acme-1/AC-77"), answer
    item = boto3.client("dynamodb").get_item(
        TableName=local_aws.table(),
        Key={"pk": {"S": "ORDER#acme-1#AC-77"}, "sk": {"S": "ORDER"}},
    )["Item"]
    assert item["status"]["S"] == "Received"
    order = item["order"]["M"]
    assert order["platform"]["S"] == "acme"
    (line,) = order["lineItems"]["L"]
    assert line["M"]["id"]["S"] == "L1" and line["M"]["quantity"]["N"] == "2"
    executions = boto3.client("stepfunctions").list_executions(
        stateMachineArn=local_aws.state_machine()
    )["executions"]
    assert [e["name"] for e in executions] == [item["executionName"]["S"]]


def test_the_fifth_platforms_verifier_and_topics_are_the_ones_used(
    acme: None, order_table: OrderTable, secrets: WebhookSecrets, webhook: Any
) -> None:
    _register(order_table, secrets)
    forged = signed_headers("acme", BODY, "not-the-acme-secret-0000")
    status, _ = webhook(webhook_event("acme", "acme-1", BODY, forged))
    assert status == 401

    refund = signed_headers("acme", BODY, SECRET, topic="order.refunded")
    status, answer = webhook(webhook_event("acme", "acme-1", BODY, refund))
    assert (status, answer["status"], answer["topic"]) == (200, "ignored", "order.refunded")


def test_an_unregistered_platform_is_unknown_everywhere(
    order_table: OrderTable, secrets: WebhookSecrets, webhook: Any
) -> None:
    # Without the registration nothing falls through to another platform
    with pytest.raises(ValidationError, match=r"'acme-1'\.platform: must be one of shopify"):
        _register(order_table, secrets)
    with pytest.raises(ValueError, match="unknown platform 'acme'"):
        signed_headers("acme", BODY, SECRET)
    status, answer = webhook(webhook_event("acme", "acme-1", BODY, {}))
    assert status == 404 and "unknown platform 'acme'" in json.dumps(answer)
