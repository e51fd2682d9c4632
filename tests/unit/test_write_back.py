"""update-storefront-order without AWS: its options, and each platform's store API client
against ``httpx.MockTransport`` answers shaped like the real APIs' (issue 12 §1)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from printflow.domain.storefront import Platform, StoreApi, Storefront
from printflow.errors import ValidationError
from printflow.flows import parse_flow, render_mermaid
from printflow.flows.step_types.update_storefront_order import UpdateStorefrontOrderOptions
from printflow.net.safe_http import guarded_client
from printflow.net.ssrf import BlockedDestination, EgressGuard
from printflow.steps.write_back import check_write_back_fits, link_lines, note_text
from printflow.store_apis.base import Pacer, StoreApiError
from printflow.store_apis.bigcommerce import BigCommerceWriteBack, bigcommerce_status
from printflow.store_apis.registry import STORE_PLATFORMS, store_platform
from printflow.store_apis.shopify import ShopifyWriteBack, order_gid
from printflow.store_apis.woocommerce import WooCommerceWriteBack, woocommerce_status
from printflow.validators import UrlPolicy

SEED = json.loads((Path(__file__).parent / "fixtures" / "seed_flow.json").read_text())
SHOP = StoreApi("", "printflow/store-apis/shop", "https://acme.myshopify.com", "2025-10")
SITE = StoreApi("", "printflow/store-apis/site", "https://shop.example.com")
STORE = StoreApi("abc123", "printflow/store-apis/bc", "https://api.bigcommerce.com")
Answer = Callable[[httpx.Request], httpx.Response]


def flow_with(options: Any) -> list[dict[str, Any]]:
    flow = json.loads(json.dumps(SEED))
    tell = {
        "stepDefinitionId": "tell",
        "type": "update-storefront-order",
        "successStatus": "In progress",
        "options": options,
        "onSuccess": "consume",
        "onError": "error",
    }
    flow[0]["onSuccess"] = "tell"
    return [flow[0], tell, *flow[1:]]


# -- options ----------------------------------------------------------------------------------


def test_valid_options_round_trip_and_the_graph_draws_the_step() -> None:
    options = {
        "tags": ["printed", "Printed", "vip"],
        "status": "completed",
        "note": "{{artifacts.links}}",
    }
    flow = parse_flow(flow_with(options))
    step = flow.step("tell")
    assert step.options == UpdateStorefrontOrderOptions(
        tags=("printed", "vip"), status="completed", note="{{artifacts.links}}"
    )
    assert parse_flow(flow.to_document()) == flow
    assert "tell<br/>update-storefront-order<br/>status: In progress" in render_mermaid(flow)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "step 'tell'.options: give at least one of tags, status, note"),
        ({"tags": []}, "step 'tell'.options.tags: a list of 1-20 tags"),
        ({"tags": ["a,b"]}, "step 'tell'.options.tags[0]: no commas"),
        ({"tags": ["x" * 41]}, "step 'tell'.options.tags[0]: at most 40 characters"),
        ({"tags": ["{{order.name}}"]}, "step 'tell'.options.tags[0]: no commas, control"),
        ({"status": "done\n"}, "step 'tell'.options.status: a status as the platform names it"),
        ({"note": ""}, "step 'tell'.options.note: a non-empty template"),
        ({"note": "{{order.nmae}}"}, "step 'tell'.options.note: unknown placeholder"),
        ({"tags": ["a"], "replaceTags": True}, "step 'tell'.options.replaceTags: unknown option"),
    ],
)
def test_bad_options_are_refused_naming_the_step(options: Any, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_flow(flow_with(options))
    assert str(refused.value).startswith(message)


def test_artifact_links_belong_to_notes_not_emails() -> None:
    flow = json.loads(json.dumps(SEED))
    flow[2]["options"]["message"] = "{{artifacts.links}}"
    with pytest.raises(
        ValidationError, match=r"step 'email'\.options\.message: unknown placeholder"
    ):
        parse_flow(flow)


def test_the_note_lists_the_links_and_carries_tags_where_the_platform_has_none() -> None:
    options = UpdateStorefrontOrderOptions(
        tags=("a", "b"), note="Files of {{order.name}}:\n{{artifacts.links}}"
    )
    values = {
        "order.name": "#1001",
        "artifacts.links": link_lines([{"name": "p.pdf", "url": "https://s3/p"}]),
    }
    with_tags = "Files of #1001:\np.pdf: https://s3/p\n\nTags: a, b"
    assert note_text(options, values, tags_in_note=True) == with_tags
    assert note_text(options, values, tags_in_note=False) == "Files of #1001:\np.pdf: https://s3/p"
    assert note_text(UpdateStorefrontOrderOptions(tags=("a",)), {}, tags_in_note=False) is None


# -- which storefront fits the step ---------------------------------------------------------


def storefront(platform: Platform, api: StoreApi | None) -> Storefront:
    return Storefront("shop-1", platform, store_api=api)


def test_fit_needs_a_store_api_and_a_status_the_platform_has() -> None:
    tags = UpdateStorefrontOrderOptions(tags=("a",))
    status = UpdateStorefrontOrderOptions(status="completed")
    check_write_back_fits(storefront(Platform.SHOPIFY, SHOP), tags, UrlPolicy(), "step 'tell'")
    check_write_back_fits(storefront(Platform.WOOCOMMERCE, SITE), status, UrlPolicy(), "s")
    with pytest.raises(ValidationError, match="step 'tell': storefront 'shop-1' has no storeApi"):
        check_write_back_fits(storefront(Platform.SHOPIFY, None), tags, UrlPolicy(), "step 'tell'")
    with pytest.raises(ValidationError, match="generic storefronts have no store API"):
        check_write_back_fits(storefront(Platform.GENERIC, None), tags, UrlPolicy(), "s")
    with pytest.raises(ValidationError, match=r"options\.status: Shopify orders have no status"):
        check_write_back_fits(storefront(Platform.SHOPIFY, SHOP), status, UrlPolicy(), "s")
    on_hold = UpdateStorefrontOrderOptions(status="on-hold")
    with pytest.raises(ValidationError, match=r"options\.status: 'on-hold' is not a BigCommerce"):
        check_write_back_fits(storefront(Platform.BIGCOMMERCE, STORE), on_hold, UrlPolicy(), "s")
    plain = StoreApi("", "s", "http://shop.example.com")
    with pytest.raises(ValidationError, match=r"storeApi\.baseUrl: must be an https URL"):
        check_write_back_fits(storefront(Platform.WOOCOMMERCE, plain), tags, UrlPolicy(), "s")


def test_every_platform_with_a_store_api_is_in_the_registry() -> None:
    assert set(STORE_PLATFORMS) == {Platform.SHOPIFY, Platform.WOOCOMMERCE, Platform.BIGCOMMERCE}
    assert store_platform(Platform.WOOCOMMERCE, "s").credential_fields == (
        "consumerKey",
        "consumerSecret",
    )


@pytest.mark.parametrize(
    ("given", "status_id"),
    [
        ("Completed", 10),
        ("awaiting-shipment", 9),
        ("Awaiting Fulfillment", 11),
        ("0", 0),
        ("14", 14),
    ],
)
def test_bigcommerce_statuses_by_name_or_id(given: str, status_id: int) -> None:
    assert bigcommerce_status(given) == status_id


def test_woocommerce_status_slugs() -> None:
    assert woocommerce_status("wc-completed") == "completed"
    assert woocommerce_status("On hold") == "on-hold"


# -- the clients ------------------------------------------------------------------------------


class Script:
    """Answers in order; records every request."""

    def __init__(self, *answers: Answer) -> None:
        self._answers: Iterator[Answer] = iter(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return next(self._answers)(request)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def graphql(
    data: Any = None,
    *,
    available: float = 990,
    errors: Any = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Answer:
    def answer(request: httpx.Request) -> httpx.Response:
        doc: dict[str, Any] = {
            "extensions": {
                "cost": {
                    "requestedQueryCost": 10,
                    "actualQueryCost": 10,
                    "throttleStatus": {
                        "maximumAvailable": 1000,
                        "currentlyAvailable": available,
                        "restoreRate": 50,
                    },
                }
            }
        }
        if data is not None:
            doc["data"] = data
        if errors is not None:
            doc["errors"] = errors
        return httpx.Response(status, json=doc, headers=headers)

    return answer


TAGGED = {"tagsAdd": {"node": {"id": "gid://shopify/Order/1001"}, "userErrors": []}}
THROTTLED = [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]


def shopify(script: Script, sleeps: list[float], budget: float = 10.0) -> ShopifyWriteBack:
    return ShopifyWriteBack(
        script.client(), SHOP, {"accessToken": "shpat_x"}, Pacer(budget, sleep=sleeps.append)
    )


def test_shopify_adds_tags_with_the_order_gid_and_the_token() -> None:
    script = Script(graphql(TAGGED))
    shopify(script, []).add_tags("1001", ["printed"])
    (request,) = script.requests
    assert str(request.url) == "https://acme.myshopify.com/admin/api/2025-10/graphql.json"
    assert request.headers["X-Shopify-Access-Token"] == "shpat_x"
    body = json.loads(request.content)
    assert "tagsAdd(id: $id, tags: $tags)" in body["query"]
    assert body["variables"] == {"id": "gid://shopify/Order/1001", "tags": ["printed"]}
    assert order_gid("gid://shopify/Order/7") == "gid://shopify/Order/7"


def test_shopify_waits_out_throttled_from_the_cost_figures() -> None:
    sleeps: list[float] = []
    script = Script(graphql(errors=THROTTLED, available=2), graphql(TAGGED))
    shopify(script, sleeps).add_tags("1001", ["printed"])
    assert len(script.requests) == 2
    assert sleeps == [pytest.approx((10 - 2) / 50)]


def test_shopify_cost_figures_out_of_range_are_ignored_not_raised() -> None:
    # An integer of 400 digits (float() raises on it): no figure to pace by
    sleeps: list[float] = []
    script = Script(graphql(TAGGED, available=10**400), graphql(TAGGED, available=-(10**400)))
    client = shopify(script, sleeps)
    client.add_tags("1001", ["a"])
    client.add_tags("1001", ["b"])
    assert len(script.requests) == 2
    assert sleeps == []


def test_shopify_waits_before_a_request_the_bucket_cannot_pay_for() -> None:
    sleeps: list[float] = []
    script = Script(graphql(TAGGED, available=4), graphql(TAGGED))
    client = shopify(script, sleeps)
    client.add_tags("1001", ["a"])
    client.add_tags("1001", ["b"])
    assert sleeps == [pytest.approx((10 - 4) / 50)]


def test_shopify_honours_429_retry_after_within_the_budget_and_hands_longer_waits_on() -> None:
    sleeps: list[float] = []
    script = Script(graphql(status=429, headers={"Retry-After": "2"}), graphql(TAGGED))
    shopify(script, sleeps).add_tags("1001", ["a"])
    assert sleeps == [2.0]

    script = Script(graphql(status=429, headers={"Retry-After": "30"}))
    with pytest.raises(StoreApiError) as waited:
        shopify(script, sleeps).add_tags("1001", ["a"])
    assert waited.value.transient and waited.value.retry_after_s == 30
    assert sleeps == [2.0]  # no 30 s sleep inside the Lambda


@pytest.mark.parametrize(
    ("answer", "transient", "message"),
    [
        (graphql(status=401), False, "HTTP 401, the shop refused the access token"),
        (graphql(status=503), True, "HTTP 503"),
        (
            graphql(
                {
                    "tagsAdd": {
                        "node": None,
                        "userErrors": [{"field": ["id"], "message": "Order does not exist"}],
                    }
                }
            ),
            False,
            "the shop refused it: Order does not exist",
        ),
        (graphql(errors=[{"message": "Access denied for tagsAdd field."}]), False, "Access denied"),
    ],
)
def test_shopify_errors_say_whether_a_retry_helps(
    answer: Answer, transient: bool, message: str
) -> None:
    with pytest.raises(StoreApiError) as failed:
        shopify(Script(answer), []).add_tags("1001", ["a"])
    assert failed.value.transient is transient
    assert message in failed.value.message


def test_shopify_notes_go_to_a_metafield_never_the_merchant_s_note() -> None:
    script = Script(
        graphql(
            {"metafieldsSet": {"metafields": [{"id": "m1", "key": "note-tell"}], "userErrors": []}}
        )
    )
    shopify(script, []).add_note("1001", "files", step_id="tell", marker="[m]")
    body = json.loads(script.requests[0].content)
    assert "orderUpdate" not in body["query"]
    assert body["variables"]["metafields"] == [
        {
            "ownerId": "gid://shopify/Order/1001",
            "namespace": "printflow",
            "key": "note-tell",
            "type": "multi_line_text_field",
            "value": "files",
        }
    ]


def woo(script: Script, sleeps: list[float]) -> WooCommerceWriteBack:
    return WooCommerceWriteBack(
        script.client(),
        SITE,
        {"consumerKey": "ck", "consumerSecret": "cs"},
        Pacer(10, sleep=sleeps.append),
    )


def test_woocommerce_posts_a_private_note_and_puts_the_status_with_basic_auth() -> None:
    script = Script(
        lambda r: httpx.Response(200, json=[{"id": 3, "note": "Order status changed."}]),
        lambda r: httpx.Response(201, json={"id": 1}),
        lambda r: httpx.Response(429, headers={"Retry-After": "1"}, json={"code": "too_many"}),
        lambda r: httpx.Response(200, json={"id": 7311, "status": "completed"}),
    )
    sleeps: list[float] = []
    client = woo(script, sleeps)
    client.add_note("7311", "files\n\n[m]", step_id="tell", marker="[m]")
    client.set_status("7311", "completed")
    listing, note, _, status = script.requests
    assert (listing.method, listing.url.path) == ("GET", "/wp-json/wc/v3/orders/7311/notes")
    assert (note.method, str(note.url)) == (
        "POST",
        "https://shop.example.com/wp-json/wc/v3/orders/7311/notes",
    )
    assert json.loads(note.content) == {"note": "files\n\n[m]", "customer_note": False}
    assert note.headers["Authorization"] == httpx.BasicAuth("ck", "cs")._auth_header
    assert (status.method, json.loads(status.content)) == ("PUT", {"status": "completed"})
    assert sleeps == [1.0]


def test_woocommerce_refusals_carry_the_site_s_message() -> None:
    refused = Script(
        lambda r: httpx.Response(
            401,
            json={
                "code": "woocommerce_rest_cannot_edit",
                "message": "Sorry, you are not allowed to edit this resource.",
                "data": {"status": 401},
            },
        )
    )
    with pytest.raises(StoreApiError, match=r"refused the API key .*not allowed to edit") as failed:
        woo(refused, []).set_status("7311", "completed")
    assert not failed.value.transient


def test_bigcommerce_appends_to_the_staff_notes_and_never_twice() -> None:
    script = Script(
        lambda r: httpx.Response(200, json={"id": 250, "staff_notes": "Gift wrap."}),
        lambda r: httpx.Response(200, json={"id": 250}),
        lambda r: httpx.Response(200, json={"id": 250, "staff_notes": "Gift wrap.\n\nfiles [m]"}),
    )
    client = BigCommerceWriteBack(script.client(), STORE, {"accessToken": "t"}, Pacer(10))
    client.add_note("250", "files [m]", step_id="tell", marker="[m]")
    # found by its marker, though its links (presigned) differ: no second PUT
    client.add_note("250", "other links [m]", step_id="tell", marker="[m]")
    methods = [r.method for r in script.requests]
    assert methods == ["GET", "PUT", "GET"]
    assert json.loads(script.requests[1].content) == {"staff_notes": "Gift wrap.\n\nfiles [m]"}
    assert script.requests[1].headers["X-Auth-Token"] == "t"


def test_a_store_address_that_resolves_to_a_private_network_is_refused_before_connecting() -> None:
    # The guard's resolver is stubbed: nothing leaves the machine.
    guard = EgressGuard(resolver=lambda host, port: ["10.0.0.7"])
    with guarded_client(guard) as http:
        client = ShopifyWriteBack(http, SHOP, {"accessToken": "t"}, Pacer(10))
        with pytest.raises(BlockedDestination):
            client.add_tags("1001", ["a"])
