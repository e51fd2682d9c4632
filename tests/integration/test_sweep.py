"""The sweep: an order acknowledged but never started is started later, once."""

from __future__ import annotations

import time
from typing import Any

import boto3

from printflow.adapters.order_flows import OrderFlowStarter
from printflow.adapters.order_table import OrderTable
from printflow.domain.order import OrderKey
from printflow.orders.sweep import StuckOrderSweep
from printflow_tools.localstack.resources import LocalResources
from printflow_tools.webhook_events import DEMO_SECRETS, payload, signed_headers, webhook_event

from .test_webhook import Context

KEY = OrderKey("demo-shopify", "5678901234567")


def sweep(resources: LocalResources, minutes_later: float) -> StuckOrderSweep:
    return StuckOrderSweep(
        OrderTable(boto3.client("dynamodb"), resources.table()),
        OrderFlowStarter(boto3.client("stepfunctions"), {"default": resources.state_machine()}),
        due_shards=4,
        clock=lambda: time.time() + minutes_later * 60,
    )


def executions(resources: LocalResources) -> list[str]:
    listed = boto3.client("stepfunctions").list_executions(
        stateMachineArn=resources.state_machine()
    )["executions"]
    return [e["name"] for e in listed]


def post_with_start_failing(resources: LocalResources, handler: Any) -> None:
    from printflow.adapters import aws

    def refuse(**_: Any) -> None:
        raise RuntimeError("states unavailable")

    sfn = aws.client("stepfunctions")
    sfn.meta.events.register("before-call.states.StartExecution", refuse)
    try:
        body = payload("shopify-orders-create.json")
        response = handler(
            webhook_event(
                "shopify",
                "demo-shopify",
                body,
                signed_headers("shopify", body, DEMO_SECRETS["shopify"]),
            ),
            Context(),
        )
    finally:
        sfn.meta.events.unregister("before-call.states.StartExecution", refuse)
    assert response["statusCode"] == 202


def test_an_order_whose_start_failed_is_started_by_the_sweep(
    local_aws: LocalResources, register: Any, handler_of: Any
) -> None:
    register("demo-shopify", "shopify")
    post_with_start_failing(local_aws, handler_of("WebhookFunction"))
    assert executions(local_aws) == []

    assert sweep(local_aws, minutes_later=1).run().checked == 0  # not due yet

    report = sweep(local_aws, minutes_later=4).run()

    assert (report.checked, report.started) == (1, 1)
    assert executions(local_aws) == [KEY.execution_name]
    # the order left the sweep's index: a later sweep does not look at it again
    assert sweep(local_aws, minutes_later=10).run().checked == 0


def test_an_order_already_running_is_only_taken_out_of_the_sweep(
    local_aws: LocalResources, register: Any, handler_of: Any
) -> None:
    register("demo-shopify", "shopify")
    body = payload("shopify-orders-create.json")
    handler_of("WebhookFunction")(
        webhook_event(
            "shopify",
            "demo-shopify",
            body,
            signed_headers("shopify", body, DEMO_SECRETS["shopify"]),
        ),
        Context(),
    )

    report = sweep(local_aws, minutes_later=4).run()

    assert (report.checked, report.started, report.already_started) == (1, 0, 1)
    assert executions(local_aws) == [KEY.execution_name]
