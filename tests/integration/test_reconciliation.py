"""Reconciliation on moto resources built from template.yaml, against the store sandboxes.

- a delivery dropped on purpose: the order appears after the next pull;
- the same order by webhook and by pull: one order and one execution, whichever comes first;
- a pull interrupted mid-page resumes with nothing skipped and nothing doubled;
- the store API answering 429 or 5xx: the watermark stays, the next pull goes on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from printflow.adapters.order_table import OrderTable
from printflow.adapters.reconcile_state import ReconcileStateTable
from printflow.adapters.webhook_secrets import WebhookSecrets
from printflow.reconcile.service import Reconciler
from printflow.reconcile.wiring import build_reconciler
from printflow.settings import ReconcileSettings
from printflow.storefronts import register_storefront
from printflow.validators import UrlPolicy
from printflow_tools.localstack.resources import LocalResources
from printflow_tools.localstack.storefront_setup import (
    shopify_store_api,
    store_api,
    woocommerce_store_api,
)
from printflow_tools.sandboxes import BigCommerceSandbox, ShopifySandbox, WooCommerceSandbox
from printflow_tools.sandboxes.bigcommerce import demo_order
from printflow_tools.webhook_events import DEMO_SECRETS, payload, signed_headers, webhook_event

LOOPBACK = {"EGRESS_ALLOWLIST": "127.0.0.1"}


class Context:
    function_name = "ReconcileFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ReconcileFunction"
    aws_request_id = "test-request"

    def __init__(self, seconds: float = 300.0) -> None:
        self._ends = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self._ends - time.monotonic()) * 1000)


def iso(seconds_ago: float) -> datetime:
    return datetime.fromtimestamp(time.time() - seconds_ago, UTC)


def shopify_order(order_id: int, seconds_ago: float) -> dict[str, Any]:
    order = json.loads(payload("shopify-orders-create.json"))
    created = iso(seconds_ago).strftime("%Y-%m-%dT%H:%M:%SZ")
    order.update(id=order_id, name=f"#{order_id}", order_number=order_id, created_at=created)
    for n, item in enumerate(order["line_items"]):
        item["id"] = order_id * 100 + n
    return dict(order)


def woo_order(order_id: int, seconds_ago: float) -> dict[str, Any]:
    order = json.loads(payload("woocommerce-order-created.json"))
    created = iso(seconds_ago).strftime("%Y-%m-%dT%H:%M:%S")
    order.update(id=order_id, number=str(order_id), date_created_gmt=created, date_created=created)
    return dict(order)


def bigcommerce_order(order_id: int, seconds_ago: float) -> tuple[dict[str, Any], list[Any]]:
    order, products = demo_order(order_id)
    order["date_created"] = iso(seconds_ago).strftime("%a, %d %b %Y %H:%M:%S +0000")
    return order, products


class Stores:
    """The three store sandboxes and storefronts registered against them."""

    def __init__(self, resources: LocalResources, stack: ExitStack) -> None:
        self.resources = resources
        self.shopify = stack.enter_context(ShopifySandbox(max_page_size=3))
        self.woo = stack.enter_context(WooCommerceSandbox(max_per_page=3))
        self.bigcommerce = stack.enter_context(BigCommerceSandbox(max_page_size=2))
        self.table = OrderTable(boto3.client("dynamodb"), resources.table())
        secretsmanager = boto3.client("secretsmanager")
        for storefront_id, platform, api in (
            ("shop", "shopify", shopify_store_api(self.shopify, "shop", secretsmanager)),
            ("woo", "woocommerce", woocommerce_store_api(self.woo, "woo", secretsmanager)),
            ("bc", "bigcommerce", store_api(self.bigcommerce, "bc", secretsmanager)),
            ("gen", "generic", None),  # no Orders API: never pulled
        ):
            register_storefront(
                {
                    "storefrontId": storefront_id,
                    "platform": platform,
                    "webhookSecret": DEMO_SECRETS[platform],
                    **({"storeApi": api} if api else {}),
                },
                self.table,
                WebhookSecrets(secretsmanager, "printflow"),
                provider_urls=UrlPolicy.loopback(),
            )

    def reconciler(self, **clients: Any) -> Reconciler:
        env = self.resources.functions["ReconcileFunction"].environment | LOOPBACK
        return build_reconciler(ReconcileSettings.from_env(env), **clients)

    def make_due(self, storefront_id: str) -> None:
        """Let the wait before the storefront's next pull pass."""
        ReconcileStateTable(boto3.client("dynamodb"), self.resources.table()).finish(
            storefront_id, 0, {}
        )

    def order(self, storefront_id: str, order_id: str) -> dict[str, Any] | None:
        from printflow.domain.order import OrderKey

        return self.table.get_order(OrderKey(storefront_id, order_id))

    def watermark(self, storefront_id: str) -> str | None:
        state = ReconcileStateTable(boto3.client("dynamodb"), self.resources.table()).states()
        return state[storefront_id].watermark

    def executions(self) -> list[str]:
        found = boto3.client("stepfunctions").list_executions(
            stateMachineArn=self.resources.state_machine()
        )["executions"]
        return sorted(e["name"] for e in found)

    def recorded_ids(self, storefront_id: str) -> list[str]:
        items = boto3.client("dynamodb").scan(TableName=self.resources.table())["Items"]
        prefix = f"ORDER#{storefront_id}#"
        return sorted(
            i["pk"]["S"].removeprefix(prefix)
            for i in items
            if i["pk"]["S"].startswith(prefix) and i["sk"]["S"] == "ORDER"
        )


@pytest.fixture
def stores(local_aws: LocalResources) -> Iterator[Stores]:
    with ExitStack() as stack:
        yield Stores(local_aws, stack)


def pull(stores: Stores, storefront_id: str, report: dict[str, Any]) -> dict[str, Any]:
    (found,) = [p for p in report["pulls"] if p["storefrontId"] == storefront_id]
    return dict(found)


# -- a dropped delivery ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("storefront_id", "order_id"), [("shop", "9001"), ("woo", "9001"), ("bc", "9001")]
)
def test_a_dropped_delivery_appears_after_the_next_pull(
    stores: Stores,
    handler_of: Any,
    capsys: pytest.CaptureFixture[str],
    storefront_id: str,
    order_id: str,
) -> None:
    # Given an order whose webhook never came
    {
        "shop": lambda: stores.shopify.add_order(shopify_order(9001, 600)),
        "woo": lambda: stores.woo.add_order(woo_order(9001, 600)),
        "bc": lambda: stores.bigcommerce.add_order(*bigcommerce_order(9001, 600)),
    }[storefront_id]()
    assert stores.order(storefront_id, order_id) is None

    # When the scheduled function runs
    report = handler_of("ReconcileFunction", **LOOPBACK)({}, Context())

    # Then the order is recorded as a webhook would have: raw body in S3, flow started
    assert pull(stores, storefront_id, report)["recovered"] == 1, report
    metrics = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
    ]
    assert [m["OrdersRecovered"] for m in metrics if "OrdersRecovered" in m] == [[1.0]]
    assert {p["storefrontId"] for p in report["pulls"]} == {"shop", "woo", "bc"}  # not "gen"
    item = stores.order(storefront_id, order_id)
    assert item is not None and item["status"] == "Received"
    assert item["order"]["orderId"] == order_id
    if storefront_id == "bc":  # thin, as its webhook is: the render step reads the rest
        assert item["order"]["complete"] is False
    else:
        assert item["order"]["lineItems"]
    raw = boto3.client("s3").get_object(
        Bucket=item["rawBody"]["bucket"], Key=item["rawBody"]["key"]
    )
    assert json.loads(raw["Body"].read())  # the pulled order, as the webhook's JSON
    assert stores.executions() == [item["executionName"]]
    # the next run finds the storefront not due yet (hourly by default)
    again = handler_of("ReconcileFunction", **LOOPBACK)({}, Context())
    assert again["pulls"] == []


# -- webhook and pull of the same order -------------------------------------------------------


def test_the_same_order_by_webhook_and_by_pull_is_one_order_and_one_execution(
    stores: Stores, handler_of: Any
) -> None:
    webhook = handler_of("WebhookFunction")
    first, second = shopify_order(9101, 900), shopify_order(9102, 800)
    stores.shopify.add_order(first)
    stores.shopify.add_order(second)

    def deliver(order: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(order).encode()
        event = webhook_event(
            "shopify", "shop", body, signed_headers("shopify", body, DEMO_SECRETS["shopify"])
        )
        response = webhook(event, Context())
        return {**json.loads(response["body"]), "http": response["statusCode"]}

    # the webhook first, then the pull
    assert deliver(first)["http"] == 202
    report = stores.reconciler().run(lambda: 300.0)
    shop = pull(stores, "shop", report.to_dict())
    assert (shop["recovered"], shop["alreadyRecorded"]) == (1, 1)  # 9102 was missing
    # the pull first, then the (late) webhook
    late = deliver(second)
    assert (late["http"], late["status"], late["orderStatus"]) == (200, "duplicate", "Received")
    assert stores.recorded_ids("shop") == ["9101", "9102"]
    assert len(stores.executions()) == 2
    assert stores.executions() == sorted(
        stores.order("shop", i)["executionName"]  # type: ignore[index]
        for i in ("9101", "9102")
    )


def test_a_webhook_racing_a_pull_still_records_the_order_once(stores: Stores) -> None:
    # Given the pull has checked the table (order missing) when the webhook records it
    stores.woo.add_order(woo_order(9201, 300))
    reconciler = stores.reconciler()
    original = reconciler._orders.recorded_orders  # the check the pull makes before recording

    def webhook_lands_in_between(keys: Any) -> Any:
        found = original(keys)
        body = json.dumps(woo_order(9201, 300)).encode()
        storefront = stores.table.get_storefront("woo")
        assert storefront is not None
        assert reconciler._intake.record_pulled(storefront, body).status == 202
        return found

    reconciler._orders.recorded_orders = webhook_lands_in_between  # type: ignore[method-assign]
    report = reconciler.run(lambda: 300.0).to_dict()

    woo = pull(stores, "woo", report)
    assert (woo["recovered"], woo["alreadyRecorded"]) == (0, 1)
    assert stores.recorded_ids("woo") == ["9201"] and len(stores.executions()) == 1


# -- interrupted, 429, 5xx --------------------------------------------------------------------


def failing_nth_put(n: int) -> tuple[Any, Callable[[], None]]:
    """A real S3 client whose ``n``-th PutObject fails (an outage mid-page)."""
    s3 = boto3.client("s3")
    calls = {"count": 0}

    def maybe_fail(**_: Any) -> None:
        calls["count"] += 1
        if calls["count"] == n:
            raise ConnectionError("s3 unavailable")

    s3.meta.events.register("before-call.s3.PutObject", maybe_fail)
    return s3, lambda: s3.meta.events.unregister("before-call.s3.PutObject", maybe_fail)


def test_a_pull_interrupted_mid_page_resumes_with_nothing_skipped_or_doubled(
    stores: Stores,
) -> None:
    # Given seven missed orders, listed three a page, and S3 failing on the fifth
    orders = [woo_order(9300 + n, 3000 - n * 60) for n in range(7)]
    for order in orders:
        stores.woo.add_order(order)
    s3, heal = failing_nth_put(5)

    report = stores.reconciler(s3=s3).run(lambda: 300.0).to_dict()

    woo = pull(stores, "woo", report)
    assert woo["recovered"] == 4 and not woo["finished"] and woo["error"], woo
    # the watermark is the first page's newest order: the second page was not finished
    assert stores.watermark("woo") == orders[2]["date_created_gmt"] + "Z"
    assert stores.recorded_ids("woo") == [str(9300 + n) for n in range(4)]

    # When the next pull runs (S3 is back)
    heal()
    stores.make_due("woo")
    again = pull(stores, "woo", stores.reconciler().run(lambda: 300.0).to_dict())

    # Then the three left are recorded, and nothing twice
    assert again["recovered"] == 3 and again["finished"], again
    assert stores.recorded_ids("woo") == [str(9300 + n) for n in range(7)]
    executions = stores.executions()
    assert len(executions) == 7 == len(set(executions))


def test_a_pull_that_runs_out_of_time_mid_page_goes_on_next_run(stores: Stores) -> None:
    for n in range(5):
        stores.bigcommerce.add_order(*bigcommerce_order(9400 + n, 2000 - n * 60))
    checks = {"count": 0}

    def remaining() -> float:
        checks["count"] += 1
        return 300.0 if checks["count"] < 6 else 1.0  # the Lambda's time runs low mid-page

    first = pull(stores, "bc", stores.reconciler().run(remaining).to_dict())
    assert first["error"].startswith("stopped mid-page") and first["recovered"] >= 1, first
    # due again at once: the next scheduled run goes on
    second = pull(stores, "bc", stores.reconciler().run(lambda: 300.0).to_dict())

    assert first["recovered"] + second["recovered"] == 5, (first, second)
    assert stores.recorded_ids("bc") == [str(9400 + n) for n in range(5)]
    assert len(set(stores.executions())) == 5


def test_a_short_429_is_waited_out_within_the_pull(stores: Stores) -> None:
    for n in range(2):
        stores.bigcommerce.add_order(*bigcommerce_order(9550 + n, 1500 - n * 60))
    stores.bigcommerce.fail_next(429)  # X-Rate-Limit-Time-Reset-Ms: 1000

    bc = pull(stores, "bc", stores.reconciler().run(lambda: 300.0).to_dict())

    assert bc["recovered"] == 2 and bc["finished"] and "error" not in bc, bc
    listings = [r.status for r in stores.bigcommerce.requests if r.path.endswith("/v2/orders")]
    assert listings[:2] == [429, 200]


@pytest.mark.parametrize("status", [429, 503])
def test_the_store_answering_429_or_5xx_keeps_the_watermark_and_resumes(
    stores: Stores, status: int
) -> None:
    for n in range(3):
        stores.bigcommerce.add_order(*bigcommerce_order(9500 + n, 1500 - n * 60))
    # A 429 asking for longer than a pull waits: its storefront is due again after the wait.
    stores.bigcommerce.rate_limit_reset_ms = 30_000

    # the first listing fails: nothing recorded, the watermark not set, retried soon
    stores.bigcommerce.fail_next(status)
    before = time.time()
    failed = pull(stores, "bc", stores.reconciler().run(lambda: 300.0).to_dict())
    assert failed["error"] == f"GET /v2/orders: HTTP {status}" and failed["recovered"] == 0
    state = ReconcileStateTable(boto3.client("dynamodb"), stores.resources.table()).states()["bc"]
    assert state.watermark is None
    wait = state.next_due_at - before
    assert (29 <= wait <= 35) if status == 429 else (290 <= wait <= 310)  # reset-ms vs default

    # the second page fails: the first page's orders stay recorded, the watermark after them
    stores.make_due("bc")
    stores.bigcommerce.clear_log()
    original_take = stores.bigcommerce.listing_failures.take
    answers = {"count": 0}

    def fail_the_second_listing() -> Any:
        answers["count"] += 1
        if answers["count"] == 2:
            stores.bigcommerce.fail_next(status)
        return original_take()

    stores.bigcommerce.listing_failures.take = fail_the_second_listing  # type: ignore[method-assign]
    partial = pull(stores, "bc", stores.reconciler().run(lambda: 300.0).to_dict())
    assert partial["recovered"] == 2 and partial["error"], partial
    assert stores.watermark("bc") is not None

    stores.bigcommerce.listing_failures.take = original_take  # type: ignore[method-assign]
    stores.make_due("bc")
    rest = pull(stores, "bc", stores.reconciler().run(lambda: 300.0).to_dict())
    assert rest["recovered"] == 1 and rest["finished"], rest
    assert stores.recorded_ids("bc") == ["9500", "9501", "9502"]
    assert len(set(stores.executions())) == 3


# -- egress ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url", ["https://10.0.0.5", "https://shop.example", "https://169.254.169.254"]
)
def test_a_store_url_that_leads_off_loopback_is_never_called(
    stores: Stores, local_aws: LocalResources, base_url: str
) -> None:
    # Given a storefront whose storeApi points at a private address (or a name resolving to
    # the instance metadata address: the resolver is stubbed, nothing leaves the machine)
    secretsmanager = boto3.client("secretsmanager")
    api = woocommerce_store_api(stores.woo, "evil", secretsmanager) | {"baseUrl": base_url}
    register_storefront(
        {
            "storefrontId": "evil",
            "platform": "woocommerce",
            "webhookSecret": DEMO_SECRETS["woocommerce"],
            "storeApi": api,
        },
        stores.table,
        WebhookSecrets(secretsmanager, "printflow"),
    )
    looked_up: list[str] = []

    def stub_dns(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return ["169.254.169.254"]

    # When reconciliation runs with the guard the function uses
    env = stores.resources.functions["ReconcileFunction"].environment | LOOPBACK
    reconciler = build_reconciler(ReconcileSettings.from_env(env), resolver=stub_dns)
    evil = pull(stores, "evil", reconciler.run(lambda: 300.0).to_dict())

    # Then the guard refused it before any connection, and nothing was recorded
    assert evil["pages"] == 0 and evil["recovered"] == 0
    assert evil["error"].startswith("the store API's address is refused: destination "), evil
    assert "private" in evil["error"] or "link-local" in evil["error"]
    assert looked_up in ([], ["shop.example"])
    assert stores.recorded_ids("evil") == []


def test_an_order_stamped_in_the_future_does_not_carry_the_watermark_past_now(
    stores: Stores,
) -> None:
    stores.woo.add_order(woo_order(9601, -10 * 24 * 3600))  # ten days ahead (a wrong clock)

    woo = pull(stores, "woo", stores.reconciler().run(lambda: 300.0).to_dict())

    assert woo["recovered"] == 1
    watermark = stores.watermark("woo")
    assert watermark is not None
    assert watermark <= datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
