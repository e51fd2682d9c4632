"""State transitions and cost per order of the compiled default flow.

Run from the repository root::

    .venv/bin/python bench/flow_cost.py

Compiles ``flows/default.json``, runs it on moto's Step Functions engine (step Lambdas are
trivial in-process handlers; the render task token is completed by this script, as the
download function would), counts state transitions from the execution history, and prices
them. The last line of output is one JSON object with the figures.

Included in the price: Step Functions Standard transitions, the step Lambdas' requests and
duration (arm64, assumed duration and memory below), and the DynamoDB writes the state
machine itself makes (status updates, error records; write units from the order item's
size). Not included: webhook intake, the poller and download functions, S3, SES, logs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from printflow.adapters.dynamo_types import serialize_item
from printflow.adapters.order_table import NewOrderRecord, OrderTable
from printflow.adapters.task_tokens import TaskTokens
from printflow.domain.order import LineItem, Order, OrderKey, Property, RawBodyRef
from printflow.errors import StepFailed
from printflow.flows import compile_flow_text, parse_flow_json
from printflow.flows.compiler import FUNCTION_ARN_SUBSTITUTIONS, apply_substitutions
from printflow.flows.model import OrderFlow
from printflow.flows.transitions import state_transitions, states_entered
from printflow.steps.completion import StepCompletion
from printflow.steps.context import parse_step_event
from printflow_tools.localstack.fidelity import make_moto_behave_like_aws
from printflow_tools.localstack.lambda_dispatch import LambdaDispatcher

ROOT = Path(__file__).resolve().parents[1]
FLOW_FILE = ROOT / "flows" / "default.json"
ACCOUNT = "123456789012"
TABLE = "printflow-orders"

# Prices (us-east-1, see /work/shared/reference/aws-facts.md).
USD_PER_TRANSITION = 0.025 / 1000
USD_PER_LAMBDA_REQUEST = 0.20 / 1_000_000
USD_PER_GB_SECOND_ARM64 = 0.0000133334
USD_PER_WRITE_UNIT = 0.625 / 1_000_000
# Assumptions about the step Lambdas (start render, POST to a REST API, send an email).
ASSUMED_STEP_DURATION_SECONDS = 0.3
ASSUMED_STEP_MEMORY_MB = 256


def realistic_order_item() -> dict[str, Any]:
    """An order as intake records it: two line items with personalisation properties."""
    key = OrderKey("shop-1", "1001")
    order = Order(
        key=key,
        platform="shopify",
        number="1001",
        name="#1001",
        email="customer@example.com",
        currency="EUR",
        created_at="2025-01-01T10:00:00Z",
        line_items=tuple(
            LineItem(
                id=f"li-{n}",
                name="Personalised poster A3",
                quantity=1,
                sku=f"POSTER-A3-{n}",
                product_id="p-1",
                variant_id="v-1",
                properties=(Property("Name", "Ada Lovelace"), Property("Colour", "Navy")),
            )
            for n in range(2)
        ),
    )
    record = NewOrderRecord(
        order=order,
        raw_body=RawBodyRef("printflow-artifacts", "raw/shopify/shop-1/1001.json"),
        flow="default",
        received_at="2025-01-01T10:00:01Z",
        sweep_due_at=1_735_725_901,
        due_shards=4,
    )
    return record.to_item("bench")


def item_size_bytes(value: Any, name: str = "") -> int:
    """Approximate DynamoDB item size: names + values, small overhead per container entry."""
    size = len(name.encode())
    if isinstance(value, dict):
        return size + 3 + sum(item_size_bytes(v, str(k)) + 1 for k, v in value.items())
    if isinstance(value, list):
        return size + 3 + sum(item_size_bytes(v) + 1 for v in value)
    if isinstance(value, bool) or value is None:
        return size + 1
    if isinstance(value, int | float):
        return size + 1 + math.ceil(len(str(value)) / 2)
    return size + len(str(value).encode())


class Bench:
    def __init__(self, flow: OrderFlow, lambdas: LambdaDispatcher) -> None:
        self.flow = flow
        self.lambdas = lambdas
        self.sfn: Any = boto3.client("stepfunctions")
        self.dynamodb: Any = boto3.client("dynamodb")
        self.tokens: queue.Queue[str] = queue.Queue()
        substitutions = {"OrderTable": TABLE}
        for step_type, variable in FUNCTION_ARN_SUBSTITUTIONS.items():
            substitutions[variable] = self.arn(step_type.value)
        definition = apply_substitutions(compile_flow_text(flow), substitutions)
        self.machine = self.sfn.create_state_machine(
            name="order-flow",
            definition=definition,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/order-flow",
        )["stateMachineArn"]

    @staticmethod
    def arn(step_type: str) -> str:
        return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{step_type}"

    def run(self, name: str, failing_step_type: str | None) -> tuple[list[dict[str, Any]], str]:
        """One order through the flow; ``failing_step_type`` raises StepFailed."""

        completion = StepCompletion(OrderTable(self.dynamodb, TABLE), TaskTokens(self.sfn))

        def handler_for(step_type: str) -> Any:
            def handler(event: dict[str, Any], context: Any) -> Any:
                if step_type == failing_step_type:
                    raise StepFailed("bench: simulated permanent failure")
                if step_type == "generate-production-files":
                    self.tokens.put(event["taskToken"])
                else:  # the step's own status write (and OrderFailed at a failed flow's end)
                    completion.step_done(parse_step_event(event, expected_type=step_type))
                return {"ok": True}

            return handler

        for step_type in FUNCTION_ARN_SUBSTITUTIONS:
            self.lambdas.register(self.arn(step_type.value), handler_for(step_type.value))
        item = realistic_order_item()
        self.dynamodb.put_item(TableName=TABLE, Item=serialize_item(item))
        execution_arn = self.sfn.start_execution(
            stateMachineArn=self.machine,
            name=name,
            input=json.dumps(
                {
                    "order": {
                        "pk": item["pk"],
                        "sk": item["sk"],
                        "storefrontId": item["storefrontId"],
                        "orderId": item["orderId"],
                    }
                }
            ),
        )["executionArn"]
        deadline = time.monotonic() + 30
        while True:
            try:
                token = self.tokens.get(timeout=0.02)
            except queue.Empty:
                pass
            else:
                self.sfn.send_task_success(taskToken=token, output='{"files": []}')
            status = self.sfn.describe_execution(executionArn=execution_arn)["status"]
            if status != "RUNNING":
                break
            if time.monotonic() > deadline:
                sys.exit(f"{name}: execution still running after 30 s")
        events = self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)
        return events["events"], status

    def order_item_size(self) -> int:
        item = self.dynamodb.get_item(
            TableName=TABLE, Key={"pk": {"S": "ORDER#shop-1#1001"}, "sk": {"S": "ORDER"}}
        )["Item"]
        return item_size_bytes(item)


def create_table() -> None:
    from printflow_tools.localstack.resources import create_table_from_template

    create_table_from_template(boto3.client("dynamodb"), TABLE)


def price(transitions: int, invocations: int, writes: int, write_units: int) -> dict[str, float]:
    gb_seconds = invocations * ASSUMED_STEP_DURATION_SECONDS * ASSUMED_STEP_MEMORY_MB / 1024
    per_order = {
        "step_functions": transitions * USD_PER_TRANSITION,
        "lambda_requests": invocations * USD_PER_LAMBDA_REQUEST,
        "lambda_duration": gb_seconds * USD_PER_GB_SECOND_ARM64,
        "dynamodb_writes": writes * write_units * USD_PER_WRITE_UNIT,
    }
    return {name: round(usd * 1000, 6) for name, usd in per_order.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI (seconds)")
    parser.parse_args()
    # Fake credentials and a fixed region: nothing here may ever reach a real account.
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    flow = parse_flow_json(FLOW_FILE.read_text())
    make_moto_behave_like_aws()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        create_table()
        with LambdaDispatcher() as lambdas:
            bench = Bench(flow, lambdas)
            ok_events, ok_status = bench.run("bench-success", failing_step_type=None)
            item_bytes = bench.order_item_size()
            err_events, err_status = bench.run("bench-error", failing_step_type="consume-rest-api")

    def summary(events: list[dict[str, Any]]) -> tuple[list[str], int, int, int]:
        entered = states_entered(events)
        tasks = [name for name in entered if name in {step.id for step in flow.steps}]
        writes = [name for name in entered if "." in name]
        return entered, state_transitions(events), len(tasks), len(writes)

    ok_states, ok_transitions, ok_steps, ok_writes = summary(ok_events)
    err_states, err_transitions, err_steps, err_writes = summary(err_events)
    write_units = math.ceil(item_bytes / 1024)
    ok_price = price(ok_transitions, ok_steps, ok_writes, write_units)
    err_price = price(err_transitions, err_steps, err_writes, write_units)
    ok_total = round(sum(ok_price.values()), 6)
    err_total = round(sum(err_price.values()), 6)
    per_step = ok_transitions / ok_steps
    err_per_step = err_transitions / err_steps

    print(f"flow: {FLOW_FILE.relative_to(ROOT)} ({len(flow.steps)} steps)")
    print(f"success path ({ok_status}): {' -> '.join(ok_states)}")
    print(
        f"  {ok_transitions} state transitions for {ok_steps} steps "
        f"= {per_step:.2f} per step (target <= 1.0: {'met' if per_step <= 1 else 'MISSED'})"
    )
    print(f"error path, consume fails ({err_status}): {' -> '.join(err_states)}")
    print(
        f"  {err_transitions} state transitions for {err_steps} steps = {err_per_step:.2f} per "
        f"step (target <= 1.0: {'met' if err_per_step <= 1 else 'MISSED'})"
    )
    print(
        f"assumptions: step Lambdas {ASSUMED_STEP_DURATION_SECONDS * 1000:.0f} ms at "
        f"{ASSUMED_STEP_MEMORY_MB} MB arm64; order item ~{item_bytes} bytes "
        f"= {write_units} WRU per update"
    )
    print("USD per 1,000 orders (success path):")
    for name, usd in ok_price.items():
        print(f"  {name:<16} {usd:.6f}")
    print(f"  {'total':<16} {ok_total:.6f}")
    print(f"USD per 1,000 orders (error path): {err_total:.6f}")
    print(
        json.dumps(
            {
                "flow": str(FLOW_FILE.relative_to(ROOT)),
                "steps": ok_steps,
                "flow_steps": len(flow.steps),
                "transitions_per_order": ok_transitions,
                "transitions_per_step": per_step,
                "transitions_per_step_error_path": err_per_step,
                "error_path_transitions_per_order": err_transitions,
                "usd_per_1000_orders": ok_total,
                "usd_per_1000_orders_error_path": err_total,
                "usd_per_1000_orders_breakdown": ok_price,
                "included": [
                    "step_functions_transitions",
                    "step_lambda_requests",
                    "step_lambda_duration",
                    "state_machine_dynamodb_writes",
                ],
                "assumptions": {
                    "step_duration_seconds": ASSUMED_STEP_DURATION_SECONDS,
                    "step_memory_mb": ASSUMED_STEP_MEMORY_MB,
                    "lambda_architecture": "arm64",
                    "order_item_bytes": item_bytes,
                    "write_units_per_update": write_units,
                },
            },
            sort_keys=True,
        )
    )


if __name__ == "__main__":
    main()
