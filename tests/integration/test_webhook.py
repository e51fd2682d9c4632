"""The webhook handler in process, on moto resources built from template.yaml."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from printflow.adapters import aws
from printflow_tools.localstack.resources import LocalResources
from printflow_tools.webhook_events import DEMO_SECRETS, payload, signed_headers, webhook_event

SHOPIFY_BODY = payload("shopify-orders-create.json")


class Context:
    function_name = "WebhookFunction"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:WebhookFunction"
    aws_request_id = "test-request"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 6000


def snapshot(resources: LocalResources) -> dict[str, Any]:
    """Everything a webhook could have written: table items, objects, executions."""
    items = boto3.client("dynamodb").scan(TableName=resources.table())["Items"]
    objects = boto3.client("s3").list_objects_v2(Bucket=resources.bucket()).get("Contents", [])
    executions = boto3.client("stepfunctions").list_executions(
        stateMachineArn=resources.state_machine()
    )["executions"]
    return {
        "items": sorted(json.dumps(i, sort_keys=True) for i in items),
        "objects": sorted(o["Key"] for o in objects),
        "executions": sorted(e["name"] for e in executions),
    }


@pytest.fixture
def storefronts(register: Any) -> None:
    register("demo-shopify", "shopify")
    register("demo-woo", "woocommerce")
    register("demo-bigcommerce", "bigcommerce")
    register("demo-generic", "generic")


@pytest.fixture
def webhook(handler_of: Any, storefronts: None) -> Any:
    handler = handler_of("WebhookFunction")

    def _call(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = handler(event, Context())
        return response["statusCode"], json.loads(response["body"])

    return _call


def signed(platform: str, storefront_id: str, body: bytes, **kwargs: Any) -> dict[str, Any]:
    return webhook_event(
        platform,
        storefront_id,
        body,
        signed_headers(platform, body, DEMO_SECRETS[platform]),
        **kwargs,
    )


def stored_order(resources: LocalResources, storefront_id: str, order_id: str) -> dict[str, Any]:
    item = boto3.client("dynamodb").get_item(
        TableName=resources.table(),
        Key={"pk": {"S": f"ORDER#{storefront_id}#{order_id}"}, "sk": {"S": "ORDER"}},
    )
    return item.get("Item", {})


# -- happy paths ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "storefront_id", "payload_file", "order_id"),
    [
        ("shopify", "demo-shopify", "shopify-orders-create.json", "5678901234567"),
        ("woocommerce", "demo-woo", "woocommerce-order-created.json", "7311"),
        ("bigcommerce", "demo-bigcommerce", "bigcommerce-order-created.json", "250"),
        ("generic", "demo-generic", "generic-order.json", "GEN-2026-000123"),
    ],
)
def test_a_new_order_is_recorded_and_its_flow_started(
    local_aws: LocalResources,
    webhook: Any,
    platform: str,
    storefront_id: str,
    payload_file: str,
    order_id: str,
) -> None:
    body = payload(payload_file)

    status, answer = webhook(signed(platform, storefront_id, body))

    assert status == 202, answer
    assert answer["orderKey"] == f"{storefront_id}/{order_id}"
    item = stored_order(local_aws, storefront_id, order_id)
    assert item["status"]["S"] == "Received"
    assert item["order"]["M"]["orderId"]["S"] == order_id
    raw = item["rawBody"]["M"]
    stored = boto3.client("s3").get_object(Bucket=raw["bucket"]["S"], Key=raw["key"]["S"])
    assert stored["Body"].read() == body
    (execution,) = snapshot(local_aws)["executions"]
    assert execution == item["executionName"]["S"]


def test_base64_encoded_bodies_verify_against_the_raw_bytes(
    local_aws: LocalResources, webhook: Any
) -> None:
    status, _ = webhook(signed("shopify", "demo-shopify", SHOPIFY_BODY, base64_body=True))
    assert status == 202


def test_woocommerce_ping_is_answered_and_not_recorded(
    local_aws: LocalResources, webhook: Any
) -> None:
    before = snapshot(local_aws)
    event = webhook_event(
        "woocommerce",
        "demo-woo",
        payload("woocommerce-ping.form"),
        {"Content-Type": "application/x-www-form-urlencoded"},
        base64_body=True,
    )

    status, answer = webhook(event)

    assert (status, answer["status"]) == (200, "ping")
    assert snapshot(local_aws) == before


def test_other_topics_are_acknowledged_and_ignored(local_aws: LocalResources, webhook: Any) -> None:
    before = snapshot(local_aws)
    headers = signed_headers(
        "shopify", SHOPIFY_BODY, DEMO_SECRETS["shopify"], topic="orders/updated"
    )
    status, answer = webhook(webhook_event("shopify", "demo-shopify", SHOPIFY_BODY, headers))
    assert (status, answer["status"]) == (200, "ignored")
    assert snapshot(local_aws) == before


# -- duplicates -------------------------------------------------------------------------


def test_a_duplicate_delivery_answers_200_and_writes_nothing(
    local_aws: LocalResources, webhook: Any
) -> None:
    assert webhook(signed("shopify", "demo-shopify", SHOPIFY_BODY))[0] == 202
    after_first = snapshot(local_aws)

    status, answer = webhook(signed("shopify", "demo-shopify", SHOPIFY_BODY))

    assert (status, answer["status"]) == (200, "duplicate")
    assert snapshot(local_aws) == after_first


def test_twenty_concurrent_deliveries_make_one_record_and_one_execution(
    local_aws: LocalResources, webhook: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Twenty invocations share this one process, and so the handler module's one Metrics
    # object: Powertools checks that it holds metrics, then serialises it, and another
    # thread's flush can empty it in between (SchemaValidationError). Lambda never runs two
    # invocations in one process, so the metrics are off here: this test is about records.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    event = signed("shopify", "demo-shopify", SHOPIFY_BODY)

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = sorted(status for status, _ in pool.map(lambda _: webhook(event), range(20)))

    assert statuses == [200] * 19 + [202]
    state = snapshot(local_aws)
    orders = [i for i in state["items"] if '"ORDER#' in i]
    assert len(orders) == 1
    assert len(state["executions"]) == 1
    assert len([k for k in state["objects"] if k.startswith("webhooks/")]) == 1


# -- bad input: clear error, nothing written --------------------------------------------


def _tamper(event: dict[str, Any]) -> dict[str, Any]:
    event["body"] = event["body"].replace("Happy 40th", "Happy 50th")
    return event


BAD_INPUTS: list[tuple[str, Any, int, str]] = [
    (
        "missing signature",
        lambda: webhook_event("shopify", "demo-shopify", SHOPIFY_BODY, {}),
        401,
        "missing x-shopify-hmac-sha256",
    ),
    (
        "wrong signature",
        lambda: webhook_event(
            "shopify",
            "demo-shopify",
            SHOPIFY_BODY,
            signed_headers("shopify", SHOPIFY_BODY, "not-the-secret-000000"),
        ),
        401,
        "does not match",
    ),
    (
        "tampered body",
        lambda: _tamper(signed("shopify", "demo-shopify", SHOPIFY_BODY)),
        401,
        "does not match",
    ),
    (
        "unknown platform",
        lambda: webhook_event("magento", "demo-shopify", SHOPIFY_BODY, {}),
        404,
        "unknown platform 'magento'",
    ),
    (
        "unknown storefront",
        lambda: signed("shopify", "nobody", SHOPIFY_BODY),
        404,
        "unknown storefront 'nobody'",
    ),
    (
        "platform mismatch",
        lambda: signed("woocommerce", "demo-shopify", SHOPIFY_BODY),
        404,
        "not registered for woocommerce",
    ),
    (
        "malformed json",
        lambda: signed("generic", "demo-generic", b'{"id": '),
        400,
        "not valid JSON",
    ),
    (
        "no order id",
        lambda: signed("generic", "demo-generic", b'{"number": "1"}'),
        400,
        "order id missing",
    ),
    (
        "too large",
        lambda: signed(
            "generic", "demo-generic", b'{"id": "1", "pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'
        ),
        413,
        "limit is 5242880",
    ),
    (
        "get method",
        lambda: webhook_event("shopify", "demo-shopify", b"", {}, method="GET"),
        405,
        "use POST",
    ),
    (
        "stale generic",
        lambda: webhook_event(
            "generic",
            "demo-generic",
            payload("generic-order.json"),
            signed_headers(
                "generic",
                payload("generic-order.json"),
                DEMO_SECRETS["generic"],
                timestamp=1_000_000_000,
            ),
        ),
        401,
        "replay window",
    ),
]


@pytest.mark.parametrize(
    ("name", "make_event", "status", "message"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_input_gets_a_clear_error_and_changes_nothing(
    local_aws: LocalResources,
    webhook: Any,
    name: str,
    make_event: Any,
    status: int,
    message: str,
) -> None:
    before = snapshot(local_aws)

    got_status, answer = webhook(make_event())

    assert got_status == status, answer
    assert message in answer["message"]
    assert snapshot(local_aws) == before


def test_wrong_shop_domain_is_rejected(
    local_aws: LocalResources, register: Any, handler_of: Any
) -> None:
    register("domain-bound", "shopify", shopDomain="other-shop.myshopify.com")
    handler = handler_of("WebhookFunction")
    response = handler(signed("shopify", "domain-bound", SHOPIFY_BODY), Context())
    assert response["statusCode"] == 401
    assert "x-shopify-shop-domain" in json.loads(response["body"])["message"]


# -- failures after the order is durable --------------------------------------------------


def test_flow_start_failure_keeps_the_order_received(
    local_aws: LocalResources, webhook: Any
) -> None:
    boto3.client("stepfunctions").delete_state_machine(stateMachineArn=local_aws.state_machine())

    status, answer = webhook(signed("shopify", "demo-shopify", SHOPIFY_BODY))

    assert status == 202, answer
    item = stored_order(local_aws, "demo-shopify", "5678901234567")
    assert item["status"]["S"] == "Received"
    # still in its sweep slot, so the poller's sweep will start it
    assert item["dueShard"]["S"].startswith("SWEEP#") and "dueAt" in item


def test_raw_body_failure_answers_503_and_leaves_no_order(
    local_aws: LocalResources, webhook: Any
) -> None:
    s3 = aws.client("s3")

    def fail_put(**_: Any) -> None:
        raise RuntimeError("s3 unavailable")

    s3.meta.events.register("before-call.s3.PutObject", fail_put)
    try:
        status, answer = webhook(signed("shopify", "demo-shopify", SHOPIFY_BODY))
    finally:
        s3.meta.events.unregister("before-call.s3.PutObject", fail_put)

    assert status == 503
    assert "retry" in answer["message"]
    assert stored_order(local_aws, "demo-shopify", "5678901234567") == {}
    # the storefront's retry is then treated as new, not as a duplicate
    assert webhook(signed("shopify", "demo-shopify", SHOPIFY_BODY))[0] == 202


INTAKE_CALLS = [("s3", "PutObject"), ("dynamodb", "PutItem"), ("stepfunctions", "StartExecution")]


def durable_order(resources: LocalResources) -> bool:
    """The order is in the table and the raw body its item names is in S3."""
    item = stored_order(resources, "demo-shopify", "5678901234567")
    if not item:
        return False
    raw = item["rawBody"]["M"]
    boto3.client("s3").head_object(Bucket=raw["bucket"]["S"], Key=raw["key"]["S"])
    return True


@pytest.mark.parametrize(("service", "operation"), INTAKE_CALLS)
def test_a_resend_during_a_failing_delivery_never_acknowledges_a_lost_order(
    local_aws: LocalResources, webhook: Any, service: str, operation: str
) -> None:
    """The storefront resends while the first delivery is slow at ``operation``; then that
    call fails. Whatever each delivery was answered, an acknowledged order is durable."""
    event = signed("shopify", "demo-shopify", SHOPIFY_BODY)
    client = aws.client(service)
    answers: list[int] = []
    state = {"armed": True}

    def resend_then_fail(**_: Any) -> None:
        if not state["armed"]:
            return
        state["armed"] = False
        answers.append(webhook(event)[0])  # the resend, answered while the first waits
        raise RuntimeError(f"{operation} failed after a slow start")

    client.meta.events.register(f"before-call.{service}.{operation}", resend_then_fail)
    try:
        first = webhook(event)[0]
    finally:
        client.meta.events.unregister(f"before-call.{service}.{operation}", resend_then_fail)
    answers.insert(0, first)

    acknowledged = [status for status in answers if status < 300]
    assert acknowledged, answers  # one of the two was told the order is taken
    assert durable_order(local_aws), answers
    # and a later resend changes nothing
    before = snapshot(local_aws)
    assert webhook(event)[0] == 200
    assert snapshot(local_aws) == before


def test_a_duplicate_with_other_bytes_leaves_no_unreferenced_body(
    local_aws: LocalResources, webhook: Any
) -> None:
    assert webhook(signed("shopify", "demo-shopify", SHOPIFY_BODY))[0] == 202
    before = snapshot(local_aws)
    # the same order, delivered again with other bytes (Shopify re-serialises on resend)
    reformatted = json.dumps(json.loads(SHOPIFY_BODY), indent=2).encode()

    status, answer = webhook(signed("shopify", "demo-shopify", reformatted))

    assert (status, answer["status"]) == (200, "duplicate")
    assert snapshot(local_aws) == before


# -- budget ---------------------------------------------------------------------------------


def test_aws_calls_per_new_order_and_per_duplicate(local_aws: LocalResources, webhook: Any) -> None:
    calls: list[str] = []

    def count(event_name: str, **_: Any) -> None:
        calls.append(event_name.split(".", 2)[2])

    # warm the storefront cache with another order first
    warm_body = payload("shopify-orders-create.json").replace(b"5678901234567", b"1", 1)
    assert webhook(signed("shopify", "demo-shopify", warm_body))[0] == 202
    clients = [aws.client(s) for s in ("dynamodb", "s3", "stepfunctions", "secretsmanager")]
    for client in clients:
        client.meta.events.register("before-call.*.*", count)

    assert webhook(signed("shopify", "demo-shopify", SHOPIFY_BODY))[0] == 202
    new_order_calls = list(calls)
    calls.clear()
    assert webhook(signed("shopify", "demo-shopify", SHOPIFY_BODY))[0] == 200
    duplicate_calls = list(calls)

    # The body is stored first, so a recorded order is complete the moment anyone sees it;
    # a resend of the same bytes rewrites the same object.
    assert new_order_calls == ["PutObject", "PutItem", "StartExecution"]
    assert duplicate_calls == ["PutObject", "PutItem"]


# -- Shopify's newer deliveries: the same headers without the X- prefix -------------------


def unprefixed(headers: dict[str, str]) -> dict[str, str]:
    return {name.removeprefix("X-").lower(): value for name, value in headers.items()}


def test_a_shopify_delivery_with_unprefixed_headers_is_recorded(
    local_aws: LocalResources, webhook: Any
) -> None:
    headers = unprefixed(signed_headers("shopify", SHOPIFY_BODY, DEMO_SECRETS["shopify"]))
    assert "shopify-hmac-sha256" in headers and "x-shopify-hmac-sha256" not in headers

    status, answer = webhook(webhook_event("shopify", "demo-shopify", SHOPIFY_BODY, headers))

    assert status == 202, answer
    delivery = stored_order(local_aws, "demo-shopify", "5678901234567")["order"]["M"]["delivery"]
    assert delivery["M"]["topic"]["S"] == "orders/create"
    assert delivery["M"]["eventId"]["S"] == headers["shopify-event-id"]


def test_an_unprefixed_shopify_delivery_of_another_topic_is_ignored(
    local_aws: LocalResources, webhook: Any
) -> None:
    before = snapshot(local_aws)
    headers = unprefixed(
        signed_headers("shopify", SHOPIFY_BODY, DEMO_SECRETS["shopify"], topic="orders/updated")
    )
    status, answer = webhook(webhook_event("shopify", "demo-shopify", SHOPIFY_BODY, headers))
    assert (status, answer["status"]) == (200, "ignored")
    assert snapshot(local_aws) == before


def test_an_unprefixed_shopify_delivery_with_a_wrong_signature_is_refused(
    local_aws: LocalResources, webhook: Any
) -> None:
    before = snapshot(local_aws)
    headers = unprefixed(signed_headers("shopify", SHOPIFY_BODY, "forged-secret-0000"))
    status, answer = webhook(webhook_event("shopify", "demo-shopify", SHOPIFY_BODY, headers))
    assert status == 401
    assert "x-shopify-hmac-sha256 does not match" in answer["message"]
    assert snapshot(local_aws) == before


def test_a_delivery_sent_as_a_form_keeps_its_raw_body(
    local_aws: LocalResources, webhook: Any
) -> None:
    # Given a signed Shopify order sent the way `curl --data-binary` labels it
    headers = {
        **signed_headers("shopify", SHOPIFY_BODY, DEMO_SECRETS["shopify"]),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    status, _ = webhook(webhook_event("shopify", "demo-shopify", SHOPIFY_BODY, headers))
    assert status == 202

    # Then the raw body is stored byte for byte, as an opaque object, with the delivered type
    raw = stored_order(local_aws, "demo-shopify", "5678901234567")["rawBody"]["M"]
    stored = boto3.client("s3").get_object(Bucket=raw["bucket"]["S"], Key=raw["key"]["S"])
    assert stored["Body"].read() == SHOPIFY_BODY
    assert stored["ContentType"] == "application/octet-stream"
    assert stored["Metadata"]["delivered-content-type"] == "application/x-www-form-urlencoded"
