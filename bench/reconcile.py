"""Reconciliation benchmark: a pull that recovers N missed orders, then the same pull again.

For each platform (its loopback store sandbox, moto for AWS): wall time and orders per second
of a pull recovering N orders, store API requests, AWS calls per recovered order, and the same
for a second pull over the same orders, all recorded by then (what every overlapping pull
costs). Run from the repository root with the project's Python:
``.venv/bin/python bench/reconcile.py [--orders 500] [--smoke]``. Prints readable figures,
then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_DEFAULT_REGION="us-east-1",
    POWERTOOLS_SERVICE_NAME="printflow",
    POWERTOOLS_LOG_LEVEL="ERROR",
    POWERTOOLS_METRICS_NAMESPACE="PrintFlow",
    POWERTOOLS_METRICS_DISABLED="true",
)


def seed(platform: str, sandbox: Any, count: int) -> None:
    from printflow_tools.sandboxes.bigcommerce import demo_order
    from printflow_tools.webhook_events import payload

    now = time.time()
    for n in range(count):
        created = time.gmtime(now - 3000 + n)
        order_id = 10_000 + n
        if platform == "shopify":
            order = json.loads(payload("shopify-orders-create.json"))
            order.update(id=order_id, name=f"#{order_id}", order_number=order_id)
            order["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", created)
            sandbox.add_order(order)
        elif platform == "woocommerce":
            order = json.loads(payload("woocommerce-order-created.json"))
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", created)
            order.update(id=order_id, date_created_gmt=stamp, date_created=stamp)
            sandbox.add_order(order)
        else:
            doc, products = demo_order(order_id)
            doc["date_created"] = time.strftime("%a, %d %b %Y %H:%M:%S +0000", created)
            sandbox.add_order(doc, products)


def measure(count: int) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from printflow.adapters import aws
    from printflow.adapters.order_table import OrderTable
    from printflow.adapters.reconcile_state import ReconcileStateTable
    from printflow.adapters.webhook_secrets import WebhookSecrets
    from printflow.reconcile.wiring import build_reconciler
    from printflow.settings import ReconcileSettings
    from printflow.storefronts import register_storefront
    from printflow.validators import UrlPolicy
    from printflow_tools.localstack.fidelity import make_moto_behave_like_aws
    from printflow_tools.localstack.resources import create_resources
    from printflow_tools.localstack.storefront_setup import (
        shopify_store_api,
        store_api,
        woocommerce_store_api,
    )
    from printflow_tools.sandboxes import BigCommerceSandbox, ShopifySandbox, WooCommerceSandbox
    from printflow_tools.webhook_events import DEMO_SECRETS

    make_moto_behave_like_aws()
    results: dict[str, Any] = {}
    setups: dict[str, tuple[Callable[[], Any], Callable[..., dict[str, Any]]]] = {
        "shopify": (ShopifySandbox, shopify_store_api),
        "woocommerce": (WooCommerceSandbox, woocommerce_store_api),
        "bigcommerce": (BigCommerceSandbox, store_api),
    }
    for platform, (sandbox_class, api_of) in setups.items():
        with mock_aws(), sandbox_class() as sandbox:
            aws.client.cache_clear()
            resources = create_resources(boto3.Session(region_name="us-east-1"))
            secretsmanager = boto3.client("secretsmanager")
            table = OrderTable(boto3.client("dynamodb"), resources.table())
            register_storefront(
                {
                    "storefrontId": "bench",
                    "platform": platform,
                    "webhookSecret": DEMO_SECRETS[platform],
                    "storeApi": api_of(sandbox, "bench", secretsmanager),
                },
                table,
                WebhookSecrets(secretsmanager, "printflow"),
                provider_urls=UrlPolicy.loopback(),
            )
            seed(platform, sandbox, count)
            env = resources.functions["ReconcileFunction"].environment | {
                "EGRESS_ALLOWLIST": "127.0.0.1"
            }
            clients = {name: boto3.client(name) for name in ("dynamodb", "s3", "stepfunctions")}
            calls: Counter[str] = Counter()

            def count_call(event_name: str, calls: Counter[str] = calls, **_: Any) -> None:
                calls[event_name.split(".", 2)[2]] += 1

            for client in clients.values():
                client.meta.events.register("before-call.*.*", count_call)
            reconciler = build_reconciler(
                ReconcileSettings.from_env(env),
                dynamodb=clients["dynamodb"],
                s3=clients["s3"],
                stepfunctions=clients["stepfunctions"],
                secretsmanager=secretsmanager,
            )
            runs = []
            for label in ("recover", "again"):
                calls.clear()
                sandbox.clear_log()
                started = time.perf_counter()
                report = reconciler.run(lambda: 900.0).to_dict()
                elapsed = time.perf_counter() - started
                (pull,) = report["pulls"]
                assert pull["finished"] and not pull.get("error"), pull
                runs.append(
                    {
                        "run": label,
                        "seconds": round(elapsed, 3),
                        "recovered": pull["recovered"],
                        "alreadyRecorded": pull["alreadyRecorded"],
                        "storeRequests": len(sandbox.requests),
                        "awsCalls": dict(sorted(calls.items())),
                        "awsCallsPerOrder": round(sum(calls.values()) / count, 3),
                    }
                )
                ReconcileStateTable(clients["dynamodb"], resources.table()).finish("bench", 0, {})
            assert runs[0]["recovered"] == count and runs[1]["alreadyRecorded"] == count
            results[platform] = runs
        aws.client.cache_clear()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=500, help="missed orders per platform")
    parser.add_argument("--smoke", action="store_true", help="a tiny run (CI)")
    args = parser.parse_args()
    count = 10 if args.smoke else args.orders

    results = measure(count)

    print(f"Reconciliation of {count} missed orders per platform (moto + loopback sandboxes)")
    for platform, runs in results.items():
        for run in runs:
            rate = count / run["seconds"] if run["seconds"] else 0.0
            print(
                f"  {platform:<12} {run['run']:<8} {run['seconds']:>7.2f} s  "
                f"{rate:>7.0f} orders/s  store requests {run['storeRequests']:>4}  "
                f"AWS calls/order {run['awsCallsPerOrder']:.2f}  {run['awsCalls']}"
            )
    print(json.dumps({"bench": "reconcile", "orders": count, "results": results}))


if __name__ == "__main__":
    main()
