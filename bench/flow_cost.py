"""All-in AWS cost per order, counted in a real run of N orders through the local stack.

Run from the repository root::

    .venv/bin/python bench/flow_cost.py [--orders 20] [--file-size 10MiB] [--smoke]

The local stack (moto server, the HTTP API, the poller schedule, the download queue, every
function in process) and the CHILI sandbox run in this process. Signed Shopify webhooks go to
the HTTP API, one line item (= one artifact of ``--file-size``) per order, then five per order
in a second run. Every order runs the default flow to ``Success``: intake, render, polls,
download into S3, REST delivery, email.

What is counted, not assumed:

- every AWS request of every client, per service and operation, by a botocore event hook
  (:mod:`printflow_tools.aws_requests`); the bench's own calls use another session and are not
  counted;
- state transitions, from each execution's history (:mod:`printflow.flows.transitions`);
- Lambda invocations and their durations, per function (the local stack times each handler);
- HTTP API requests: the webhooks posted.

One price table (``PRICES``, us-east-1 list prices, dated) turns them into USD per 1,000 orders.
Assumed, and printed: Lambda GB-seconds = the measured durations at the template's memory sizes
(arm64; durations on this machine against moto, not on AWS); DynamoDB request units from the
measured item sizes; the poller's schedule (a fixed cost per month, not per order) and what is
not priced (S3 storage, CloudWatch Logs, data transfer, the render provider). PrintFlow's own
overhead is everything except SES and the provider. The last line is one JSON object.

The transitions of the error path (the REST step fails, the error step runs) are measured too,
on moto's engine in process, for ``transitions_per_step`` on both paths.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import os
import re
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from printflow_tools.bench_servers import free_port

ROOT = Path(__file__).resolve().parents[1]
FLOW_FILE = ROOT / "flows" / "default.json"
MiB = 1024 * 1024

# -- the one price table ------------------------------------------------------------------------
# us-east-1 list prices (USD), as published on aws.amazon.com/<service>/pricing/ in January
# 2025 (Lambda, Step Functions and DynamoDB as in /work/shared/reference/aws-facts.md). No free
# tier. Change a price here and every figure follows.
PRICES_DATE = "2025-01"
PRICES: dict[str, float] = {
    "api_gateway_http_request": 1.00 / 1e6,  # HTTP API, first 300 M a month, per 512 KB
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second_arm64": 0.0000133334,
    "step_functions_transition": 0.025 / 1000,  # Standard workflows
    "dynamodb_write_unit": 0.625 / 1e6,  # on-demand
    "dynamodb_read_unit": 0.125 / 1e6,
    "s3_put_class_request": 0.005 / 1000,  # PUT, COPY, POST, LIST (parts, complete, tagging)
    "s3_get_class_request": 0.0004 / 1000,  # GET, HEAD and all other requests
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KiB of payload
    "eventbridge_event": 1.00 / 1e6,  # custom events put on a bus
    "scheduler_invocation": 1.00 / 1e6,  # EventBridge Scheduler
    "secrets_manager_call": 0.05 / 10_000,
    "ses_email": 0.10 / 1000,  # per recipient of an outbound email
    "cloudwatch_logs_gb_ingested": 0.50,  # standard log class
    "xray_trace_recorded": 5.00 / 1e6,
}
# S3 request classes (DeleteObject and AbortMultipartUpload are free).
S3_PUT_CLASS = frozenset(
    {
        "PutObject",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "PutObjectTagging",
        "CopyObject",
        "UploadPartCopy",
        "ListObjectsV2",
        "ListObjects",
        "ListMultipartUploads",
        "ListParts",
    }
)
S3_FREE = frozenset({"DeleteObject", "AbortMultipartUpload"})
# The step Lambdas the state machine invokes (their traces are the execution's).
STEP_FUNCTION_NAMES = frozenset(
    {
        "GenerateProductionFilesFunction",
        "ConsumeRestApiFunction",
        "SendEmailFunction",
        "UpdateStorefrontOrderFunction",
    }
)
DYNAMODB_TRANSACT_WRITES = frozenset({"TransactWriteItems"})
DYNAMODB_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem"})
NOT_BILLED = {
    # Step Functions bills transitions, not API calls; moto's engine invokes the step Lambdas.
    "stepfunctions": "billed as state transitions",
    "lambda": "billed as invocations (counted per function)",
}
SCHEDULE_RUNS_PER_MONTH = 60 * 24 * 30  # rate(1 minute)
# The scheduled safety net: its runs are a fixed cost a month (priced from idle runs), not a
# cost per order; the bench's sped-up schedule would otherwise multiply them per order.
SCHEDULED_FUNCTIONS = frozenset({"PollerFunction"})
# Assumptions for what the local stack cannot issue (printed with the figures):
# Lambda's own lines per invocation (START, END, REPORT with the X-Ray trace id), bytes.
LAMBDA_PLATFORM_LOG_BYTES = 350
# X-Ray's default sampling rule: the first request each second, then 5 %; at the volumes
# where the cost matters the 5 % dominates. One trace per execution (the state machine
# traces its Lambda tasks) and one per queue- or API-started invocation.
XRAY_SAMPLED_FRACTION = 0.05


def parse_size(text: str) -> int:
    units = {"": 1, "kib": 1024, "mib": MiB, "gib": 1024 * MiB}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([a-zA-Z]*)", text.strip())
    if not match or match.group(2).lower() not in units:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 10MiB)")
    return int(float(match.group(1)) * units[match.group(2).lower()])


# -- one measured run -----------------------------------------------------------------------------


@dataclass
class RunResult:
    orders: int
    artifacts_per_order: int
    file_size: int
    seconds: float
    requests: dict[tuple[str, str], int]
    units: dict[tuple[str, str], int]
    local_only: dict[tuple[str, str], int]
    scheduled_requests: dict[tuple[str, str], int]
    invocations: dict[str, int]
    invocation_seconds: dict[str, float]
    transitions: int
    steps_run: int
    webhooks: int
    order_item_bytes: int
    job_item_bytes: int
    item_bytes_by_kind: dict[str, int]
    log_bytes: int


class CostRun:
    """The local stack with a CHILI storefront, the counter installed before any client."""

    def __init__(self, file_size: int, speedup: float) -> None:
        from printflow.adapters import aws
        from printflow_tools.aws_requests import AwsRequestCounter
        from printflow_tools.localstack.environment import LocalEnvironment
        from printflow_tools.localstack.function_logs import CURRENT_FUNCTION
        from printflow_tools.localstack.stack import StackOptions
        from printflow_tools.sandboxes import Behaviour, ChiliSandbox

        # Installed first: every client the stack and its functions create inherits the hook.
        self.counter = AwsRequestCounter(
            caller=CURRENT_FUNCTION.get, index_keys=table_index_keys()
        ).install()
        self.env = LocalEnvironment(
            options=StackOptions(
                aws_port=free_port(),
                api_port=free_port(),
                schedule_speedup=speedup,
                quiet_functions=True,
                log_stream=open(os.devnull, "w"),  # noqa: SIM115 - lives as long as the run
            ),
            chili=ChiliSandbox(behaviour=Behaviour(file_size=file_size), polls_until_done=2),
        )
        self.env.start()
        aws.client.cache_clear()
        self.logs = LogBytes.install()
        import boto3

        # The bench's own calls: another session, so the counter never sees them.
        self.session = boto3.Session(region_name="us-east-1")
        self.file_size = file_size
        self._sequence = 0

    @property
    def stack(self) -> Any:
        assert self.env.stack is not None
        return self.env.stack

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.stack.aws_endpoint)

    def close(self) -> None:
        self.env.stop()

    def idle(self, seconds: float) -> tuple[dict[tuple[str, str], int], int, float]:
        """Requests, poller runs and poller seconds of the schedule with nothing to do."""
        runs, spent = self._poller()
        self.counter.reset()
        with self.counter.counting():
            time.sleep(seconds)
        after_runs, after_spent = self._poller()
        return dict(self.counter.snapshot().requests), after_runs - runs, after_spent - spent

    def _poller(self) -> tuple[int, float]:
        return (
            self.stack.invocation_counts.get("PollerFunction", 0),
            self.stack.invocation_seconds.get("PollerFunction", 0.0),
        )

    def run(self, orders: int, artifacts: int, timeout_s: float) -> RunResult:
        from printflow.flows.transitions import state_transitions, states_entered
        from printflow_tools.webhook_events import DEMO_SECRETS, payload, signed_headers

        template = json.loads(payload("shopify-orders-create.json"))
        invocations = dict(self.stack.invocation_counts)
        seconds = dict(self.stack.invocation_seconds)
        self.counter.reset()
        self.logs.reset()
        keys = []
        started = time.monotonic()
        with self.counter.counting():
            for _ in range(orders):
                self._sequence += 1
                order_id = 7_000_000 + self._sequence
                body = json.dumps(order_payload(template, order_id, artifacts)).encode()
                headers = signed_headers("shopify", body, DEMO_SECRETS["shopify"])
                status = post(f"{self.stack.api_url}/webhooks/shopify/demo-shopify", body, headers)
                if status != 202:
                    sys.exit(f"webhook for order {order_id} answered HTTP {status}")
                keys.append(str(order_id))
            executions = self._wait(keys, timeout_s)
            time.sleep(1.0)  # the tail: SQS deletes, the last poller run of the window
        elapsed = time.monotonic() - started
        counts = self.counter.snapshot(without=SCHEDULED_FUNCTIONS)
        scheduled = self.counter.snapshot(only=SCHEDULED_FUNCTIONS)
        log_bytes = self.logs.total
        sfn = self.client("stepfunctions")
        transitions = steps = 0
        for arn in executions:
            history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
            transitions += state_transitions(history)
            steps += len(states_entered(history))
        return RunResult(
            orders=orders,
            artifacts_per_order=artifacts,
            file_size=self.file_size,
            seconds=elapsed,
            requests=dict(counts.requests),
            units=dict(counts.units),
            local_only=dict(counts.local_only),
            scheduled_requests=dict(scheduled.requests),
            invocations=without_scheduled(diff(self.stack.invocation_counts, invocations)),
            invocation_seconds=without_scheduled(diff(self.stack.invocation_seconds, seconds)),
            transitions=transitions,
            steps_run=steps,
            webhooks=orders,
            order_item_bytes=self._mean_item_bytes("ORDER#demo-shopify#", "ORDER"),
            job_item_bytes=self._mean_item_bytes("ORDER#demo-shopify#", "JOB#"),
            item_bytes_by_kind=self._item_bytes_by_kind(),
            log_bytes=log_bytes,
        )

    def _wait(self, order_ids: list[str], timeout_s: float) -> list[str]:
        """Every order's execution ARN once all have succeeded; exits when one does not."""
        dynamodb = self.client("dynamodb")
        sfn = self.client("stepfunctions")
        table = self.stack.resources.table()
        machine = self.stack.resources.state_machine()
        deadline = time.monotonic() + timeout_s
        pending = set(order_ids)
        done: list[str] = []
        while pending:
            for order_id in sorted(pending):
                item = dynamodb.get_item(
                    TableName=table,
                    Key={"pk": {"S": f"ORDER#demo-shopify#{order_id}"}, "sk": {"S": "ORDER"}},
                    ConsistentRead=True,
                ).get("Item", {})
                name = item.get("executionName", {}).get("S")
                if not name:
                    continue
                arn = machine.replace(":stateMachine:", ":execution:") + f":{name}"
                try:
                    status = sfn.describe_execution(executionArn=arn)["status"]
                except sfn.exceptions.ExecutionDoesNotExist:
                    continue
                if status == "SUCCEEDED":
                    pending.discard(order_id)
                    done.append(arn)
                elif status != "RUNNING":
                    sys.exit(f"order {order_id}: execution {status}")
            if time.monotonic() > deadline:
                sys.exit(f"{len(pending)} order(s) not done after {timeout_s:.0f} s")
            time.sleep(0.25)
        return done

    def _item_bytes_by_kind(self) -> dict[str, int]:
        """The largest stored item of each kind (sort-key prefix) in the table: what a
        write of that kind is sized by (DynamoDB bills the larger of before and after)."""
        from printflow.adapters.dynamo_types import deserialize_item

        dynamodb = self.client("dynamodb")
        sizes: dict[str, int] = {}
        pages = dynamodb.get_paginator("scan").paginate(TableName=self.stack.resources.table())
        for page in pages:
            for raw in page["Items"]:
                kind = raw["sk"]["S"].split("#", 1)[0] or "other"
                sizes[kind] = max(sizes.get(kind, 0), item_bytes(deserialize_item(raw)))
        return sizes

    def _mean_item_bytes(self, pk_prefix: str, sk_prefix: str) -> int:
        """Mean stored size of the items (names + values), for DynamoDB's request units."""
        from printflow.adapters.dynamo_types import deserialize_item

        dynamodb = self.client("dynamodb")
        sizes = []
        pages = dynamodb.get_paginator("scan").paginate(TableName=self.stack.resources.table())
        for page in pages:
            for raw in page["Items"]:
                if raw["pk"]["S"].startswith(pk_prefix) and raw["sk"]["S"].startswith(sk_prefix):
                    sizes.append(item_bytes(deserialize_item(raw)))
        return round(sum(sizes) / len(sizes)) if sizes else 0


class LogBytes(logging.Handler):
    """Bytes the functions log, formatted as Lambda ships them (Powertools' JSON lines)."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(formatter)
        self.total = 0
        self._lock_bytes = threading.Lock()

    @classmethod
    def install(cls) -> LogBytes:
        from printflow.observability import logger

        handler = cls(logger.registered_formatter)
        logging.getLogger(logger.name).addHandler(handler)
        return handler

    def emit(self, record: logging.LogRecord) -> None:
        size = len(self.format(record).encode()) + 1
        with self._lock_bytes:
            self.total += size

    def reset(self) -> None:
        with self._lock_bytes:
            self.total = 0


def table_index_keys() -> dict[str, tuple[str, ...]]:
    """Each global secondary index of the order table and its key attributes (template)."""
    from printflow_tools.localstack.template import load_template

    table = load_template()["Resources"]["OrderTable"]["Properties"]
    return {
        index["IndexName"]: tuple(k["AttributeName"] for k in index["KeySchema"])
        for index in table.get("GlobalSecondaryIndexes", [])
    }


def written_kinds(result: RunResult) -> dict[str, int]:
    """Item sizes of the kinds the run wrote (by the counter's ``write:<kind>`` units)."""
    kinds = {u.removeprefix("write:") for (svc, u) in result.units if u.startswith("write:")}
    return {k: v for k, v in result.item_bytes_by_kind.items() if k in kinds}


def without_scheduled(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in SCHEDULED_FUNCTIONS}


def order_payload(template: dict[str, Any], order_id: int, line_items: int) -> dict[str, Any]:
    """The sample Shopify order with its own id and ``line_items`` personalised posters."""
    order = copy.deepcopy(template)
    order["id"] = order_id
    order["name"] = f"#{order_id}"
    order["number"] = order["order_number"] = order_id
    order["admin_graphql_api_id"] = f"gid://shopify/Order/{order_id}"
    first = template["line_items"][0]
    order["line_items"] = []
    for n in range(line_items):
        item = copy.deepcopy(first)
        item["id"] = order_id * 10 + n
        item["admin_graphql_api_id"] = f"gid://shopify/LineItem/{item['id']}"
        order["line_items"].append(item)
    return order


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
        return int(response.status)


def diff(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def item_bytes(value: Any, name: str = "") -> int:
    """Approximate DynamoDB item size: names + values, small overhead per container entry."""
    size = len(name.encode())
    if isinstance(value, dict):
        return size + 3 + sum(item_bytes(v, str(k)) + 1 for k, v in value.items())
    if isinstance(value, list):
        return size + 3 + sum(item_bytes(v) + 1 for v in value)
    if isinstance(value, bool) or value is None:
        return size + 1
    if isinstance(value, int | float):
        return size + 1 + math.ceil(len(str(value)) / 2)
    return size + len(str(value).encode())


# -- pricing ------------------------------------------------------------------------------------


@dataclass
class Priced:
    per_service: dict[str, float]  # USD per 1,000 orders
    lines: dict[str, str]  # what each service's figure is made of
    gb_seconds_per_order: float

    @property
    def total(self) -> float:
        return sum(self.per_service.values())

    @property
    def overhead(self) -> float:
        return sum(usd for name, usd in self.per_service.items() if name != "ses")


def price(result: RunResult, memory_mb: dict[str, int]) -> Priced:
    """USD per 1,000 orders, per service, from what ``result`` counted."""
    per_order = 1 / result.orders
    requests = result.requests

    def calls(service: str, operations: Callable[[str], bool] = lambda op: True) -> float:
        return sum(n for (svc, op), n in requests.items() if svc == service and operations(op))

    usd: dict[str, float] = {}
    lines: dict[str, str] = {}

    usd["api_gateway"] = result.webhooks * PRICES["api_gateway_http_request"]
    lines["api_gateway"] = f"{result.webhooks * per_order:.1f} HTTP API request/order"

    lambda_requests = sum(result.invocations.values())
    gb_seconds = sum(
        seconds * memory_mb.get(function, 256) / 1024
        for function, seconds in result.invocation_seconds.items()
    )
    usd["lambda"] = (
        lambda_requests * PRICES["lambda_request"] + gb_seconds * PRICES["lambda_gb_second_arm64"]
    )
    per_function = ", ".join(
        f"{name.removesuffix('Function')} {count * per_order:.2f}"
        f"x{1000 * result.invocation_seconds.get(name, 0) / count:.0f}ms"
        for name, count in sorted(result.invocations.items())
    )
    lines["lambda"] = (
        f"{lambda_requests * per_order:.2f} invocations/order, "
        f"{gb_seconds * per_order:.3f} GB-s/order ({per_function})"
    )

    usd["step_functions"] = result.transitions * PRICES["step_functions_transition"]
    lines["step_functions"] = f"{result.transitions * per_order:.1f} transitions/order"

    # Each item write is sized by its kind's largest item; unknown kinds by the largest item.
    largest = max([*result.item_bytes_by_kind.values(), result.order_item_bytes, 1])
    write_units = 0
    writes_by_kind: dict[str, int] = {}
    for (svc, unit), n in result.units.items():
        if svc == "dynamodb" and unit.startswith("write:"):
            kind = unit.removeprefix("write:")
            writes_by_kind[kind] = n
            write_units += n * math.ceil(result.item_bytes_by_kind.get(kind, largest) / 1024)
    # Index entries: keys and small projections (< 1 KB): one unit each.
    index_units = result.units.get(("dynamodb", "index_entries"), 0)
    batch_writes = calls("dynamodb", lambda op: op == "BatchWriteItem")
    transact = calls("dynamodb", lambda op: op in DYNAMODB_TRANSACT_WRITES)
    write_units += (batch_writes + 2 * transact) * math.ceil(largest / 1024)
    read_units = math.ceil(largest / 4096)
    reads = calls("dynamodb", lambda op: op in DYNAMODB_READS)
    usd["dynamodb"] = (write_units + index_units) * PRICES["dynamodb_write_unit"] + (
        reads * read_units * PRICES["dynamodb_read_unit"]
    )
    by_kind = ", ".join(f"{kind} {n * per_order:.1f}" for kind, n in sorted(writes_by_kind.items()))
    lines["dynamodb"] = (
        f"{sum(writes_by_kind.values()) * per_order:.1f} item writes/order ({by_kind}) = "
        f"{write_units * per_order:.1f} WRU + {index_units * per_order:.1f} index WRU; "
        f"{reads * per_order:.1f} reads x {read_units} RRU"
    )

    put_class = calls("s3", lambda op: op in S3_PUT_CLASS)
    get_class = calls("s3", lambda op: op not in S3_PUT_CLASS and op not in S3_FREE)
    usd["s3"] = (
        put_class * PRICES["s3_put_class_request"] + get_class * PRICES["s3_get_class_request"]
    )
    lines["s3"] = f"{put_class * per_order:.1f} PUT-class + {get_class * per_order:.1f} GET-class"

    sqs_sends = calls("sqs", lambda op: op in ("SendMessage", "SendMessageBatch"))
    sqs_chunks = result.units.get(("sqs", "payload_chunks"), 0)
    sqs_other = calls(
        "sqs",
        lambda op: op not in ("SendMessage", "SendMessageBatch", "ReceiveMessage:empty"),
    )
    usd["sqs"] = (sqs_chunks + sqs_other) * PRICES["sqs_request"]
    lines["sqs"] = (
        f"{(sqs_sends + sqs_other) * per_order:.1f} requests/order (empty receives of the "
        "event source mapping are a fixed cost, not counted here)"
    )

    events = result.units.get(("events", "events"), 0)
    usd["eventbridge"] = events * PRICES["eventbridge_event"]
    lines["eventbridge"] = (
        f"{events * per_order:.1f} PrintFlow events/order (S3's own events to EventBridge are free)"
    )

    secret_calls = calls("secretsmanager")
    usd["secrets_manager"] = secret_calls * PRICES["secrets_manager_call"]
    lines["secrets_manager"] = f"{secret_calls * per_order:.2f} GetSecretValue/order (cached)"

    # CloudWatch Logs: what the functions logged (measured, as JSON lines), the EMF lines
    # the local stack sends as PutMetricData instead, and Lambda's own lines (assumed).
    invocations = sum(result.invocations.values())
    emf_bytes = result.units.get(("cloudwatch", "emf_log_bytes"), 0)
    platform_bytes = invocations * LAMBDA_PLATFORM_LOG_BYTES
    log_bytes = result.log_bytes + emf_bytes + platform_bytes
    usd["cloudwatch_logs"] = log_bytes / 1e9 * PRICES["cloudwatch_logs_gb_ingested"]
    lines["cloudwatch_logs"] = (
        f"{log_bytes * per_order / 1024:.1f} KB/order ingested (logs "
        f"{result.log_bytes * per_order:.0f} B measured, EMF {emf_bytes * per_order:.0f} B, "
        f"Lambda platform lines {platform_bytes * per_order:.0f} B assumed)"
    )

    # X-Ray: one trace per execution plus one per invocation not started by the state
    # machine (API, queues), of which the default rule samples ~5 %.
    state_machine_tasks = calls("stepfunctions", lambda op: op == "StartExecution")
    step_invocations = sum(
        n for name, n in result.invocations.items() if name in STEP_FUNCTION_NAMES
    )
    traces = (state_machine_tasks + invocations - step_invocations) * XRAY_SAMPLED_FRACTION
    usd["xray"] = traces * PRICES["xray_trace_recorded"]
    lines["xray"] = f"{traces * per_order:.2f} traces recorded/order (assumed sampling 5 %)"

    recipients = result.units.get(("sesv2", "recipients"), 0)
    usd["ses"] = recipients * PRICES["ses_email"]
    lines["ses"] = f"{recipients * per_order:.1f} recipients/order"

    per_1000 = {name: value * 1000 * per_order for name, value in usd.items()}
    return Priced(per_1000, lines, gb_seconds * per_order)


def fixed_monthly(
    idle: dict[tuple[str, str], int], runs: int, seconds: float, memory_mb: int
) -> dict[str, float]:
    """The poller's schedule: one run a minute whatever the orders (measured idle runs)."""
    if runs == 0:
        return {}
    per_run_reads = sum(n for (svc, op), n in idle.items() if svc == "dynamodb") / runs
    per_run = (
        PRICES["scheduler_invocation"]
        + PRICES["lambda_request"]
        + seconds / runs * memory_mb / 1024 * PRICES["lambda_gb_second_arm64"]
        + per_run_reads * PRICES["dynamodb_read_unit"]
    )
    return {
        "usd_per_month": per_run * SCHEDULE_RUNS_PER_MONTH,
        "dynamodb_reads_per_run": per_run_reads,
        "ms_per_run": 1000 * seconds / runs,
    }


# -- the error path's transitions (moto's engine in process, stub step Lambdas) -------------------


def transitions_per_step_of_both_paths() -> dict[str, Any]:
    """Transitions per step of the default flow: success, the REST step failing (its onError
    runs), and the REST step failing in a copy of the flow where it has no onError."""
    import queue

    import boto3
    from moto import mock_aws

    from printflow.adapters.order_table import OrderTable, StepStatus
    from printflow.adapters.task_tokens import TaskTokens
    from printflow.errors import StepFailed
    from printflow.flows import compile_flow_text, parse_flow_json
    from printflow.flows.compiler import FUNCTION_ARN_SUBSTITUTIONS, apply_substitutions
    from printflow.flows.model import OrderFlow
    from printflow.flows.transitions import state_transitions, states_entered
    from printflow.steps.completion import StepCompletion, iso_now
    from printflow.steps.context import parse_step_event
    from printflow_tools.localstack.fidelity import make_moto_behave_like_aws
    from printflow_tools.localstack.lambda_dispatch import LambdaDispatcher
    from printflow_tools.localstack.resources import create_table_from_template

    table = "printflow-orders"
    account = "123456789012"
    flow = parse_flow_json(FLOW_FILE.read_text())
    document = json.loads(FLOW_FILE.read_text())
    for step in document:
        if step["stepDefinitionId"] == "consume":
            step.pop("onError", None)
    no_on_error = parse_flow_json(json.dumps(document))
    make_moto_behave_like_aws()
    results: dict[str, Any] = {}
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):  # type: ignore[arg-type]
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        create_table_from_template(dynamodb, table)
        orders = OrderTable(dynamodb, table)
        completion = StepCompletion(orders, TaskTokens(sfn))

        def arn(step_type: str) -> str:
            return f"arn:aws:lambda:us-east-1:{account}:function:{step_type}"

        substitutions = {"OrderTable": table}
        for step_type, variable in FUNCTION_ARN_SUBSTITUTIONS.items():
            substitutions[variable] = arn(step_type.value)

        def machine_of(name: str, compiled: OrderFlow) -> str:
            return str(
                sfn.create_state_machine(
                    name=name,
                    definition=apply_substitutions(compile_flow_text(compiled), substitutions),
                    roleArn=f"arn:aws:iam::{account}:role/order-flow",
                )["stateMachineArn"]
            )

        machines = {"default": machine_of("order-flow", flow)}
        machines["no-on-error"] = machine_of("order-flow-no-on-error", no_on_error)
        with LambdaDispatcher() as lambdas:
            for path, machine_name, failing in (
                ("success", "default", None),
                ("error", "default", "consume-rest-api"),
                ("no_on_error", "no-on-error", "consume-rest-api"),
            ):
                machine = machines[machine_name]
                steps_of = (no_on_error if machine_name == "no-on-error" else flow).steps
                tokens: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()

                def handler_for(
                    step_type: str,
                    failing: str | None = failing,
                    tokens: queue.Queue[tuple[str, dict[str, Any]]] = tokens,
                ) -> Any:
                    def handler(event: dict[str, Any], context: Any) -> Any:
                        if step_type == "generate-production-files":
                            tokens.put((event["taskToken"], event))
                            return {"ok": True}
                        # As the step functions' handlers do (functions/*/app.py).
                        invocation = parse_step_event(event, expected_type=step_type)
                        try:
                            if step_type == failing:
                                raise StepFailed("bench: simulated permanent failure")
                            completion.step_done(invocation)
                        except StepFailed as exc:
                            if not completion.order_failed(invocation, exc):
                                raise
                        return {"ok": True}

                    return handler

                for step_type in FUNCTION_ARN_SUBSTITUTIONS:
                    lambdas.register(arn(step_type.value), handler_for(step_type.value))
                key = {"pk": {"S": f"ORDER#bench#{path}"}, "sk": {"S": "ORDER"}}
                dynamodb.put_item(TableName=table, Item={**key, "status": {"S": "Received"}})
                execution = sfn.start_execution(
                    stateMachineArn=machine,
                    name=path,
                    input=json.dumps(
                        {
                            "order": {
                                "pk": key["pk"]["S"],
                                "sk": "ORDER",
                                "storefrontId": "bench",
                                "orderId": path,
                            }
                        }
                    ),
                )["executionArn"]
                deadline = time.monotonic() + 30
                while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
                    try:
                        token, render_event = tokens.get(timeout=0.05)
                    except queue.Empty:
                        pass
                    else:  # as the download function does: the status, then the token
                        step = parse_step_event(
                            render_event, expected_type="generate-production-files"
                        )
                        orders.record_step_status(
                            step.order,
                            StepStatus(step.step_id, step.success_status, iso_now(), token[-32:]),
                        )
                        sfn.send_task_success(taskToken=token, output="{}")
                    if time.monotonic() > deadline:
                        sys.exit(f"{path} path: execution still running after 30 s")
                history = sfn.get_execution_history(executionArn=execution, maxResults=1000)
                events = history["events"]
                entered = states_entered(events)
                steps = [name for name in entered if name in {s.id for s in steps_of}]
                results[path] = {
                    "status": sfn.describe_execution(executionArn=execution)["status"],
                    "states": entered,
                    "transitions": state_transitions(events),
                    "steps": len(steps),
                }
    return results


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20, help="orders with one artifact")
    parser.add_argument("--orders-5", type=int, default=8, help="orders with five artifacts")
    parser.add_argument("--file-size", type=parse_size, default=10 * MiB)
    parser.add_argument("--speedup", type=float, default=30.0, help="poller schedule speed-up")
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI (seconds)")
    args = parser.parse_args()
    if args.smoke:
        args.orders, args.orders_5, args.file_size = 2, 1, 64 * 1024
    # Fake credentials, fixed region: nothing here may ever reach a real account.
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            # The template's level: the log bytes priced are the ones Lambda would ship.
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
    )
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)

    from printflow_tools.aws_requests import LOCAL_ONLY

    paths = transitions_per_step_of_both_paths()

    run = CostRun(args.file_size, args.speedup)
    try:
        memory = {name: spec.memory_mb for name, spec in run.stack.resources.functions.items()}
        idle_requests, idle_runs, idle_seconds = run.idle(1.0 if args.smoke else 6.0)
        timeout = 120.0 + args.file_size / MiB * 3
        one = run.run(args.orders, 1, timeout)
        five = run.run(args.orders_5, 5, timeout * 2)
    finally:
        run.close()

    one_priced = price(one, memory)
    five_priced = price(five, memory)
    fixed = fixed_monthly(idle_requests, idle_runs, idle_seconds, memory.get("PollerFunction", 256))

    ok, err, bare = paths["success"], paths["error"], paths["no_on_error"]
    ok_per_step = ok["transitions"] / ok["steps"]
    err_per_step = err["transitions"] / err["steps"]
    bare_per_step = bare["transitions"] / bare["steps"]
    print(f"flow: {FLOW_FILE.relative_to(ROOT)}")
    for label, path, per_step in (
        ("success", ok, ok_per_step),
        ("error (onError)", err, err_per_step),
        ("error (the REST step without onError)", bare, bare_per_step),
    ):
        print(
            f"{label} path ({path['status']}): {' -> '.join(path['states'])}: "
            f"{path['transitions']} transitions for {path['steps']} steps = {per_step:.2f} "
            f"per step (target <= 1.0: {'met' if per_step <= 1 else 'MISSED'})"
        )
    print(f"prices: us-east-1 list prices of {PRICES_DATE}, no free tier")
    for result, priced in ((one, one_priced), (five, five_priced)):
        print(
            f"\n{result.orders} orders x {result.artifacts_per_order} artifact(s) of "
            f"{result.file_size / MiB:.2f} MiB through the local stack in {result.seconds:.1f} s; "
            f"USD per 1,000 orders:"
        )
        for service, usd in sorted(priced.per_service.items(), key=lambda kv: -kv[1]):
            print(f"  {service:<16} {usd:9.5f}   {priced.lines[service]}")
        print(f"  {'total':<16} {priced.total:9.5f}")
        print(
            f"  {'overhead':<16} {priced.overhead:9.5f}   (all but SES and the provider; "
            "target <= 0.10 with one 10 MiB artifact)"
        )
    counted = sorted(f"{svc}.{op} {n}" for (svc, op), n in one.requests.items())
    print(f"\nrequests counted (1-artifact run, {one.orders} orders): {', '.join(counted)}")
    local_only = ", ".join(f"{svc}.{op} {n}" for (svc, op), n in sorted(one.local_only.items()))
    print(
        f"not counted, the local stack's own (no AWS bill): {local_only or 'none'} "
        f"({'; '.join(sorted(set(LOCAL_ONLY.values())))})"
    )
    scheduled = ", ".join(
        f"{svc}.{op} {n}" for (svc, op), n in sorted(one.scheduled_requests.items())
    )
    print(
        f"priced as the fixed schedule, not per order: the {len(SCHEDULED_FUNCTIONS)} "
        f"scheduled function's runs in the window (sped up x{args.speedup:g}): "
        f"{scheduled or 'no requests'}"
    )
    print(
        "assumptions: Lambda GB-s = measured in-process durations (this machine, moto) x the "
        f"template's memory sizes, arm64; DynamoDB item sizes measured (order ~"
        f"{one.order_item_bytes} B, job ~{one.job_item_bytes} B): every write = "
        "ceil(its kind's largest item/1 KB) WRU "
        f"({', '.join(f'{k} {v} B' for k, v in sorted(written_kinds(one).items()))}), "
        "every global secondary index entry a write changes 1 WRU (2 when its key moves), "
        "every read ceil(largest/4 KB) RRU, transactions x2; CloudWatch Logs: Lambda's "
        f"START/END/REPORT lines {LAMBDA_PLATFORM_LOG_BYTES} B an invocation; X-Ray: "
        f"{XRAY_SAMPLED_FRACTION:.0%} of traces sampled (the default rule at volume)."
    )
    if fixed:
        print(
            f"fixed, not per order: the poller schedule, {SCHEDULE_RUNS_PER_MONTH:,} runs a month "
            f"at {fixed['ms_per_run']:.0f} ms and {fixed['dynamodb_reads_per_run']:.0f} "
            f"DynamoDB reads each when idle: ${fixed['usd_per_month']:.3f} a month."
        )
    print(
        "not priced: S3 storage and its retention, log retention, data transfer (in from the "
        "provider is free), the render provider's own charges, fixed monthly costs (custom "
        "metrics, alarms, the dashboard, the SQS event source mappings' idle polling); "
        "SSE-S3 encryption costs nothing."
    )
    print(
        json.dumps(
            {
                "flow": str(FLOW_FILE.relative_to(ROOT)),
                "transitions_per_step": ok_per_step,
                "transitions_per_step_error_path": max(err_per_step, bare_per_step),
                "transitions_per_step_error_path_on_error": err_per_step,
                "transitions_per_step_error_path_no_on_error": bare_per_step,
                "transitions_per_order": ok["transitions"],
                "error_path_transitions_per_order": err["transitions"],
                "orders": one.orders,
                "artifact_bytes": one.file_size,
                "usd_per_1000_orders": round(one_priced.total, 6),
                "usd_per_1000_orders_overhead": round(one_priced.overhead, 6),
                "usd_per_1000_orders_breakdown": {
                    k: round(v, 6) for k, v in one_priced.per_service.items()
                },
                "usd_per_1000_orders_5_artifacts": round(five_priced.total, 6),
                "usd_per_1000_orders_overhead_5_artifacts": round(five_priced.overhead, 6),
                "usd_per_1000_orders_breakdown_5_artifacts": {
                    k: round(v, 6) for k, v in five_priced.per_service.items()
                },
                "lambda_gb_seconds_per_order": round(one_priced.gb_seconds_per_order, 4),
                "usd_per_month_poller_schedule": round(fixed.get("usd_per_month", 0.0), 4),
                "prices_date": PRICES_DATE,
                "prices_region": "us-east-1",
            },
            sort_keys=True,
        )
    )


if __name__ == "__main__":
    main()
