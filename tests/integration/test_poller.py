"""The poller's guarantees, on moto's DynamoDB with a scripted provider.

- two pollers at once over the same due jobs: every job polled exactly once per due time;
- a run that dies mid-sweep: its jobs come back when their lease expires, not before;
- 5xx, 429 and other transient failures back off (Retry-After honoured) until the step's
  deadline, never failing the order early; the adapter's own TooSoon counts no failure.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from printflow.adapters.render_job_table import RenderJobTable
from printflow.domain.order import OrderKey
from printflow.domain.render_job import JobState, PollingPolicy, RenderJob
from printflow.domain.storefront import ProviderName
from printflow.providers.errors import ProviderUnavailable, TooSoon
from printflow.providers.protocol import PollResult, PollState, RecoveryPlan, RenderWork, WorkKind
from printflow.render.jobs import job_for_work
from printflow.render.poller import Poller, PollerSettings
from printflow_tools.localstack.resources import LocalResources

POLICY = PollingPolicy(interval_s=600.0, first_poll_s=0.0, max_transient_failures=3)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ScriptedProvider:
    """Counts polls per work; answers with ``answer(work)`` (RUNNING by default)."""

    name = ProviderName.CHILI
    min_poll_interval_s = 0.0

    def __init__(self, answer: Callable[[RenderWork], PollResult] | None = None) -> None:
        self.polls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._answer = answer or (lambda work: PollResult(PollState.RUNNING))

    async def poll(self, work: RenderWork) -> PollResult:
        with self._lock:
            self.polls[work.reference] += 1
        await asyncio.sleep(0.001)
        return self._answer(work)

    def recovery_plan(self, work: RenderWork) -> RecoveryPlan:
        return RecoveryPlan(allowed=False, reason="not recoverable")

    async def recover(self, work: RenderWork) -> RenderWork:  # pragma: no cover
        raise AssertionError("no recovery here")


class Recorder:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.failures: list[tuple[str, str, str]] = []

    def send(self, job: RenderJob) -> None:
        self.sent.append(job.job_id)

    def fail(self, token: str, error: str, cause: str) -> None:
        self.failures.append((token, error, cause))


@pytest.fixture
def jobs(local_aws: LocalResources) -> RenderJobTable:
    return RenderJobTable(boto3.client("dynamodb"), local_aws.table(), due_shards=4)


def seed(jobs: RenderJobTable, count: int, clock: Clock) -> None:
    def put(i: int) -> None:
        work = RenderWork(ProviderName.CHILI, WorkKind.OUTPUT_TASK, f"task-{i:04d}")
        jobs.put_new(
            job_for_work(
                work,
                OrderKey("shop", f"order-{i % 50}"),
                f"token-{i % 50}",
                "generate",
                created_at=clock(),
                deadline_at=clock() + 86_400,
                due_at=clock(),
            )
        )

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(count)))


def poller(
    jobs: RenderJobTable,
    provider: ScriptedProvider,
    clock: Clock,
    recorder: Recorder | None = None,
    concurrency: int = 32,
) -> Poller:
    recorder = recorder or Recorder()

    async def provider_for(job: RenderJob) -> Any:
        return provider

    return Poller(
        jobs,
        provider_for,
        lambda name: POLICY,
        recorder,
        recorder,
        PollerSettings(due_shards=4, concurrency=concurrency, safety_s=0.0),
        clock=clock,
    )


def states(jobs: RenderJobTable, count: int) -> Counter[str]:
    found: Counter[str] = Counter()
    for i in range(50):
        for job in jobs.jobs_of(OrderKey("shop", f"order-{i}")):
            found[job.state.value] += 1
    assert sum(found.values()) == count
    return found


def all_jobs(jobs: RenderJobTable) -> list[RenderJob]:
    return [job for i in range(50) for job in jobs.jobs_of(OrderKey("shop", f"order-{i}"))]


def test_two_pollers_at_once_poll_every_job_exactly_once(jobs: RenderJobTable) -> None:
    clock = Clock()
    seed(jobs, 500, clock)
    provider = ScriptedProvider()
    first, second = poller(jobs, provider, clock), poller(jobs, provider, clock)

    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda p: p.run(lambda: 60.0), [first, second]))

    assert len(provider.polls) == 500
    assert set(provider.polls.values()) == {1}
    assert sum(r.leased for r in reports) == 500
    assert all(r.errors == 0 and r.lost_leases == 0 for r in reports)
    assert states(jobs, 500) == Counter({"pending": 500})
    # Nothing is due again until the next poll time
    assert poller(jobs, provider, clock).run(lambda: 60.0).due == 0


class Crash(BaseException):
    """Stands for the Lambda being killed: not an Exception, so nothing catches it."""


def test_a_run_that_dies_mid_sweep_leaves_its_jobs_to_a_later_run(jobs: RenderJobTable) -> None:
    clock = Clock()
    seed(jobs, 60, clock)
    calls = {"n": 0}

    def answer(work: RenderWork) -> PollResult:
        calls["n"] += 1
        if calls["n"] == 20:
            raise Crash()
        return PollResult(PollState.RUNNING)

    crashing = ScriptedProvider(answer)
    with pytest.raises(Crash):
        poller(jobs, crashing, clock, concurrency=4).run(lambda: 60.0)
    # Polls in flight when the run died may or may not have saved their outcome: read what
    # the table says rather than guess from the number of polls.
    after_crash = all_jobs(jobs)
    held = {job.ref for job in after_crash if job.state is JobState.LEASED}
    due = {
        job.ref
        for job in after_crash
        if job.state is not JobState.LEASED and (job.due_at or 0.0) <= clock.now
    }
    assert held  # the run leases a batch up front: usually every job it had not finished

    # Before the lease expires nobody touches the held jobs: only the due ones are polled ...
    later = ScriptedProvider()
    report = poller(jobs, later, clock).run(lambda: 60.0)
    assert set(later.polls) == due and report.leased == len(due)
    # ... after it expires (lease = remaining time + margin), the held ones are polled again.
    clock.now += 60.0 + 31.0
    after_expiry = ScriptedProvider()
    report = poller(jobs, after_expiry, clock).run(lambda: 60.0)
    assert set(after_expiry.polls) == held and report.leased == len(held)
    assert states(jobs, 60) == Counter({"pending": 60})


def test_transient_failures_back_off_until_the_steps_deadline_never_fail_early(
    jobs: RenderJobTable,
) -> None:
    clock = Clock()
    seed(jobs, 1, clock)
    (seeded,) = jobs.jobs_of(OrderKey("shop", "order-0"))

    def throttled(work: RenderWork) -> PollResult:
        raise ProviderUnavailable("429 from chili", status=429, retry_after_s=120.0)

    provider = ScriptedProvider(throttled)
    recorder = Recorder()
    # Far more failures in a row than max_transient_failures (3): the job keeps trying.
    for attempt in range(1, 3 * POLICY.max_transient_failures + 2):
        report = poller(jobs, provider, clock, recorder).run(lambda: 60.0)
        assert report.polls == 1 and report.failed == 0
        (job,) = jobs.jobs_of(OrderKey("shop", "order-0"))
        assert job.state is JobState.PENDING and job.failures == attempt
        assert job.due_at is not None and job.due_at >= clock() + 120.0  # Retry-After honoured
        assert job.due_at <= seeded.deadline_at
        clock.now = job.due_at
    assert recorder.failures == []

    # Only the render step's deadline ends it, as a timeout.
    clock.now = seeded.deadline_at + 1
    report = poller(jobs, provider, clock, recorder).run(lambda: 60.0)

    (job,) = jobs.jobs_of(OrderKey("shop", "order-0"))
    assert report.failed == 1 and job.state is JobState.FAILED
    ((token, error, _),) = recorder.failures
    assert (token, error) == ("token-0", "Render.TimedOut")


def test_a_too_soon_refusal_waits_and_counts_no_failure(jobs: RenderJobTable) -> None:
    clock = Clock()
    seed(jobs, 1, clock)

    def refused(work: RenderWork) -> PollResult:
        raise TooSoon("polled 10 s ago; the minimum is 60 s", retry_after_s=50.0)

    recorder = Recorder()
    for _ in range(3 * POLICY.max_transient_failures):
        poller(jobs, ScriptedProvider(refused), clock, recorder).run(lambda: 60.0)
        (job,) = jobs.jobs_of(OrderKey("shop", "order-0"))
        assert job.state is JobState.PENDING and job.failures == 0
        assert job.due_at == pytest.approx(clock() + 50.0)
        clock.now = job.due_at
    assert recorder.failures == []


def test_a_finished_job_is_queued_once_and_leaves_the_index(jobs: RenderJobTable) -> None:
    clock = Clock()
    seed(jobs, 3, clock)
    from printflow.providers.protocol import ArtifactAuth, ArtifactSource

    done = ScriptedProvider(
        lambda work: PollResult(
            PollState.DONE, files=(ArtifactSource("https://x/f.pdf", ArtifactAuth.BEARER, "f.pdf"),)
        )
    )
    recorder = Recorder()

    report = poller(jobs, done, clock, recorder).run(lambda: 60.0)

    assert report.finished == 3 and sorted(recorder.sent) == sorted(
        f"task-task-{i:04d}" for i in range(3)
    )
    assert states(jobs, 3) == Counter({"ready": 3})
    clock.now += 10_000
    assert poller(jobs, done, clock, recorder).run(lambda: 60.0).due == 0


def test_the_run_says_at_info_level_why_a_job_is_waiting(jobs: RenderJobTable) -> None:
    from printflow.observability import logger

    clock = Clock()
    seed(jobs, 1, clock)
    provider = ScriptedProvider(
        lambda work: PollResult(PollState.NOT_READY, detail="no Customer's Canvas project yet")
    )
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.setFormatter(logger.registered_formatter)
    python_logger = logging.getLogger(logger.name)
    level = python_logger.level
    python_logger.addHandler(handler)
    python_logger.setLevel(logging.INFO)
    try:
        report = poller(jobs, provider, clock).run(lambda: 60.0)
    finally:
        python_logger.removeHandler(handler)
        python_logger.setLevel(level)

    assert report.rescheduled == 1
    (waiting,) = [json.loads(line) for line in lines if "render job waiting" in line]
    assert waiting["level"] == "INFO"
    assert waiting["reason"] == "no Customer's Canvas project yet"
    assert waiting["order"] == "shop/order-0" and waiting["ref"] == "task-0000"
    assert waiting["next_poll_in_s"] == 600.0
