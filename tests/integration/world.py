"""An integration world: the template on moto, every handler real and in process.

Step Functions executes the compiled flow; its Lambda tasks are dispatched to the real step
handlers; the provider sandboxes and a REST sink listen on loopback; SES is moto's. Tests
drive it like the platform would: post webhooks, run the poller, deliver download batches.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from printflow.adapters.dynamo_types import deserialize_item
from printflow.adapters.order_table import OrderTable
from printflow.adapters.webhook_secrets import WebhookSecrets
from printflow.domain.order import OrderKey
from printflow_tools.localstack.handlers import Handler, load_handler
from printflow_tools.localstack.lambda_dispatch import LambdaContext, LambdaDispatcher
from printflow_tools.localstack.resources import LocalResources
from printflow_tools.localstack.rest_sink import RestSink
from printflow_tools.localstack.storefront_setup import (
    chili_provider,
    customers_canvas_provider,
    register_render_storefront,
    store_api,
)
from printflow_tools.sandboxes import BigCommerceSandbox, ChiliSandbox, CustomersCanvasSandbox
from printflow_tools.sandboxes.bigcommerce import demo_order
from printflow_tools.webhook_events import (
    BIGCOMMERCE_SECRET_HEADER,
    DEMO_SECRETS,
    payload,
    signed_headers,
    webhook_event,
)

SENDER = "printflow@example.com"
OPERATIONS = "operations@example.com"


def context(function: str, seconds: float = 60.0) -> LambdaContext:
    return LambdaContext(
        function_name=function,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{function}",
        memory_limit_in_mb=256,
        aws_request_id="test",
        deadline=time.monotonic() + seconds,
    )


@dataclass
class World:
    resources: LocalResources
    dispatcher: LambdaDispatcher
    sink: RestSink
    chili: ChiliSandbox
    canvas: CustomersCanvasSandbox
    store: BigCommerceSandbox
    handlers: dict[str, Handler] = field(default_factory=dict)
    retrying: list[str] = field(default_factory=list)  # receipt handles of failed messages

    # -- storefronts and orders -------------------------------------------------------------

    def register_chili_storefront(
        self, storefront_id: str = "demo-shopify", **provider: Any
    ) -> None:
        register_render_storefront(
            OrderTable(boto3.client("dynamodb"), self.resources.table()),
            WebhookSecrets(boto3.client("secretsmanager"), "printflow"),
            boto3.client("secretsmanager"),
            storefront_id=storefront_id,
            platform="shopify",
            webhook_secret=DEMO_SECRETS["shopify"],
            provider={
                **chili_provider(self.chili, f"printflow/providers/{storefront_id}/chili"),
                **provider,
            },
            client_id="chili-client",
            client_secret="chili-secret",
        )

    def register_canvas_storefront(self, storefront_id: str = "demo-woo", **provider: Any) -> None:
        register_render_storefront(
            OrderTable(boto3.client("dynamodb"), self.resources.table()),
            WebhookSecrets(boto3.client("secretsmanager"), "printflow"),
            boto3.client("secretsmanager"),
            storefront_id=storefront_id,
            platform="woocommerce",
            webhook_secret=DEMO_SECRETS["woocommerce"],
            provider={
                **customers_canvas_provider(
                    self.canvas, f"printflow/providers/{storefront_id}/canvas"
                ),
                **provider,
            },
            client_id="cc-client",
            client_secret="cc-secret",
        )

    def register_bigcommerce_storefront(
        self, storefront_id: str = "demo-bigcommerce", *, with_store_api: bool = True
    ) -> None:
        """BigCommerce orders rendered by CHILI, which needs the line items from the store."""
        secretsmanager = boto3.client("secretsmanager")
        extra: dict[str, Any] = {"secretHeader": BIGCOMMERCE_SECRET_HEADER}
        if with_store_api:
            extra["storeApi"] = store_api(self.store, storefront_id, secretsmanager)
        register_render_storefront(
            OrderTable(boto3.client("dynamodb"), self.resources.table()),
            WebhookSecrets(secretsmanager, "printflow"),
            secretsmanager,
            storefront_id=storefront_id,
            platform="bigcommerce",
            webhook_secret=DEMO_SECRETS["bigcommerce"],
            provider=chili_provider(self.chili, f"printflow/providers/{storefront_id}/chili"),
            client_id="chili-client",
            client_secret="chili-secret",
            **extra,
        )

    def post(
        self,
        platform: str,
        storefront_id: str,
        payload_file: str,
        replace: tuple[bytes, bytes] | None = None,
    ) -> dict[str, Any]:
        body = payload(payload_file)
        if replace:
            body = body.replace(*replace)
        event = webhook_event(
            platform, storefront_id, body, signed_headers(platform, body, DEMO_SECRETS[platform])
        )
        response = self.handlers["WebhookFunction"](event, context("WebhookFunction"))
        assert response["statusCode"] in (200, 202), response
        return dict(json.loads(response["body"]))

    # -- the platform's other triggers --------------------------------------------------------

    def polled_until_settled(self, key: OrderKey, timeout_s: float = 30.0) -> dict[str, Any]:
        """Fire poll timers until no job of ``key`` waits for a poll any more."""
        return self.fire_poll_timers(
            until=lambda _: not any(j["state"] in ("pending", "leased") for j in self.jobs(key)),
            timeout_s=timeout_s,
        )

    def run_poller(self, seconds: float = 15.0) -> dict[str, Any]:
        result = self.handlers["PollerFunction"]({}, context("PollerFunction", seconds))
        return dict(result)

    def fire_poll_timers(
        self, until: Any = None, timeout_s: float = 20.0, wait_s: int = 1
    ) -> dict[str, Any]:
        """Run the poll function on poll timers as they fire (in real time: SQS delays them),
        as the event-source mapping would, until ``until(totals)`` holds (or nothing fires
        for ``wait_s`` when ``until`` is None). Returns the poll reports' totals."""
        sqs = boto3.client("sqs")
        url = self.resources.queues["RenderPollQueue"]
        totals: Counter[str] = Counter()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if until is not None and until(totals):
                return dict(totals)
            messages = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=wait_s,
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                if until is None:
                    return dict(totals)
                continue
            event = {
                "Records": [
                    {
                        "messageId": m["MessageId"],
                        "receiptHandle": m["ReceiptHandle"],
                        "body": m["Body"],
                        "attributes": m.get("Attributes", {}),
                        "messageAttributes": {},
                        "eventSource": "aws:sqs",
                        "eventSourceARN": self.resources.resolver.arns["RenderPollQueue"],
                        "awsRegion": "us-east-1",
                    }
                    for m in messages
                ]
            }
            result = self.handlers["RenderPollFunction"](event, context("RenderPollFunction", 30))
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            for m in messages:
                if m["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            totals.update({k: v for k, v in result["poll"].items() if isinstance(v, int)})
        if until is not None and not until(totals):
            raise AssertionError(f"poll timers: condition not met in {timeout_s} s: {dict(totals)}")
        return dict(totals)

    def deliver_downloads(self, max_batches: int = 10) -> list[dict[str, Any]]:
        """Receive download messages and run the download function on them (as Lambda's
        event-source mapping would), deleting the ones that succeeded."""
        sqs = boto3.client("sqs")
        url = self.resources.queues["DownloadQueue"]
        results = []
        for _ in range(max_batches):
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                break
            event = {
                "Records": [
                    {
                        "messageId": m["MessageId"],
                        "receiptHandle": m["ReceiptHandle"],
                        "body": m["Body"],
                        "attributes": m.get("Attributes", {}),
                        "messageAttributes": {},
                        "eventSource": "aws:sqs",
                        "eventSourceARN": self.resources.resolver.arns["DownloadQueue"],
                        "awsRegion": "us-east-1",
                    }
                    for m in messages
                ]
            }
            result = self.handlers["DownloadFunction"](event, context("DownloadFunction", 120))
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            for m in messages:
                if m["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                else:
                    self.retrying.append(m["ReceiptHandle"])
            results.append(result)
        return results

    def let_retry_delays_pass(self) -> None:
        """Failed download messages wait a backoff before SQS shows them again: end it now."""
        sqs = boto3.client("sqs")
        url = self.resources.queues["DownloadQueue"]
        for receipt in self.retrying:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=0)
        self.retrying.clear()

    # -- observations -------------------------------------------------------------------------

    def queued_downloads(self) -> list[dict[str, Any]]:
        """Download messages waiting in the queue (left in it: visibility 0 after reading)."""
        sqs = boto3.client("sqs")
        url = self.resources.queues["DownloadQueue"]
        found = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        return [json.loads(m["Body"]) for m in found.get("Messages", [])]

    def order(self, key: OrderKey) -> dict[str, Any]:
        item = (
            boto3.client("dynamodb")
            .get_item(
                TableName=self.resources.table(),
                Key={
                    "pk": {"S": f"ORDER#{key.storefront_id}#{key.order_id}"},
                    "sk": {"S": "ORDER"},
                },
                ConsistentRead=True,
            )
            .get("Item")
        )
        return deserialize_item(item) if item else {}

    def jobs(self, key: OrderKey) -> list[dict[str, Any]]:
        items = boto3.client("dynamodb").query(
            TableName=self.resources.table(),
            KeyConditionExpression="pk = :pk AND begins_with(sk, :job)",
            ExpressionAttributeValues={
                ":pk": {"S": f"ORDER#{key.storefront_id}#{key.order_id}"},
                ":job": {"S": "JOB#"},
            },
            ConsistentRead=True,
        )["Items"]
        return [deserialize_item(i) for i in items]

    def execution(self, key: OrderKey) -> dict[str, Any]:
        sfn = boto3.client("stepfunctions")
        arn = self.resources.state_machine().replace(":stateMachine:", ":execution:")
        return dict(sfn.describe_execution(executionArn=f"{arn}:{key.execution_name}"))

    def wait(self, predicate: Any, timeout_s: float = 20.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def wait_finished(self, key: OrderKey, timeout_s: float = 30.0) -> dict[str, Any]:
        return dict(
            self.wait(
                lambda: (e := self.execution(key))["status"] != "RUNNING" and e,
                timeout_s,
                f"execution of {key} to finish",
            )
        )

    def emails(self) -> list[Any]:
        return list(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages)


def build_world(resources: LocalResources, stack: ExitStack) -> World:
    ses = boto3.client("sesv2")
    for identity in (SENDER, OPERATIONS):
        ses.create_email_identity(EmailIdentity=identity)
    boto3.client("ses").verify_email_identity(EmailAddress=SENDER)
    sink = stack.enter_context(RestSink())
    chili = stack.enter_context(ChiliSandbox(polls_until_done=1))
    canvas = stack.enter_context(CustomersCanvasSandbox())
    store = stack.enter_context(BigCommerceSandbox())
    store.add_order(*demo_order())
    dispatcher = stack.enter_context(LambdaDispatcher())
    env = {
        "EGRESS_ALLOWLIST": "127.0.0.1",
        "EGRESS_REROUTES": f"orders.example.com=http://127.0.0.1:{sink.port}",
        "SENDER_EMAIL": SENDER,
        "OPERATIONS_EMAIL": OPERATIONS,
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    world = World(resources, dispatcher, sink, chili, canvas, store)
    for logical_id, spec in resources.functions.items():
        handler = load_handler(spec, env)
        world.handlers[logical_id] = handler
        dispatcher.register(logical_id, handler, timeout_seconds=spec.timeout_s)
    return world
