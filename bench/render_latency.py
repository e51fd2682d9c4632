"""Render latency: from a render being done at the provider to the order's files in S3.

Run from the repository root: ``.venv/bin/python bench/render_latency.py [--orders 8]
[--spread 90] [--render 10] [--canvas-orders 2]``; ``--smoke`` runs a tiny version in
seconds (2 CHILI orders, no Customer's Canvas orders: those wait the vendor's 60 s).

The whole local stack runs on the real schedule (no speed-up): the poller's minute, the
poll timers' SQS delays in real time. Signed Shopify orders (2 line items each, rendered by
the CHILI sandbox in exactly ``--render`` seconds) are sent evenly over ``--spread`` seconds;
then WooCommerce orders rendered by the Customer's Canvas sandbox (``--render`` seconds
too). A watcher sees each order reach ``Success`` and its ``manifest.json`` land in S3
(every 0.1 s). Figures per provider, measured from render done by the sandbox's clock (the
task's start plus the render time; the last line item of the order):

- latency to order ``Success`` (mean, p95, max) and to the manifest in S3 (mean);
- polls per render job (the sandbox counts them);
- AWS requests per order, counted with a botocore ``after-call`` hook in this process: every
  request the functions and the local triggers make, by service and operation. Not counted:
  Lambda invocations (Step Functions invoking the step functions, listed apart), long polls
  that returned nothing (a per-minute cost of the event-source mappings, not per order) and
  the bench's own observation.

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore import handlers as botocore_handlers

from printflow_tools.bench_servers import free_port

# -- counting AWS requests ------------------------------------------------------------------


class RequestCounter:
    """Counts botocore calls made in this process, except while ``ignored()``."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.invokes = 0
        self.empty_receives = 0
        self._lock = threading.Lock()
        self._local = threading.local()

    def __call__(self, event_name: str, parsed: Any = None, **_: Any) -> None:
        if getattr(self._local, "ignored", False):
            return
        _, service, operation = [*event_name.split("."), "", ""][:3]
        with self._lock:
            if service == "lambda":
                self.invokes += 1
            elif operation == "ReceiveMessage" and not (parsed or {}).get("Messages"):
                self.empty_receives += 1
            else:
                self.counts[f"{service}.{operation}"] += 1

    @contextmanager
    def ignored(self) -> Iterator[None]:
        self._local.ignored = True
        try:
            yield
        finally:
            self._local.ignored = False

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)


COUNTER = RequestCounter()
# Every botocore session created from now on (the stack's, the functions', moto's engine's)
# gets the hook; nothing has created one yet.
botocore_handlers.BUILTIN_HANDLERS.append(("after-call", COUNTER))

from printflow_tools.localstack.environment import LocalEnvironment  # noqa: E402
from printflow_tools.localstack.stack import StackOptions  # noqa: E402
from printflow_tools.sandboxes import ChiliSandbox, CustomersCanvasSandbox, Pipeline  # noqa: E402
from printflow_tools.webhook_events import DEMO_SECRETS, payload, signed_headers  # noqa: E402

SHOPIFY_ID = b"5678901234567"
WOO_ID = b"7311"
CANVAS_STOREFRONT = 42  # demo-woo's Customer's Canvas storefront id


@dataclass
class TrackedOrder:
    storefront_id: str
    order_id: str
    provider: str
    sent_at: float = 0.0
    success_at: float | None = None
    manifest_at: float | None = None
    failed: str | None = None
    render_done_at: float | None = None
    polls: list[int] = field(default_factory=list)

    @property
    def settled(self) -> bool:
        return self.failed is not None or (
            self.success_at is not None and self.manifest_at is not None
        )


class Watcher:
    """Notes when each order reaches Success and when its manifest appears (every 0.1 s)."""

    def __init__(self, env: LocalEnvironment) -> None:
        stack = env.stack
        assert stack is not None and stack.resources is not None
        with COUNTER.ignored():
            self._dynamodb = stack.client("dynamodb")
            self._s3 = stack.client("s3")
        self._table = stack.resources.table()
        self._bucket = stack.resources.bucket()
        self.orders: list[TrackedOrder] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-watcher")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def track(self, order: TrackedOrder) -> None:
        with self._lock:
            self.orders.append(order)

    def _run(self) -> None:
        with COUNTER.ignored():
            while not self._stop.wait(0.1):
                with self._lock:
                    open_orders = [o for o in self.orders if not o.settled]
                for order in open_orders:
                    self._look(order)

    def _look(self, order: TrackedOrder) -> None:
        now = time.time()
        if order.manifest_at is None:
            key = f"orders/{order.storefront_id}/{order.order_id}/manifest.json"
            try:
                self._s3.head_object(Bucket=self._bucket, Key=key)
                order.manifest_at = now
            except self._s3.exceptions.ClientError:
                pass
        if order.success_at is None:
            item = self._dynamodb.get_item(
                TableName=self._table,
                Key={
                    "pk": {"S": f"ORDER#{order.storefront_id}#{order.order_id}"},
                    "sk": {"S": "ORDER"},
                },
                ConsistentRead=True,
            ).get("Item", {})
            status = item.get("status", {}).get("S")
            if status == "Success":
                order.success_at = now
            elif status == "Failed":
                order.failed = str(item.get("error", {}))


def post(api: str, platform: str, storefront_id: str, body: bytes) -> int:
    request = urllib.request.Request(  # noqa: S310 - the local gateway on loopback
        f"{api}/webhooks/{platform}/{storefront_id}",
        data=body,
        headers=signed_headers(platform, body, DEMO_SECRETS[platform]),
        method="POST",
    )
    with COUNTER.ignored(), urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return int(response.status)


def jobs_of(env: LocalEnvironment, order: TrackedOrder) -> list[dict[str, Any]]:
    stack = env.stack
    assert stack is not None and stack.resources is not None
    with COUNTER.ignored():
        items = stack.client("dynamodb").query(
            TableName=stack.resources.table(),
            KeyConditionExpression="pk = :pk AND begins_with(sk, :job)",
            ExpressionAttributeValues={
                ":pk": {"S": f"ORDER#{order.storefront_id}#{order.order_id}"},
                ":job": {"S": "JOB#"},
            },
            ConsistentRead=True,
        )["Items"]
    return [{k: next(iter(v.values())) for k, v in item.items()} for item in items]


def wait_settled(orders: list[TrackedOrder], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(o.settled for o in orders):
            return
        time.sleep(0.2)
    stuck = [o.order_id for o in orders if not o.settled]
    raise SystemExit(f"orders did not finish within {timeout_s:.0f} s: {stuck}")


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def figures_of(
    orders: list[TrackedOrder], render_s: float, requests: Counter[str]
) -> dict[str, Any]:
    latencies = [o.success_at - o.render_done_at for o in orders]  # type: ignore[operator]
    manifests = [o.manifest_at - o.render_done_at for o in orders]  # type: ignore[operator]
    polls = [p for o in orders for p in o.polls]
    return {
        "orders": len(orders),
        "render_s": render_s,
        "latency_mean_s": round(statistics.fmean(latencies), 2),
        "latency_p95_s": round(p95(latencies), 2),
        "latency_max_s": round(max(latencies), 2),
        "latency_min_s": round(min(latencies), 2),
        "manifest_latency_mean_s": round(statistics.fmean(manifests), 2),
        "polls_per_job_mean": round(statistics.fmean(polls), 2) if polls else 0.0,
        "aws_requests_per_order": round(sum(requests.values()) / len(orders), 1),
    }


def run_chili(env: LocalEnvironment, watcher: Watcher, args: argparse.Namespace) -> list[Any]:
    stack = env.stack
    assert stack is not None
    orders = [
        TrackedOrder("demo-shopify", str(8_100_000_000 + i), "chili") for i in range(args.orders)
    ]
    gap = args.spread / max(1, args.orders - 1)
    start = time.monotonic()
    for i, order in enumerate(orders):
        time.sleep(max(0.0, start + i * gap - time.monotonic()))
        body = payload("shopify-orders-create.json").replace(SHOPIFY_ID, order.order_id.encode())
        order.sent_at = time.time()
        watcher.track(order)
        assert post(stack.api_url, "shopify", order.storefront_id, body) == 202
    wait_settled(orders, args.render + 90)
    for order in orders:
        refs = [job["ref"] for job in jobs_of(env, order)]
        tasks = [env.chili.task(ref) for ref in refs]
        order.render_done_at = max(task.created_at for task in tasks) + args.render
        order.polls = [task.polls for task in tasks]
    return orders


def run_canvas(env: LocalEnvironment, watcher: Watcher, args: argparse.Namespace) -> list[Any]:
    stack = env.stack
    assert stack is not None
    orders = []
    projects: dict[str, list[int]] = {}
    for i in range(args.canvas_orders):
        order = TrackedOrder("demo-woo", str(7400 + i), "customers-canvas")
        # The shop's Customer's Canvas integration creates the project when the order is
        # placed; its pipeline renders for --render seconds.
        projects[order.order_id] = env.canvas.add_order(
            storefront_id=CANVAS_STOREFRONT,
            order_id=order.order_id,
            line_item_ids=["412"],
            line_items=[Pipeline(seconds_to_finish=args.render)],
        )
        body = payload("woocommerce-order-created.json").replace(WOO_ID, order.order_id.encode())
        order.sent_at = time.time()
        watcher.track(order)
        assert post(stack.api_url, "woocommerce", order.storefront_id, body) == 202
        orders.append(order)
    wait_settled(orders, args.render + 150)
    for order in orders:
        seen = [env.canvas.project(pid) for pid in projects[order.order_id]]
        order.render_done_at = max(p.run_started_at for p in seen) + args.render
        order.polls = [len(p.poll_times) for p in seen]
    return orders


def describe(label: str, orders: list[TrackedOrder], figures: dict[str, Any]) -> None:
    print(f"-- {label}: {len(orders)} order(s), renders of {figures['render_s']:g} s")
    for order in orders:
        assert order.render_done_at is not None
        assert order.success_at is not None and order.manifest_at is not None
        print(
            f"   order {order.order_id}: render done -> manifest in S3 "
            f"{order.manifest_at - order.render_done_at:+.2f} s, -> Success "
            f"{order.success_at - order.render_done_at:+.2f} s; polls per job {order.polls}"
        )
    print(
        f"   latency render done -> Success: mean {figures['latency_mean_s']} s, p95 "
        f"{figures['latency_p95_s']} s, max {figures['latency_max_s']} s, min "
        f"{figures['latency_min_s']} s; -> manifest mean {figures['manifest_latency_mean_s']} s; "
        f"{figures['polls_per_job_mean']} polls per job; "
        f"{figures['aws_requests_per_order']} AWS requests per order"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=8, help="CHILI orders (>= 8 for figures)")
    parser.add_argument("--spread", type=float, default=90.0, help="seconds to send them over")
    parser.add_argument("--render", type=float, default=10.0, help="render time (sandbox)")
    parser.add_argument("--canvas-orders", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="tiny and fast (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.orders, args.spread, args.render, args.canvas_orders = 2, 2.0, 2.0, 0

    options = StackOptions(
        api_port=free_port(),
        aws_port=free_port(),
        schedule_speedup=1.0,  # the real schedule
        log_stream=io.StringIO(),
        quiet_functions=True,
    )
    env = LocalEnvironment(
        options=options,
        chili=ChiliSandbox(seconds_until_done=args.render),
        canvas=CustomersCanvasSandbox(),
    )
    print(
        f"local stack on the real schedule; {args.orders} CHILI order(s) over {args.spread:g} s, "
        f"{args.canvas_orders} Customer's Canvas order(s); renders take {args.render:g} s"
    )
    with COUNTER.ignored():
        env.start()
    watcher = Watcher(env)
    watcher.start()
    try:
        before = COUNTER.snapshot()
        chili_orders = run_chili(env, watcher, args)
        chili_requests = COUNTER.snapshot() - before
        chili = figures_of(chili_orders, args.render, chili_requests)
        describe("CHILI GraFx", chili_orders, chili)
        top = ", ".join(
            f"{name} {n / len(chili_orders):.1f}" for name, n in chili_requests.most_common(8)
        )
        print(f"   AWS requests per CHILI order, most frequent: {top}")
        canvas: dict[str, Any] | None = None
        if args.canvas_orders:
            before = COUNTER.snapshot()
            canvas_orders = run_canvas(env, watcher, args)
            canvas = figures_of(canvas_orders, args.render, COUNTER.snapshot() - before)
            describe("Customer's Canvas (the vendor's 60 s between polls)", canvas_orders, canvas)
        else:
            print("-- Customer's Canvas: no orders (--smoke or --canvas-orders 0: each waits 60 s)")
    finally:
        watcher.stop()
        with COUNTER.ignored():
            env.stop()
    print(
        f"targets: CHILI mean <= 3 s (got {chili['latency_mean_s']}), max <= 6 s (got "
        f"{chili['latency_max_s']}), <= 6 polls per job for a 10 s render (got "
        f"{chili['polls_per_job_mean']}); Customer's Canvas <= 65 s after Completed"
        + (f" (got max {canvas['latency_max_s']})" if canvas else "")
    )
    print(json.dumps({**chili, "provider": "chili", "customers_canvas": canvas}))


if __name__ == "__main__":
    main()
