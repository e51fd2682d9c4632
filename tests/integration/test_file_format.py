"""The flow's fileFormat (issue 12 §4): honoured when the provider makes it, refused when not.

The seed's example flow asks for ``stl``. CHILI cannot produce it: registering a CHILI
storefront against that flow is refused, and running it anyway (a storefront registered
before the check existed) fails the render step with the same message, before any task.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from printflow.adapters.order_table import OrderTable
from printflow.adapters.webhook_secrets import WebhookSecrets
from printflow.domain.order import OrderKey
from printflow.errors import ValidationError
from printflow.flows import parse_flow
from printflow.storefronts import register_storefront
from printflow.validators import UrlPolicy
from printflow_tools.localstack.storefront_setup import chili_provider
from printflow_tools.webhook_events import DEMO_SECRETS

SEED_FLOW: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "unit" / "fixtures" / "seed_flow.json").read_text()
)
REFUSAL = (
    "step 'generate': fileFormat 'stl' cannot be produced by provider chili "
    "(it produces: pdf, png, jpg, gif, mp4)"
)
SHOPIFY_ORDER = OrderKey("demo-shopify", "5678901234567")


def with_format(file_format: str) -> list[dict[str, Any]]:
    flow = json.loads(json.dumps(SEED_FLOW))
    flow[0]["options"]["fileFormat"] = file_format
    return flow


def test_registering_a_chili_storefront_against_the_seed_flow_is_refused(world: Any) -> None:
    table = OrderTable(boto3.client("dynamodb"), world.resources.table())
    doc = {
        "storefrontId": "seed-shop",
        "platform": "shopify",
        "flow": "seed",
        "webhookSecret": DEMO_SECRETS["shopify"],
        "provider": chili_provider(world.chili, "printflow/providers/seed-shop/chili"),
    }

    with pytest.raises(ValidationError) as refused:
        register_storefront(
            doc,
            table,
            WebhookSecrets(boto3.client("secretsmanager"), "printflow"),
            provider_urls=UrlPolicy.loopback(),
            flows={"seed": parse_flow(SEED_FLOW)},
        )

    assert str(refused.value) == f"storefront 'seed-shop' with flow 'seed': {REFUSAL}"
    assert table.get_storefront("seed-shop") is None  # nothing written


def test_running_the_seed_flow_against_chili_is_refused_at_render_start(world: Any) -> None:
    # Registered without the flow check (as before it existed), then the seed flow runs.
    world.register_chili_storefront(flow="seed")
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")

    execution = world.wait_execution(world.start_flow(SEED_FLOW, SHOPIFY_ORDER, "seed"))

    assert execution["status"] == "FAILED"
    order = world.order(SHOPIFY_ORDER)
    assert order["error"]["step"] == "generate"
    assert REFUSAL in order["error"]["cause"]
    assert world.chili.tasks() == []  # refused before any render started, not made as a PDF
    assert world.jobs(SHOPIFY_ORDER) == []


def test_a_format_chili_makes_is_honoured(world: Any) -> None:
    # The storefront says pdf; the step asks for png: CHILI is asked for png.
    world.register_chili_storefront(flow="png")
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")

    world.start_flow(with_format("png"), SHOPIFY_ORDER, "png")
    jobs = world.wait(lambda: len(world.jobs(SHOPIFY_ORDER)) == 2 and world.jobs(SHOPIFY_ORDER))

    assert {j["details"]["work"]["outputFormat"] for j in jobs} == {"png"}
    assert {t.output_format for t in world.chili.tasks()} == {"png"}
