"""Fault run: orders through the whole local stack while everything around it misbehaves.

Run from the repository root: ``.venv/bin/python bench/fault_run.py [--orders 200]``
(``--smoke``: 10 CHILI orders, a short pause, a 10 s rescue; under a minute).

The embedded local stack (moto server, every function, the minute schedule sped up 60x, the
SQS triggers) and the loopback sandboxes take signed webhook deliveries like storefronts send
them, with:

- provider faults on every API and download route: 10% 503, 5% 429 (``Retry-After``), 5% of
  file downloads reset mid-stream; render failures: a CHILI storefront whose template fails
  (its orders are *meant* to fail);
- 20% of deliveries sent twice (the storefront retrying);
- the schedule stopped for a while mid-run (no poller, no sweep), then started again;
- a poll run that crashes after leasing: jobs leased by an owner that never saves them.

Orders: 75% Shopify on CHILI (polled every 3 s, done after two polls), 15% WooCommerce on
Customer's Canvas (the vendor's 60 s between polls: one wait), 10% on the failing template.

Then it checks what a shop and a printer would see, and prints, as its last line, one JSON
object with ``acknowledged``, ``lost`` (acknowledged but not Success/Failed at the end),
``duplicate_executions``, ``emails_sent_twice``, ``rest_delivered_twice``, ``partial_objects``
(an artifact whose size or sha256 differs from its manifest), ``open_multipart_uploads``,
``objects_outside_manifests``, ``orders_per_minute`` (acknowledged orders over the time from the
first delivery to the last final state), ``seconds_to_drain`` (last delivery to last final
state), ``unexpected_outcomes`` (meant to succeed but Failed, or the reverse),
``chili_median_s_to_final`` (webhook to final state, CHILI orders) and
``max_wait_beyond_policy_s``: the longest time an order took beyond what its provider's policy
required (CHILI: three polls 3 s apart; Customer's Canvas: 60 s between two requests of a
project, answers of 503 or 429 included).
Exits 2 when a correctness check fails (anything lost, duplicated, partial or unexpected).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from printflow_tools.bench_servers import free_port
from printflow_tools.stack_sampler import StackSampler

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

CHILI_STOREFRONT = "demo-shopify"
CANVAS_STOREFRONT = "demo-woo"
FAILING_STOREFRONT = "fault-broken-template"
FINAL = ("Success", "Failed")
CHILI_POLICY_FLOOR_S = 6.0  # the sandbox's task is done on its third poll, 3 s apart
CANVAS_POLL_INTERVAL_S = 60.0
CANVAS_POLLS = 2  # Pipeline.completes(after_polls=1): Completed on the second poll
# The minute schedule (the safety-net sweep) runs every 10 s. At 60x (every second), as the
# bench first ran it, its DueIndex queries (moto walks the whole table for each, under its
# item lock) took the lock from the functions the run measures; the timers do the polling,
# and a crashed run's leases re-arm their timers, so the sweep is rarely needed.
SCHEDULE_SPEEDUP = 6.0


@dataclass
class PlannedOrder:
    storefront: str
    platform: str
    order_id: str
    provider: str
    expect: str
    body: bytes = b""
    delivered_at: float = 0.0
    acknowledged: bool = False
    # What the webhook answered each delivery (an HTTP status, or the client's error).
    answers: list[int | str] = field(default_factory=list)

    def policy_floor_s(self, provider_requests: int) -> float:
        """The least time the provider's policy lets the order take.

        Customer's Canvas: 60 s between two processing-results requests of a project, and
        an answer of 503 or 429 is a request too (the next one may not come sooner), so
        the floor counts the requests the order's slowest project really needed.
        """
        if self.provider == "customers-canvas":
            return CANVAS_POLL_INTERVAL_S * max(0, provider_requests - 1)
        return CHILI_POLICY_FLOOR_S


def plan(count: int, *, with_canvas: bool = True) -> list[PlannedOrder]:
    orders = []
    for n in range(count):
        slot = n % 20
        order_id = str(8_000_000 + n)
        if slot < 2:
            orders.append(PlannedOrder(FAILING_STOREFRONT, "shopify", order_id, "chili", "Failed"))
        elif slot < 5 and with_canvas:
            orders.append(
                PlannedOrder(
                    CANVAS_STOREFRONT, "woocommerce", order_id, "customers-canvas", "Success"
                )
            )
        else:
            orders.append(PlannedOrder(CHILI_STOREFRONT, "shopify", order_id, "chili", "Success"))
    return orders


def body_of(order: PlannedOrder) -> bytes:
    from printflow_tools.webhook_events import payload

    if order.platform == "shopify":
        doc = json.loads(payload("shopify-orders-create.json"))
        doc.update(id=int(order.order_id), name=f"#{order.order_id}", order_number=order.order_id)
    else:
        doc = json.loads(payload("woocommerce-order-created.json"))
        doc.update(id=int(order.order_id), number=order.order_id)
    return json.dumps(doc).encode()


def start_environment(rescue_after_s: float | None = None) -> Any:
    from printflow_tools.localstack.environment import LocalEnvironment
    from printflow_tools.localstack.stack import StackOptions

    options = StackOptions(
        api_port=free_port(),
        aws_port=free_port(),
        schedule_speedup=SCHEDULE_SPEEDUP,
        log_stream=io.StringIO(),
        quiet_functions=True,
        # The scheduled run rescues a job whose poll timer was consumed while a crashed run
        # held its lease only after this staleness (AWS default 300 s).
        function_env={}
        if rescue_after_s is None
        else {"RESCUE_AFTER_SECONDS": str(int(rescue_after_s))},
    )
    return LocalEnvironment(options=options).start()


def register_failing_storefront(env: Any) -> None:
    from printflow.adapters.order_table import OrderTable
    from printflow.adapters.webhook_secrets import WebhookSecrets
    from printflow_tools.localstack.storefront_setup import (
        chili_provider,
        register_render_storefront,
    )
    from printflow_tools.webhook_events import DEMO_SECRETS

    stack = env.stack
    secrets = stack.client("secretsmanager")
    register_render_storefront(
        OrderTable(stack.client("dynamodb"), stack.resources.table()),
        WebhookSecrets(secrets, "printflow"),
        secrets,
        storefront_id=FAILING_STOREFRONT,
        platform="shopify",
        webhook_secret=DEMO_SECRETS["shopify"],
        provider=chili_provider(
            env.chili, f"printflow/providers/{FAILING_STOREFRONT}/chili", template_id="fail-poster"
        ),
        client_id="chili-client",
        client_secret="chili-secret",
    )


def inject_faults(env: Any) -> None:
    for sandbox in (env.chili, env.canvas):
        sandbox.behaviour.failure_rate = 0.10
        sandbox.behaviour.failure_status = 503
        sandbox.behaviour.throttle_rate = 0.05
        sandbox.behaviour.retry_after_s = 1
        sandbox.behaviour.reset_rate = 0.05


def deliver(env: Any, order: PlannedOrder, duplicate: bool) -> list[int | str]:
    """Send the order's webhook (twice for a duplicate), as a shop does: a delivery whose
    connection fails or times out is sent again (up to three times). Returns every answer:
    an HTTP status, or the client's error."""
    import urllib.error
    import urllib.request

    from printflow_tools.webhook_events import DEMO_SECRETS, signed_headers

    headers = signed_headers(order.platform, order.body, DEMO_SECRETS[order.platform])
    url = f"{env.stack.api_url}/webhooks/{order.platform}/{order.storefront}"
    answers: list[int | str] = []
    for _ in range(2 if duplicate else 1):
        for _attempt in range(3):
            request = urllib.request.Request(  # noqa: S310 (the local stack on loopback)
                url, data=order.body, headers=headers, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                    answers.append(response.status)
            except urllib.error.HTTPError as error:
                answers.append(error.code)
            except OSError as error:  # refused, reset, timed out: the shop sends it again
                answers.append(f"{type(error).__name__}: {error}")
                continue
            break
    return answers


def is_acknowledged(answers: list[int | str]) -> bool:
    """A new order is acknowledged by a 202; a 200 ("already recorded") counts only after an
    earlier delivery of it (a duplicate, or a retry of one whose answer was lost)."""
    statuses = [a for a in answers if isinstance(a, int)]
    return 202 in statuses or (200 in statuses and len(answers) > 1)


def crash_a_poll_run_after_leasing(env: Any, limit: int = 10, within_s: float = 15.0) -> int:
    """Lease due jobs as a poller would, then never save them (the run died).

    Jobs are due only for a moment (their timers poll them at once), so it keeps looking for
    up to ``within_s`` until it holds a few.
    """
    from printflow.adapters.render_job_table import RenderJobTable

    jobs = RenderJobTable(env.stack.client("dynamodb"), env.stack.resources.table(), due_shards=4)
    leased = 0
    give_up = time.time() + within_s
    while leased < min(limit, 3) and time.time() < give_up:
        now = time.time()
        for shard in range(4):
            for pk, sk in list(jobs.due(shard, now, limit)):
                if leased < limit and jobs.lease(pk, sk, "crashed-poll-run", now, now + 30.0):
                    leased += 1
        time.sleep(0.1)
    return leased


def pause_schedule(env: Any, seconds: float) -> None:
    from printflow_tools.localstack.triggers import Scheduler

    stack = env.stack
    schedules = stack.scheduler.schedules
    stack.scheduler.stop()
    time.sleep(seconds)
    stack.scheduler = Scheduler(schedules, stack.invoke)
    stack.scheduler.start()


def order_items(
    env: Any, keys: list[tuple[str, str]], *, status_only: bool = False
) -> dict[tuple[str, str], dict[str, Any]]:
    """The order items of ``keys`` (storefront, order id), by key (``status_only``: just
    their keys and status, what the wait for the drain needs).

    Read by key, 100 at a time: a scan of the whole table every second, as the bench first
    did, held the local DynamoDB's lock long enough at 1,000 orders to slow the run it was
    watching; so did reading every pending order's whole item (its status history) each
    second.
    """
    from printflow.adapters.dynamo_types import deserialize_item

    client = env.stack.client("dynamodb")
    table = env.stack.resources.table()
    found: dict[tuple[str, str], dict[str, Any]] = {}
    projection: dict[str, Any] = (
        {
            "ProjectionExpression": "storefrontId, orderId, #s",
            "ExpressionAttributeNames": {"#s": "status"},
        }
        if status_only
        else {}
    )
    for start in range(0, len(keys), 100):
        wanted = [
            {"pk": {"S": f"ORDER#{storefront}#{order_id}"}, "sk": {"S": "ORDER"}}
            for storefront, order_id in keys[start : start + 100]
        ]
        while wanted:
            response = client.batch_get_item(
                RequestItems={table: {"Keys": wanted, "ConsistentRead": True, **projection}}
            )
            for raw in response["Responses"].get(table, []):
                item = deserialize_item(raw)
                found[(item["storefrontId"], item["orderId"])] = item
            wanted = (response.get("UnprocessedKeys") or {}).get(table, {}).get("Keys", [])
    return found


def final_at(item: dict[str, Any]) -> float | None:
    history = item.get("statusHistory") or []
    if item.get("status") not in FINAL or not history:
        return None
    return datetime.fromisoformat(history[-1]["at"]).timestamp()


def jobs_of(env: Any, orders: list[PlannedOrder]) -> dict[str, list[Any]]:
    """Each order's render jobs, by order id (one client for all: a client costs ~20 ms)."""
    from printflow.adapters.render_job_table import RenderJobTable
    from printflow.domain.order import OrderKey

    jobs = RenderJobTable(env.stack.client("dynamodb"), env.stack.resources.table(), 4)
    return {o.order_id: jobs.jobs_of(OrderKey(o.storefront, o.order_id)) for o in orders}


def provider_requests(jobs: list[Any]) -> int:
    """Poll requests of the order's busiest render job (answered polls and transient errors)."""
    return max(
        (
            job.attempts + sum(1 for h in job.history if h.get("status") == "transient-error")
            for job in jobs
        ),
        default=0,
    )


def rendered_jobs(item: dict[str, Any], jobs: list[Any]) -> list[Any]:
    """The done render jobs of a successful order that has its render step's status; none
    for any other order (the legs are measured on those alone)."""
    done = [j for j in jobs if j.state.value == "done" and len(j.history) > 1]
    succeeded = item.get("status") == "Success" and len(item.get("statusHistory") or []) >= 2
    return done if succeeded else []


def render_seen_done(job: Any) -> float:
    """When the poll saw the job's render done: its history's last entry (the poll's)."""
    return float(job.history[-1]["at"])


def job_phases(items: list[tuple[dict[str, Any], list[Any]]]) -> dict[str, float]:
    """Median seconds of each leg of a successful order, from its item and its jobs' history:
    where the time goes (webhook to render job, job to first poll, the polls, the download
    to the render step's status, the REST and email steps to the final state)."""
    legs: dict[str, list[float]] = {}
    for item, jobs in items:
        done = rendered_jobs(item, jobs)
        if not done:
            continue
        history = item["statusHistory"]
        received = received_at(item)
        created = min(j.created_at for j in done)
        polled = min(float(j.history[1]["at"]) for j in done)
        ready = max(render_seen_done(j) for j in done)
        stored = datetime.fromisoformat(history[1]["at"]).timestamp()
        final = datetime.fromisoformat(history[-1]["at"]).timestamp()
        for name, value in (
            ("webhook_to_job", created - received),
            ("job_to_first_poll", polled - created),
            ("polls", ready - created),
            ("download", stored - ready),
            ("rest_and_email", final - stored),
        ):
            legs.setdefault(name, []).append(value)
    return {name: round(statistics.median(values), 1) for name, values in legs.items()}


class DownloadCalls:
    """When each Download invocation started and ended, per job (of its order) its messages
    named (the handler wrapped in the local stack's table: its SQS trigger runs it from there)."""

    def __init__(self, stack: Any) -> None:
        # (storefront/order, job id) -> spans: a job id is the provider's reference, which two
        # storefronts (two tenants) may share.
        self.spans: dict[tuple[str, str], list[tuple[float, float]]] = {}
        self._lock = threading.Lock()
        name = "DownloadFunction"  # its logical id in template.yaml
        handler = stack.handlers[name]

        def timed(event: Any, context: Any) -> Any:
            started = time.time()
            try:
                return handler(event, context)
            finally:
                self._note(event, started, time.time())

        stack.handlers[name] = timed

    def _note(self, event: Any, started: float, ended: float) -> None:
        from printflow.adapters.download_queue import parse_download_message

        records = event.get("Records") if isinstance(event, dict) else None
        for record in records or []:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                key, job_id = parse_download_message(record["body"])
                with self._lock:
                    self.spans.setdefault((str(key), job_id), []).append((started, ended))


def download_leg(
    calls: DownloadCalls, items: list[tuple[dict[str, Any], list[Any]]]
) -> dict[str, float]:
    """The download leg of successful CHILI orders, by the Download invocations that carried
    the messages of each order's last finished job: from the poll that saw its render done to
    the first invocation (the queue), how long that invocation ran (its batch included), how
    many the job took (retries), and from the first one's start to the render step's status."""
    waits, firsts, counts, rest = [], [], [], []
    for item, jobs in items:
        done = rendered_jobs(item, jobs)
        if not done:
            continue
        # The job whose render finished last: its download is the one the order waited on.
        last = max(done, key=render_seen_done)
        ready = render_seen_done(last)
        spans = sorted(calls.spans.get((str(last.order_key), last.job_id), []))
        if not spans:
            continue
        stored = datetime.fromisoformat(item["statusHistory"][1]["at"]).timestamp()
        waits.append(spans[0][0] - ready)
        firsts.append(spans[0][1] - spans[0][0])
        counts.append(float(len(spans)))
        rest.append(stored - spans[0][0])
    if not waits:
        return {}
    return {
        "ready_to_first_invocation": round(statistics.median(waits), 1),
        "first_invocation_s": round(statistics.median(firsts), 1),
        "invocations": round(statistics.median(counts), 1),
        "first_invocation_start_to_status": round(statistics.median(rest), 1),
    }


def received_at(item: dict[str, Any]) -> float:
    return datetime.fromisoformat(item["receivedAt"]).timestamp()


def phase_medians(items: list[dict[str, Any]]) -> dict[str, float]:
    """Median seconds of each status step (``Received->In progress#1`` ...): where time goes."""
    spans: dict[str, list[float]] = {}
    for item in items:
        if item.get("status") not in FINAL:
            continue
        history = item.get("statusHistory") or []
        for index, (before, after) in enumerate(itertools.pairwise(history), start=1):
            name = f"{index}:{before['status']}->{after['status']}"
            start = datetime.fromisoformat(before["at"]).timestamp()
            end = datetime.fromisoformat(after["at"]).timestamp()
            spans.setdefault(name, []).append(end - start)
    return {name: round(statistics.median(values), 1) for name, values in spans.items()}


def forget_moto_state(env: Any) -> None:
    """moto's backends live in the process: reset them, so a later local stack (the e2e
    tests') starts from nothing, as a fresh AWS account would."""
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 (the local moto server on loopback)
        f"{env.stack.aws_endpoint}/moto-api/reset", method="POST"
    )
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310
        pass


def describe_unfinished(env: Any, order: PlannedOrder, item: dict[str, Any] | None) -> str:
    """Where an order that did not reach a final state stands: its status and its jobs."""
    from printflow.adapters.render_job_table import RenderJobTable
    from printflow.domain.order import OrderKey

    if item is None:
        return f"{order.storefront}/{order.order_id}: no order item"
    jobs = RenderJobTable(env.stack.client("dynamodb"), env.stack.resources.table(), 4)
    states = [
        f"{j.job_id[:18]} {j.state.value} failures={j.failures} last={j.last_status}"
        for j in jobs.jobs_of(OrderKey(order.storefront, order.order_id))
    ]
    return f"{order.storefront}/{order.order_id}: {item.get('status')} jobs={states}"


def describe_unexpected(env: Any, order: PlannedOrder, item: dict[str, Any]) -> str:
    """An order that ended otherwise than meant: its status, step and cause, and the last
    frames of each failed function invocation about it (what its log would show on AWS)."""
    error = item.get("error") or {}
    lines = [
        f"{order.storefront}/{order.order_id}: {item['status']} at {error.get('step')} "
        f"{error.get('cause', '')}"
    ]
    for call in env.stack.dispatcher.invocations:
        if call.trace is not None and order.order_id in json.dumps(call.event, default=str):
            frames = call.trace.strip().splitlines()[-12:]
            lines.append(f"  {call.function_name} raised:\n    " + "\n    ".join(frames))
    return "\n".join(lines)


def check_objects(env: Any) -> tuple[int, int, int]:
    """(partial objects, open multipart uploads, objects outside their order's manifest)."""
    s3 = env.stack.client("s3")
    bucket = env.stack.resources.bucket()
    objects: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="orders/"):
        for entry in page.get("Contents", []):
            objects[entry["Key"]] = entry["Size"]
    listed: dict[str, dict[str, Any]] = {}
    for key in [k for k in objects if k.endswith("/manifest.json")]:
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        for artifact in manifest.get("artifacts", []):
            listed[artifact["key"]] = artifact
    partial = outside = 0
    for key, size in objects.items():
        if key.endswith("/manifest.json"):
            continue
        artifact = listed.get(key)
        if artifact is None:
            outside += 1
            continue
        head = s3.head_object(Bucket=bucket, Key=key)
        if size != artifact["size"] or head["Metadata"].get("sha256") != artifact["sha256"]:
            partial += 1
    partial += sum(1 for key in listed if key not in objects)
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return partial, len(uploads), outside


def duplicate_executions(env: Any) -> int:
    sfn = env.stack.client("stepfunctions")
    names: Counter[str] = Counter()
    paginator = sfn.get_paginator("list_executions")
    for page in paginator.paginate(stateMachineArn=env.stack.resources.state_machine()):
        names.update(e["name"] for e in page["executions"])
    return sum(count - 1 for count in names.values() if count > 1)


def emails_sent_twice() -> int:
    """Emails (subject, recipients) sent more than once. The local stack starts from an
    empty account, so every message moto holds is this run's."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    sent = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    keys = Counter((m.subject, tuple(m.destinations.get("ToAddresses", []))) for m in sent)
    return sum(1 for count in keys.values() if count > 1)


def describe_double_emails(env: Any, orders: list[PlannedOrder]) -> list[str]:
    """Why an email went out twice: each such email's order, its email records and every
    send-email invocation about it (what the function's log would show on AWS)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    from printflow.adapters.order_table import EMAIL_SK_PREFIX

    sent = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    keys = Counter((m.subject, tuple(m.destinations.get("ToAddresses", []))) for m in sent)
    dynamodb = env.stack.client("dynamodb")
    lines: list[str] = []
    for (subject, _recipients), count in keys.items():
        if count < 2:
            continue
        lines.append(f"{count}x {subject!r}")
        for order in orders:
            if f"#{order.order_id}" not in subject:
                continue
            records = dynamodb.query(
                TableName=env.stack.resources.table(),
                KeyConditionExpression="pk = :pk AND begins_with(sk, :email)",
                ExpressionAttributeValues={
                    ":pk": {"S": f"ORDER#{order.storefront}#{order.order_id}"},
                    ":email": {"S": EMAIL_SK_PREFIX},
                },
            )["Items"]
            lines.extend(f"  record {record}" for record in records)
            for call in env.stack.dispatcher.invocations:
                if order.order_id not in json.dumps(call.event, default=str):
                    continue
                lines.append(f"  {call.function_name} -> {call.error_type or 'ok'}")
                if call.trace is not None:
                    lines.extend("    " + f for f in call.trace.strip().splitlines()[-6:])
    return lines


def rest_delivered_twice(env: Any) -> int:
    per_order: Counter[tuple[str, str]] = Counter()
    for delivery in env.sink.received():
        if 200 <= delivery.status < 300:
            order = delivery.json().get("order") or {}
            per_order[(str(order.get("storefrontId")), str(order.get("orderId")))] += 1
    return sum(1 for count in per_order.values() if count > 1)


def run(
    orders_count: int,
    *,
    pause_s: float,
    drain_timeout_s: float,
    seed: int,
    rescue_after_s: float | None = None,
    with_canvas: bool = True,
    canvas_polls: int = CANVAS_POLLS,
) -> dict[str, Any]:
    """Run the fault run on a fresh local stack; return the figures (the JSON line's keys)."""
    import random

    rng = random.Random(seed)
    env = start_environment(rescue_after_s)
    try:
        register_failing_storefront(env)
        env.chili.reseed(seed)
        env.canvas.reseed(seed + 1)
        orders = plan(orders_count, with_canvas=with_canvas)
        for order in orders:
            order.body = body_of(order)
            if order.provider == "customers-canvas":
                from printflow_tools.sandboxes import Pipeline

                env.canvas.add_order(
                    storefront_id=42,
                    order_id=order.order_id,
                    line_item_ids=["412"],
                    line_items=[Pipeline.completes(after_polls=canvas_polls - 1)],
                )
        inject_faults(env)
        download_calls = DownloadCalls(env.stack)
        duplicates = {o.order_id for o in orders if rng.random() < 0.20}

        started = time.time()
        crashed = [0]
        pauser: threading.Thread | None = None
        crasher: threading.Thread | None = None

        def crash() -> None:
            crashed[0] = crash_a_poll_run_after_leasing(env)

        def send(order: PlannedOrder) -> None:
            order.delivered_at = time.time()
            order.answers = deliver(env, order, order.order_id in duplicates)
            order.acknowledged = is_acknowledged(order.answers)

        with ThreadPoolExecutor(8) as pool:
            sent = []
            for index, order in enumerate(orders):
                sent.append(pool.submit(send, order))
                if index == len(orders) // 3:
                    pauser = threading.Thread(target=pause_schedule, args=(env, pause_s))
                    pauser.start()
                if index == 2 * len(orders) // 3:
                    crasher = threading.Thread(target=crash)
                    crasher.start()
                time.sleep(0.05)
        for delivery in sent:
            delivery.result()  # a bug in sending must fail the run, not read as unacknowledged
        last_delivery = max(o.delivered_at for o in orders)
        for thread in (pauser, crasher):
            if thread is not None:
                thread.join()
        if crashed[0] == 0:
            crash()

        acknowledged = [o for o in orders if o.acknowledged]
        deadline = time.time() + drain_timeout_s
        pending = [(o.storefront, o.order_id) for o in acknowledged]
        while pending and time.time() < deadline:
            time.sleep(1.0)
            seen = order_items(env, pending, status_only=True)
            pending = [k for k in pending if (seen.get(k) or {}).get("status") not in FINAL]
        items = order_items(env, [(o.storefront, o.order_id) for o in acknowledged])

        finals: dict[str, float] = {}
        unexpected: list[str] = []
        unfinished: list[str] = []
        lost = 0
        for order in acknowledged:
            item = items.get((order.storefront, order.order_id))
            at = final_at(item) if item else None
            if item is None or at is None:
                lost += 1
                unfinished.append(describe_unfinished(env, order, item))
                continue
            finals[order.order_id] = at
            if item["status"] != order.expect:
                unexpected.append(describe_unexpected(env, order, item))
        chili_times = [
            finals[o.order_id] - received_at(items[(o.storefront, o.order_id)])
            for o in acknowledged
            if o.provider == "chili" and o.order_id in finals
        ]
        order_jobs = jobs_of(env, [o for o in acknowledged if o.order_id in finals])
        beyond = [
            finals[o.order_id]
            - received_at(items[(o.storefront, o.order_id)])
            - o.policy_floor_s(provider_requests(order_jobs[o.order_id]))
            for o in acknowledged
            if o.order_id in finals
        ]
        partial, uploads, outside = check_objects(env)
        phases = phase_medians(
            [items[(o.storefront, o.order_id)] for o in acknowledged if o.provider == "chili"]
        )
        last_final = max(finals.values(), default=time.time())
        result = {
            "acknowledged": len(acknowledged),
            "lost": lost,
            "duplicate_executions": duplicate_executions(env),
            "emails_sent_twice": emails_sent_twice(),
            "rest_delivered_twice": rest_delivered_twice(env),
            "partial_objects": partial,
            "open_multipart_uploads": uploads,
            "objects_outside_manifests": outside,
            "orders_per_minute": round(len(acknowledged) / max(last_final - started, 1e-9) * 60, 1),
            "seconds_to_drain": round(max(0.0, last_final - last_delivery), 1),
            "unexpected_outcomes": len(unexpected),
            "chili_median_s_to_final": round(statistics.median(chili_times), 1)
            if chili_times
            else None,
            "max_wait_beyond_policy_s": round(max(beyond), 1) if beyond else None,
        }
        chili_done = [
            (items[(o.storefront, o.order_id)], order_jobs[o.order_id])
            for o in acknowledged
            if o.provider == "chili" and o.order_id in order_jobs
        ]
        details = {
            "orders": len(orders),
            "duplicates_sent": len(duplicates),
            "jobs_leased_by_the_crashed_run": crashed[0],
            "schedule_paused_s": pause_s,
            "unexpected": unexpected[:10],
            "webhook_5xx": [
                f"{o.storefront}/{o.order_id}: {o.answers}"
                for o in orders
                if any(isinstance(a, int) and a >= 500 for a in o.answers)
            ][:10],
            "webhook_resent": sum(1 for o in orders for a in o.answers if isinstance(a, str)),
            "unacknowledged": [
                f"{o.storefront}/{o.order_id}: {o.answers}" for o in orders if not o.acknowledged
            ][:10],
            "unfinished": unfinished[:10],
            "emails_twice": describe_double_emails(env, acknowledged),
            "chili_phase_medians_s": phases,
            "chili_legs_median_s": job_phases(chili_done),
            "chili_download_leg_median_s": download_leg(download_calls, chili_done),
            "outcomes": dict(
                Counter(
                    items[(o.storefront, o.order_id)]["status"]
                    for o in acknowledged
                    if (o.storefront, o.order_id) in items
                )
            ),
            "provider_requests": {
                "chili": len(env.chili.requests),
                "customers-canvas": len(env.canvas.requests),
            },
        }
        return {"result": result, "details": details}
    finally:
        from printflow_tools.localstack.executions import end_every_execution

        # Executions outlive a moto reset (they are threads of this process): end them
        # first, so none goes on sending into a later run's account.
        end_every_execution(env.stack.client("stepfunctions"))
        forget_moto_state(env)
        env.stop()


CORRECTNESS_KEYS = (
    "lost",
    "duplicate_executions",
    "emails_sent_twice",
    "rest_delivered_twice",
    "partial_objects",
    "open_multipart_uploads",
    "objects_outside_manifests",
    "unexpected_outcomes",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="10 orders, a short pause")
    parser.add_argument("--pause-s", type=float, default=20.0, help="schedule stopped this long")
    parser.add_argument("--drain-timeout-s", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample every thread's stack (wall clock) and print where the time went",
    )
    parser.add_argument(
        "--rescue-after-s",
        type=float,
        default=None,
        help="the safety-net run's staleness (default: the template's 300 s)",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        # CHILI only (a Customer's Canvas order waits the vendor's 60 s), and a safety net
        # that rescues the crashed run's jobs after 10 s instead of 300 s.
        args.orders, args.pause_s, args.drain_timeout_s = 10, 2.0, 120.0
        args.rescue_after_s = 10.0 if args.rescue_after_s is None else args.rescue_after_s

    sampler = StackSampler() if args.profile else contextlib.nullcontext()
    with sampler:
        outcome = run(
            args.orders,
            pause_s=args.pause_s,
            drain_timeout_s=args.drain_timeout_s,
            seed=args.seed,
            rescue_after_s=args.rescue_after_s,
            with_canvas=not args.smoke,
        )
    if isinstance(sampler, StackSampler):
        print("  where the threads were (share of samples, innermost PrintFlow frame, innermost):")
        for line in sampler.report(40):
            print(f"    {line}")
    result, details = outcome["result"], outcome["details"]
    print(
        f"fault run: {details['orders']} orders ({details['duplicates_sent']} sent twice), "
        f"schedule stopped {details['schedule_paused_s']:.0f} s, "
        f"{details['jobs_leased_by_the_crashed_run']} job(s) leased by a crashed poll run"
    )
    print(f"  outcomes:                 {details['outcomes']}")
    for key, value in result.items():
        print(f"  {key:<26}{value}")
    print(f"  CHILI phases (median s):  {details['chili_phase_medians_s']}")
    print(f"  CHILI legs (median s):    {details['chili_legs_median_s']}")
    print(f"  CHILI download leg:       {details['chili_download_leg_median_s']}")
    for line in details["unexpected"]:
        print(f"  unexpected: {line}")
    for line in details["unfinished"]:
        print(f"  not final:  {line}")
    print(f"  provider requests:        {details['provider_requests']}")
    print(json.dumps(result))
    return 2 if any(result[key] for key in CORRECTNESS_KEYS) else 0


if __name__ == "__main__":
    sys.exit(main())
