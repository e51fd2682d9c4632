"""Customer's Canvas projects that appear after the first look, through the real poller.

moto's DynamoDB for the jobs, the Customer's Canvas sandbox for the projects, one manual
clock for both (the vendor's 60 s between looks pass at once).
"""

from __future__ import annotations

import asyncio
from typing import Any

import boto3
import httpx
import pytest

from printflow.adapters.render_job_table import RenderJobTable
from printflow.domain.order import LineItem, Order, OrderKey
from printflow.domain.render_job import JobKind, JobState, RenderJob
from printflow.providers.customers_canvas import (
    CustomersCanvasAdapter,
    CustomersCanvasSettings,
    PollSpacing,
)
from printflow.providers.oauth import AccessTokens, ClientCredentials
from printflow.render.jobs import job_for_work
from printflow.render.policies import policy_for
from printflow.render.poller import Poller, PollerSettings
from printflow.validators import UrlPolicy
from printflow_tools.localstack.resources import LocalResources
from printflow_tools.sandboxes import CustomersCanvasSandbox, ManualClock, Pipeline

KEY = OrderKey("shop", "1001")
STOREFRONT = 42


class Recorder:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.failures: list[tuple[str, str, str]] = []

    def send(self, job: RenderJob) -> None:
        self.sent.append(job.job_id)

    def fail(self, token: str, error: str, cause: str) -> None:
        self.failures.append((token, error, cause))


class Canvas:
    """A poller whose Customer's Canvas adapter talks to the sandbox on the manual clock."""

    def __init__(self, sandbox: CustomersCanvasSandbox, jobs: RenderJobTable, **settings: Any):
        self.sandbox, self.jobs = sandbox, jobs
        self.clock = sandbox.clock
        assert isinstance(self.clock, ManualClock)
        self.settings = CustomersCanvasSettings(
            base_url=sandbox.base_url,
            token_url=sandbox.token_url,
            credentials_secret="printflow/cc",
            storefront_id=STOREFRONT,
            **settings,
        )
        self.spacing = PollSpacing(60.0, self.clock)
        self.recorder = Recorder()

    def adapter(self, http: httpx.AsyncClient) -> CustomersCanvasAdapter:
        tokens = AccessTokens(
            self.settings.token_endpoint, ClientCredentials("cc-client", "cc-secret")
        )
        return CustomersCanvasAdapter(
            self.settings,
            tokens,
            http,
            url_policy=UrlPolicy.loopback(),
            clock=self.clock,
            spacing=self.spacing,
        )

    def start(self, order: Order) -> None:
        """What the render step records for the order at its first look."""

        async def first_look() -> Any:
            async with httpx.AsyncClient() as http:
                return await self.adapter(http).start(order)

        for work in asyncio.run(first_look()):
            self.jobs.put_new(
                job_for_work(
                    work,
                    KEY,
                    "token",
                    "generate",
                    created_at=self.clock(),
                    deadline_at=self.clock() + 3600,
                    due_at=self.clock(),
                )
            )

    def look(self) -> Any:
        """Let the vendor's minute pass, then one poller run."""
        self.clock.advance(61)

        async def run() -> Any:
            async with httpx.AsyncClient() as http:

                async def provider_for(job: RenderJob) -> Any:
                    return self.adapter(http)

                poller = Poller(
                    self.jobs,
                    provider_for,
                    policy_for,
                    self.recorder,  # type: ignore[arg-type]
                    self.recorder,  # type: ignore[arg-type]
                    PollerSettings(due_shards=4, concurrency=4, safety_s=0.0),
                    clock=self.clock,
                )
                return await poller.sweep(lambda: 60.0)

        return asyncio.run(run())

    def by_kind(self) -> dict[str, list[RenderJob]]:
        found: dict[str, list[RenderJob]] = {}
        for job in self.jobs.jobs_of(KEY):
            found.setdefault(job.kind.value, []).append(job)
        return found


def three_item_order() -> Order:
    items = tuple(LineItem(id=f"li-{n}", name=f"Poster {n}", quantity=1) for n in range(3))
    return Order(
        key=KEY,
        platform="shopify",
        number="1001",
        name="#1001",
        email=None,
        currency="EUR",
        created_at=None,
        line_items=items,
    )


@pytest.fixture
def jobs(local_aws: LocalResources) -> RenderJobTable:
    return RenderJobTable(boto3.client("dynamodb"), local_aws.table(), due_shards=4)


def add_project(cc: CustomersCanvasSandbox, index: int) -> None:
    cc.add_order(
        storefront_id=STOREFRONT,
        order_id="1001",
        line_items=[Pipeline.completes(after_polls=10)],
        line_item_ids=[f"li-{index}"],
        first_line_item_index=index,
    )


def test_projects_appearing_on_the_second_and_third_look_all_get_jobs(
    jobs: RenderJobTable,
) -> None:
    with CustomersCanvasSandbox(clock=ManualClock()) as cc:
        canvas = Canvas(cc, jobs)
        add_project(cc, 0)
        canvas.start(three_item_order())
        first = canvas.by_kind()
        assert [j.line_item_id for j in first["project"]] == ["li-0"]
        assert [j.state for j in first["discovery"]] == [JobState.PENDING]

        add_project(cc, 1)
        second_report = canvas.look()  # second look
        second = canvas.by_kind()

        add_project(cc, 2)
        third_report = canvas.look()  # third look
        third = canvas.by_kind()

    assert second_report.discovered == 1
    assert sorted(j.line_item_id or "" for j in second["project"]) == ["li-0", "li-1"]
    assert second["discovery"][0].state is JobState.PENDING  # li-2 still missing
    assert third_report.discovered == 1
    assert sorted(j.line_item_id or "" for j in third["project"]) == ["li-0", "li-1", "li-2"]
    (discovery,) = third["discovery"]
    assert discovery.kind is JobKind.DISCOVERY and discovery.state is JobState.READY
    assert discovery.details["discovery"] == {"complete": True, "projects": 3}
    # queued like any finished job: its (empty) download completes the step with the others
    assert canvas.recorder.sent == [discovery.job_id]
    assert canvas.recorder.failures == []


def test_the_discovery_deadline_cuts_the_search_short_with_the_projects_found(
    jobs: RenderJobTable,
) -> None:
    with CustomersCanvasSandbox(clock=ManualClock()) as cc:
        canvas = Canvas(cc, jobs, discovery_deadline_s=100)
        add_project(cc, 0)
        canvas.start(three_item_order())
        canvas.look()  # 61 s: before the deadline, still looking
        still = canvas.by_kind()["discovery"][0]
        canvas.look()  # 122 s: past it
        (discovery,) = canvas.by_kind()["discovery"]

    assert still.state is JobState.PENDING
    assert discovery.state is JobState.READY
    note = discovery.details["discovery"]
    assert note["complete"] is False and note["missingLineItems"] == ["li-1", "li-2"]
    assert canvas.recorder.sent == [discovery.job_id] and canvas.recorder.failures == []
