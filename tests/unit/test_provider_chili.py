"""The CHILI GraFx adapter against the loopback sandbox (and MockTransport for exact edges)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from printflow.domain.order import LineItem, Order, OrderKey, Property
from printflow.domain.storefront import ProviderName, ProviderSettings
from printflow.providers import (
    ArtifactAuth,
    ArtifactSource,
    PollState,
    ProviderRegistry,
    ProviderRejected,
    ProviderUnavailable,
    RecoveryRefused,
    RenderWork,
    UrlPolicy,
    WorkKind,
    start_render,
)
from printflow.providers.chili import ChiliAdapter, ChiliSettings, line_item_variables
from printflow.providers.oauth import AccessTokens, ClientCredentials
from printflow_tools.sandboxes import Behaviour, ChiliSandbox, ManualClock

T = TypeVar("T")

MUG = LineItem(
    id="li-1",
    name="Mug",
    quantity=3,
    properties=(Property("Name", "Ada"), Property("Colour", "teal"), Property("_preview", "x")),
)
CARD = LineItem(id="li-2", name="Card", quantity=1)
MUG_2 = LineItem(id="li-3", name="Second mug", quantity=1)


def order(*items: LineItem) -> Order:
    return Order(
        key=OrderKey("shop", "1001"),
        platform="shopify",
        number="1001",
        name="#1001",
        email=None,
        currency="EUR",
        created_at=None,
        line_items=items,
    )


def settings_for(sandbox: ChiliSandbox, **changes: Any) -> ChiliSettings:
    values: dict[str, Any] = {
        "environment": sandbox.environment,
        "base_url": sandbox.base_url,
        "token_url": sandbox.token_url,
        "credentials_secret": "printflow/chili",
        "output_settings_id": "print-pdf",
        "template_id": "tpl-1",
        **changes,
    }
    return ChiliSettings(**values)


def run_with(
    sandbox: ChiliSandbox,
    scenario: Callable[[ChiliAdapter, httpx.AsyncClient], Awaitable[T]],
    **changes: Any,
) -> T:
    async def main() -> T:
        settings = settings_for(sandbox, **changes)
        tokens = AccessTokens(
            settings.token_endpoint, ClientCredentials("chili-client", "chili-secret")
        )
        async with httpx.AsyncClient() as http:
            adapter = ChiliAdapter(settings, tokens, http, url_policy=UrlPolicy.loopback())
            return await scenario(adapter, http)

    return asyncio.run(main())


def task_work(task_id: str = "task-1", fmt: str = "pdf") -> RenderWork:
    return RenderWork(
        provider=ProviderName.CHILI,
        kind=WorkKind.OUTPUT_TASK,
        reference=task_id,
        line_item_id="li-1",
        line_item_index=0,
        output_format=fmt,
    )


# -- start -------------------------------------------------------------------------------


def test_one_task_per_line_item_with_its_visible_properties_as_variables() -> None:
    async def scenario(adapter: ChiliAdapter, http: httpx.AsyncClient) -> tuple[RenderWork, ...]:
        return await adapter.start(order(MUG, CARD))

    with ChiliSandbox() as chili:
        works = run_with(chili, scenario)
        tasks = {t.task_id: t for t in chili.tasks()}

    assert [(w.line_item_id, w.line_item_index, w.kind) for w in works] == [
        ("li-1", 0, WorkKind.OUTPUT_TASK),
        ("li-2", 1, WorkKind.OUTPUT_TASK),
    ]
    assert len(tasks) == 2  # quantity 3 is still one file
    mug, card = (tasks[w.reference] for w in works)
    assert mug.variables == [{"Name": "Ada", "Colour": "teal"}]
    assert mug.template_id == "tpl-1" and mug.output_settings_id == "print-pdf"
    assert "variables" not in card.request_body
    assert "layoutsToExport" not in card.request_body


def test_each_task_is_reported_as_it_starts_and_recorded_line_items_are_skipped() -> None:
    seen: list[tuple[str | None, int]] = []

    async def scenario(adapter: ChiliAdapter, http: httpx.AsyncClient) -> tuple[RenderWork, ...]:
        # ``started`` runs before the next task starts: record the sandbox's count each time.
        def started(work: RenderWork) -> None:
            seen.append((work.line_item_id, len(chili.tasks())))

        return await adapter.start(
            order(MUG, CARD, MUG_2), skip_line_items=frozenset({"li-2"}), started=started
        )

    with ChiliSandbox() as chili:
        works = run_with(chili, scenario)

    assert [(w.line_item_id, w.line_item_index) for w in works] == [("li-1", 0), ("li-3", 2)]
    assert seen == [("li-1", 1), ("li-3", 2)]  # each reported before the next one started


def test_variables_mapping() -> None:
    assert line_item_variables(MUG) == [{"Name": "Ada", "Colour": "teal"}]
    assert line_item_variables(CARD) is None
    only_hidden = LineItem(id="x", name="x", quantity=1, properties=(Property("_id", "1"),))
    assert line_item_variables(only_hidden) is None


def test_project_and_layouts_are_sent_as_configured() -> None:
    async def scenario(adapter: ChiliAdapter, http: httpx.AsyncClient) -> tuple[RenderWork, ...]:
        return await adapter.start(order(CARD))

    with ChiliSandbox() as chili:
        (work,) = run_with(
            chili,
            scenario,
            template_id=None,
            project_id="proj-7",
            layouts_to_export=("0", "1"),
            output_format="png",
            output_settings_id="preview-png",
        )
        task = chili.task(work.reference)

    assert task.project_id == "proj-7" and task.template_id is None
    assert task.layouts_to_export == ["0", "1"]
    assert task.output_format == "png" and work.output_format == "png"


def test_a_refused_output_request_is_permanent_and_stops_the_order() -> None:
    async def scenario(adapter: ChiliAdapter, http: httpx.AsyncClient) -> tuple[RenderWork, ...]:
        return await adapter.start(order(MUG, CARD))

    with ChiliSandbox() as chili:
        with pytest.raises(ProviderRejected) as caught:
            run_with(chili, scenario, output_settings_id="missing")
        tasks = chili.tasks()

    assert caught.value.status == 400
    assert "output settings 'missing' not found" in caught.value.message
    assert tasks == []


def test_an_unknown_environment_is_a_settings_problem() -> None:
    async def scenario(adapter: ChiliAdapter, http: httpx.AsyncClient) -> tuple[RenderWork, ...]:
        return await adapter.start(order(CARD))

    with ChiliSandbox() as chili, pytest.raises(ProviderRejected, match="HTTP 404"):
        run_with(chili, scenario, environment="elsewhere")


def test_provider_outage_while_starting_is_transient() -> None:
    async def scenario(adapter: ChiliAdapter, http: httpx.AsyncClient) -> tuple[RenderWork, ...]:
        return await adapter.start(order(CARD))

    with (
        ChiliSandbox(behaviour=Behaviour(failure_rate=1.0)) as chili,
        pytest.raises(ProviderUnavailable) as caught,
    ):
        run_with(chili, scenario)

    assert caught.value.status == 503


def test_an_order_without_line_items_is_refused() -> None:
    async def scenario(adapter: ChiliAdapter, http: httpx.AsyncClient) -> tuple[RenderWork, ...]:
        return await adapter.start(order())

    with ChiliSandbox() as chili, pytest.raises(ProviderRejected, match="no line items"):
        run_with(chili, scenario)


# -- poll --------------------------------------------------------------------------------


def test_running_then_done_with_a_bearer_download() -> None:
    async def scenario(adapter: ChiliAdapter, http: httpx.AsyncClient) -> list[Any]:
        (work,) = await adapter.start(order(MUG))
        results = [await adapter.poll(work) for _ in range(4)]
        source = results[-1].files[0]
        headers = await adapter.download_headers(source)
        download = await http.get(source.url, headers=headers)
        return [work, results, download]

    with ChiliSandbox(polls_until_done=3, behaviour=Behaviour(file_size=10_000)) as chili:
        work, results, download = run_with(chili, scenario)
        statuses = [r.status for r in chili.requests if "/output/tasks/" in r.path]

    assert statuses[:4] == [202, 204, 202, 200]
    assert [r.state for r in results] == [PollState.RUNNING] * 3 + [PollState.DONE]
    (source,) = results[-1].files
    assert source == ArtifactSource(
        url=f"{chili.environment_url}/output/tasks/{work.reference}/download",
        auth=ArtifactAuth.BEARER,
        filename=f"{work.reference}.pdf",
        content_type="application/pdf",
        reference=work.reference,
        line_item_id="li-1",
    )
    assert download.status_code == 200 and download.content.startswith(b"%PDF")
    assert len(download.content) == 10_000


def test_a_failed_task_reports_the_problem_detail() -> None:
    async def scenario(adapter: ChiliAdapter, http: httpx.AsyncClient) -> Any:
        (work,) = await adapter.start(order(CARD))
        return await adapter.poll(work)

    with ChiliSandbox(polls_until_done=0, failure_detail="font 'X' missing") as chili:
        result = run_with(chili, scenario, template_id="fail-template")

    assert result.state is PollState.FAILED
    assert result.detail == "font 'X' missing"
    assert result.files == ()


@pytest.mark.parametrize("status", [404, 410])
def test_an_expired_task_is_expired(status: int) -> None:
    async def scenario(adapter: ChiliAdapter, http: httpx.AsyncClient) -> Any:
        (work,) = await adapter.start(order(CARD))
        chili.expire_task(work.reference)
        return await adapter.poll(work)

    with ChiliSandbox(expired_task_status=status) as chili:
        result = run_with(chili, scenario)

    assert result.state is PollState.EXPIRED


def test_an_expired_token_is_refreshed_transparently() -> None:
    clock = ManualClock()

    async def scenario(adapter: ChiliAdapter, http: httpx.AsyncClient) -> list[PollState]:
        (work,) = await adapter.start(order(CARD))
        clock.advance(120)  # the sandbox now refuses the token the adapter still caches
        first = await adapter.poll(work)
        chili.expire_tokens()
        second = await adapter.poll(work)
        return [first.state, second.state]

    with ChiliSandbox(token_ttl_s=60, clock=clock, polls_until_done=1) as chili:
        states = run_with(chili, scenario)
        token_requests = [r for r in chili.requests if r.path == "/oauth/token"]
        unauthorised = [r for r in chili.requests if r.status == 401]

    assert states == [PollState.RUNNING, PollState.DONE]
    assert len(token_requests) == 3
    assert len(unauthorised) == 2


def test_a_401_is_not_retried_with_the_same_cached_token() -> None:
    # Given CHILI refusing a token its endpoint keeps handing out (its tokens are cached)
    async def scenario(adapter: ChiliAdapter, http: httpx.AsyncClient) -> ProviderRejected:
        (work,) = await adapter.start(order(CARD))
        chili.refuse_current_token()
        with pytest.raises(ProviderRejected) as caught:
            await adapter.poll(work)
        return caught.value

    with ChiliSandbox(polls_until_done=1) as chili:
        error = run_with(chili, scenario)
        token_requests = [r for r in chili.requests if r.path == "/oauth/token"]
        polls = [r for r in chili.requests if "/output/tasks/" in r.path]

    # Then the token is asked for again once, comes back the same, and the poll is not repeated
    assert len(token_requests) == 2
    assert [r.status for r in polls] == [401]
    assert error.status == 401
    assert "with the token the token endpoint still issues" in error.message
    assert "'chili-client'" in error.message


def test_download_token_can_be_forgotten_after_a_401() -> None:
    async def scenario(adapter: ChiliAdapter, http: httpx.AsyncClient) -> list[int]:
        (work,) = await adapter.start(order(CARD))
        (source,) = (await adapter.poll(work)).files
        headers = await adapter.download_headers(source)
        chili.expire_tokens()
        refused = await http.get(source.url, headers=headers)
        adapter.forget_token(headers)
        retried = await http.get(source.url, headers=await adapter.download_headers(source))
        return [refused.status_code, retried.status_code]

    with ChiliSandbox(polls_until_done=0) as chili:
        assert run_with(chili, scenario) == [401, 200]


# -- exact edges with MockTransport --------------------------------------------------------


def poll_with(response: httpx.Response, work: RenderWork | None = None) -> Any:
    """Poll one work against a provider that answers ``response`` to the task request."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        return response

    async def main() -> Any:
        settings = ChiliSettings(
            environment="acme",
            base_url="https://acme.chili-publish.online",
            credentials_secret="s",
            output_settings_id="o",
            template_id="t",
            token_url="https://login.test/oauth/token",
        )
        tokens = AccessTokens(settings.token_endpoint, ClientCredentials("c", "s"))
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await ChiliAdapter(settings, tokens, http).poll(work or task_work())

    return asyncio.run(main())


def test_running_may_carry_retry_after() -> None:
    result = poll_with(httpx.Response(202, headers={"Retry-After": "15"}))

    assert result.state is PollState.RUNNING and result.retry_after_s == 15


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(500, text="<html>Bad Gateway</html>"),
        httpx.Response(200, text="{not json"),
        httpx.Response(200, json={"data": {"taskId": "task-1"}, "links": {}}),
        httpx.Response(200, json=[1, 2]),
        httpx.Response(503),
        httpx.Response(418),
    ],
)
def test_malformed_or_unexpected_answers_are_transient(response: httpx.Response) -> None:
    with pytest.raises(ProviderUnavailable):
        poll_with(response)


def test_429_is_transient_with_its_retry_after() -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        poll_with(httpx.Response(429, headers={"Retry-After": "30"}))

    assert caught.value.status == 429 and caught.value.retry_after_s == 30


def test_403_is_permanent() -> None:
    with pytest.raises(ProviderRejected):
        poll_with(httpx.Response(403, json={"title": "Forbidden", "detail": "no output scope"}))


def test_a_download_link_on_another_host_never_gets_the_token() -> None:
    done = httpx.Response(
        200,
        json={"data": {"taskId": "task-1"}, "links": {"download": "https://evil.test/steal"}},
    )

    (source,) = poll_with(done).files

    assert source.url == (
        "https://acme.chili-publish.online/grafx/api/v1/environment/acme"
        "/output/tasks/task-1/download"
    )


def test_a_same_origin_signed_download_link_is_kept() -> None:
    link = (
        "https://acme.chili-publish.online/grafx/api/v1/environment/acme"
        "/output/tasks/task-1/download?sig=abc"
    )
    done = httpx.Response(200, json={"data": {"taskId": "task-1"}, "links": {"download": link}})

    (source,) = poll_with(done, task_work(fmt="png")).files

    assert source.url == link
    assert source.filename == "task-1.png" and source.content_type == "image/png"


# -- the rest of the protocol ------------------------------------------------------------


def test_failed_tasks_cannot_be_recovered() -> None:
    async def scenario(adapter: ChiliAdapter, http: httpx.AsyncClient) -> None:
        assert not adapter.recovery_plan(task_work()).allowed
        await adapter.recover(task_work())

    with ChiliSandbox() as chili, pytest.raises(RecoveryRefused):
        run_with(chili, scenario)


def test_works_and_sources_round_trip_through_documents() -> None:
    work = task_work().recovered(at=1_700_000_000.5)
    source = ArtifactSource(
        url="https://x.test/a.pdf",
        auth=ArtifactAuth.BEARER,
        filename="a.pdf",
        content_type="application/pdf",
        declared_size=12,
        reference="a",
        line_item_id="li-1",
    )

    assert RenderWork.from_document(json.loads(json.dumps(work.to_document()))) == work
    assert ArtifactSource.from_document(json.loads(json.dumps(source.to_document()))) == source
    assert work.recovery_attempts == 1


def test_start_render_runs_the_whole_start_for_the_lambda() -> None:
    class Secrets:
        def get_secret_value(self, SecretId: str) -> dict[str, str]:
            return {"SecretString": '{"clientId": "chili-client", "clientSecret": "chili-secret"}'}

    with ChiliSandbox() as chili:
        registry = ProviderRegistry(Secrets(), url_policy=UrlPolicy.loopback())
        provider = ProviderSettings(
            ProviderName.CHILI,
            {
                "environment": chili.environment,
                "baseUrl": chili.base_url,
                "tokenUrl": chili.token_url,
                "credentialsSecret": "printflow/chili",
                "templateId": "tpl-1",
                "outputSettingsId": "print-pdf",
            },
        )
        first = asyncio.run(start_render(registry, provider, order(MUG)))
        second = asyncio.run(start_render(registry, provider, order(CARD)))
        token_requests = [r for r in chili.requests if r.path == "/oauth/token"]

    assert len(first) == len(second) == 1
    assert len(token_requests) == 1  # the token outlived the first invocation's client
