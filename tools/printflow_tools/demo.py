"""``make demo``: three orders through the whole flow on the local stack, in under two minutes.

1. starts the local stack (moto, the HTTP API, the poller schedule, the download queue), the
   CHILI GraFx, Customer's Canvas and BigCommerce store sandboxes and a REST receiver;
2. posts a signed Shopify ``orders/create`` (a CHILI-rendered storefront), a signed
   WooCommerce ``order.created`` (a Customer's Canvas storefront) and a BigCommerce
   ``store/order/created`` (an id only: the order is read from the store, then CHILI renders
   it) to the webhook, plus a duplicate delivery and a forged one;
3. follows the orders live: status changes, provider polls, downloads;
4. prints each order's history, execution result, artifacts (S3 key, size, SHA-256), the
   emails sent and the REST documents received, and copies the files to ``demo-output/``.

Exit status 0 when every order completed, 1 (with the reason) otherwise.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from printflow_tools.localstack.environment import LocalEnvironment
from printflow_tools.localstack.stack import StackOptions
from printflow_tools.localstack.template import REPO_ROOT
from printflow_tools.sandboxes import Pipeline
from printflow_tools.webhook_events import DEMO_SECRETS, payload, signed_headers

OUTPUT = REPO_ROOT / "demo-output"
TIMEOUT_S = 110.0


@dataclass
class DemoOrder:
    label: str
    platform: str
    storefront_id: str
    order_id: str
    payload_file: str
    seen: list[str] = field(default_factory=list)
    view: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return f"/orders/{self.storefront_id}/{self.order_id}"


ORDERS = [
    DemoOrder(
        "Shopify order #1042 (CHILI GraFx)",
        "shopify",
        "demo-shopify",
        "5678901234567",
        "shopify-orders-create.json",
    ),
    DemoOrder(
        "WooCommerce order #7311 (Customer's Canvas)",
        "woocommerce",
        "demo-woo",
        "7311",
        "woocommerce-order-created.json",
    ),
    DemoOrder(
        "BigCommerce order 250 (read from the store, CHILI GraFx)",
        "bigcommerce",
        "demo-bigcommerce",
        "250",
        "bigcommerce-order-created.json",
    ),
]
# Shopify: 2 line items, WooCommerce: 1, BigCommerce: 2 -> one file each.
EXPECTED_FILES = 5


def free_port(preferred: int) -> int:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", preferred)) != 0:
            return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(api: str, order: DemoOrder, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 (loopback)
        f"{api}/webhooks/{order.platform}/{order.storefront_id}",
        data=body,
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def get(api: str, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{api}{path}", timeout=10) as response:  # noqa: S310 (loopback)
        return dict(json.loads(response.read()))


def say(text: str = "") -> None:
    print(text, flush=True)


def bar(done: int, total: int, width: int = 24) -> str:
    filled = int(width * done / total) if total else 0
    return "[" + "#" * filled + "." * (width - filled) + f"] {done}/{total}"


def run(env: LocalEnvironment) -> int:
    stack = env.stack
    assert stack is not None and stack.resources is not None
    api = stack.api_url
    # Customer's Canvas creates one project per line item when the shop places the order;
    # its pipeline is still running at our first poll and done at the next (60 s later).
    env.canvas.add_order(
        storefront_id=42,
        order_id="7311",
        line_item_ids=["412"],
        line_items=[Pipeline.completes(after_polls=1)],
    )

    say("== Storefronts deliver their webhooks")
    for order in ORDERS:
        body = payload(order.payload_file)
        status, answer = post(
            api, order, body, signed_headers(order.platform, body, DEMO_SECRETS[order.platform])
        )
        say(f"  {order.label}: HTTP {status} {answer}")
    shopify = ORDERS[0]
    body = payload(shopify.payload_file)
    status, answer = post(
        api, shopify, body, signed_headers("shopify", body, DEMO_SECRETS["shopify"])
    )
    say(f"  the same Shopify delivery again (Shopify retries): HTTP {status} {answer['status']}")
    status, answer = post(api, shopify, body, signed_headers("shopify", body, "forged-secret-0000"))
    say(f"  a delivery signed with the wrong secret: HTTP {status} {answer['message']}")

    say(
        "\n== Following the orders (each render job has its own poll timer: CHILI is polled "
        "2 s after the start, then less often; Customer's Canvas every 60 s)"
    )
    s3 = stack.client("s3")
    bucket = stack.resources.bucket()
    started = time.monotonic()
    last_files = -1
    while time.monotonic() - started < TIMEOUT_S:
        for order in ORDERS:
            order.view = get(api, order.path)
            for entry in order.view.get("statusHistory", [])[len(order.seen) :]:
                step = f" (step {entry['step']})" if entry.get("step") else ""
                say(
                    f"  {time.monotonic() - started:5.1f}s  {order.storefront_id}/"
                    f"{order.order_id}: {entry['status']}{step}"
                )
                order.seen.append(entry["status"])
        chili_polls = sum(
            1
            for r in env.chili.requests
            if "/output/tasks/" in r.path and not r.path.endswith("/download")
        )
        canvas_polls = sum(1 for r in env.canvas.requests if r.path.endswith("processing-results"))
        listing = s3.list_objects_v2(Bucket=bucket, Prefix="orders/").get("Contents", [])
        files = [o for o in listing if not o["Key"].endswith("manifest.json")]
        if len(files) != last_files:
            last_files = len(files)
            size = sum(o["Size"] for o in files) / 1024 / 1024
            progress = bar(len(files), EXPECTED_FILES)
            say(
                f"  {time.monotonic() - started:5.1f}s  downloads {progress} "
                f"{size:.1f} MiB in S3; provider polls so far: CHILI {chili_polls}, "
                f"Customer's Canvas {canvas_polls}"
            )
        if all(o.view.get("status") in ("Success", "Failed") for o in ORDERS):
            break
        time.sleep(0.5)
    return summary(env, time.monotonic() - started)


def summary(env: LocalEnvironment, elapsed: float) -> int:
    stack = env.stack
    assert stack is not None and stack.resources is not None
    sfn, s3 = stack.client("stepfunctions"), stack.client("s3")
    bucket = stack.resources.bucket()
    machine = stack.resources.state_machine()
    problems = []
    shutil.rmtree(OUTPUT, ignore_errors=True)
    say(f"\n== Summary after {elapsed:.0f} s")
    for order in ORDERS:
        view = order.view
        executions = sfn.list_executions(stateMachineArn=machine)["executions"]
        name = next(
            (
                e["executionArn"]
                for e in executions
                if e["name"].startswith(f"{order.storefront_id}-{order.order_id}")
            ),
            None,
        )
        execution = sfn.describe_execution(executionArn=name) if name else {"status": "MISSING"}
        say(
            f"\n{order.label}  -> order status {view.get('status')!r}, "
            f"execution {execution['status']}"
        )
        for entry in view.get("statusHistory", []):
            say(f"    {entry['at']}  {entry['status']:<12} {entry.get('step') or ''}")
        if view.get("error"):
            say(f"    error: {view['error']}")
        for artifact in view.get("artifacts", []):
            say(
                f"    s3://{bucket}/{artifact['key']}  {artifact['size']:,} bytes  "
                f"sha256 {artifact['sha256'][:16]}..."
            )
            target = OUTPUT / artifact["key"].removeprefix("orders/")
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, artifact["key"], str(target))
        if view.get("status") != "Success" or execution["status"] != "SUCCEEDED":
            problems.append(
                f"{order.label} ended {view.get('status')!r} "
                f"(execution {execution['status']}: {execution.get('cause', '')})"
            )

    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    say("\nEmails sent (SES):")
    for message in ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages:
        say(f"    to {', '.join(message.destinations['ToAddresses'])}: {message.subject}")
    say("REST documents received by the order receiver (https://orders.example.com):")
    for delivery in env.sink.received():
        doc = delivery.json()
        say(
            f"    HTTP {delivery.status}  {doc['schema']}  order {doc['order']['orderId']} "
            f"status {doc['status']!r}, {len(doc['artifacts'])} artifact link(s)"
        )
    if OUTPUT.exists():
        shown = OUTPUT.relative_to(Path.cwd()) if OUTPUT.is_relative_to(Path.cwd()) else OUTPUT
        say(f"\nThe files are in {shown}/ (open the PDFs).")
    if problems:
        say("\nDEMO FAILED: " + "; ".join(problems))
        return 1
    say("\nEvery order went from webhook to verified files in S3. Demo passed.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="show the functions' logs")
    args = parser.parse_args(argv)
    OUTPUT.mkdir(exist_ok=True)
    log = (OUTPUT / "functions.log").open("w")
    options = StackOptions(
        api_port=free_port(3000),
        aws_port=free_port(4566),
        schedule_speedup=1.0,  # the real schedule: poll timers make CHILI orders fast
        log_stream=sys.stdout if args.verbose else log,
    )
    say(
        "Starting the local stack (moto, HTTP API, poller schedule, download queue, "
        "provider sandboxes) ..."
    )
    env = LocalEnvironment(options=options).start()
    try:
        say(env.describe().split("  demo storefronts:")[0])
        return run(env)
    finally:
        env.stop()
        log.close()


if __name__ == "__main__":
    sys.exit(main())
