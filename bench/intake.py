"""Intake benchmark: webhook import time, warm request time, AWS calls per order.

Run from the repository root with the project's Python: ``.venv/bin/python bench/intake.py``.
Prints readable figures, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_DEFAULT_REGION="us-east-1",
    POWERTOOLS_SERVICE_NAME="printflow",
    POWERTOOLS_LOG_LEVEL="ERROR",
    POWERTOOLS_METRICS_NAMESPACE="PrintFlow",
    POWERTOOLS_METRICS_DISABLED="true",
)

IMPORT_PROBE = """
import importlib.util, sys, time
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("webhook_app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print((time.perf_counter() - start) * 1000)
"""


def import_times(runs: int, env: dict[str, str]) -> list[float]:
    """Import the webhook handler module in fresh processes (a Lambda cold start's import)."""
    app = ROOT / "functions" / "webhook" / "app.py"
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", IMPORT_PROBE, str(app)],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return times


class Context:
    function_name = "WebhookFunction"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:WebhookFunction"
    aws_request_id = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 6000


def warm_requests(orders: int) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from printflow.adapters import aws
    from printflow.adapters.order_table import OrderTable
    from printflow.adapters.webhook_secrets import WebhookSecrets
    from printflow.storefronts import register_storefront
    from printflow_tools.localstack.handlers import load_handler
    from printflow_tools.localstack.resources import create_resources
    from printflow_tools.webhook_events import DEMO_SECRETS, payload, signed_headers, webhook_event

    template_body = payload("shopify-orders-create.json")
    with mock_aws():
        aws.client.cache_clear()
        resources = create_resources(boto3.Session(region_name="us-east-1"))
        register_storefront(
            {
                "storefrontId": "bench",
                "platform": "shopify",
                "webhookSecret": DEMO_SECRETS["shopify"],
            },
            OrderTable(boto3.client("dynamodb"), resources.table()),
            WebhookSecrets(boto3.client("secretsmanager"), "printflow"),
        )
        handler = load_handler(resources.functions["WebhookFunction"])

        def event(order_number: int) -> dict[str, Any]:
            body = template_body.replace(b"5678901234567", str(order_number).encode(), 1)
            return webhook_event(
                "shopify", "bench", body, signed_headers("shopify", body, DEMO_SECRETS["shopify"])
            )

        assert handler(event(1), Context())["statusCode"] == 202  # cold: caches the config
        calls: list[str] = []
        for service in ("dynamodb", "s3", "stepfunctions", "secretsmanager"):
            aws.client(service).meta.events.register(
                "before-call.*.*", lambda event_name, **_: calls.append(event_name)
            )

        new_ms, duplicate_ms, new_calls, duplicate_calls = [], [], [], []
        for n in range(2, orders + 2):
            first, again = event(n), event(n)
            calls.clear()
            start = time.perf_counter()
            assert handler(first, Context())["statusCode"] == 202
            new_ms.append((time.perf_counter() - start) * 1000)
            new_calls.append(len(calls))
            calls.clear()
            start = time.perf_counter()
            assert handler(again, Context())["statusCode"] == 200
            duplicate_ms.append((time.perf_counter() - start) * 1000)
            duplicate_calls.append(len(calls))
    aws.client.cache_clear()
    return {
        "warm_ms": statistics.median(new_ms),
        "warm_p95_ms": statistics.quantiles(new_ms, n=20)[-1],
        "duplicate_ms": statistics.median(duplicate_ms),
        "aws_calls_new": max(new_calls),
        "aws_calls_duplicate": max(duplicate_calls),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--import-runs", type=int, default=9)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI (seconds)")
    args = parser.parse_args()
    if args.smoke:
        args.import_runs, args.orders = 2, 10

    sys.path.insert(0, str(ROOT))  # bench is run as a script; the package is installed
    from printflow_tools.localstack.template import Resolver, function_specs, load_template

    template = load_template()
    resolver = Resolver(template)
    from printflow_tools.localstack.resources import _name_resources

    _name_resources(template, resolver)
    env = function_specs(template, resolver)["WebhookFunction"].environment
    imports = import_times(args.import_runs, env)
    warm = warm_requests(args.orders)
    figures = {
        "import_ms": round(statistics.median(imports), 1),
        "import_min_ms": round(min(imports), 1),
        "warm_ms": round(warm["warm_ms"], 2),
        "warm_p95_ms": round(warm["warm_p95_ms"], 2),
        "duplicate_ms": round(warm["duplicate_ms"], 2),
        "aws_calls_new": warm["aws_calls_new"],
        "aws_calls_duplicate": warm["aws_calls_duplicate"],
        "orders": args.orders,
    }
    print(
        f"webhook handler import (median of {args.import_runs} fresh processes): "
        f"{figures['import_ms']} ms (target <= 300 ms)"
    )
    print(
        f"warm request against moto, new order: median {figures['warm_ms']} ms, "
        f"p95 {figures['warm_p95_ms']} ms; duplicate: {figures['duplicate_ms']} ms"
    )
    print(
        f"AWS calls per new order: {figures['aws_calls_new']} (target <= 3); "
        f"per duplicate: {figures['aws_calls_duplicate']} (the body's PUT, then the refused "
        "put: the body goes first so that a 'duplicate' answer is never given for an order "
        "that is not yet durable; it was 1 before)"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
