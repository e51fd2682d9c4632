"""The Customer's Canvas adapter against the loopback sandbox (and MockTransport for edges)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import httpx
import pytest

from printflow.domain.order import LineItem, Order, OrderKey, Property
from printflow.domain.storefront import ProviderName
from printflow.providers import (
    ArtifactAuth,
    PollResult,
    PollState,
    ProviderConflict,
    ProviderRejected,
    ProviderUnavailable,
    RecoveryAction,
    RecoveryRefused,
    RenderWork,
    TooSoon,
    UrlPolicy,
    WorkKind,
)
from printflow.providers.customers_canvas import (
    CustomersCanvasAdapter,
    CustomersCanvasSettings,
    PollSpacing,
)
from printflow.providers.oauth import AccessTokens, ClientCredentials
from printflow_tools.sandboxes import Behaviour, CustomersCanvasSandbox, ManualClock, Pipeline

T = TypeVar("T")
STOREFRONT = 42


def order(order_id: str = "1001") -> Order:
    return Order(
        key=OrderKey("shop", order_id),
        platform="shopify",
        number=order_id,
        name=f"#{order_id}",
        email=None,
        currency="EUR",
        created_at=None,
        line_items=(LineItem(id="li-1", name="Mug", quantity=1),),
    )


def run_with(
    sandbox: CustomersCanvasSandbox,
    clock: ManualClock,
    scenario: Callable[[CustomersCanvasAdapter, httpx.AsyncClient], Awaitable[T]],
    *,
    url_policy: UrlPolicy | None = None,
    **changes: Any,
) -> T:
    async def main() -> T:
        values: dict[str, Any] = {
            "base_url": sandbox.base_url,
            "token_url": sandbox.token_url,
            "credentials_secret": "printflow/cc",
            "storefront_id": STOREFRONT,
            **changes,
        }
        settings = CustomersCanvasSettings(**values)
        tokens = AccessTokens(settings.token_endpoint, ClientCredentials("cc-client", "cc-secret"))
        async with httpx.AsyncClient() as http:
            adapter = CustomersCanvasAdapter(
                settings,
                tokens,
                http,
                url_policy=url_policy or UrlPolicy.loopback(),
                clock=clock,
            )
            return await scenario(adapter, http)

    return asyncio.run(main())


def project_work(project_id: int | str, **changes: Any) -> RenderWork:
    return RenderWork(
        provider=ProviderName.CUSTOMERS_CANVAS,
        kind=WorkKind.PROJECT,
        reference=str(project_id),
        **changes,
    )


async def poll_until_settled(
    adapter: CustomersCanvasAdapter, work: RenderWork, clock: ManualClock, limit: int = 10
) -> list[PollResult]:
    """Poll like the poller: wait what each result asks (at least the adapter's minimum)."""
    results = []
    for _ in range(limit):
        result = await adapter.poll(work)
        results.append(result)
        if result.discovered or result.state not in (PollState.RUNNING, PollState.NOT_READY):
            break
        clock.advance(max(result.retry_after_s or 0.0, adapter.min_poll_interval_s))
    return results


# -- finding the projects ----------------------------------------------------------------


def test_start_finds_every_project_of_the_order_across_pages() -> None:
    clock = ManualClock()

    async def scenario(adapter: CustomersCanvasAdapter, http: httpx.AsyncClient) -> Any:
        return await adapter.start(order())

    with CustomersCanvasSandbox(clock=clock, max_page_size=2) as cc:
        ids = cc.add_order(
            storefront_id=STOREFRONT,
            order_id="1001",
            line_items=[Pipeline()] * 5,
            line_item_ids=[f"li-{n}" for n in range(5)],
        )
        cc.add_order(storefront_id=STOREFRONT, order_id="1002")
        cc.add_order(storefront_id=7, order_id="1001")
        works = run_with(cc, clock, scenario)
        list_calls = [r for r in cc.requests if r.path.endswith("/projects")]

    assert [w.reference for w in works] == [str(i) for i in ids]
    assert [w.kind for w in works] == [WorkKind.PROJECT] * 5
    assert [(w.line_item_id, w.line_item_index) for w in works] == [
        (f"li-{n}", n) for n in range(5)
    ]
    assert len(list_calls) == 3  # 2 + 2 + 1


def test_no_projects_yet_is_normal_for_a_while() -> None:
    clock = ManualClock()

    async def scenario(adapter: CustomersCanvasAdapter, http: httpx.AsyncClient) -> Any:
        (work,) = await adapter.start(order())
        results = await poll_until_settled(adapter, work, clock, limit=4)
        return work, results

    with CustomersCanvasSandbox(clock=clock) as cc:
        cc.add_order(
            storefront_id=STOREFRONT,
            order_id="1001",
            line_items=[Pipeline.appears_later(100), Pipeline.appears_later(100)],
        )
        work, results = run_with(cc, clock, scenario)

    assert work.kind is WorkKind.ORDER_PROJECTS and work.reference == "1001"
    assert [r.state for r in results] == [
        PollState.NOT_READY,
        PollState.NOT_READY,
        PollState.DONE,  # the order's one line item has a project now
    ]
    assert results[0].retry_after_s == 60
    assert work.expected_line_items == ((0, "li-1"),)
    assert work.discovery_deadline_at == clock() - 120 + 900  # the default deadline
    assert results[0].detail == "no Customer's Canvas project for the order yet"
    discovered = results[-1].discovered
    assert [w.kind for w in discovered] == [WorkKind.PROJECT, WorkKind.PROJECT]


def three_item_order() -> Order:
    items = tuple(LineItem(id=f"li-{n}", name=f"Poster {n}", quantity=1) for n in range(3))
    return replace(order(), line_items=items)


def test_projects_that_appear_on_the_second_and_third_look_are_found() -> None:
    clock = ManualClock()

    async def scenario(adapter: CustomersCanvasAdapter, http: httpx.AsyncClient) -> Any:
        first = await adapter.start(three_item_order())
        cc.add_order(
            storefront_id=STOREFRONT,
            order_id="1001",
            line_item_ids=["li-1"],
            first_line_item_index=1,
        )
        discovery = first[-1]
        second = await adapter.poll(discovery)
        cc.add_order(
            storefront_id=STOREFRONT,
            order_id="1001",
            line_item_ids=["li-2"],
            first_line_item_index=2,
        )
        clock.advance(60)
        third = await adapter.poll(discovery)
        return first, second, third

    with CustomersCanvasSandbox(clock=clock) as cc:
        cc.add_order(storefront_id=STOREFRONT, order_id="1001", line_item_ids=["li-0"])
        first, second, third = run_with(cc, clock, scenario)

    # first look: one project, and a discovery work that keeps looking for the other two
    assert [w.kind for w in first] == [WorkKind.PROJECT, WorkKind.ORDER_PROJECTS]
    assert first[0].line_item_id == "li-0"
    assert first[1].expected_line_items == ((0, "li-0"), (1, "li-1"), (2, "li-2"))
    # second look: two of three
    assert second.state is PollState.RUNNING
    assert [w.line_item_id for w in second.discovered] == ["li-0", "li-1"]
    assert second.missing_line_items == ("li-2",)
    assert second.retry_after_s == 60
    # third look: all three, discovery is done
    assert third.state is PollState.DONE
    assert [w.line_item_id for w in third.discovered] == ["li-0", "li-1", "li-2"]
    assert third.missing_line_items == ()


def test_only_line_items_with_the_design_property_wait_for_a_project() -> None:
    clock = ManualClock()
    with_design = LineItem(
        id="li-0", name="Poster", quantity=1, properties=(Property("_ccDesign", "d-1"),)
    )
    plain = LineItem(id="li-1", name="Gift wrap", quantity=1)

    async def scenario(adapter: CustomersCanvasAdapter, http: httpx.AsyncClient) -> Any:
        return await adapter.start(replace(order(), line_items=(with_design, plain)))

    with CustomersCanvasSandbox(clock=clock) as cc:
        cc.add_order(storefront_id=STOREFRONT, order_id="1001", line_item_ids=["li-0"])
        works = run_with(cc, clock, scenario, design_property="_ccDesign")

    assert [w.kind for w in works] == [WorkKind.PROJECT]  # the gift wrap carries no design


# -- polling -----------------------------------------------------------------------------


def test_pipeline_runs_then_completes_and_never_is_polled_faster_than_60_s() -> None:
    clock = ManualClock()

    async def scenario(adapter: CustomersCanvasAdapter, http: httpx.AsyncClient) -> Any:
        (work,) = await adapter.start(order())
        return await poll_until_settled(adapter, work, clock)

    with CustomersCanvasSandbox(clock=clock) as cc:
        (project_id,) = cc.add_order(
            storefront_id=STOREFRONT, order_id="1001", line_items=[Pipeline.completes(3)]
        )
        results = run_with(cc, clock, scenario)
        times = cc.poll_times(project_id)

    assert [r.state for r in results] == [PollState.RUNNING] * 3 + [PollState.DONE]
    assert [r.detail for r in results[:3]] == ["Pending", "InProgress", "InProgress"]
    assert all(r.retry_after_s == 60 for r in results[:3])
    assert len(times) == 4
    assert min(b - a for a, b in itertools.pairwise(times)) >= 60


def test_a_second_poll_within_60_s_is_refused_without_a_request() -> None:
    clock = ManualClock()

    async def scenario(adapter: CustomersCanvasAdapter, http: httpx.AsyncClient) -> Any:
        work = project_work(project_id)
        await adapter.poll(work)
        clock.advance(45)
        with pytest.raises(TooSoon) as caught:
            await adapter.poll(work)
        clock.advance(15)
        after = await adapter.poll(work)
        return caught.value, after

    with CustomersCanvasSandbox(clock=clock) as cc:
        (project_id,) = cc.add_order(
            storefront_id=STOREFRONT, order_id="1001", line_items=[Pipeline.completes(5)]
        )
        too_soon, after = run_with(cc, clock, scenario)
        polls = len(cc.poll_times(project_id))

    assert isinstance(too_soon, ProviderUnavailable)  # the poller's backoff handles it
    assert too_soon.retry_after_s == 15
    assert after.state is PollState.RUNNING
    assert polls == 2


def test_completed_files_with_a_bearer_download() -> None:
    clock = ManualClock()

    async def scenario(adapter: CustomersCanvasAdapter, http: httpx.AsyncClient) -> Any:
        result = await adapter.poll(project_work(project_id, line_item_id="li-1"))
        downloads = []
        for source in result.files:
            headers = await adapter.download_headers(source)
            downloads.append((headers, await http.get(source.url, headers=headers)))
        return result, downloads

    pipeline = Pipeline.completes(0, outputs=("pdf", "png"))
    with CustomersCanvasSandbox(clock=clock, behaviour=Behaviour(file_size=9_000)) as cc:
        (project_id,) = cc.add_order(
            storefront_id=STOREFRONT, order_id="1001", line_items=[pipeline], line_item_ids=["li-1"]
        )
        result, downloads = run_with(cc, clock, scenario)
        artifacts = cc.project(project_id).artifacts

    assert result.state is PollState.DONE
    pdf, png = result.files
    assert pdf.auth is ArtifactAuth.BEARER
    assert pdf.url == (
        f"{cc.base_url}/api/storage/v1/artifacts/{artifacts[0].artifact_id}/file?attachment=true"
    )
    assert (pdf.filename, pdf.content_type, pdf.declared_size) == (
        artifacts[0].name,
        "application/pdf",
        9_000,
    )
    assert (pdf.reference, pdf.line_item_id) == (artifacts[0].artifact_id, "li-1")
    assert png.content_type == "image/png"
    for headers, response in downloads:
        assert headers["Authorization"].startswith("Bearer ")
        assert response.status_code == 200 and len(response.content) == 9_000


def test_anonymous_files_are_fetched_without_credentials() -> None:
    clock = ManualClock()

    async def scenario(adapter: CustomersCanvasAdapter, http: httpx.AsyncClient) -> Any:
        (source,) = (await adapter.poll(project_work(project_id))).files
        headers = await adapter.download_headers(source)
        return source, headers, await http.get(source.url, headers=headers)

    pipeline = Pipeline.completes(0, anonymous_access=True)
    with CustomersCanvasSandbox(clock=clock) as cc:
        (project_id,) = cc.add_order(storefront_id=STOREFRONT, order_id="1", line_items=[pipeline])
        source, headers, response = run_with(cc, clock, scenario)

    assert source.auth is ArtifactAuth.NONE
    assert source.url.startswith(f"{cc.base_url}/public/artifacts/")
    assert headers == {}
    assert response.status_code == 200 and response.content.startswith(b"%PDF")


def test_an_anonymous_url_the_policy_refuses_falls_back_to_the_artifact_endpoint() -> None:
    clock = ManualClock()

    async def scenario(adapter: CustomersCanvasAdapter, http: httpx.AsyncClient) -> Any:
        (source,) = (await adapter.poll(project_work(project_id))).files
        return source

    pipeline = Pipeline.completes(0, anonymous_access=True)
    with CustomersCanvasSandbox(clock=clock) as cc:
        (project_id,) = cc.add_order(storefront_id=STOREFRONT, order_id="1", line_items=[pipeline])
        # https-only policy: the sandbox's http:// url is not fetched anonymously.
        source = run_with(cc, clock, scenario, url_policy=UrlPolicy())

    assert source.auth is ArtifactAuth.BEARER
    assert "/api/storage/v1/artifacts/" in source.url


def test_expired_tokens_are_refreshed_while_polling() -> None:
    clock = ManualClock()

    async def scenario(adapter: CustomersCanvasAdapter, http: httpx.AsyncClient) -> Any:
        await adapter.start(order())
        cc.expire_tokens()
        return await adapter.poll(project_work(project_id))

    with CustomersCanvasSandbox(clock=clock) as cc:
        (project_id,) = cc.add_order(storefront_id=STOREFRONT, order_id="1001")
        result = run_with(cc, clock, scenario)
        issued = cc.tokens.issued

    assert result.state is PollState.RUNNING
    assert issued == 2


# -- recovery ----------------------------------------------------------------------------


def test_failed_pipeline_is_resumed_by_default() -> None:
    clock = ManualClock()

    async def scenario(adapter: CustomersCanvasAdapter, http: httpx.AsyncClient) -> Any:
        work = project_work(project_id)
        failed = await adapter.poll(work)
        recovered = await adapter.recover(work)
        clock.advance(60)
        return failed, recovered, await poll_until_settled(adapter, recovered, clock)

    with CustomersCanvasSandbox(clock=clock) as cc:
        (project_id,) = cc.add_order(
            storefront_id=STOREFRONT,
            order_id="1001",
            line_items=[Pipeline.fails_then_succeeds(polls_to_finish=0)],
        )
        failed, recovered, after = run_with(cc, clock, scenario)
        recoveries = cc.recoveries(project_id)

    assert failed.state is PollState.FAILED and failed.recoverable
    assert failed.detail == Pipeline().failure_description
    assert [action for _, action in recoveries] == ["resume"]
    assert recovered.recovery_attempts == 1 and recovered.last_recovery_at == clock() - 60
    assert after[-1].state is PollState.DONE


def test_restart_by_policy_recovers_a_restart_only_pipeline() -> None:
    clock = ManualClock()

    async def scenario(adapter: CustomersCanvasAdapter, http: httpx.AsyncClient) -> Any:
        work = await adapter.recover(project_work(project_id))
        clock.advance(60)
        return await adapter.poll(work)

    with CustomersCanvasSandbox(clock=clock) as cc:
        (project_id,) = cc.add_order(
            storefront_id=STOREFRONT,
            order_id="1001",
            line_items=[Pipeline.restart_only(polls_to_finish=0)],
        )
        # Make the pipeline fail first (the sandbox moves on polls).
        with httpx.Client() as sync:
            token = sync.post(
                cc.token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": "cc-client",
                    "client_secret": "cc-secret",
                },
            ).json()["access_token"]
            sync.get(
                f"{cc.base_url}/api/storefront/v1/projects/{project_id}/processing-results",
                headers={"Authorization": f"Bearer {token}"},
            )
        result = run_with(cc, clock, scenario, recovery=RecoveryAction.RESTART)
        recoveries = cc.recoveries(project_id)

    assert [action for _, action in recoveries] == ["restart"]
    assert result.state is PollState.DONE


def test_recovery_is_bounded_and_at_least_60_s_apart() -> None:
    clock = ManualClock()

    async def scenario(adapter: CustomersCanvasAdapter, http: httpx.AsyncClient) -> Any:
        work = project_work(project_id)
        events: list[Any] = []
        while True:
            result = await adapter.poll(work)
            events.append(result.state)
            if result.state is not PollState.FAILED:
                clock.advance(60)
                continue
            if not result.recoverable:
                break
            work = await adapter.recover(work)
            if work.recovery_attempts < 2:
                with pytest.raises(TooSoon):
                    await adapter.recover(work)
            clock.advance(60)
        with pytest.raises(RecoveryRefused, match="2 of 2 recovery attempts used"):
            await adapter.recover(work)
        return events, adapter.recovery_plan(work)

    with CustomersCanvasSandbox(clock=clock) as cc:
        # Resume never clears a restart-only failure: the attempts run out.
        (project_id,) = cc.add_order(
            storefront_id=STOREFRONT,
            order_id="1001",
            line_items=[Pipeline.restart_only(polls_to_finish=0)],
        )
        events, plan = run_with(cc, clock, scenario, max_recovery_attempts=2)
        recoveries = cc.recoveries(project_id)

    assert events == [PollState.FAILED] * 3
    assert not plan.allowed
    assert [action for _, action in recoveries] == ["resume", "resume"]
    assert recoveries[1][0] - recoveries[0][0] >= 60


def test_recovery_plan_reports_the_wait() -> None:
    clock = ManualClock()

    async def scenario(adapter: CustomersCanvasAdapter, http: httpx.AsyncClient) -> Any:
        work = project_work(1, recovery_attempts=1, last_recovery_at=clock() - 20)
        return adapter.recovery_plan(work), adapter.recovery_plan(project_work(1))

    with CustomersCanvasSandbox(clock=clock) as cc:
        waiting, fresh = run_with(cc, clock, scenario, recovery=RecoveryAction.RESTART)

    assert waiting.allowed and waiting.wait_s == 40
    assert waiting.action is RecoveryAction.RESTART
    assert fresh.allowed and fresh.wait_s == 0


def test_no_recovery_when_the_policy_allows_none() -> None:
    clock = ManualClock()

    async def scenario(adapter: CustomersCanvasAdapter, http: httpx.AsyncClient) -> Any:
        return await adapter.poll(project_work(project_id))

    with CustomersCanvasSandbox(clock=clock) as cc:
        (project_id,) = cc.add_order(
            storefront_id=STOREFRONT,
            order_id="1",
            line_items=[Pipeline.fails_forever(polls_to_finish=0)],
        )
        result = run_with(cc, clock, scenario, max_recovery_attempts=0)

    assert result.state is PollState.FAILED and not result.recoverable


def test_a_recovery_of_a_pipeline_no_longer_failed_counts_and_moves_on() -> None:
    clock = ManualClock()

    async def scenario(adapter: CustomersCanvasAdapter, http: httpx.AsyncClient) -> Any:
        return await adapter.recover(project_work(project_id))

    with CustomersCanvasSandbox(clock=clock) as cc:
        (project_id,) = cc.add_order(storefront_id=STOREFRONT, order_id="1")
        work = run_with(cc, clock, scenario)
        statuses = [r.status for r in cc.requests if r.path.endswith("resume-processing")]

    assert statuses == [409]
    assert work.recovery_attempts == 1


def test_recovering_an_unknown_project_is_refused() -> None:
    clock = ManualClock()

    async def scenario(adapter: CustomersCanvasAdapter, http: httpx.AsyncClient) -> Any:
        return await adapter.recover(project_work(99999))

    with CustomersCanvasSandbox(clock=clock) as cc, pytest.raises(RecoveryRefused, match="404"):
        run_with(cc, clock, scenario)


# -- exact edges with MockTransport --------------------------------------------------------


def with_api(
    handler: Callable[[httpx.Request], httpx.Response],
    scenario: Callable[[CustomersCanvasAdapter], Awaitable[T]],
    **changes: Any,
) -> T:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/connect/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        return handler(request)

    async def main() -> T:
        settings = CustomersCanvasSettings(
            base_url="https://api.cc.test",
            token_url="https://login.cc.test/connect/token",
            credentials_secret="s",
            storefront_id=STOREFRONT,
            **changes,
        )
        tokens = AccessTokens(settings.token_endpoint, ClientCredentials("c", "s"))
        async with httpx.AsyncClient(transport=httpx.MockTransport(route)) as http:
            return await scenario(CustomersCanvasAdapter(settings, tokens, http))

    return asyncio.run(main())


def poll_answer(response: httpx.Response, **changes: Any) -> PollResult:
    async def scenario(adapter: CustomersCanvasAdapter) -> PollResult:
        return await adapter.poll(project_work(7, line_item_id="li-7"))

    return with_api(lambda request: response, scenario, **changes)


def test_items_of_other_orders_are_ignored_even_if_the_api_ignores_the_filter() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        items = [
            {"id": 1, "orderId": "1001", "storefrontId": STOREFRONT, "orderLineItemIndex": 1},
            {"id": "2", "orderId": "1001", "storefrontId": STOREFRONT, "orderLineItemIndex": 0},
            {"id": 3, "orderId": "9999", "storefrontId": STOREFRONT},
            {"id": 4, "orderId": "1001", "storefrontId": 7},
        ]
        return httpx.Response(200, json={"total": 4, "items": items})

    async def scenario(adapter: CustomersCanvasAdapter) -> tuple[RenderWork, ...]:
        return await adapter.find_projects("1001")

    works = with_api(handler, scenario)

    assert [w.reference for w in works] == ["2", "1"]


def test_paging_without_total_stops_at_an_empty_page_and_tenant_is_sent() -> None:
    seen: list[httpx.QueryParams] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params)
        skip = int(request.url.params["skip"])
        items = [{"id": n} for n in range(skip, min(skip + 100, 150))]
        return httpx.Response(200, json={"items": items})

    async def scenario(adapter: CustomersCanvasAdapter) -> tuple[RenderWork, ...]:
        return await adapter.find_projects("1001")

    works = with_api(handler, scenario, tenant_id=5)

    assert len(works) == 150
    assert [p["skip"] for p in seen] == ["0", "100", "150"]
    assert all(p["tenantId"] == "5" and p["storefrontId"] == str(STOREFRONT) for p in seen)
    assert all(p["orderId"] == "1001" and p["take"] == "100" for p in seen)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, json={"total": 1}),
        httpx.Response(200, json={"total": 1, "items": [{"name": "no id"}]}),
        httpx.Response(200, text="<html>"),
        httpx.Response(502),
    ],
)
def test_a_malformed_project_list_is_transient(response: httpx.Response) -> None:
    async def scenario(adapter: CustomersCanvasAdapter) -> tuple[RenderWork, ...]:
        return await adapter.find_projects("1001")

    with pytest.raises(ProviderUnavailable):
        with_api(lambda request: response, scenario)


def test_a_missing_projects_endpoint_is_a_settings_problem() -> None:
    async def scenario(adapter: CustomersCanvasAdapter) -> tuple[RenderWork, ...]:
        return await adapter.find_projects("1001")

    with pytest.raises(ProviderRejected, match=r"provider\.baseUrl"):
        with_api(lambda request: httpx.Response(404), scenario)


@pytest.mark.parametrize(
    ("response", "state", "detail"),
    [
        (httpx.Response(200, json={"status": "Pending"}), PollState.RUNNING, "Pending"),
        (httpx.Response(200, json={"status": "InProgress"}), PollState.RUNNING, "InProgress"),
        (httpx.Response(200, json={"status": None}), PollState.NOT_READY, None),
        (httpx.Response(404), PollState.NOT_READY, None),
        (
            httpx.Response(200, json={"status": "Failed", "statusDescription": "font"}),
            PollState.FAILED,
            "font",
        ),
        (httpx.Response(200, json={"status": "Failed"}), PollState.FAILED, "failed"),
        (
            httpx.Response(200, json={"status": "Completed", "outputFileDetails": []}),
            PollState.FAILED,
            "the pipeline completed without output files",
        ),
        (
            httpx.Response(
                200, json={"status": "Completed", "outputFileDetails": [{"name": "a.pdf"}]}
            ),
            PollState.FAILED,
            "output file 0 has neither an anonymous url nor an artifactId",
        ),
    ],
)
def test_processing_status_mapping(
    response: httpx.Response, state: PollState, detail: str | None
) -> None:
    result = poll_answer(response)

    assert result.state is state
    if detail is not None:
        assert result.detail == detail


def test_a_longer_retry_after_wins_over_the_60_s_minimum() -> None:
    result = poll_answer(
        httpx.Response(200, json={"status": "Pending"}, headers={"Retry-After": "300"})
    )

    assert result.retry_after_s == 300


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, json={"status": "Exploded"}),
        httpx.Response(200, text="nope"),
        httpx.Response(200, json={"status": "Completed", "outputFileDetails": "x"}),
        httpx.Response(429, headers={"Retry-After": "5"}),
        httpx.Response(500),
    ],
)
def test_unexpected_processing_answers_are_transient(response: httpx.Response) -> None:
    with pytest.raises(ProviderUnavailable):
        poll_answer(response)


def test_403_on_processing_results_is_permanent() -> None:
    with pytest.raises(ProviderRejected):
        poll_answer(httpx.Response(403))


def test_file_details_map_to_sources() -> None:
    details = [
        {
            "url": "https://cdn.cc.test/a.pdf?sig=1",
            "name": "print.pdf",
            "format": "PDF",
            "artifactId": "art-1",
            "anonymousAccess": True,
            "size": 123,
            "orderLineItemId": "li-x",
        },
        {"artifactId": "art 2", "format": "json", "anonymousAccess": False, "size": -1},
        {"url": "http://insecure.cc.test/c.png", "artifactId": "art-3", "anonymousAccess": True},
    ]
    result = poll_answer(
        httpx.Response(200, json={"status": "Completed", "outputFileDetails": details}),
        tenant_id=9,
    )

    public, private, downgraded = result.files
    assert (public.auth, public.url, public.filename) == (
        ArtifactAuth.NONE,
        "https://cdn.cc.test/a.pdf?sig=1",
        "print.pdf",
    )
    assert (public.content_type, public.declared_size, public.line_item_id) == (
        "application/pdf",
        123,
        "li-x",
    )
    assert private.auth is ArtifactAuth.BEARER
    assert private.url == (
        "https://api.cc.test/api/storage/v1/artifacts/art%202/file?attachment=true&tenantId=9"
    )
    assert (private.filename, private.declared_size, private.line_item_id) == (
        "art 2.json",
        None,
        "li-7",
    )
    assert downgraded.auth is ArtifactAuth.BEARER  # plain http is never fetched anonymously


# -- the vendor's models: numeric project status, orderNumber number-or-null, 409 conflicts


def test_projects_with_a_numeric_status_and_a_null_order_number_are_found() -> None:
    # Given ProjectDto items typed as the vendor's storefront API client declares them
    def handler(request: httpx.Request) -> httpx.Response:
        items = [
            {
                "id": 11,
                "orderId": "A-1",
                "storefrontId": STOREFRONT,
                "status": 1,
                "orderNumber": None,
                "orderLineItemId": "li-1",
                "orderLineItemIndex": 0,
            },
            {
                "id": 12,
                "orderId": "A-1",
                "storefrontId": STOREFRONT,
                "status": 3,
                "orderNumber": 1042,
                "orderLineItemId": "li-2",
                "orderLineItemIndex": 1,
            },
        ]
        return httpx.Response(200, json={"total": 2, "items": items})

    async def scenario(adapter: CustomersCanvasAdapter) -> tuple[RenderWork, ...]:
        return await adapter.find_projects("A-1")

    works = with_api(handler, scenario)

    assert [(w.reference, w.line_item_id) for w in works] == [("11", "li-1"), ("12", "li-2")]


def test_the_sandbox_answers_with_the_vendors_project_types() -> None:
    clock = ManualClock()

    async def scenario(adapter: CustomersCanvasAdapter, http: httpx.AsyncClient) -> Any:
        works = await adapter.find_projects("7311")
        token = await adapter._tokens.token(http)
        listing = await http.get(
            f"{adapter.settings.base_url}/api/storefront/v1/projects",
            params={"orderId": "WC-7"},
            headers={"Authorization": f"Bearer {token}"},
        )
        return works, listing.json()["items"]

    with CustomersCanvasSandbox(clock=clock) as cc:
        cc.add_order(storefront_id=STOREFRONT, order_id="7311")
        cc.add_order(storefront_id=STOREFRONT, order_id="WC-7")
        works, (other,) = run_with(cc, clock, scenario)

    assert len(works) == 1
    assert isinstance(other["status"], int) and not isinstance(other["status"], bool)
    assert other["orderNumber"] is None


def test_a_409_from_processing_results_is_a_conflict_with_its_cause() -> None:
    clock = ManualClock()

    async def scenario(adapter: CustomersCanvasAdapter, http: httpx.AsyncClient) -> Any:
        with pytest.raises(ProviderConflict) as caught:
            await adapter.poll(project_work(project_id))
        return caught.value

    with CustomersCanvasSandbox(clock=clock) as cc:
        (project_id,) = cc.add_order(
            storefront_id=STOREFRONT,
            order_id="1",
            line_items=[Pipeline.conflicts("the project's pipeline was deleted")],
        )
        error = run_with(cc, clock, scenario)
        polls = len(cc.poll_times(project_id))

    # Then it is permanent (the poller fails the step with it), and says why
    assert isinstance(error, ProviderRejected) and error.status == 409
    assert "GeneralConflict: the project's pipeline was deleted" in error.message
    assert polls == 1


def test_a_409_that_is_not_a_general_conflict_dto_is_still_a_conflict() -> None:
    with pytest.raises(ProviderConflict, match="HTTP 409 conflict"):
        poll_answer(httpx.Response(409))


# -- the poll spacing is kept per storefront -----------------------------------------------


def _two_shops(
    sandbox: CustomersCanvasSandbox, clock: ManualClock, shops: list[tuple[str, int, int | None]]
) -> Callable[[Callable[[list[CustomersCanvasAdapter]], Awaitable[T]]], T]:
    """Adapters for several PrintFlow storefronts sharing one spacing, as a registry builds."""

    def run(scenario: Callable[[list[CustomersCanvasAdapter]], Awaitable[T]]) -> T:
        async def main() -> T:
            spacing = PollSpacing(60.0, clock)
            async with httpx.AsyncClient() as http:
                adapters = []
                for shop, cc_storefront, tenant in shops:
                    settings = CustomersCanvasSettings(
                        base_url=sandbox.base_url,
                        token_url=sandbox.token_url,
                        credentials_secret="printflow/cc",
                        storefront_id=cc_storefront,
                        tenant_id=tenant,
                    )
                    tokens = AccessTokens(
                        settings.token_endpoint, ClientCredentials("cc-client", "cc-secret")
                    )
                    adapters.append(
                        CustomersCanvasAdapter(
                            settings,
                            tokens,
                            http,
                            url_policy=UrlPolicy.loopback(),
                            clock=clock,
                            spacing=spacing,
                            storefront_id=shop,
                        )
                    )
                return await scenario(adapters)

        return asyncio.run(main())

    return run


ORDER_1001 = RenderWork(
    provider=ProviderName.CUSTOMERS_CANVAS, kind=WorkKind.ORDER_PROJECTS, reference="1001"
)


@pytest.mark.parametrize(
    "shops",
    [
        # Same Canvas tenant and storefront, two PrintFlow storefronts.
        [("shop-a", STOREFRONT, None), ("shop-b", STOREFRONT, None)],
        # Two Canvas storefronts of one tenant.
        [("shop-a", STOREFRONT, 5), ("shop-b", 7, 5)],
        # Two tenants.
        [("shop-a", STOREFRONT, 5), ("shop-b", STOREFRONT, 6)],
    ],
    ids=["same-canvas-storefront", "same-tenant", "two-tenants"],
)
def test_one_shops_poll_never_holds_back_another_shops_order_of_the_same_id(
    shops: list[tuple[str, int, int | None]],
) -> None:
    clock = ManualClock()

    async def scenario(adapters: list[CustomersCanvasAdapter]) -> Any:
        first = await adapters[0].poll(ORDER_1001)
        second = await adapters[1].poll(ORDER_1001)  # must not raise TooSoon
        with pytest.raises(TooSoon):
            await adapters[0].poll(ORDER_1001)  # the same shop's spacing still holds
        return first, second

    with CustomersCanvasSandbox(clock=clock) as cc:
        first, second = _two_shops(cc, clock, shops)(scenario)

    assert first.state is PollState.NOT_READY
    assert second.state is PollState.NOT_READY


def test_project_polls_are_spaced_per_storefront_too() -> None:
    clock = ManualClock()

    async def scenario(adapters: list[CustomersCanvasAdapter]) -> Any:
        work = project_work(project_id)
        await adapters[0].poll(work)
        await adapters[1].poll(work)
        with pytest.raises(TooSoon):
            await adapters[1].poll(work)

    with CustomersCanvasSandbox(clock=clock) as cc:
        (project_id,) = cc.add_order(
            storefront_id=STOREFRONT, order_id="1001", line_items=[Pipeline.completes(300)]
        )
        _two_shops(cc, clock, [("shop-a", STOREFRONT, None), ("shop-b", 7, None)])(scenario)
