"""Signed storefront deliveries, as HTTP headers or as API Gateway HTTP API (v2) events.

Used by the tests, the demo and ``printflow events`` to produce deliveries exactly like the
platforms send them. The signatures are computed here independently of the verifiers in
``printflow.intake.signatures`` (the tests would prove nothing if both shared code).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

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
BIGCOMMERCE_SECRET_HEADER = "X-PrintFlow-Webhook-Secret"  # noqa: S105 (a header name)


def payload(name: str) -> bytes:
    return (PAYLOADS_DIR / name).read_bytes()


def _b64_hmac(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def signed_headers(
    platform: str,
    body: bytes,
    secret: str,
    *,
    timestamp: int | None = None,
    topic: str | None = None,
) -> dict[str, str]:
    """Headers a real storefront would send with ``body``."""
    if platform == "shopify":
        return {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic or "orders/create",
            "X-Shopify-Hmac-Sha256": _b64_hmac(secret, body),
            "X-Shopify-Shop-Domain": "printflow-demo.myshopify.com",
            "X-Shopify-API-Version": "2025-10",
            "X-Shopify-Webhook-Id": str(uuid.uuid5(uuid.NAMESPACE_URL, body.hex()[:64])),
            "X-Shopify-Event-Id": str(uuid.uuid5(uuid.NAMESPACE_OID, body.hex()[:64])),
            "X-Shopify-Triggered-At": "2026-11-20T15:15:43.000Z",
        }
    if platform == "woocommerce":
        return {
            "Content-Type": "application/json",
            "X-WC-Webhook-Source": "https://shop.example.org/",
            "X-WC-Webhook-Topic": topic or "order.created",
            "X-WC-Webhook-Resource": "order",
            "X-WC-Webhook-Event": "created",
            "X-WC-Webhook-Signature": _b64_hmac(secret, body),
            "X-WC-Webhook-ID": "17",
            "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex,
        }
    if platform == "bigcommerce":
        return {"Content-Type": "application/json", BIGCOMMERCE_SECRET_HEADER: secret}
    if platform == "generic":
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
        return {
            "Content-Type": "application/json",
            "X-PrintFlow-Timestamp": stamp,
            "X-PrintFlow-Signature": f"v1={digest.hexdigest()}",
        }
    raise ValueError(f"unknown platform {platform!r}")


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
