from __future__ import annotations

import json
from typing import Any

from printflow_tools.localstack.resources import LocalResources
from printflow_tools.webhook_events import (
    DEMO_SECRETS,
    http_api_event,
    payload,
    signed_headers,
    webhook_event,
)

from .test_webhook import Context


def status_event(storefront_id: str, order_id: str, method: str = "GET") -> dict[str, Any]:
    return http_api_event(
        method,
        f"/orders/{storefront_id}/{order_id}",
        {"storefrontId": storefront_id, "orderId": order_id},
        {},
        None,
        route_key="GET /orders/{storefrontId}/{orderId}",
    )


def test_status_of_a_received_order(
    local_aws: LocalResources, register: Any, handler_of: Any
) -> None:
    register("demo-shopify", "shopify")
    body = payload("shopify-orders-create.json")
    webhook = handler_of("WebhookFunction")
    webhook(
        webhook_event(
            "shopify",
            "demo-shopify",
            body,
            signed_headers("shopify", body, DEMO_SECRETS["shopify"]),
        ),
        Context(),
    )

    response = handler_of("OrderStatusFunction")(
        status_event("demo-shopify", "5678901234567"), Context()
    )

    assert response["statusCode"] == 200
    view = json.loads(response["body"])
    assert view["status"] == "Received"
    assert [h["status"] for h in view["statusHistory"]] == ["Received"]
    assert view["order"]["name"] == "#1042"
    assert view["artifacts"] == [] and view["error"] is None
    assert "intakeId" not in view and "dueShard" not in view


def test_unknown_order_is_404(local_aws: LocalResources, handler_of: Any) -> None:
    response = handler_of("OrderStatusFunction")(status_event("demo-shopify", "nope"), Context())
    assert response["statusCode"] == 404
    assert "'nope'" in json.loads(response["body"])["message"]


def test_other_methods_are_405(local_aws: LocalResources, handler_of: Any) -> None:
    response = handler_of("OrderStatusFunction")(status_event("s", "o", "DELETE"), Context())
    assert response["statusCode"] == 405 and response["headers"]["allow"] == "GET"
