"""A discovery job's decisions: keep looking, finish with every project, or stop at the deadline."""

from __future__ import annotations

from printflow.domain.order import OrderKey
from printflow.domain.render_job import JobState, PollingPolicy, RenderJob
from printflow.domain.storefront import ProviderName
from printflow.providers.protocol import PollResult, PollState, RenderWork, WorkKind
from printflow.render.decisions import RENDER_FAILED, Action, after_poll
from printflow.render.jobs import job_for_work

POLICY = PollingPolicy(interval_s=60.0, first_poll_s=0.0, min_interval_s=60.0)
START = 1_000_000.0
DEADLINE = START + 900


def discovery_job(deadline: float | None = DEADLINE) -> RenderJob:
    work = RenderWork(
        ProviderName.CUSTOMERS_CANVAS,
        WorkKind.ORDER_PROJECTS,
        "1001",
        expected_line_items=((0, "li-0"), (1, "li-1"), (2, "li-2")),
        discovery_deadline_at=deadline,
    )
    return job_for_work(
        work,
        OrderKey("shop", "1001"),
        "token",
        "generate",
        created_at=START,
        deadline_at=START + 3600,
        due_at=START,
    )


def project(line_item: int) -> RenderWork:
    return RenderWork(
        ProviderName.CUSTOMERS_CANVAS,
        WorkKind.PROJECT,
        str(100 + line_item),
        line_item_id=f"li-{line_item}",
        line_item_index=line_item,
    )


def test_some_projects_found_creates_their_jobs_and_keeps_looking() -> None:
    found = (project(0), project(1))
    result = PollResult(
        PollState.RUNNING, discovered=found, missing_line_items=("li-2",), retry_after_s=60
    )

    decision = after_poll(discovery_job(), result, POLICY, START + 60)

    assert decision.action is Action.CREATE_JOBS
    assert decision.discovered == found
    assert decision.job.state is JobState.PENDING
    assert decision.job.due_at == START + 120


def test_every_project_found_finishes_discovery_through_the_download_path() -> None:
    found = (project(0), project(1), project(2))

    decision = after_poll(
        discovery_job(), PollResult(PollState.DONE, discovered=found), POLICY, START + 120
    )

    assert decision.action is Action.QUEUE_DOWNLOAD
    assert decision.discovered == found  # created before the job is queued
    assert decision.job.state is JobState.READY and decision.job.files == ()
    assert decision.job.details["discovery"] == {"complete": True, "projects": 3}


def test_the_deadline_cuts_discovery_short_with_the_projects_found() -> None:
    found = (project(0),)
    result = PollResult(PollState.RUNNING, discovered=found, missing_line_items=("li-1", "li-2"))

    decision = after_poll(discovery_job(), result, POLICY, DEADLINE + 1)

    assert decision.action is Action.QUEUE_DOWNLOAD
    assert decision.discovered == found
    note = decision.job.details["discovery"]
    assert note["complete"] is False
    assert note["missingLineItems"] == ["li-1", "li-2"]
    assert note["cutShortAt"] == DEADLINE + 1
    assert decision.job.history[-1]["detail"].startswith("discovery deadline passed")


def test_no_project_at_all_by_the_deadline_fails_the_step() -> None:
    result = PollResult(PollState.NOT_READY, missing_line_items=("li-0", "li-1", "li-2"))

    before = after_poll(discovery_job(), result, POLICY, DEADLINE - 1)
    after = after_poll(discovery_job(), result, POLICY, DEADLINE + 1)

    assert before.action is Action.NONE and before.job.state is JobState.PENDING
    assert after.action is Action.FAIL_STEP and after.error == RENDER_FAILED
    assert "before the discovery deadline" in (after.job.error or "")


def test_a_discovery_job_stored_before_deadlines_existed_looks_until_the_render_timeout() -> None:
    result = PollResult(PollState.RUNNING, discovered=(project(0),), missing_line_items=("li-1",))

    decision = after_poll(discovery_job(deadline=None), result, POLICY, START + 10_000)

    assert decision.action is Action.CREATE_JOBS and decision.job.state is JobState.PENDING
