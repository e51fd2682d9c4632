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
required (CHILI: three polls 3 s apart; Customer's Canvas: 60 s per poll after the first).
Exits 2 when a correctness check fails (anything lost, duplicated, partial or unexpected).
"""

from __future__ import annotations

import argparse
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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from printflow_tools.bench_servers import free_port

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

CHILI_STOREFRONT = "demo-shopify"
CANVAS_STOREFRONT = "demo-woo"
FAILING_STOREFRONT = "fault-broken-template"
FINAL = ("Success", "Failed")
CHILI_POLICY_FLOOR_S = 6.0  # the sandbox's task is done on its third poll, 3 s apart
CANVAS_POLL_INTERVAL_S = 60.0
CANVAS_POLLS = 2  # Pipeline.completes(after_polls=1): Completed on the second poll


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

    @property
    def policy_floor_s(self) -> float:
        if self.provider == "customers-canvas":
            return CANVAS_POLL_INTERVAL_S * (CANVAS_POLLS - 1)
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
        schedule_speedup=60.0,
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


def deliver(env: Any, order: PlannedOrder, duplicate: bool) -> list[int]:
    import urllib.error
    import urllib.request

    from printflow_tools.webhook_events import DEMO_SECRETS, signed_headers

    headers = signed_headers(order.platform, order.body, DEMO_SECRETS[order.platform])
    url = f"{env.stack.api_url}/webhooks/{order.platform}/{order.storefront}"
    statuses = []
    for _ in range(2 if duplicate else 1):
        request = urllib.request.Request(  # noqa: S310 (the local stack on loopback)
            url, data=order.body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
                statuses.append(response.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
    return statuses


def crash_a_poll_run_after_leasing(env: Any, limit: int = 10) -> int:
    """Lease due jobs as a poller would, then never save them (the run died)."""
    from printflow.adapters.render_job_table import RenderJobTable

    jobs = RenderJobTable(env.stack.client("dynamodb"), env.stack.resources.table(), due_shards=4)
    now = time.time()
    leased = 0
    for shard in range(4):
        for pk, sk in list(jobs.due(shard, now, limit)):
            if leased < limit and jobs.lease(pk, sk, "crashed-poll-run", now, now + 30.0):
                leased += 1
    return leased


def pause_schedule(env: Any, seconds: float) -> None:
    from printflow_tools.localstack.triggers import Scheduler

    stack = env.stack
    schedules = stack.scheduler.schedules
    stack.scheduler.stop()
    time.sleep(seconds)
    stack.scheduler = Scheduler(schedules, stack.invoke)
    stack.scheduler.start()


def order_items(env: Any) -> dict[tuple[str, str], dict[str, Any]]:
    from printflow.adapters.dynamo_types import deserialize_item

    client = env.stack.client("dynamodb")
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for page in client.get_paginator("scan").paginate(TableName=env.stack.resources.table()):
        for raw in page["Items"]:
            if raw["sk"]["S"] == "ORDER":
                item = deserialize_item(raw)
                found[(item["storefrontId"], item["orderId"])] = item
    return found


def final_at(item: dict[str, Any]) -> float | None:
    history = item.get("statusHistory") or []
    if item.get("status") not in FINAL or not history:
        return None
    return datetime.fromisoformat(history[-1]["at"]).timestamp()


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
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    sent = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    keys = Counter((m.subject, tuple(m.destinations.get("ToAddresses", []))) for m in sent)
    return sum(1 for count in keys.values() if count > 1)


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
                    line_items=[Pipeline.completes(after_polls=CANVAS_POLLS - 1)],
                )
        inject_faults(env)
        duplicates = {o.order_id for o in orders if rng.random() < 0.20}

        started = time.time()
        crashed = 0
        pauser: threading.Thread | None = None

        def send(order: PlannedOrder) -> None:
            order.delivered_at = time.time()
            statuses = deliver(env, order, order.order_id in duplicates)
            order.acknowledged = statuses[0] == 202 or 200 in statuses[1:]

        with ThreadPoolExecutor(8) as pool:
            for index, order in enumerate(orders):
                pool.submit(send, order)
                if index == len(orders) // 3:
                    pauser = threading.Thread(target=pause_schedule, args=(env, pause_s))
                    pauser.start()
                if index == 2 * len(orders) // 3:
                    crashed = crash_a_poll_run_after_leasing(env)
                time.sleep(0.05)
        last_delivery = max(o.delivered_at for o in orders)
        if pauser is not None:
            pauser.join()
        if crashed == 0:
            crashed = crash_a_poll_run_after_leasing(env)

        acknowledged = [o for o in orders if o.acknowledged]
        deadline = time.time() + drain_timeout_s
        items: dict[tuple[str, str], dict[str, Any]] = {}
        while time.time() < deadline:
            items = order_items(env)
            pending = [
                o
                for o in acknowledged
                if (items.get((o.storefront, o.order_id)) or {}).get("status") not in FINAL
            ]
            if not pending:
                break
            time.sleep(1.0)

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
                cause = (item.get("error") or {}).get("cause", "")
                unexpected.append(f"{order.storefront}/{order.order_id}: {item['status']} {cause}")
        chili_times = [
            finals[o.order_id] - received_at(items[(o.storefront, o.order_id)])
            for o in acknowledged
            if o.provider == "chili" and o.order_id in finals
        ]
        beyond = [
            finals[o.order_id] - received_at(items[(o.storefront, o.order_id)]) - o.policy_floor_s
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
        details = {
            "orders": len(orders),
            "duplicates_sent": len(duplicates),
            "jobs_leased_by_the_crashed_run": crashed,
            "schedule_paused_s": pause_s,
            "unexpected": unexpected[:10],
            "unfinished": unfinished[:10],
            "chili_phase_medians_s": phases,
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

    outcome = run(
        args.orders,
        pause_s=args.pause_s,
        drain_timeout_s=args.drain_timeout_s,
        seed=args.seed,
        rescue_after_s=args.rescue_after_s,
        with_canvas=not args.smoke,
    )
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
    for line in details["unexpected"]:
        print(f"  unexpected: {line}")
    for line in details["unfinished"]:
        print(f"  not final:  {line}")
    print(f"  provider requests:        {details['provider_requests']}")
    print(json.dumps(result))
    return 2 if any(result[key] for key in CORRECTNESS_KEYS) else 0


if __name__ == "__main__":
    sys.exit(main())
