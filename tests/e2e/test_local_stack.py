"""The local stack driven over HTTP like a storefront: the whole template, no Docker."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from printflow_tools.localstack.environment import LocalEnvironment
from printflow_tools.localstack.storefront_setup import chili_provider, register_render_storefront
from printflow_tools.sandboxes import Pipeline
from printflow_tools.webhook_events import DEMO_SECRETS, payload, signed_headers

pytestmark = pytest.mark.e2e


def post(env: LocalEnvironment, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    assert env.stack is not None
    request = urllib.request.Request(
        f"{env.stack.api_url}{path}", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def deliver(
    env: LocalEnvironment, platform: str, storefront_id: str, body: bytes
) -> tuple[int, Any]:
    """Post ``body`` to the webhook the way the platform signs it, with the demo secret."""
    headers = signed_headers(platform, body, DEMO_SECRETS[platform])
    return post(env, f"/webhooks/{platform}/{storefront_id}", body, headers)


def order_view(env: LocalEnvironment, storefront_id: str, order_id: str) -> dict[str, Any]:
    assert env.stack is not None
    url = f"{env.stack.api_url}/orders/{storefront_id}/{order_id}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return dict(json.loads(response.read()))


def wait_for_status(
    env: LocalEnvironment,
    storefront_id: str,
    order_id: str,
    statuses: tuple[str, ...] = ("Success", "Failed"),
    timeout_s: float = 60.0,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        view = order_view(env, storefront_id, order_id)
        if view["status"] in statuses:
            return view
        time.sleep(0.3)
    raise AssertionError(f"order {storefront_id}/{order_id} stuck at {view['status']!r}")


def shopify_order(order_id: str) -> bytes:
    return payload("shopify-orders-create.json").replace(b"5678901234567", order_id.encode(), 1)


def test_a_shopify_order_rendered_by_chili_ends_in_s3(local_stack: LocalEnvironment) -> None:
    status, answer = deliver(local_stack, "shopify", "demo-shopify", shopify_order("9000001"))
    assert (status, answer["orderKey"]) == (202, "demo-shopify/9000001")

    view = wait_for_status(local_stack, "demo-shopify", "9000001")

    assert view["status"] == "Success", view
    assert [h["status"] for h in view["statusHistory"]] == [
        "Received",
        "In progress",
        "In progress",
        "Success",
    ]
    assert len(view["artifacts"]) == 2
    assert local_stack.stack is not None
    s3 = local_stack.stack.client("s3")
    bucket = local_stack.stack.resources.bucket()  # type: ignore[union-attr]
    for artifact in view["artifacts"]:
        head = s3.head_object(Bucket=bucket, Key=artifact["key"])
        assert head["ContentLength"] == artifact["size"]
        assert head["Metadata"]["sha256"] == artifact["sha256"]
    manifest = s3.get_object(Bucket=bucket, Key="orders/demo-shopify/9000001/manifest.json")
    assert json.loads(manifest["Body"].read())["orderId"] == "9000001"


def test_a_delivery_labelled_as_a_form_keeps_its_raw_body(local_stack: LocalEnvironment) -> None:
    # Given a signed order posted the way `curl --data-binary` labels it by default
    body = shopify_order("9000077")
    headers = {
        **signed_headers("shopify", body, DEMO_SECRETS["shopify"]),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    status, _ = post(local_stack, "/webhooks/shopify/demo-shopify", body, headers)
    assert status == 202

    # Then the raw body in S3 is the bytes sent, and reads back with a valid checksum
    assert local_stack.stack is not None
    s3 = local_stack.stack.client("s3")
    bucket = local_stack.stack.resources.bucket()  # type: ignore[union-attr]
    (stored,) = s3.list_objects_v2(Bucket=bucket, Prefix="webhooks/demo-shopify/9000077/")[
        "Contents"
    ]
    raw = s3.get_object(Bucket=bucket, Key=stored["Key"], ChecksumMode="ENABLED")
    assert raw["Body"].read() == body


def test_a_woocommerce_order_rendered_by_customers_canvas(local_stack: LocalEnvironment) -> None:
    local_stack.canvas.add_order(
        storefront_id=42,
        order_id="7311",
        line_item_ids=["412"],
        line_items=[Pipeline.completes(after_polls=0)],
    )
    body = payload("woocommerce-order-created.json")
    status, _ = deliver(local_stack, "woocommerce", "demo-woo", body)
    assert status == 202

    view = wait_for_status(local_stack, "demo-woo", "7311")

    assert view["status"] == "Success", view
    (artifact,) = view["artifacts"]
    assert artifact["provider"] == "customers-canvas"


def test_a_woocommerce_order_completes_with_projects_the_local_storefront_plugin_creates(
    local_stack: LocalEnvironment,
) -> None:
    # Given nothing seeded in Customer's Canvas: the local stack plays the shop's plugin
    integration = local_stack.canvas_integration
    assert integration is not None
    integration.pipeline = Pipeline.completes(after_polls=0)  # no 60 s wait in the suite
    body = payload("woocommerce-order-created.json").replace(b"7311", b"7399")

    status, _ = deliver(local_stack, "woocommerce", "demo-woo", body)
    again, _ = deliver(local_stack, "woocommerce", "demo-woo", body)  # a retried delivery

    assert (status, again) == (202, 200)
    (project,) = local_stack.canvas.projects_of(42, "7399")
    assert local_stack.canvas.project(project).line_item_id == "412"
    view = wait_for_status(local_stack, "demo-woo", "7399")
    assert view["status"] == "Success", view
    (artifact,) = view["artifacts"]
    assert artifact["provider"] == "customers-canvas"


def test_a_thin_bigcommerce_order_is_read_from_the_store_then_rendered(
    local_stack: LocalEnvironment,
) -> None:
    body = payload("bigcommerce-order-created.json")
    status, answer = deliver(local_stack, "bigcommerce", "demo-bigcommerce", body)
    assert (status, answer["orderKey"]) == (202, "demo-bigcommerce/250")

    view = wait_for_status(local_stack, "demo-bigcommerce", "250")

    assert view["status"] == "Success", view
    assert len(view["artifacts"]) == 2  # one per line item the store listed
    assert local_stack.stack is not None
    s3 = local_stack.stack.client("s3")
    bucket = local_stack.stack.resources.bucket()  # type: ignore[union-attr]
    manifest = s3.get_object(Bucket=bucket, Key="orders/demo-bigcommerce/250/manifest.json")
    assert [li["sku"] for li in json.loads(manifest["Body"].read())["lineItems"]] == [
        "POSTER-A2",
        "CARD-A6",
    ]


def test_a_render_failure_takes_the_error_path(local_stack: LocalEnvironment) -> None:
    from printflow.adapters.order_table import OrderTable
    from printflow.adapters.webhook_secrets import WebhookSecrets

    stack = local_stack.stack
    assert stack is not None and stack.resources is not None
    secrets = stack.client("secretsmanager")
    register_render_storefront(
        OrderTable(stack.client("dynamodb"), stack.resources.table()),
        WebhookSecrets(secrets, "printflow"),
        secrets,
        storefront_id="broken-template",
        platform="shopify",
        webhook_secret=DEMO_SECRETS["shopify"],
        provider=chili_provider(
            local_stack.chili, "printflow/providers/broken/chili", template_id="fail-poster"
        ),
        client_id="chili-client",
        client_secret="chili-secret",
    )
    body = shopify_order("9000002")
    assert (
        post(
            local_stack,
            "/webhooks/shopify/broken-template",
            body,
            signed_headers("shopify", body, DEMO_SECRETS["shopify"]),
        )[0]
        == 202
    )

    view = wait_for_status(local_stack, "broken-template", "9000002")

    assert view["status"] == "Failed"
    assert view["error"]["step"] == "generate"
    assert "could not be loaded" in view["error"]["cause"]
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    error_mails = [
        m
        for m in ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
        if "9000002" in m.body and "operations@example.com" in m.destinations["ToAddresses"]
    ]
    assert len(error_mails) == 1
    assert "could not be loaded" in error_mails[0].body


def test_a_duplicate_delivery_is_acknowledged_once(local_stack: LocalEnvironment) -> None:
    body = shopify_order("9000003")
    headers = signed_headers("shopify", body, DEMO_SECRETS["shopify"])

    first = post(local_stack, "/webhooks/shopify/demo-shopify", body, headers)
    second = post(local_stack, "/webhooks/shopify/demo-shopify", body, headers)

    assert first[0] == 202 and second == (
        200,
        {
            "status": "duplicate",
            "orderKey": "demo-shopify/9000003",
            "orderStatus": second[1]["orderStatus"],
        },
    )
    assert local_stack.stack is not None and local_stack.stack.resources is not None
    executions = local_stack.stack.client("stepfunctions").list_executions(
        stateMachineArn=local_stack.stack.resources.state_machine()
    )["executions"]
    assert sum(1 for e in executions if e["name"].startswith("demo-shopify-9000003")) == 1


def test_a_bad_signature_is_refused_and_records_nothing(local_stack: LocalEnvironment) -> None:
    body = shopify_order("9000004")
    status, answer = post(
        local_stack,
        "/webhooks/shopify/demo-shopify",
        body,
        signed_headers("shopify", body, "not-the-shop-secret-000"),
    )

    assert status == 401 and answer["error"] == "invalid_signature"
    with pytest.raises(urllib.error.HTTPError) as missing:
        order_view(local_stack, "demo-shopify", "9000004")
    assert missing.value.code == 404


def test_a_shopify_storefront_registered_with_the_canvas_sandbox_gets_its_projects(
    local_stack: LocalEnvironment,
) -> None:
    from printflow.adapters.order_table import OrderTable
    from printflow.adapters.webhook_secrets import WebhookSecrets
    from printflow_tools.localstack.storefront_setup import customers_canvas_provider

    # Given a storefront a user registered against the local Customer's Canvas sandbox
    stack = local_stack.stack
    assert stack is not None and stack.resources is not None
    assert local_stack.canvas_integration is not None
    local_stack.canvas_integration.pipeline = Pipeline.completes(after_polls=0)
    secrets = stack.client("secretsmanager")
    register_render_storefront(
        OrderTable(stack.client("dynamodb"), stack.resources.table()),
        WebhookSecrets(secrets, "printflow"),
        secrets,
        storefront_id="my-canvas-shop",
        platform="shopify",
        webhook_secret=DEMO_SECRETS["shopify"],
        provider=customers_canvas_provider(local_stack.canvas, "printflow/providers/mine/cc"),
        client_id="cc-client",
        client_secret="cc-secret",
    )

    # When it sends a two-item order
    body = shopify_order("9000003")
    status, _ = post(
        local_stack,
        "/webhooks/shopify/my-canvas-shop",
        body,
        signed_headers("shopify", body, DEMO_SECRETS["shopify"]),
    )

    # Then each line item has a project carrying its personalisation, and the order completes
    assert status == 202
    projects = [
        local_stack.canvas.project(p) for p in local_stack.canvas.projects_of(42, "9000003")
    ]
    assert [p.line_item_id for p in projects] == ["13579246801357", "13579246801358"]
    assert projects[0].personalisation["Headline"] == "Happy 40th, Sam!"
    assert "_chili_template" not in projects[0].personalisation
    view = wait_for_status(local_stack, "my-canvas-shop", "9000003")
    assert view["status"] == "Success", view
    assert len(view["artifacts"]) == 2


def test_an_order_whose_webhook_never_came_is_pulled_and_rendered(
    local_stack: LocalEnvironment,
) -> None:
    # Given an order in the Shopify shop that no webhook announced (an id no other test posts:
    # the tests share one local stack)
    order = json.loads(shopify_order("9000088"))
    order["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    local_stack.shop.add_order(order)
    assert local_stack.stack is not None
    dynamodb = local_stack.stack.client("dynamodb")
    table = local_stack.stack.resources.table()  # type: ignore[union-attr]
    state_key = {"pk": {"S": "RECONCILE"}, "sk": {"S": "demo-shopify"}}
    # the demo storefront was pulled when the stack started: make it due now
    dynamodb.update_item(
        TableName=table,
        Key=state_key,
        UpdateExpression="SET nextDueAt = :now",
        ExpressionAttributeValues={":now": {"N": "0"}},
    )

    # When the scheduled reconciliation runs (every 5 s at the tests' speed-up), the order is
    # recorded through the intake and its flow renders it
    deadline = time.monotonic() + 60
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            view = order_view(local_stack, "demo-shopify", "9000088")
        except urllib.error.HTTPError as error:
            if error.code != 404:  # not recorded yet is the only expected answer
                raise
            time.sleep(0.5)
            continue
        break
    assert view, "the reconciliation never recorded the order"
    view = wait_for_status(local_stack, "demo-shopify", "9000088")

    # Then it went all the way, with its raw body kept as the webhook's would be
    assert view["status"] == "Success", view
    assert len(view["artifacts"]) == 2
    state = dynamodb.get_item(TableName=table, Key=state_key, ConsistentRead=True)["Item"]
    assert state["watermark"]["S"] == order["created_at"]
    s3 = local_stack.stack.client("s3")
    raw = s3.list_objects_v2(
        Bucket=local_stack.stack.resources.bucket(),  # type: ignore[union-attr]
        Prefix="webhooks/demo-shopify/9000088/",
    )
    assert raw["KeyCount"] == 1
