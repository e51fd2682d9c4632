"""Signed storefront deliveries, as HTTP headers or as API Gateway HTTP API (v2) events.

Used by the tests, the demo and ``printflow events`` to produce deliveries exactly like the
platforms send them. Each platform's headers come from its module, found through the platform
table (:func:`printflow.platforms.registry.platform_for`), so a new platform signs its
samples without an edit here. Its signer is written apart from its verifier (it builds the
headers a shop sends; the verifier checks them), and ``tests/unit/test_signatures.py`` checks
every verifier against signatures computed there, with no PrintFlow code.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

from printflow.domain.storefront import DEFAULT_BIGCOMMERCE_HEADER
from printflow.platforms.registry import platform_for
from printflow_tools.localstack.template import REPO_ROOT

EVENTS_DIR = REPO_ROOT / "events"
PAYLOADS_DIR = EVENTS_DIR / "payloads"

# Demo secrets: only ever used against the local stack and in the sample events.
DEMO_SECRETS = {
    "shopify": "demo-shopify-app-secret-0001",
    "woocommerce": "demo-woocommerce-secret-0002",
    "bigcommerce": "demo-bigcommerce-secret-0003",
    "generic": "demo-generic-shop-secret-0004",
}
BIGCOMMERCE_SECRET_HEADER = DEFAULT_BIGCOMMERCE_HEADER


def payload(name: str) -> bytes:
    return (PAYLOADS_DIR / name).read_bytes()


def signed_headers(
    platform: str,
    body: bytes,
    secret: str,
    *,
    timestamp: int | None = None,
    topic: str | None = None,
) -> dict[str, str]:
    """Headers a real storefront would send with ``body``; ValueError for an unknown platform."""
    return platform_for(platform).sign_delivery(body, secret, timestamp=timestamp, topic=topic)


def http_api_event(
    method: str,
    path: str,
    path_parameters: dict[str, str],
    headers: dict[str, str],
    body: bytes | None,
    *,
    route_key: str,
    base64_body: bool = False,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload v2 event, as Lambda receives it."""
    text: str | None
    if body is None:
        text = None
    elif base64_body:
        text = base64.b64encode(body).decode()
    else:
        text = body.decode("utf-8")
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {k.lower(): v for k, v in headers.items()},
        "pathParameters": path_parameters,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("User-Agent", "printflow-events"),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": route_key,
            "stage": "$default",
            "time": "21/Nov/2026:09:30:00 +0000",
            "timeEpoch": 1763717400000,
        },
        "body": text,
        "isBase64Encoded": base64_body,
    }


def webhook_event(
    platform: str,
    storefront_id: str,
    body: bytes,
    headers: dict[str, str],
    *,
    method: str = "POST",
    base64_body: bool = False,
) -> dict[str, Any]:
    path = f"/webhooks/{platform}/{storefront_id}"
    return http_api_event(
        method,
        path,
        {"platform": platform, "storefrontId": storefront_id},
        headers,
        body,
        route_key="ANY /webhooks/{platform}/{storefrontId}",
        base64_body=base64_body,
    )


# name of the sample event -> (platform, storefront id, payload file, base64 body?)
SAMPLE_WEBHOOKS: dict[str, tuple[str, str, str, bool]] = {
    "webhook-shopify-orders-create.json": (
        "shopify",
        "demo-shopify",
        "shopify-orders-create.json",
        False,
    ),
    "webhook-woocommerce-order-created.json": (
        "woocommerce",
        "demo-woo",
        "woocommerce-order-created.json",
        False,
    ),
    "webhook-woocommerce-ping.json": ("woocommerce", "demo-woo", "woocommerce-ping.form", True),
    "webhook-bigcommerce-order-created.json": (
        "bigcommerce",
        "demo-bigcommerce",
        "bigcommerce-order-created.json",
        False,
    ),
    "webhook-generic-order.json": ("generic", "demo-generic", "generic-order.json", False),
}
# The generic scheme is timestamped: the sample carries a fixed time, so replaying it later
# is (correctly) refused; `printflow events sign` makes a fresh one.
SAMPLE_GENERIC_TIMESTAMP = 1763717400


def sample_events() -> dict[str, dict[str, Any]]:
    """Every sample event of ``events/``, generated from ``events/payloads``."""
    events: dict[str, dict[str, Any]] = {}
    for name, (platform, storefront_id, payload_file, b64) in SAMPLE_WEBHOOKS.items():
        body = payload(payload_file)
        if payload_file.endswith(".form"):
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-WC-Webhook-Source": "https://shop.example.org/",
            }
        else:
            headers = signed_headers(
                platform, body, DEMO_SECRETS[platform], timestamp=SAMPLE_GENERIC_TIMESTAMP
            )
            headers.pop("X-WC-Webhook-Delivery-ID", None)
        events[name] = webhook_event(platform, storefront_id, body, headers, base64_body=b64)
        events[name]["requestContext"]["requestId"] = name.removesuffix(".json")
    events["order-status.json"] = http_api_event(
        "GET",
        "/orders/demo-shopify/5678901234567",
        {"storefrontId": "demo-shopify", "orderId": "5678901234567"},
        {"Accept": "application/json"},
        None,
        route_key="GET /orders/{storefrontId}/{orderId}",
    )
    events["order-status.json"]["requestContext"]["requestId"] = "order-status"
    return events


def write_sample_events(directory: Path = EVENTS_DIR) -> list[Path]:
    written = []
    for name, event in sample_events().items():
        path = directory / name
        path.write_text(json.dumps(event, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
