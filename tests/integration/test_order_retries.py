"""Order retries and DLQ replays on moto with the real handlers: nothing is done twice.

A retry runs in the retry state machine from the failed step; a render step that runs again
polls again the jobs whose download failed (no new CHILI task) and keeps what is stored.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from printflow.adapters.dead_letters import DeadLetterQueue
from printflow.adapters.download_queue import download_message
from printflow.adapters.order_executions import OrderExecutions
from printflow.adapters.order_table import OrderTable
from printflow.adapters.render_job_table import RenderJobTable, job_from_item
from printflow.adapters.stored_artifacts import StoredArtifacts
from printflow.domain.order import OrderKey
from printflow.operations.dead_letters import replay
from printflow.operations.orders import StateMachines, list_orders
from printflow.operations.retry import OrderRetries, RetryRefused

ORDER = OrderKey("demo-shopify", "5678901234567")


def retries_for(world: Any) -> OrderRetries:
    dynamodb = boto3.client("dynamodb")
    table = world.resources.table()
    machines = StateMachines(
        normal={"default": world.resources.state_machine()},
        retry={"default": world.resources.state_machine("OrderFlowRetryStateMachine")},
    )
    return OrderRetries(
        OrderTable(dynamodb, table),
        RenderJobTable(dynamodb, table, 4),
        OrderExecutions(boto3.client("stepfunctions")),
        machines,
        StoredArtifacts(boto3.client("s3"), world.resources.bucket()),
    )


def retry_execution(world: Any, arn: str) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions")
    return dict(
        world.wait(
            lambda: (e := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and e,
            30,
            "the retry to finish",
        )
    )


def fail_the_download(world: Any) -> None:
    """The order renders, then every download link has expired: the step fails for good."""
    world.register_chili_storefront()
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")
    world.wait(lambda: world.jobs(ORDER), what="render jobs")
    world.polled_until_settled(ORDER)  # tasks finish: download messages queued
    world.chili.expire_downloads()
    world.deliver_downloads()
    assert world.wait_finished(ORDER)["status"] == "FAILED"
    assert world.order(ORDER)["status"] == "Failed"


def test_a_failed_download_is_retried_without_rendering_again(world: Any) -> None:
    fail_the_download(world)
    tasks_before = len(world.chili.tasks())
    world.chili.restore_downloads()  # the fault is removed

    started = retries_for(world).retry(ORDER)
    assert (started.attempt, started.from_step) == (1, "generate")
    world.wait(
        lambda: all(j["state"] == "pending" for j in world.jobs(ORDER)), what="jobs taken up"
    )
    world.polled_until_settled(ORDER)
    world.deliver_downloads()

    assert retry_execution(world, started.execution_arn)["status"] == "SUCCEEDED"
    order = world.order(ORDER)
    assert order["status"] == "Success"
    assert len(world.chili.tasks()) == tasks_before  # nothing rendered twice
    assert all(task.downloads == 1 for task in world.chili.tasks())
    assert len(order["artifacts"]) == 2
    # the first failure's error email, then the success email: one each
    subjects = [m.subject for m in world.emails()]
    assert sum("failed" in s for s in subjects) == 1
    assert sum("ready for print" in s for s in subjects) == 1
    # the order left the Failed listing and shows its retry
    table = OrderTable(boto3.client("dynamodb"), world.resources.table())
    assert not [o for o in list_orders(table, statuses=["Failed"]) if o.order_id == ORDER.order_id]
    assert order["retryAttempt"] == 1


def test_retrying_from_a_finished_render_step_reuses_its_stored_files(world: Any) -> None:
    # Given an order that succeeded, its files in S3 as the manifest says
    world.register_chili_storefront()
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")
    world.wait(lambda: world.jobs(ORDER), what="render jobs")
    world.polled_until_settled(ORDER)
    world.deliver_downloads()
    assert world.wait_finished(ORDER)["status"] == "SUCCEEDED"
    retries = retries_for(world)

    # Then a plain retry is refused, and a forced one from the render step skips it
    with pytest.raises(RetryRefused, match="already succeeded"):
        retries.retry(ORDER)
    started = retries.retry(ORDER, from_step="generate", force=True)

    assert started.skipped == ("generate",)
    assert started.from_step == "consume"
    assert retry_execution(world, started.execution_arn)["status"] == "SUCCEEDED"
    # the REST receiver got the same delivery id twice (it deduplicates); one email
    deliveries = {d.headers["x-printflow-delivery"] for d in world.sink.received()}
    assert len(world.sink.received()) == 2 and len(deliveries) == 1
    assert sum("ready for print" in m.subject for m in world.emails()) == 1


def test_an_unknown_step_is_refused_and_changes_nothing(world: Any) -> None:
    fail_the_download(world)
    with pytest.raises(RetryRefused, match="not a step"):
        retries_for(world).retry(ORDER, from_step="no-such-step")
    assert world.order(ORDER).get("retryAttempt") is None


def test_dlq_replay_requeues_drops_keeps_and_retries(world: Any) -> None:
    fail_the_download(world)
    sqs = boto3.client("sqs")
    dlq_url = world.resources.queues["DownloadDeadLetterQueue"]
    queue = DeadLetterQueue(sqs, dlq_url, world.resources.queues["DownloadQueue"])
    jobs = [job_from_item(item) for item in world.jobs(ORDER)]
    for job in jobs:  # the failed jobs' messages, as the DLQ holds them after the last receive
        sqs.send_message(QueueUrl=dlq_url, MessageBody=json.dumps(download_message(job)))
    sqs.send_message(QueueUrl=dlq_url, MessageBody="not json")
    world.chili.restore_downloads()

    letters = list(queue.messages())
    results = sorted(
        replay(letter, queue, RenderJobTable(boto3.client("dynamodb"), world.resources.table(), 4),
               retries_for(world)).action
        for letter in letters
    )  # fmt: skip

    assert results[0].startswith("covered by the running retry")
    assert results[1] == "kept: malformed message (names no job)"
    assert results[2].startswith("retried order demo-shopify/5678901234567")
    world.wait(lambda: all(j["state"] == "pending" for j in world.jobs(ORDER)), what="jobs")
    world.polled_until_settled(ORDER)
    world.deliver_downloads()
    world.wait(lambda: world.order(ORDER)["status"] == "Success", what="the order to succeed")
    remaining = [letter.body for letter in queue.messages()]
    assert remaining == ["not json"]


def test_a_missing_file_is_downloaded_again_not_rendered(world: Any) -> None:
    # Given a succeeded order one of whose files was deleted from S3 since
    world.register_chili_storefront()
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")
    world.wait(lambda: world.jobs(ORDER), what="render jobs")
    world.polled_until_settled(ORDER)
    world.deliver_downloads()
    assert world.wait_finished(ORDER)["status"] == "SUCCEEDED"
    first, second = world.order(ORDER)["artifacts"]
    s3 = boto3.client("s3")
    versions = s3.list_object_versions(Bucket=world.resources.bucket(), Prefix=first["key"])
    for version in versions["Versions"]:
        s3.delete_object(
            Bucket=world.resources.bucket(), Key=first["key"], VersionId=version["VersionId"]
        )
    tasks_before = len(world.chili.tasks())

    # When it is retried from its render step (the manifest no longer matches S3)
    started = retries_for(world).retry(ORDER, from_step="generate", force=True)
    assert started.skipped == ()
    world.wait(
        lambda: all(j["state"] == "pending" for j in world.jobs(ORDER)), what="jobs reopened"
    )
    world.polled_until_settled(ORDER)
    world.deliver_downloads()

    # Then only the missing file is downloaded again, nothing is rendered
    assert retry_execution(world, started.execution_arn)["status"] == "SUCCEEDED"
    assert len(world.chili.tasks()) == tasks_before
    downloads = sorted(task.downloads for task in world.chili.tasks())
    assert downloads == [1, 2]
    assert (
        s3.head_object(Bucket=world.resources.bucket(), Key=first["key"])["Metadata"]["sha256"]
        == first["sha256"]
    )
    assert second["key"] in {a["key"] for a in world.order(ORDER)["artifacts"]}
