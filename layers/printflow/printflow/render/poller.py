"""The scheduled poller: lease due render jobs, poll their providers, act on the answers.

One run (one Lambda invocation):

1. read due job keys from every shard of the sparse ``DueIndex``;
2. for each key, concurrently: lease the job (a conditional write: a job another run holds
   is skipped), poll its provider under that provider's concurrency limit, and decide;
   fast providers (CHILI) are polled again within the run while time remains;
3. act: queue the download of a finished job, fail the flow's step for a failed one,
   resume a failed pipeline, create jobs for newly found projects; then save the job and
   release the lease.

Side effects come before the save: if the run dies in between, the lease expires, the job is
polled again and the side effect repeats, and each one is idempotent (download messages are
deduplicated by the download function, task tokens complete once). boto3 is synchronous, so
its calls run in a thread pool sized to the poll concurrency and overlap with HTTP polls. A
run stops taking work when the Lambda's remaining time falls under ``safety_s``; what it did
not reach stays due for the next run.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from printflow.adapters.render_job_table import RenderJobTable
from printflow.domain.render_job import JobState, PollingPolicy, RenderJob
from printflow.observability import logger
from printflow.providers.base import (
    PollState,
    ProviderRejected,
    ProviderUnavailable,
    RecoveryRefused,
    RenderProvider,
    RenderWork,
)
from printflow.render.decisions import (
    RENDER_FAILED,
    Action,
    Decision,
    after_poll,
    after_transient_error,
    failed,
    past_deadline,
    too_soon,
)
from printflow.render.jobs import job_for_work

T = TypeVar("T")
# Re-poll within the run only for providers whose interval is this short (CHILI: seconds).
IN_RUN_REPOLL_MAX_INTERVAL_S = 15.0


class DownloadQueue(Protocol):
    def send(self, job: RenderJob) -> None: ...


class TaskTokens(Protocol):
    def fail(self, token: str, error: str, cause: str) -> None: ...


@dataclass
class PollReport:
    due: int = 0
    leased: int = 0
    polls: int = 0
    finished: int = 0
    failed: int = 0
    recovered: int = 0
    discovered: int = 0
    rescheduled: int = 0
    lost_leases: int = 0
    errors: int = 0
    skipped_for_time: int = 0
    seconds: float = 0.0
    by_provider: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class PollerSettings:
    due_shards: int = 4
    max_jobs_per_run: int = 5000
    concurrency: int = 100  # threads for AWS calls, and the default per-provider limit
    provider_concurrency: dict[str, int] = field(default_factory=dict)
    safety_s: float = 10.0  # stop taking work when less time than this remains
    lease_margin_s: float = 30.0


def work_of(job: RenderJob) -> RenderWork:
    """The provider's reference to the job's work, as stored when the job was created."""
    return RenderWork.from_document(job.details["work"])


class Poller:
    def __init__(
        self,
        jobs: RenderJobTable,
        provider_for: Callable[[RenderJob], Awaitable[RenderProvider]],
        policy_for: Callable[[str], PollingPolicy],
        downloads: DownloadQueue,
        tokens: TaskTokens,
        settings: PollerSettings,
        *,
        clock: Callable[[], float] = time.time,
        owner: str | None = None,
    ) -> None:
        self._jobs = jobs
        self._provider_for = provider_for
        self._policy_for = policy_for
        self._downloads = downloads
        self._tokens = tokens
        self.settings = settings
        self._clock = clock
        self.owner = owner or f"poller-{uuid.uuid4().hex[:12]}"
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._executor: ThreadPoolExecutor | None = None

    # -- entry point ------------------------------------------------------------------------

    def run(self, remaining_s: Callable[[], float]) -> PollReport:
        """One sweep over the due jobs, within the time ``remaining_s`` reports."""
        return asyncio.run(self.sweep(remaining_s))

    async def sweep(self, remaining_s: Callable[[], float]) -> PollReport:
        started = time.monotonic()
        report = PollReport()
        self._semaphores = {}
        with ThreadPoolExecutor(
            max_workers=self.settings.concurrency, thread_name_prefix="poller-aws"
        ) as executor:
            self._executor = executor
            keys = await self._aws(self._due_keys, self._clock())
            report.due = len(keys)
            lease_until = self._clock() + remaining_s() + self.settings.lease_margin_s
            await asyncio.gather(
                *(self._handle(pk, sk, lease_until, remaining_s, report) for pk, sk in keys)
            )
        self._executor = None
        report.seconds = round(time.monotonic() - started, 3)
        return report

    # -- one job ----------------------------------------------------------------------------

    async def _handle(
        self,
        pk: str,
        sk: str,
        lease_until: float,
        remaining_s: Callable[[], float],
        report: PollReport,
    ) -> None:
        if remaining_s() < self.settings.safety_s:
            report.skipped_for_time += 1
            return
        try:
            job = await self._aws(self._jobs.lease, pk, sk, self.owner, self._clock(), lease_until)
            if job is None:
                return  # another run holds it, or the index entry was stale
            report.leased += 1
            provider = await self._provider_for(job)
            policy = self._policy_for(job.provider)
            async with self._semaphore(job.provider):
                decision = await self._poll(job, provider, policy, remaining_s, report)
                if decision.action is Action.RECOVER:
                    decision = await self._recover(decision, provider, policy)
            await self._apply(decision, report)
        except Exception:
            # The lease runs out and a later run polls the job again.
            report.errors += 1
            logger.exception("render job handling failed", extra={"job": sk, "order": pk})

    async def _poll(
        self,
        job: RenderJob,
        provider: RenderProvider,
        policy: PollingPolicy,
        remaining_s: Callable[[], float],
        report: PollReport,
    ) -> Decision:
        while True:
            now = self._clock()
            expired = past_deadline(job, now)
            if expired is not None:
                return expired
            earliest = too_soon(job, policy, now)
            if earliest is not None:
                return Decision(replace(job, state=JobState.PENDING, due_at=earliest))
            report.polls += 1
            report.by_provider[job.provider] = report.by_provider.get(job.provider, 0) + 1
            work = work_of(job)
            try:
                result = await provider.poll(work)
            except ProviderUnavailable as exc:
                return after_transient_error(
                    job, policy, self._clock(), exc.message, exc.retry_after_s
                )
            except ProviderRejected as exc:
                return failed(job, self._clock(), RENDER_FAILED, exc.message)
            plan = provider.recovery_plan(work) if result.state is PollState.FAILED else None
            decision = after_poll(job, result, policy, self._clock(), plan)
            wait = (decision.job.due_at or 0.0) - self._clock()
            repoll = (
                decision.action is Action.NONE
                and decision.keeps_polling
                and policy.next_poll_delay() <= IN_RUN_REPOLL_MAX_INTERVAL_S
                and remaining_s() - wait > self.settings.safety_s
            )
            if not repoll:
                return decision
            await asyncio.sleep(max(0.0, wait))
            job = replace(decision.job, state=JobState.LEASED)

    async def _recover(
        self, decision: Decision, provider: RenderProvider, policy: PollingPolicy
    ) -> Decision:
        job = decision.job
        try:
            work = await provider.recover(work_of(job))
        except ProviderUnavailable as exc:
            return after_transient_error(job, policy, self._clock(), exc.message, exc.retry_after_s)
        except (ProviderRejected, RecoveryRefused) as exc:
            return failed(job, self._clock(), RENDER_FAILED, exc.message)
        recovered = replace(
            job,
            recoveries=work.recovery_attempts,
            details={**job.details, "work": work.to_document()},
        )
        return replace(decision, job=recovered)

    async def _apply(self, decision: Decision, report: PollReport) -> None:
        job = decision.job
        if decision.discovered:
            # Before a finished discovery job is queued: its download completes the step
            # only when these jobs are done too, so they must exist by then.
            report.discovered += await self._aws(self._create_discovered, decision)
        if decision.action is Action.QUEUE_DOWNLOAD:
            await self._aws(self._downloads.send, job)
            report.finished += 1
        elif decision.action is Action.FAIL_STEP:
            await self._aws(
                self._tokens.fail,
                job.task_token,
                decision.error or RENDER_FAILED,
                job.error or "render failed",
            )
            await self._aws(self._cancel_siblings, job)
            report.failed += 1
        elif decision.action is Action.RECOVER:
            report.recovered += 1
        if decision.keeps_polling:
            report.rescheduled += 1
        if not await self._aws(self._jobs.save, job, owner=self.owner):
            report.lost_leases += 1

    # -- helpers ----------------------------------------------------------------------------

    def _due_keys(self, now: float) -> list[tuple[str, str]]:
        keys: list[tuple[str, str]] = []
        for shard in range(self.settings.due_shards):
            remaining = self.settings.max_jobs_per_run - len(keys)
            if remaining <= 0:
                break
            keys.extend(self._jobs.due(shard, now, remaining))
        return keys

    def _create_discovered(self, decision: Decision) -> int:
        """Jobs for the projects a discovery job found; the number that are new."""
        parent = decision.job
        now = self._clock()
        created = 0
        for work in decision.discovered:
            created += self._jobs.put_new(
                job_for_work(
                    work,
                    parent.order_key,
                    parent.task_token,
                    parent.step_id,
                    created_at=now,
                    deadline_at=parent.deadline_at,
                    due_at=now,
                )
            )
        return created

    def _cancel_siblings(self, failed_job: RenderJob) -> None:
        """The step failed: stop polling the order's other jobs of the same step."""
        for sibling in self._jobs.jobs_of(failed_job.order_key):
            if sibling.job_id == failed_job.job_id or sibling.task_token != failed_job.task_token:
                continue
            if sibling.lease_owner == self.owner:
                continue  # this run is handling it: its own outcome is saved, not "cancelled"
            self._jobs.move(
                sibling.order_key,
                sibling.job_id,
                (JobState.PENDING, JobState.LEASED),
                JobState.FAILED,
                error=f"cancelled: job {failed_job.job_id} of the same order failed",
            )

    def _semaphore(self, provider: str) -> asyncio.Semaphore:
        if provider not in self._semaphores:
            limit = self.settings.provider_concurrency.get(provider, self.settings.concurrency)
            self._semaphores[provider] = asyncio.Semaphore(limit)
        return self._semaphores[provider]

    async def _aws(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: function(*args, **kwargs))
