"""Operations on the local stack: a failed order is alarmed, listed and repaired by the CLI.

The CLI runs with no connection flags: it reads the local stack's description file, as it
does against a running ``printflow local``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from printflow.adapters.order_table import OrderTable
from printflow.adapters.webhook_secrets import WebhookSecrets
from printflow_tools.cli import main
from printflow_tools.connection import write_local_stack_file
from printflow_tools.localstack.environment import LocalEnvironment
from printflow_tools.localstack.resources import template_outputs
from printflow_tools.localstack.stack import LOCAL_CREDENTIALS
from printflow_tools.localstack.storefront_setup import chili_provider, register_render_storefront
from printflow_tools.sandboxes.customers_canvas import Pipeline
from printflow_tools.webhook_events import DEMO_SECRETS, signed_headers
from tests.e2e.test_local_stack import order_view, post, shopify_order, wait_for_status

pytestmark = pytest.mark.e2e

STOREFRONT = "ops-chili"


@pytest.fixture
def cli_env(local_stack: LocalEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `printflow local` writes for the CLI, in a file of this test's own."""
    stack = local_stack.stack
    assert stack is not None and stack.resources is not None
    path = tmp_path / "local-stack.json"
    monkeypatch.setenv("PRINTFLOW_LOCAL_STACK_FILE", str(path))
    write_local_stack_file(
        stack.aws_endpoint,
        LOCAL_CREDENTIALS["AWS_REGION"],
        (LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"], LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]),
        template_outputs(stack.resources),
    )
    monkeypatch.delenv("PRINTFLOW_TABLE", raising=False)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def register_ops_storefront(env: LocalEnvironment) -> None:
    stack = env.stack
    assert stack is not None and stack.resources is not None
    secrets = stack.client("secretsmanager")
    register_render_storefront(
        OrderTable(stack.client("dynamodb"), stack.resources.table()),
        WebhookSecrets(secrets, "printflow"),
        secrets,
        storefront_id=STOREFRONT,
        platform="shopify",
        webhook_secret=DEMO_SECRETS["shopify"],
        provider=chili_provider(env.chili, f"printflow/providers/{STOREFRONT}/chili"),
        client_id="chili-client",
        client_secret="chili-secret",
    )


def deliver_order(env: LocalEnvironment, order_id: str) -> None:
    body = shopify_order(order_id)
    headers = signed_headers("shopify", body, DEMO_SECRETS["shopify"])
    assert post(env, f"/webhooks/shopify/{STOREFRONT}", body, headers)[0] == 202


def metric_sum(env: LocalEnvironment, namespace: str, name: str, dimensions: Any) -> float:
    assert env.stack is not None
    if env.stack.service_metrics is not None:
        env.stack.service_metrics.flush()  # the local stack sends metrics asynchronously
    now = datetime.now(UTC)
    points = env.stack.client("cloudwatch").get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=dimensions,
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=5),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    return float(sum(p["Sum"] for p in points))


def emails_to(recipient: str) -> list[Any]:
    return [
        m
        for m in ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
        if recipient in m.destinations["ToAddresses"]
    ]


def emails_about(order_id: str, recipient: str) -> list[Any]:
    return [
        m
        for m in ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
        if order_id in m.body and recipient in m.destinations["ToAddresses"]
    ]


def test_a_failed_order_is_alarmed_listed_and_retried_to_success(
    local_stack: LocalEnvironment, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = local_stack.stack
    assert stack is not None and stack.resources is not None
    register_ops_storefront(local_stack)
    order_id = "9100001"

    # Given CHILI fails every render (a 503 outage would be retried for minutes: the render
    # step's start is retried until the step's timeout: an outage fails no order before it)
    local_stack.chili.task_failure_rate = 1.0
    try:
        deliver_order(local_stack, order_id)
        failed = wait_for_status(local_stack, STOREFRONT, order_id, ("Failed",), 90.0)
    finally:
        local_stack.chili.task_failure_rate = 0.0
    assert failed["error"]["step"] == "generate"

    # Then the order is listed as failed, with its step and cause
    code, out, _ = cli(capsys, "orders", "list", "--status", "Failed", "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    (row,) = [r for r in rows if r["orderId"] == order_id]
    assert row["storefrontId"] == STOREFRONT
    assert row["step"] == "generate"
    assert "Render.Failed" in row["cause"] or "failed" in row["cause"].lower()
    assert row["retries"] == 0

    # And the failed-executions alarm's metric has its datum in CloudWatch
    machine = stack.resources.state_machine()
    dimensions = [{"Name": "StateMachineArn", "Value": machine}]
    assert metric_sum(local_stack, "AWS/States", "ExecutionsFailed", dimensions) >= 1
    alarms = stack.client("cloudwatch").describe_alarms(
        AlarmNamePrefix="printflow-local-OrderExecutionsFailed"
    )["MetricAlarms"]
    assert len(alarms) == 1 and "printflow orders list" in alarms[0]["AlarmDescription"]

    # When the provider is back and the operator retries the order
    customer_mails_before = len(emails_to("jane.doe@example.com"))
    code, out, err = cli(capsys, "orders", "retry", STOREFRONT, order_id)
    assert code == 0, err
    assert "retry 1 started at step 'generate'" in out

    # Then it succeeds, with its files in S3 once, one email and one REST document (the wait
    # is generous: at the end of a full CI run the shared local stack is slow, and this test
    # judges the outcome, not the time; alone it takes about 10 s)
    view = wait_for_status(local_stack, STOREFRONT, order_id, ("Success",), 180.0)
    s3 = stack.client("s3")
    versions = s3.list_object_versions(
        Bucket=stack.resources.bucket(), Prefix=f"orders/{STOREFRONT}/{order_id}/"
    ).get("Versions", [])
    keys = [v["Key"] for v in versions]
    # Each file is written once; the manifest twice: incomplete at the failure, then complete.
    files = [k for k in keys if not k.endswith("/manifest.json")]
    assert len(files) == len(set(files)) == len(view["artifacts"])
    assert keys.count(f"orders/{STOREFRONT}/{order_id}/manifest.json") == 2
    customer_mails = emails_to("jane.doe@example.com")[customer_mails_before:]
    assert [m.subject for m in customer_mails] == ["Your order #1042 is ready for print"]
    assert len(emails_about(order_id, "operations@example.com")) == 1  # the first failure
    documents = [d for d in local_stack.sink.received() if d.json()["order"]["orderId"] == order_id]
    assert len(documents) == 1

    # And `orders show` tells the story: two executions, the retry succeeded
    code, out, _ = cli(capsys, "orders", "show", STOREFRONT, order_id, "--json")
    details = json.loads(out)
    assert [x["status"] for x in details["executions"]] == ["FAILED", "SUCCEEDED"]
    assert details["retries"] == 1
    assert {e["state"] for e in details["emails"]} == {"sent"}
    assert [(r["step"], r["deliveries"]) for r in details["restDeliveries"]] == [("consume", 1)]

    # And a succeeded order is not retried
    code, _, err = cli(capsys, "orders", "retry", STOREFRONT, order_id)
    assert code == 2
    assert "already succeeded" in err


def test_a_running_order_is_not_retried(
    local_stack: LocalEnvironment, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # A WooCommerce order whose Customer's Canvas projects do not exist yet keeps running (an
    # id no other e2e test uses: the tests share one local stack).
    body = json.dumps(
        {**json.loads((Path("events/payloads/woocommerce-order-created.json")).read_text()),
         "id": 7377}
    ).encode()  # fmt: skip
    headers = signed_headers("woocommerce", body, DEMO_SECRETS["woocommerce"])
    # Its project's pipeline stays in progress: the e2e stack speeds up the poll schedule,
    # so the default (done at the second poll) could finish the order before the retry.
    integration = local_stack.canvas_integration
    assert integration is not None
    default_pipeline = integration.pipeline
    integration.pipeline = Pipeline.completes(after_polls=10_000)
    try:
        assert post(local_stack, "/webhooks/woocommerce/demo-woo", body, headers)[0] == 202
    finally:
        integration.pipeline = default_pipeline
    deadline = time.monotonic() + 20
    while True:  # the render step waits for projects that do not exist yet
        code, out, _ = cli(capsys, "orders", "show", "demo-woo", "7377", "--json")
        if code == 0 and json.loads(out)["renderJobs"]:
            break
        assert time.monotonic() < deadline, "the order never started rendering"
        time.sleep(0.3)
    assert [x["status"] for x in json.loads(out)["executions"]] == ["RUNNING"]

    code, _, err = cli(capsys, "orders", "retry", "demo-woo", "7377")

    assert code == 2
    assert "still running" in err
    assert order_view(local_stack, "demo-woo", "7377")["status"] != "Retrying"


def test_the_cli_answers_an_unknown_order_clearly(
    local_stack: LocalEnvironment, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "orders", "show", "demo-shopify", "no-such-order")
    assert code == 2
    assert "not found" in err


@contextlib.contextmanager
def download_function_misconfigured(env: LocalEnvironment, receives: int) -> Iterator[None]:
    """A deployment mistake: the download function's ``ORDER_TABLE`` names a table that does
    not exist (another stage's name pasted into its configuration), so every delivery of a
    download message crashes on its first read of the job (``ResourceNotFoundException``).
    The operator's fix is the configuration itself (``update-function-configuration``),
    which the block's end applies.

    Deployed for the test, as ``sam deploy --parameter-overrides DownloadMaxReceives=N``: the
    queue's ``maxReceiveCount`` is ``receives``, and a crashed delivery is visible again after
    2 s (the queue's ``VisibilityTimeout`` is 5400 s, six times the function's timeout, so on
    AWS the same path takes hours). Both are put back at the end.
    """
    stack = env.stack
    assert stack is not None and stack.resources is not None
    sqs = stack.client("sqs")
    queue_url = stack.resources.queues["DownloadQueue"]
    names = ["RedrivePolicy", "VisibilityTimeout"]
    before = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    policy = json.loads(before["RedrivePolicy"])
    sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "RedrivePolicy": json.dumps({**policy, "maxReceiveCount": receives}),
            "VisibilityTimeout": "2",
        },
    )
    stack.update_function_environment(
        "DownloadFunction",
        {"ORDER_TABLE": "printflow-prod-Orders", "DOWNLOAD_MAX_RECEIVES": str(receives)},
    )
    try:
        yield
    finally:
        stack.update_function_environment("DownloadFunction", {})  # the operator's fix
        sqs.set_queue_attributes(
            QueueUrl=queue_url,
            Attributes={
                "RedrivePolicy": json.dumps(policy),
                "VisibilityTimeout": before["VisibilityTimeout"],
            },
        )


def dead_letters(env: LocalEnvironment) -> int:
    """How many messages the download DLQ holds (counted without receiving them)."""
    assert env.stack is not None and env.stack.resources is not None
    sqs = env.stack.client("sqs")
    url = env.stack.resources.queues["DownloadDeadLetterQueue"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_a_poisoned_download_lands_in_the_dlq_and_its_replay_completes_the_order(
    local_stack: LocalEnvironment, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = local_stack.stack
    assert stack is not None and stack.resources is not None
    register_ops_storefront(local_stack)
    order_id = "9100077"
    chili = local_stack.chili
    sqs = stack.client("sqs")
    letters_before = dead_letters(local_stack)
    customer_mails_before = len(emails_to("jane.doe@example.com"))
    receives = 2

    # Given the download function is misconfigured: each of its deliveries crashes
    with download_function_misconfigured(local_stack, receives):
        tasks_before = len(chili.tasks())
        deliver_order(local_stack, order_id)
        # Then CHILI renders, and each render job's message reaches the DLQ after its
        # `receives` deliveries (the renders finish at different polls: apart)
        deadline = time.monotonic() + 120
        jobs = 0
        while jobs < 2 or dead_letters(local_stack) < letters_before + jobs:
            assert time.monotonic() < deadline, "not every job's message reached the DLQ"
            time.sleep(0.5)
            code, out, err = cli(capsys, "orders", "show", STOREFRONT, order_id, "--json")
            if code == 0:
                jobs = sum(j["state"] == "ready" for j in json.loads(out)["renderJobs"])
        rendered = len(chili.tasks()) - tasks_before
    # And the order waits for its files (the flow's task token), it has not failed
    assert order_view(local_stack, STOREFRONT, order_id)["status"] not in ("Failed", "Success")
    assert jobs == rendered >= 2

    # And `dlq list` says which order and job, and why; the messages stay in the queue
    code, out, err = cli(capsys, "dlq", "list", "--json")
    assert code == 0, err
    letters = [json.loads(line) for line in out.splitlines()]
    ours = [letter for letter in letters if letter["orderId"] == order_id]
    assert len(ours) == jobs, letters
    assert all(letter["jobState"] == "ready" for letter in ours), ours
    assert all(letter["receiveCount"] >= receives for letter in ours), ours
    assert all("deliveries ran out" in letter["reason"] for letter in ours), ours
    assert dead_letters(local_stack) == len(letters)

    # When, the configuration fixed, the operator replays the dead-lettered messages
    code, out, err = cli(capsys, "dlq", "replay", "--all")
    assert code == 0, err
    lines = out.splitlines()  # "[3/4] MESSAGE_ID: action": progress as it goes
    for letter in ours:
        assert any(line.endswith(f"] {letter['messageId']}: requeued") for line in lines), out
    assert lines[-1].startswith(f"[{len(lines)}/{len(lines)}] ")
    assert f"{len(lines)} replayed, 0 kept, of {len(lines)}" in err

    # Then the order completes: nothing rendered twice, each file stored once, the manifest
    # complete, one email to the customer, one document to the REST receiver
    view = wait_for_status(local_stack, STOREFRONT, order_id, ("Success",), 90.0)
    assert len(chili.tasks()) - tasks_before == rendered
    s3 = stack.client("s3")
    bucket = stack.resources.bucket()
    prefix = f"orders/{STOREFRONT}/{order_id}/"

    def stored() -> list[tuple[str, str]]:
        versions = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
        return sorted((v["Key"], v["VersionId"]) for v in versions.get("Versions", []))

    keys = [key for key, _ in stored()]
    files = [key for key in keys if not key.endswith("/manifest.json")]
    assert len(files) == len(set(files)) == len(view["artifacts"]) >= jobs
    assert keys.count(f"{prefix}manifest.json") == 1
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}manifest.json")["Body"].read())
    assert manifest["complete"] is True
    customer_mails = emails_to("jane.doe@example.com")[customer_mails_before:]
    assert [m.subject for m in customer_mails] == ["Your order #1042 is ready for print"]
    documents = [d for d in local_stack.sink.received() if d.json()["order"]["orderId"] == order_id]
    assert len(documents) == 1
    code, out, _ = cli(capsys, "orders", "show", STOREFRONT, order_id, "--json")
    assert [x["status"] for x in json.loads(out)["executions"]] == ["SUCCEEDED"]

    # And a duplicate of a handled message dead-lettered later (SQS delivers at least once)
    # is dropped by the replay: no file, no execution, no email, no REST document more
    body = {"storefrontId": STOREFRONT, "orderId": order_id, "jobId": ours[0]["jobId"]}
    duplicate = sqs.send_message(
        QueueUrl=stack.resources.queues["DownloadDeadLetterQueue"], MessageBody=json.dumps(body)
    )["MessageId"]
    stored_before, mails_before = stored(), len(emails_to("jane.doe@example.com"))
    documents_before = len(local_stack.sink.received())
    code, out, err = cli(capsys, "dlq", "replay", duplicate, "--json")
    assert code == 0, err
    assert [json.loads(line) for line in out.splitlines()] == [
        {"messageId": duplicate, "action": "dropped (already done)"}
    ]
    time.sleep(2)  # anything the replay set off would show by now
    assert order_view(local_stack, STOREFRONT, order_id)["status"] == "Success"
    assert stored() == stored_before
    assert len(emails_to("jane.doe@example.com")) == mails_before
    assert len(local_stack.sink.received()) == documents_before
    code, out, _ = cli(capsys, "orders", "show", STOREFRONT, order_id, "--json")
    assert [x["status"] for x in json.loads(out)["executions"]] == ["SUCCEEDED"]
