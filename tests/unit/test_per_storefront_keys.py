"""Every key PrintFlow builds for an order includes its storefront (issue 15 §5).

Two storefronts each with an order ``1001`` (and ids built to look alike) must never share a
table item, a job, a lease, an S3 object, an execution, a delivery id or a queue message.
The Customer's Canvas poll spacing has its own tests in ``test_provider_customers_canvas``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

import pytest

from printflow.adapters.download_queue import download_message, parse_download_message
from printflow.adapters.order_table import order_key_attributes, order_pk
from printflow.adapters.raw_bodies import order_document_key, raw_body_key
from printflow.adapters.render_job_table import job_to_item
from printflow.domain.object_keys import artifact_key, manifest_key
from printflow.domain.order import OrderKey
from printflow.domain.render_job import RenderJob
from printflow.domain.storefront import ProviderName
from printflow.providers.protocol import RenderWork, WorkKind
from printflow.render.jobs import job_for_work
from printflow.steps.context import StepInvocation

# Same order id in two shops, and pairs whose plain concatenation would be equal.
KEYS = [
    OrderKey("shop-a", "1001"),
    OrderKey("shop-b", "1001"),
    OrderKey("shop", "a-1001"),
    OrderKey("shop-a", "..-1001"),
    OrderKey("shop-a", "1001/"),
    OrderKey("shop-a", "1001_"),
]
PAIRS = list(itertools.combinations(KEYS, 2))


def job(key: OrderKey) -> RenderJob:
    work = RenderWork(ProviderName.CHILI, WorkKind.OUTPUT_TASK, "task-1")
    return job_for_work(
        work, key, "token", "generate", created_at=0.0, deadline_at=60.0, due_at=0.0
    )


def invocation(key: OrderKey) -> StepInvocation:
    return StepInvocation(
        order=key,
        step_id="send-email",
        step_type="send-email",
        success_status="Emailed",
        execution=f"arn:aws:states:us-east-1:1:execution:OrderFlow:{key.execution_name}",
    )


KEY_BUILDERS: dict[str, Callable[[OrderKey], str]] = {
    "order item": lambda k: str(order_key_attributes(k)),
    "order partition": order_pk,
    "render job and its lease": lambda k: str(
        (job_to_item(job(k), 4)["pk"], job_to_item(job(k), 4)["sk"])
    ),
    "raw body": lambda k: raw_body_key(k, b"{}"),
    "large order document": lambda k: order_document_key(k, b"{}"),
    "artifact": lambda k: artifact_key(k.storefront_id, k.order_id, "task-1", "a.pdf"),
    "manifest": lambda k: manifest_key(k.storefront_id, k.order_id),
    "execution name (idempotent start)": lambda k: k.execution_name,
    "step delivery id (REST/email dedupe)": lambda k: invocation(k).delivery_id,
    "download message": lambda k: str(parse_download_message(json.dumps(download_message(job(k))))),
}


@pytest.mark.parametrize("builder", KEY_BUILDERS.values(), ids=KEY_BUILDERS.keys())
@pytest.mark.parametrize(("one", "other"), PAIRS, ids=[f"{a}|{b}" for a, b in PAIRS])
def test_each_per_order_key_differs_between_orders(
    builder: Callable[[OrderKey], str], one: OrderKey, other: OrderKey
) -> None:
    assert builder(one) != builder(other)


def test_keys_name_the_storefront() -> None:
    key = OrderKey("shop-a", "1001")
    for name, builder in KEY_BUILDERS.items():
        if name.startswith(("step delivery", "download message")):
            continue  # a digest / a parsed key: covered by the difference test
        assert "shop-a" in builder(key), name
