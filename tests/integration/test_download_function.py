"""The download function inside the whole flow: idempotent, and visible when it fails."""

from __future__ import annotations

import json
from typing import Any

import boto3

from printflow.domain.order import OrderKey
from printflow.flows.transitions import states_entered
from printflow_tools.sandboxes import Pipeline

SHOPIFY_ORDER = OrderKey("demo-shopify", "5678901234567")
WOO_ORDER = OrderKey("demo-woo", "7311")


def render_done(world: Any, key: OrderKey) -> None:
    world.wait(lambda: world.jobs(key), what="render jobs")
    world.polled_until_settled(key)
    world.wait(lambda: all(j["state"] == "ready" for j in world.jobs(key)), what="ready jobs")


def no_open_uploads(world: Any) -> bool:
    uploads = boto3.client("s3").list_multipart_uploads(Bucket=world.resources.bucket())
    return not uploads.get("Uploads")


def object_versions(world: Any) -> int:
    listing = boto3.client("s3").list_object_versions(
        Bucket=world.resources.bucket(), Prefix="orders/"
    )
    return len(listing.get("Versions", []))


def post_canvas_order(world: Any, *projects: Any) -> None:
    """WooCommerce order 7311 on Customer's Canvas, one project per line item (no recovery)."""
    world.register_canvas_storefront(maxRecoveryAttempts=0)
    world.canvas.add_order(
        storefront_id=42,
        order_id="7311",
        line_item_ids=["412", "413"][: len(projects)],
        line_items=list(projects),
    )
    world.post("woocommerce", "demo-woo", "woocommerce-order-created.json")


def test_a_redelivered_message_uploads_nothing_twice(world: Any) -> None:
    world.register_chili_storefront()
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")
    render_done(world, SHOPIFY_ORDER)
    messages = world.queued_downloads()
    world.deliver_downloads()
    versions = object_versions(world)
    assert versions == 3  # two PDFs and the manifest

    # SQS delivers at least once: the same messages arrive again
    url = world.resources.queues["DownloadQueue"]
    for body in messages:
        boto3.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(body))
    world.deliver_downloads()

    manifest_versions = object_versions(world) - versions
    assert manifest_versions <= 1  # the manifest may be rewritten, identical; no PDF is
    pdf_versions = [
        v
        for v in boto3.client("s3").list_object_versions(
            Bucket=world.resources.bucket(), Prefix="orders/"
        )["Versions"]
        if v["Key"].endswith(".pdf")
    ]
    assert len(pdf_versions) == 2
    execution = world.wait_finished(SHOPIFY_ORDER)
    assert execution["status"] == "SUCCEEDED"
    history = boto3.client("stepfunctions").get_execution_history(
        executionArn=execution["executionArn"]
    )["events"]
    assert (
        sum(
            1
            for e in history
            if e["type"] == "TaskSucceeded"
            and "manifestKey" in e["taskSucceededEventDetails"].get("output", "")
        )
        == 1
    )


def test_an_expired_download_fails_the_step_with_the_cause(world: Any) -> None:
    world.register_chili_storefront()
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")
    render_done(world, SHOPIFY_ORDER)
    world.chili.expire_downloads()

    world.deliver_downloads()

    execution = world.wait_finished(SHOPIFY_ORDER)
    assert execution["status"] == "FAILED"
    assert execution["cause"].startswith("Download.Failed: ")
    order = world.order(SHOPIFY_ORDER)
    assert order["status"] == "Failed" and order["error"]["step"] == "generate"
    assert "no longer available" in order["error"]["cause"] or "404" in order["error"]["cause"]
    assert "failed" in {j["state"] for j in world.jobs(SHOPIFY_ORDER)}
    assert no_open_uploads(world)
    # Nothing was stored but the manifest that says so.
    assert object_versions(world) == 1
    body = boto3.client("s3").get_object(
        Bucket=world.resources.bucket(), Key="orders/demo-shopify/5678901234567/manifest.json"
    )["Body"]
    manifest = json.loads(body.read())
    assert (manifest["complete"], manifest["artifacts"]) == (False, [])


def test_throttled_then_served_and_several_files_per_job(world: Any) -> None:
    world.register_canvas_storefront()
    world.canvas.download_throttles = 1  # the first file request answers 429
    world.canvas.add_order(
        storefront_id=42,
        order_id="7311",
        line_item_ids=["412"],
        line_items=[Pipeline.completes(after_polls=0, outputs=("pdf", "png"))],
    )
    world.post("woocommerce", "demo-woo", "woocommerce-order-created.json")
    render_done(world, WOO_ORDER)

    first = world.deliver_downloads()
    assert first[0]["batchItemFailures"], "the 429 makes the message come back"
    assert no_open_uploads(world)
    assert world.execution(WOO_ORDER)["status"] == "RUNNING"
    retries = 1
    # each file is throttled once: the second delivery stores the PDF and meets the PNG's 429
    while world.jobs(WOO_ORDER)[0]["state"] != "done" and retries < 4:
        world.let_retry_delays_pass()
        world.deliver_downloads()
        retries += 1
    assert retries == 3
    assert no_open_uploads(world)

    execution = world.wait_finished(WOO_ORDER)
    assert execution["status"] == "SUCCEEDED"
    artifacts = world.order(WOO_ORDER)["artifacts"]
    assert sorted(a["contentType"] for a in artifacts) == ["application/pdf", "image/png"]
    png = boto3.client("s3").get_object(
        Bucket=world.resources.bucket(),
        Key=next(a["key"] for a in artifacts if a["contentType"] == "image/png"),
    )
    assert png["Body"].read(8) == b"\x89PNG\r\n\x1a\n"


def test_a_malformed_message_reaches_the_dead_letter_queue_quickly(world: Any) -> None:
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=world.resources.queues["DownloadQueue"], MessageBody="{not json")

    for _ in range(6):  # maxReceiveCount deliveries, then SQS moves it
        world.deliver_downloads(max_batches=1)

    dead = sqs.receive_message(QueueUrl=world.resources.queues["DownloadDeadLetterQueue"])
    assert [m["Body"] for m in dead.get("Messages", [])] == ["{not json"]
    assert world.queued_downloads() == []


def test_a_failed_order_gets_a_manifest_saying_its_files_are_incomplete(world: Any) -> None:
    # Given an order of two projects: one renders, the other fails for good.
    post_canvas_order(
        world, Pipeline.completes(after_polls=0), Pipeline.fails_forever(polls_to_finish=0)
    )
    world.wait(lambda: len(world.jobs(WOO_ORDER)) >= 1, what="render jobs")
    world.fire_poll_timers(
        until=lambda _: {j["state"] for j in world.jobs(WOO_ORDER)} >= {"ready", "failed"},
        timeout_s=30,
    )

    # When the downloads run (the stored file, and the poller's note about the failed job)
    world.deliver_downloads()

    # Then the manifest names the order's final state, the cause and the orphaned file.
    body = boto3.client("s3").get_object(
        Bucket=world.resources.bucket(), Key="orders/demo-woo/7311/manifest.json"
    )["Body"]
    manifest = json.loads(body.read())
    assert manifest["complete"] is False
    assert "failed" in manifest["cause"]
    assert len(manifest["artifacts"]) == 1
    listing = boto3.client("s3").list_objects_v2(
        Bucket=world.resources.bucket(), Prefix="orders/demo-woo/7311/"
    )
    stored = {o["Key"] for o in listing["Contents"]} - {"orders/demo-woo/7311/manifest.json"}
    assert stored == {a["key"] for a in manifest["artifacts"]}
    execution = world.wait_finished(WOO_ORDER)
    assert execution["status"] == "FAILED"


def test_an_order_whose_jobs_all_fail_gets_its_incomplete_manifest_once(world: Any) -> None:
    # Given an order of two projects that both fail for good (each failed job queues its
    # own download message, and each message sees every job ended)
    post_canvas_order(
        world, Pipeline.fails_forever(polls_to_finish=0), Pipeline.fails_forever(polls_to_finish=0)
    )
    world.wait(lambda: len(world.jobs(WOO_ORDER)) >= 2, what="render jobs")
    world.fire_poll_timers(
        until=lambda _: {j["state"] for j in world.jobs(WOO_ORDER)} == {"failed"},
        timeout_s=30,
    )

    # When the downloads run
    world.deliver_downloads()

    # Then one manifest version says the order is incomplete: one claim picks its writer
    versions = (
        boto3.client("s3")
        .list_object_versions(
            Bucket=world.resources.bucket(), Prefix="orders/demo-woo/7311/manifest.json"
        )
        .get("Versions", [])
    )
    assert len(versions) == 1
    assert world.wait_finished(WOO_ORDER)["status"] == "FAILED"


def test_a_successful_order_manifest_says_complete(world: Any) -> None:
    world.register_chili_storefront()
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")
    render_done(world, SHOPIFY_ORDER)
    world.deliver_downloads()

    body = boto3.client("s3").get_object(
        Bucket=world.resources.bucket(), Key="orders/demo-shopify/5678901234567/manifest.json"
    )["Body"]
    assert json.loads(body.read())["complete"] is True


def test_a_provider_that_keeps_failing_is_retried_past_the_queues_deliveries(world: Any) -> None:
    # Given a finished render whose file downloads answer 503 every time
    world.register_chili_storefront()
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")
    render_done(world, SHOPIFY_ORDER)
    world.chili.behaviour.failure_rate = 1.0
    sqs = boto3.client("sqs")

    # When the download messages have been delivered as often as the queue allows
    # (DownloadMaxReceives, 5: one more failed delivery would dead-letter them)
    for _ in range(5):
        world.deliver_downloads()
        world.let_retry_delays_pass()

    # Then nothing failed: the messages went on as new ones (delayed by the backoff), none
    # is in the dead-letter queue, and the order still waits for its files.
    dead = sqs.receive_message(QueueUrl=world.resources.queues["DownloadDeadLetterQueue"])
    assert dead.get("Messages", []) == []
    attributes = sqs.get_queue_attributes(
        QueueUrl=world.resources.queues["DownloadQueue"],
        AttributeNames=["ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    assert int(attributes["ApproximateNumberOfMessagesDelayed"]) == 2  # one per render job
    assert world.execution(SHOPIFY_ORDER)["status"] == "RUNNING"
    assert {j["state"] for j in world.jobs(SHOPIFY_ORDER)} == {"downloading"}


def test_a_transient_failure_past_the_render_steps_timeout_fails_the_step(world: Any) -> None:
    world.register_chili_storefront()
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")
    render_done(world, SHOPIFY_ORDER)
    world.chili.behaviour.failure_rate = 1.0
    # the render step's timeout has passed (the job's deadline is the step's TimeoutSeconds)
    for job in world.jobs(SHOPIFY_ORDER):
        boto3.client("dynamodb").update_item(
            TableName=world.resources.table(),
            Key={"pk": {"S": job["pk"]}, "sk": {"S": job["sk"]}},
            UpdateExpression="SET deadlineAt = :past",
            ExpressionAttributeValues={":past": {"N": "1"}},
        )

    world.deliver_downloads()

    execution = world.wait_finished(SHOPIFY_ORDER)
    assert execution["status"] == "FAILED"
    assert execution["cause"].startswith("Download.Failed: ")
    assert (
        "still failing at the render step's timeout" in world.order(SHOPIFY_ORDER)["error"]["cause"]
    )


def test_a_render_step_ending_a_failed_flow_has_its_token_failed_by_the_download(
    world: Any,
) -> None:
    # Given a flow whose first render step is refused (CHILI makes no stl) and whose onError
    # step renders the order as PDF: that step ends a failed flow
    flow = [
        {"stepDefinitionId": "generate", "type": "generate-production-files",
         "successStatus": "In progress", "options": {"fileFormat": "stl"}, "onError": "proof"},
        {"stepDefinitionId": "proof", "type": "generate-production-files",
         "successStatus": "Failed", "options": {"fileFormat": "pdf"}},
    ]  # fmt: skip
    world.register_chili_storefront(flow="proof")
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")
    arn = world.start_flow(flow, SHOPIFY_ORDER, "proof")

    # When its render is done and its files are downloaded
    render_done(world, SHOPIFY_ORDER)
    world.deliver_downloads()
    execution = world.wait_execution(arn)

    # Then the files are stored, the order records the first step's error with the proof
    # step's status, and the execution fails as the Fail state made it fail, one transition
    # per step (no Fail state after the step)
    assert execution["status"] == "FAILED"
    assert execution["error"] == "OrderFailed"
    assert execution["cause"].startswith("StepFailed: ")
    assert "stl" in execution["cause"]
    order = world.order(SHOPIFY_ORDER)
    assert order["status"] == "Failed"
    assert order["currentStep"] == "proof"
    assert order["error"]["step"] == "generate"
    assert order["artifacts"]
    history = boto3.client("stepfunctions").get_execution_history(executionArn=arn)["events"]
    assert states_entered(history) == ["generate", "proof"]
