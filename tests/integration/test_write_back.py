"""update-storefront-order on moto's Step Functions with the real handlers (issue 12 §1).

The flow is ``flows/write-back.json`` (the default flow with a ``tell-shop`` step after the
render); the shops are the loopback store sandboxes, reached through the SSRF guard.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from printflow.adapters.dynamo_types import deserialize_item
from printflow.adapters.order_flows import execution_arn
from printflow.domain.order import OrderKey
from printflow.errors import StepFailed, StepRetryable
from printflow.operations.retry import RetryRefused
from printflow_tools.connection import StackConnection
from printflow_tools.localstack.resources import template_outputs
from printflow_tools.localstack.storefront_setup import _put_secret
from printflow_tools.sandboxes import Pipeline
from printflow_tools.sandboxes.bigcommerce import demo_order
from printflow_tools.stack_operations import order_retries

from .world import context

WRITE_BACK_FLOW: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[2] / "flows" / "write-back.json").read_text()
)
SHOPIFY_ORDER = OrderKey("demo-shopify", "5678901234567")
WOO_ORDER = OrderKey("demo-woo", "7311")
TAG = "printflow-files-ready"


def flow_with(**options: Any) -> list[dict[str, Any]]:
    flow = json.loads(json.dumps(WRITE_BACK_FLOW))
    flow[1]["options"] = options
    return flow


def run(
    world: Any, key: OrderKey, flow: list[dict[str, Any]] | None = None, name: str = ""
) -> dict[str, Any]:
    """Play the poll timers and the download queue until the order's execution ends: the one
    the webhook started on the deployed write-back flow, or ``flow`` started on a machine of
    its own (for a storefront on a flow name the stack does not deploy)."""
    if flow is None:
        machine = world.resources.state_machine("WriteBackFlowStateMachine")
        arn = execution_arn(machine, key)
    else:
        arn = world.start_flow(flow, key, name)
    world.wait(lambda: world.jobs(key), timeout_s=60, what="render jobs")
    sfn = boto3.client("stepfunctions")
    for _ in range(5):
        world.polled_until_settled(key)
        world.deliver_downloads()
        if sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
            break
    return world.wait_execution(arn, timeout_s=90)


def note_records(world: Any, key: OrderKey) -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").query(
        TableName=world.resources.table(),
        KeyConditionExpression="pk = :pk AND begins_with(sk, :effect)",
        ExpressionAttributeValues={
            ":pk": {"S": f"ORDER#{key.storefront_id}#{key.order_id}"},
            ":effect": {"S": "EFFECT#note#"},
        },
        ConsistentRead=True,
    )["Items"]
    return [deserialize_item(i) for i in items]


def shop_order(world: Any) -> None:
    world.shop.add_order(SHOPIFY_ORDER.order_id, tags=["vip"])
    world.register_chili_storefront(flow="write-back", store_api=True)
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")


def test_the_tag_and_the_links_arrive_at_the_shop(world: Any) -> None:
    shop_order(world)

    execution = run(world, SHOPIFY_ORDER)

    assert execution["status"] == "SUCCEEDED", execution
    order = world.shop.order(SHOPIFY_ORDER.order_id)
    assert order.tags == ["vip", TAG]  # added, the shop's own kept
    note = order.metafields[("printflow", "note-tell-shop")]
    assert note["type"] == "multi_line_text_field"
    artifacts = world.order(SHOPIFY_ORDER)["artifacts"]
    assert note["value"].startswith("PrintFlow made the print files of order #1042:\n")
    assert len(artifacts) == 2
    for artifact in artifacts:  # one "name: presigned link" line per file in S3
        assert f"{artifact['filename']}: http" in note["value"]
        assert artifact["key"] in note["value"]
    (record,) = note_records(world, SHOPIFY_ORDER)
    assert record["state"] == "done" and record["step"] == "tell-shop"
    history = [h.get("step") for h in world.order(SHOPIFY_ORDER)["statusHistory"]]
    assert history == [None, "generate", "tell-shop", "consume", "email"]


def test_a_repeated_step_adds_nothing_twice(world: Any) -> None:
    """WooCommerce notes are appended: the record keeps the second call from adding one."""
    world.site.add_order(WOO_ORDER.order_id)
    world.register_canvas_storefront(flow="direct", store_api=True)
    world.post("woocommerce", "demo-woo", "woocommerce-order-created.json")
    event = {
        "input": {"order": {"storefrontId": "demo-woo", "orderId": "7311"}},
        "step": {
            "id": "tell-shop",
            "type": "update-storefront-order",
            "successStatus": "In progress",
            "options": {"tags": [TAG], "status": "completed", "note": "Files of {{order.name}}"},
        },
        "execution": "arn:aws:states:us-east-1:123456789012:execution:flow:demo-woo-7311",
    }
    handler = world.handlers["UpdateStorefrontOrderFunction"]

    first = handler(event, context("UpdateStorefrontOrderFunction"))
    again = handler(event, context("UpdateStorefrontOrderFunction"))

    assert first["note"] == "written" and again["note"] == "already written"
    site_order = world.site.order(WOO_ORDER.order_id)
    (note,) = site_order.notes  # one note, not two
    assert note["note"].startswith("Files of #7311\n\nTags: printflow-files-ready\n\n")
    assert note["note"].endswith(f"[printflow note {note_records(world, WOO_ORDER)[0]['sk'][12:]}]")
    assert note["customer_note"] is False
    assert site_order.status == "completed"
    # another execution of the same step is a new delivery: it writes its own note
    handler({**event, "execution": event["execution"] + "-2"}, context("x"))
    assert len(world.site.order(WOO_ORDER.order_id).notes) == 2


def test_refused_credentials_take_the_error_path_naming_the_step(world: Any) -> None:
    shop_order(world)
    secrets = boto3.client("secretsmanager")
    _put_secret(secrets, "printflow/store-apis/demo-shopify", {"accessToken": "revoked"})

    execution = run(world, SHOPIFY_ORDER)

    assert execution["status"] == "FAILED"
    order = world.order(SHOPIFY_ORDER)
    assert order["error"]["step"] == "tell-shop"
    assert (
        "step 'tell-shop': tagsAdd: HTTP 401, the shop refused the access token"
        in (order["error"]["cause"])
    )
    assert world.shop.order(SHOPIFY_ORDER.order_id).tags == ["vip"]
    assert note_records(world, SHOPIFY_ORDER) == []


def test_a_throttled_shop_is_waited_out(world: Any) -> None:
    shop_order(world)
    # Another app spends the shop's whole budget just before PrintFlow's first request.
    world.shop.drain_before_next_request(world.shop.bucket_size)

    execution = run(world, SHOPIFY_ORDER)

    assert execution["status"] == "SUCCEEDED", execution
    assert world.shop.order(SHOPIFY_ORDER.order_id).tags == ["vip", TAG]
    posts = [r for r in world.shop.requests if r.method == "POST"]
    assert len(posts) >= 3  # a THROTTLED answer (200, nothing done), tagsAdd, metafieldsSet
    assert ("printflow", "note-tell-shop") in world.shop.order(SHOPIFY_ORDER.order_id).metafields


def test_a_bigcommerce_order_gets_its_status_and_an_appended_staff_note(world: Any) -> None:
    world.register_bigcommerce_storefront(flow="direct")
    order, products = demo_order()
    world.store.add_order({**order, "staff_notes": "Gift wrap, please."}, products)
    event = {
        "input": {"order": {"storefrontId": "demo-bigcommerce", "orderId": "250"}},
        "step": {
            "id": "tell-shop",
            "type": "update-storefront-order",
            "successStatus": "In progress",
            "options": {"tags": [TAG], "status": "Awaiting Shipment", "note": "Files ready."},
        },
        "execution": "arn:aws:states:us-east-1:123456789012:execution:flow:bc-250",
    }
    world.post("bigcommerce", "demo-bigcommerce", "bigcommerce-order-created.json")

    result = world.handlers["UpdateStorefrontOrderFunction"](event, context("x"))

    assert result == {"platform": "bigcommerce", "tags": 1, "status": "9", "note": "written"}
    order = world.store.order(250)
    assert order["status_id"] == 9 and order["status"] == "Awaiting Shipment"
    assert order["staff_notes"].startswith("Gift wrap, please.\n\nFiles ready.\n\nTags: " + TAG)


def test_a_canvas_order_on_woocommerce_goes_all_the_way(world: Any) -> None:
    world.site.add_order(WOO_ORDER.order_id)
    world.register_canvas_storefront(flow="woo-status", store_api=True)
    world.canvas.add_order(
        storefront_id=42,
        order_id="7311",
        line_item_ids=["412"],
        line_items=[Pipeline.completes(after_polls=0, anonymous_access=True)],
    )
    world.post("woocommerce", "demo-woo", "woocommerce-order-created.json")

    execution = run(world, WOO_ORDER, flow_with(status="completed"), "woo-status")

    assert execution["status"] == "SUCCEEDED", execution
    assert world.site.order(WOO_ORDER.order_id).status == "completed"


def step_event(storefront_id: str, order_id: str, **options: Any) -> dict[str, Any]:
    return {
        "input": {"order": {"storefrontId": storefront_id, "orderId": order_id}},
        "step": {
            "id": "tell-shop",
            "type": "update-storefront-order",
            "successStatus": "In progress",
            "options": options,
        },
        "execution": f"arn:aws:states:us-east-1:123456789012:execution:flow:{storefront_id}",
    }


def test_a_storefront_without_a_store_api_fails_the_step_at_run_time(world: Any) -> None:
    world.register_chili_storefront()  # the default flow: registered without a storeApi
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")
    handler = world.handlers["UpdateStorefrontOrderFunction"]

    with pytest.raises(StepFailed) as failed:
        handler(step_event("demo-shopify", SHOPIFY_ORDER.order_id, tags=[TAG]), context("x"))

    assert str(failed.value).startswith(
        "step 'tell-shop': storefront 'demo-shopify' has no storeApi to write back to"
    )


def test_a_refused_note_fails_the_step_and_leaves_no_record(world: Any) -> None:
    world.register_canvas_storefront(flow="direct", store_api=True)
    world.post("woocommerce", "demo-woo", "woocommerce-order-created.json")  # not in the site
    handler = world.handlers["UpdateStorefrontOrderFunction"]

    with pytest.raises(StepFailed, match=r"step 'tell-shop': GET .*/notes: HTTP 404: Invalid ID"):
        handler(step_event("demo-woo", WOO_ORDER.order_id, note="files"), context("x"))

    assert note_records(world, WOO_ORDER) == []  # released: a rerun may write it


def test_a_rate_limited_site_past_the_step_s_time_retries_the_step(world: Any) -> None:
    world.site.add_order(WOO_ORDER.order_id)
    world.register_canvas_storefront(flow="direct", store_api=True)
    world.post("woocommerce", "demo-woo", "woocommerce-order-created.json")
    world.site.behaviour.throttle_rate = 1.0
    world.site.behaviour.retry_after_s = 60
    handler = world.handlers["UpdateStorefrontOrderFunction"]

    with pytest.raises(
        StepRetryable, match=r"PUT /wp-json/wc/v3/orders/7311: HTTP 429 \(it asks to wait 60 s\)"
    ):
        handler(step_event("demo-woo", WOO_ORDER.order_id, status="completed"), context("x"))

    assert world.site.order(WOO_ORDER.order_id).status == "processing"


def died_after_the_shop_answered(world: Any, key: OrderKey) -> None:
    """Put the note's record back as an attempt left it that died between the shop's answer
    and marking it done, more than the 5 minutes ago after which a claim is taken over."""
    (record,) = note_records(world, key)
    boto3.client("dynamodb").update_item(
        TableName=world.resources.table(),
        Key={"pk": {"S": record["pk"]}, "sk": {"S": record["sk"]}},
        UpdateExpression="SET #state = :claimed, claimedAt = :old",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues={":claimed": {"S": "claimed"}, ":old": {"N": "1"}},
    )


@pytest.mark.parametrize("platform", ["woocommerce", "bigcommerce"])
def test_a_note_is_not_doubled_by_an_attempt_that_died_before_recording_it(
    world: Any, platform: str
) -> None:
    # Given a note written to the shop by an attempt that died before marking it done
    if platform == "woocommerce":
        world.site.add_order(WOO_ORDER.order_id)
        world.register_canvas_storefront(flow="direct", store_api=True)
        world.post("woocommerce", "demo-woo", "woocommerce-order-created.json")
        key = WOO_ORDER
    else:
        world.register_bigcommerce_storefront(flow="direct")
        world.store.add_order(*demo_order())
        world.post("bigcommerce", "demo-bigcommerce", "bigcommerce-order-created.json")
        key = OrderKey("demo-bigcommerce", "250")
    handler = world.handlers["UpdateStorefrontOrderFunction"]
    # The links of {{artifacts.links}} are presigned again on every attempt: the marker, not
    # the text, says the note is there.
    event = step_event(key.storefront_id, key.order_id, note="Files {{order.name}}")
    assert handler(event, context("x"))["note"] == "written"
    died_after_the_shop_answered(world, key)

    # When the step's retry takes the stale claim over
    again = handler(event, context("x"))

    # Then it finds its note in the shop and writes none, and the record is done
    assert again["note"] == "written"
    if platform == "woocommerce":
        notes = [n["note"] for n in world.site.order(key.order_id).notes]
    else:
        notes = [n for n in world.store.order(250)["staff_notes"].split("\n\n") if "Files" in n]
    assert len(notes) == 1, notes
    (record,) = note_records(world, key)
    assert record["state"] == "done"


def test_a_failed_write_back_order_is_retried_on_its_own_flow_to_success(world: Any) -> None:
    # Given a write-back order that failed at its tell-shop step (the shop refused the token)
    shop_order(world)
    secrets = boto3.client("secretsmanager")
    _put_secret(secrets, "printflow/store-apis/demo-shopify", {"accessToken": "revoked"})
    assert run(world, SHOPIFY_ORDER)["status"] == "FAILED"
    tasks_before = len(world.chili.tasks())

    # When the token is fixed and the order is retried, wired as the CLI wires it: from the
    # template's outputs, which name each flow's retry state machine
    _put_secret(
        secrets, "printflow/store-apis/demo-shopify", {"accessToken": world.shop.access_token}
    )
    connection = StackConnection(boto3.Session(), None, template_outputs(world.resources))
    started = order_retries(connection).retry(SHOPIFY_ORDER)

    # Then it runs on the write-back flow's retry machine, from tell-shop, to Success
    machine = world.resources.state_machine("WriteBackFlowRetryStateMachine")
    assert started.execution_arn.startswith(machine.replace(":stateMachine:", ":execution:"))
    assert started.from_step == "tell-shop"
    execution = world.wait_execution(started.execution_arn, timeout_s=90)
    assert execution["status"] == "SUCCEEDED", execution
    assert world.order(SHOPIFY_ORDER)["status"] == "Success"
    assert world.shop.order(SHOPIFY_ORDER.order_id).tags == ["vip", TAG]
    assert len(world.chili.tasks()) == tasks_before  # nothing rendered again


def test_an_order_whose_flow_has_no_retry_machine_is_refused_clearly(world: Any) -> None:
    shop_order(world)
    assert run(world, SHOPIFY_ORDER)["status"] == "SUCCEEDED"
    outputs = template_outputs(world.resources)
    # A stack that deploys only the default flow's retry entry (as before this issue)
    outputs["RetryFlows"] = json.dumps({"default": outputs["OrderFlowRetryStateMachineArn"]})
    connection = StackConnection(boto3.Session(), None, outputs)

    with pytest.raises(RetryRefused, match="flow 'write-back' has no retry state machine"):
        order_retries(connection).retry(SHOPIFY_ORDER, force=True)
    assert world.order(SHOPIFY_ORDER)["status"] == "Success"  # nothing changed
