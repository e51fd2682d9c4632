"""Leasing render jobs with conditional writes: one poller per job, leases that expire."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import boto3
import pytest

from printflow.adapters.render_job_table import RenderJobTable
from printflow.domain.order import OrderKey
from printflow.domain.render_job import JobKind, JobState, RenderJob
from printflow_tools.localstack.resources import LocalResources

KEY = OrderKey("shop", "1001")


@pytest.fixture
def jobs(local_aws: LocalResources) -> RenderJobTable:
    return RenderJobTable(boto3.client("dynamodb"), local_aws.table(), due_shards=4)


def new_job(job_id: str = "li-1", due_at: float = 100.0) -> RenderJob:
    return RenderJob(
        order_key=KEY,
        job_id=job_id,
        provider="chili",
        kind=JobKind.TASK,
        state=JobState.PENDING,
        task_token="token-1",
        step_id="generate",
        ref="task-1",
        created_at=90.0,
        deadline_at=5000.0,
        due_at=due_at,
    )


def due_keys(jobs: RenderJobTable, now: float) -> list[tuple[str, str]]:
    return [key for shard in range(4) for key in jobs.due(shard, now, limit=100)]


def test_put_new_is_idempotent(jobs: RenderJobTable) -> None:
    assert jobs.put_new(new_job()) is True
    assert jobs.put_new(replace(new_job(), ref="other")) is False
    stored = jobs.get(KEY, "li-1")
    assert stored is not None and stored.ref == "task-1"


def test_only_due_jobs_are_listed(jobs: RenderJobTable) -> None:
    jobs.put_new(new_job("a", due_at=100.0))
    jobs.put_new(new_job("b", due_at=200.0))
    assert [sk for _, sk in due_keys(jobs, now=150.0)] == ["JOB#a"]


def test_a_job_is_leased_by_one_poller_only(jobs: RenderJobTable) -> None:
    jobs.put_new(new_job())
    ((pk, sk),) = due_keys(jobs, now=150.0)

    with ThreadPoolExecutor(8) as pool:
        leases = list(
            pool.map(
                lambda owner: jobs.lease(pk, sk, f"poller-{owner}", now=150.0, until=180.0),
                range(8),
            )
        )

    winners = [lease for lease in leases if lease is not None]
    assert len(winners) == 1
    assert winners[0].state is JobState.LEASED
    assert due_keys(jobs, now=170.0) == []  # hidden while leased


def test_an_expired_lease_makes_the_job_due_again(jobs: RenderJobTable) -> None:
    jobs.put_new(new_job())
    assert jobs.lease(
        f"ORDER#{KEY.storefront_id}#{KEY.order_id}", "JOB#li-1", "crashed", now=150.0, until=180.0
    )
    assert due_keys(jobs, now=181.0) == [("ORDER#shop#1001", "JOB#li-1")]
    taken = jobs.lease("ORDER#shop#1001", "JOB#li-1", "next", now=181.0, until=210.0)
    assert taken is not None and taken.lease_owner == "next"


def test_save_needs_the_lease_and_can_leave_the_index(jobs: RenderJobTable) -> None:
    jobs.put_new(new_job())
    leased = jobs.lease("ORDER#shop#1001", "JOB#li-1", "me", now=150.0, until=180.0)
    assert leased is not None
    finished = replace(
        leased,
        state=JobState.READY,
        due_at=None,
        files=({"url": "https://x/y.pdf", "name": "y.pdf"},),
    )

    assert jobs.save(finished, owner="someone-else") is False
    assert jobs.save(finished, owner="me") is True

    stored = jobs.get(KEY, "li-1")
    assert stored is not None
    assert stored.state is JobState.READY and stored.lease_owner is None
    assert stored.files[0]["name"] == "y.pdf"
    assert due_keys(jobs, now=10_000.0) == []


def test_move_only_from_the_expected_states(jobs: RenderJobTable) -> None:
    jobs.put_new(replace(new_job(), state=JobState.READY, due_at=None))
    assert jobs.move(KEY, "li-1", (JobState.PENDING,), JobState.DONE) is None
    moved = jobs.move(KEY, "li-1", (JobState.READY,), JobState.DOWNLOADING)
    assert moved is not None and moved.state is JobState.DOWNLOADING


def test_of_two_claims_of_one_version_only_the_first_saves(jobs: RenderJobTable) -> None:
    pk, sk = "ORDER#shop#1001", "JOB#li-1"
    jobs.put_new(new_job())
    seen = jobs.peek(pk, sk)
    assert seen is not None and seen.due_at == 100.0

    # Given two pollers that read the same version, the first one's save wins ...
    assert jobs.save_claimed(replace(seen, attempts=1, due_at=200.0), seen=seen) is True
    assert jobs.save_claimed(replace(seen, attempts=1, due_at=300.0), seen=seen) is False
    stored = jobs.get(KEY, "li-1")
    assert stored is not None and stored.due_at == 200.0 and stored.attempts == 1

    # ... and a lease taken after a claim's read defeats its save too.
    seen = jobs.peek(pk, sk)
    assert seen is not None
    assert jobs.lease(pk, sk, "sweep", now=250.0, until=280.0) is not None
    assert jobs.save_claimed(replace(seen, attempts=2, due_at=400.0), seen=seen) is False
    stored = jobs.get(KEY, "li-1")
    assert stored is not None and stored.state is JobState.LEASED
    assert stored.lease_owner == "sweep" and stored.attempts == 1
