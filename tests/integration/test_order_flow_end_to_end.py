"""The default flow end to end on moto: webhook, render, poll, download, REST, email.

Every function is the real handler; the render providers are the loopback sandboxes; the
REST receiver is a loopback sink (the flow's https URI is rerouted to it, local only).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import boto3
import pytest

from printflow.domain.order import OrderKey
from printflow_tools.sandboxes import Pipeline

SHOPIFY_ORDER = OrderKey("demo-shopify", "5678901234567")
WOO_ORDER = OrderKey("demo-woo", "7311")


@pytest.fixture
def captured_events(world: Any) -> Any:
    """An EventBridge rule on PrintFlow's events, delivering to a queue we can read."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="captured-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="printflow-events", EventPattern=json.dumps({"source": ["printflow"]}))
    events.put_targets(Rule="printflow-events", Targets=[{"Id": "capture", "Arn": arn}])

    def read() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    return read


def run_to_completion(world: Any, key: OrderKey, polls: int = 3) -> dict[str, Any]:
    world.wait(lambda: world.jobs(key), what="render jobs")
    for _ in range(polls):
        world.polled_until_settled(key)
        world.deliver_downloads()
        if world.execution(key)["status"] != "RUNNING":
            break
    return dict(world.wait_finished(key))


def test_a_chili_order_goes_all_the_way(world: Any, captured_events: Any) -> None:
    world.register_chili_storefront()
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")

    execution = run_to_completion(world, SHOPIFY_ORDER)

    assert execution["status"] == "SUCCEEDED", execution
    order = world.order(SHOPIFY_ORDER)
    assert [(h["status"], h.get("step")) for h in order["statusHistory"]] == [
        ("Received", None),
        ("In progress", "generate"),
        ("In progress", "consume"),
        ("Success", "email"),
    ]
    # two line items -> two CHILI tasks -> two PDFs, each verified, then the manifest
    s3 = boto3.client("s3")
    bucket = world.resources.bucket()
    artifacts = order["artifacts"]
    assert len(artifacts) == 2
    for artifact in artifacts:
        body = s3.get_object(Bucket=bucket, Key=artifact["key"])
        data = body["Body"].read()
        assert data.startswith(b"%PDF-")
        assert hashlib.sha256(data).hexdigest() == artifact["sha256"]
        assert body["Metadata"]["sha256"] == artifact["sha256"]
        assert artifact["key"].startswith("orders/demo-shopify/5678901234567/task-")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=order["manifestKey"])["Body"].read())
    assert manifest["schema"] == "printflow.manifest/v1"
    assert [a["key"] for a in manifest["artifacts"]] == [a["key"] for a in artifacts]
    assert [li["sku"] for li in manifest["lineItems"]] == ["POSTER-A2-MATTE", "CARD-SQ"]
    # the REST receiver got the documented order document, with links to the files
    (delivery,) = world.sink.received()
    document = delivery.json()
    assert document["schema"] == "printflow.order/v1"
    assert document["order"]["orderId"] == "5678901234567"
    assert len(document["artifacts"]) == 2 and all(a["url"] for a in document["artifacts"])
    # the success email went to the customer
    (email,) = world.emails()
    assert email.destinations["ToAddresses"] == ["jane.doe@example.com"]
    assert "#1042" in email.subject
    (event,) = captured_events()
    assert event["detail-type"] == "ArtifactsReady"
    assert event["detail"]["manifestKey"] == order["manifestKey"]


def test_a_customers_canvas_order_goes_all_the_way(world: Any) -> None:
    world.register_canvas_storefront()
    world.canvas.add_order(
        storefront_id=42,
        order_id="7311",
        line_item_ids=["412"],
        line_items=[Pipeline.completes(after_polls=0, anonymous_access=True)],
    )
    world.post("woocommerce", "demo-woo", "woocommerce-order-created.json")

    execution = run_to_completion(world, WOO_ORDER)

    assert execution["status"] == "SUCCEEDED", execution
    order = world.order(WOO_ORDER)
    assert order["status"] == "Success"
    (artifact,) = order["artifacts"]
    assert artifact["provider"] == "customers-canvas" and artifact["lineItemId"] == "412"
    (email,) = world.emails()
    assert email.destinations["ToAddresses"] == ["alex.rivera@example.org"]


def test_a_rest_receiver_failing_once_is_retried(world: Any) -> None:
    world.register_chili_storefront()
    world.sink.answer(500, 200)
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")

    execution = run_to_completion(world, SHOPIFY_ORDER)

    assert execution["status"] == "SUCCEEDED"
    assert [d.status for d in world.sink.received()] == [500, 200]
    deliveries = {d.headers["x-printflow-delivery"] for d in world.sink.received()}
    assert len(deliveries) == 1  # the same delivery id: the receiver can dedupe


def test_a_rest_receiver_refusing_takes_the_error_path(world: Any) -> None:
    world.register_chili_storefront()
    world.sink.answer(400)
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")

    execution = run_to_completion(world, SHOPIFY_ORDER)

    assert execution["status"] == "FAILED" and execution["error"] == "OrderFailed"
    order = world.order(SHOPIFY_ORDER)
    assert order["status"] == "Failed"
    assert order["error"]["step"] == "consume"
    assert len(world.sink.received()) == 1  # a 4xx is not retried
    (email,) = world.emails()
    assert email.destinations["ToAddresses"] == ["operations@example.com"]
    assert "answered 400" in email.body


def deploy_flow(world: Any, change: Any) -> None:
    """Deploy a variant of the default flow (as `sam deploy` would after a flow change)."""
    from printflow.flows.compiler import apply_substitutions, compile_flow_text
    from printflow.flows.validation import parse_flow
    from printflow_tools.localstack.template import REPO_ROOT

    document = json.loads((REPO_ROOT / "flows" / "default.json").read_text())
    change({step["stepDefinitionId"]: step for step in document})
    resolver = world.resources.resolver
    functions = ("GenerateProductionFilesFunction", "ConsumeRestApiFunction", "SendEmailFunction")
    values = {f"{name}Arn": resolver.arns[name] for name in functions}
    values["OrderTable"] = world.resources.table()
    definition = apply_substitutions(compile_flow_text(parse_flow(document)), values)
    boto3.client("stepfunctions").update_state_machine(
        stateMachineArn=world.resources.state_machine(), definition=definition
    )


def test_a_render_step_timing_out_takes_the_error_path(world: Any) -> None:
    deploy_flow(world, lambda steps: steps["generate"].update(timeout=2))
    world.register_chili_storefront()
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")
    world.wait(lambda: world.jobs(SHOPIFY_ORDER), what="render jobs")

    # nobody polls: the render step's own timeout fires
    execution = world.wait_finished(SHOPIFY_ORDER, timeout_s=20)

    assert execution["status"] == "FAILED"
    assert execution["cause"].startswith("States.Timeout")
    order = world.order(SHOPIFY_ORDER)
    assert order["status"] == "Failed" and order["error"]["error"] == "States.Timeout"
    (email,) = world.emails()
    assert email.destinations["ToAddresses"] == ["operations@example.com"]
    assert "States.Timeout" in email.body


def test_a_failing_step_without_on_error_fails_the_order(world: Any) -> None:
    deploy_flow(world, lambda steps: steps["consume"].pop("onError"))
    world.register_chili_storefront()
    world.sink.answer(404)
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")

    execution = run_to_completion(world, SHOPIFY_ORDER)

    assert execution["status"] == "FAILED" and execution["error"] == "OrderFailed"
    order = world.order(SHOPIFY_ORDER)
    assert order["status"] == "Failed"
    assert order["error"]["step"] == "consume" and "answered 404" in order["error"]["cause"]
    assert order["statusHistory"][-1]["status"] == "Failed"
    assert world.emails() == []  # no error step ran
