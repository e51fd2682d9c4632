"""The render poller: lease render jobs, poll their providers, act on the answers.

Every job has a poll timer (a delayed message on the poll queue, see
:mod:`printflow.adapters.poll_timers`): when a job is recorded, and after every poll that
leaves it running, its next poll is scheduled at the provider's interval. Two entry points:

- :meth:`Poller.fire` handles a batch of fired timers (the poll function, on the queue);
- :meth:`Poller.sweep` is the scheduled safety net: it reads the jobs that have been due for
  longer than ``rescue_after_s`` from every shard of the sparse ``DueIndex`` (their timer was
  lost: a crash between saving a job and setting its timer, a message in the dead-letter
  queue), polls them and sets their timers again, and counts them as rescued.

For each job, concurrently: take it, poll its provider under that provider's concurrency
limit, and decide; then act: queue the download of a finished job, fail the flow's step for a
failed one, resume a failed pipeline, create jobs for newly found projects; then save the job
(releasing it) and set its next timer.

How a job is taken differs, because DynamoDB bills each write by the item's size and each move
of a ``DueIndex`` key twice:

- the sweep *leases* it (a conditional write that moves ``dueAt`` to the lease's expiry: a job
  another worker holds, or one that is not due, is skipped), then saves it: two writes;
- a fired timer *claims* it: a strongly consistent read (a fifth of a write's price) finds it
  due, and the poll's one write, the save, is conditional on the job still being the version
  read (:meth:`RenderJobTable.save_claimed`). A lease or save by anyone else in between fails
  that condition: the save is dropped and counted as a lost lease. Timers of one job in one
  batch run one after the other, so a duplicate delivery in the batch finds the job saved and
  not due. Two deliveries of one timer in two invocations at the same instant may both poll
  the provider; one save wins, and the side effects are idempotent (below).

A timer that fires twice, late or never does no harm: one worker saves a job per due time, a
late one polls late, and a lost one is rescued by the sweep. A timer that finds its job leased
by another worker is set again for the lease's expiry: if that worker crashed, the job is
polled as soon as its lease runs out, not at the sweep's rescue. Side effects come before the
save: if a worker dies in between, the job is polled again (a leased job when its lease
expires; a claimed one at once: nothing was written, the timer's message comes back) and the
side effect repeats, and each one is idempotent (download messages are deduplicated by the
download function, task tokens complete once). The timer is set after the save, so it never
fires on a job that still looks leased. Timers are set to fire at or just after their due time
(:func:`printflow.adapters.poll_timers.delay_after`), so no invocation sleeps out a remainder
it is billed for. boto3 is synchronous, so its calls run in a thread pool sized to the poll
concurrency and overlap with HTTP polls. A worker stops taking work when the Lambda's
remaining time falls under ``safety_s``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from printflow.adapters.order_table import order_pk
from printflow.adapters.poll_timers import PollTimer
from printflow.adapters.render_job_table import RenderJobTable, job_sk
from printflow.domain.order import OrderKey
from printflow.domain.render_job import ACTIVE_STATES, JobState, PollingPolicy, RenderJob
from printflow.observability import logger
from printflow.providers.errors import (
    ProviderAnswerMalformed,
    ProviderRejected,
    ProviderUnavailable,
    RecoveryRefused,
    TooSoon,
)
from printflow.providers.protocol import PollState, RenderProvider, RenderWork
from printflow.render.decisions import (
    RENDER_FAILED,
    Action,
    Decision,
    after_poll,
    after_transient_error,
    failed,
    past_deadline,
    refused_too_soon,
    too_soon,
)
from printflow.render.jobs import job_for_work

T = TypeVar("T")
# "render job waiting" lines per run (each says why a job is not done yet).
WAITING_LOG_LIMIT = 20
# SQS may deliver a delayed message a little before its delay is up, and clocks of two hosts
# differ by a few ms: a timer up to this early waits (milliseconds, in practice); an earlier
# one is a link of a chain, or was set to fire early, and is set again instead.
TIMER_TOLERANCE_S = 0.5


class Handled(StrEnum):
    POLLED = "polled"  # leased, polled (or found past its deadline / too soon) and saved
    NOT_OURS = "not-ours"  # another worker holds it, it is not due, or the entry was stale
    NO_TIME = "no-time"  # the invocation's time ran low before the job was taken
    ERROR = "error"  # something failed: the lease runs out and the job is polled again


class DownloadQueue(Protocol):
    def send(self, job: RenderJob) -> None: ...


class TaskTokens(Protocol):
    def fail(self, token: str, error: str, cause: str) -> None: ...


class PollTimers(Protocol):
    def set(self, job: RenderJob) -> None: ...

    def set_timer(self, timer: PollTimer) -> None: ...


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
    rescued: int = 0  # sweep: due jobs whose timer was lost
    timers_fired: int = 0
    timers_set: int = 0
    timers_chained: int = 0  # fired before their due time (a wait over 900 s): set again
    timers_skipped: int = 0  # duplicate or stale: the job was not due
    timers_rearmed: int = 0  # the job was leased by another: set again for the lease's expiry
    timer_errors: int = 0  # a timer could not be set: the sweep rescues the job
    skipped_for_time: int = 0
    malformed_answers: int = 0  # provider answers that broke its protocol (ops metric)
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
    # The sweep takes only jobs due for longer than this: sooner, their timer is on its way.
    rescue_after_s: float = 0.0


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
        timers: PollTimers | None = None,
        clock: Callable[[], float] = time.time,
        owner: str | None = None,
    ) -> None:
        self._timers = timers
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
        # Jobs this poller has claimed and not saved yet (they carry no lease owner).
        self._claimed: set[tuple[OrderKey, str]] = set()

    # -- entry point ------------------------------------------------------------------------

    def run(self, remaining_s: Callable[[], float]) -> PollReport:
        """One sweep over the due jobs, within the time ``remaining_s`` reports."""
        return asyncio.run(self.sweep(remaining_s))

    async def sweep(self, remaining_s: Callable[[], float]) -> PollReport:
        """The safety net: poll the jobs due for longer than ``rescue_after_s``."""
        report = PollReport()
        rescue = self.settings.rescue_after_s > 0

        async def work() -> None:
            keys = await self._aws(self._due_keys, self._clock() - self.settings.rescue_after_s)
            report.due = len(keys)
            lease_until = self._clock() + remaining_s() + self.settings.lease_margin_s
            await asyncio.gather(
                *(
                    self._handle(pk, sk, lease_until, remaining_s, report, rescue=rescue)
                    for pk, sk in keys
                )
            )

        return await self._in_pool(work, report)

    async def fire(self, timers: list[PollTimer], remaining_s: Callable[[], float]) -> PollReport:
        """Handle fired timers: poll each job that is due, set the next timers."""
        report = PollReport(timers_fired=len(timers))

        # One job's timers one after the other (earliest first): a duplicate finds the job
        # saved by the first and not due, instead of polling it a second time.
        by_job: dict[tuple[OrderKey, str], list[PollTimer]] = {}
        for timer in timers:
            by_job.setdefault((timer.order_key, timer.job_id), []).append(timer)

        async def in_order(job_timers: list[PollTimer], lease_until: float) -> None:
            for timer in sorted(job_timers, key=lambda t: t.due_at):
                await self._fired(timer, lease_until, remaining_s, report)

        async def work() -> None:
            lease_until = self._clock() + remaining_s() + self.settings.lease_margin_s
            await asyncio.gather(*(in_order(group, lease_until) for group in by_job.values()))

        return await self._in_pool(work, report)

    async def _in_pool(self, work: Callable[[], Awaitable[None]], report: PollReport) -> PollReport:
        started = time.monotonic()
        self._semaphores = {}
        with ThreadPoolExecutor(
            max_workers=self.settings.concurrency, thread_name_prefix="poller-aws"
        ) as executor:
            self._executor = executor
            try:
                await work()
            finally:
                self._executor = None
        report.seconds = round(time.monotonic() - started, 3)
        return report

    async def _fired(
        self,
        timer: PollTimer,
        lease_until: float,
        remaining_s: Callable[[], float],
        report: PollReport,
    ) -> None:
        early = timer.due_at - self._clock()
        if early > TIMER_TOLERANCE_S:
            # A wait longer than SQS's 900 s delay (one link of the chain), or a timer set to
            # fire before its due time: set again for the rest, rather than waited out here.
            report.timers_chained += 1
            await self._set_timer(timer, report)
            return
        if early > 0:
            # Delivered a few ms early: waited here (concurrently with the batch's other jobs).
            await asyncio.sleep(early)
        outcome, held_until = await self._take_fired(timer, remaining_s, report)
        if outcome is Handled.NOT_OURS:
            # When another worker holds the job's lease, that worker may have crashed: the
            # lease's expiry is when the job is due again, so the timer fires then instead of
            # leaving the job to the scheduled rescue minutes later. (A live holder has set
            # the next poll by then, and this timer is skipped as not due.)
            if held_until is None:
                report.timers_skipped += 1
            else:
                report.timers_rearmed += 1
                await self._set_timer(replace(timer, due_at=held_until), report)
        elif outcome is Handled.NO_TIME:
            await self._set_timer(timer, report)  # fires again at once, in another invocation
        elif outcome is Handled.ERROR:
            # Try again later (when a lease this worker might hold would have run out), not
            # in a tight loop on a job whose poll keeps failing.
            await self._set_timer(replace(timer, due_at=lease_until), report)

    async def _take_fired(
        self, timer: PollTimer, remaining_s: Callable[[], float], report: PollReport
    ) -> tuple[Handled, float | None]:
        """Claim the timer's job if it is due and poll it (see the module's docstring).

        With :data:`Handled.NOT_OURS`, also when another worker's lease on the job runs out
        (``None``: the job is not leased, so the timer is stale or a duplicate).
        """
        if remaining_s() < self.settings.safety_s:
            report.skipped_for_time += 1
            return Handled.NO_TIME, None
        pk, sk = order_pk(timer.order_key), job_sk(timer.job_id)
        try:
            job = await self._aws(self._jobs.peek, pk, sk)
        except Exception:
            report.errors += 1
            logger.exception("render job handling failed", extra={"job": sk, "order": pk})
            return Handled.ERROR, None
        now = self._clock()
        if job is None or job.state not in ACTIVE_STATES or job.due_at is None:
            return Handled.NOT_OURS, None  # done, failed or gone: the timer is stale
        if job.due_at > now:
            # Not due: its next poll is set (the timer is stale or a duplicate), or a live
            # lease holds it (a leased job's dueAt is its lease's expiry).
            leased = job.state is JobState.LEASED and job.lease_owner != self.owner
            return Handled.NOT_OURS, job.due_at if leased else None
        key = (job.order_key, job.job_id)
        self._claimed.add(key)
        try:
            report.leased += 1
            await self._poll_and_apply(job, report, seen=job)
        except Exception:
            # Nothing was written: the timer is set again and the job polled then.
            report.errors += 1
            logger.exception("render job handling failed", extra={"job": sk, "order": pk})
            return Handled.ERROR, None
        finally:
            self._claimed.discard(key)
        return Handled.POLLED, None

    # -- one job ----------------------------------------------------------------------------

    async def _handle(
        self,
        pk: str,
        sk: str,
        lease_until: float,
        remaining_s: Callable[[], float],
        report: PollReport,
        *,
        rescue: bool = False,
    ) -> Handled:
        """Lease, poll, act and save one job."""
        if remaining_s() < self.settings.safety_s:
            report.skipped_for_time += 1
            return Handled.NO_TIME
        try:
            job = await self._aws(self._jobs.lease, pk, sk, self.owner, self._clock(), lease_until)
            if job is None:
                return Handled.NOT_OURS
            report.leased += 1
            if rescue:
                report.rescued += 1
                logger.info("render job rescued", extra={"job": sk, "order": pk})
            await self._poll_and_apply(job, report, seen=None)
        except Exception:
            # The lease runs out; the timer's redelivery or the sweep polls the job again.
            report.errors += 1
            logger.exception("render job handling failed", extra={"job": sk, "order": pk})
            return Handled.ERROR
        return Handled.POLLED

    async def _poll_and_apply(
        self, job: RenderJob, report: PollReport, *, seen: RenderJob | None
    ) -> None:
        """Poll a job this worker has taken, act on the answer and save it (``seen``: the
        version a claim read; ``None``: the job is leased)."""
        expired = past_deadline(job, self._clock())
        if expired is not None:
            # The step has timed out: fail it without asking the provider (which may be
            # the very thing that keeps failing).
            await self._apply(expired, report, seen)
            return
        provider = await self._provider_for(job)
        policy = self._policy_for(job.provider)
        async with self._semaphore(job.provider):
            decision = await self._poll(job, provider, policy, report)
            if decision.action is Action.RECOVER:
                decision = await self._recover(decision, provider, policy)
        await self._apply(decision, report, seen)

    async def _poll(
        self,
        job: RenderJob,
        provider: RenderProvider,
        policy: PollingPolicy,
        report: PollReport,
    ) -> Decision:
        """One poll (or none, when the deadline passed or the provider's floor forbids it)."""
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
        except TooSoon as exc:
            return refused_too_soon(job, self._clock(), exc.retry_after_s)
        except ProviderUnavailable as exc:
            if isinstance(exc, ProviderAnswerMalformed):
                report.malformed_answers += 1
            return after_transient_error(job, policy, self._clock(), exc.message, exc.retry_after_s)
        except ProviderRejected as exc:
            return failed(job, self._clock(), RENDER_FAILED, exc.message)
        plan = provider.recovery_plan(work) if result.state is PollState.FAILED else None
        return after_poll(job, result, policy, self._clock(), plan)

    async def _recover(
        self, decision: Decision, provider: RenderProvider, policy: PollingPolicy
    ) -> Decision:
        job = decision.job
        try:
            work = await provider.recover(work_of(job))
        except TooSoon as exc:
            return refused_too_soon(job, self._clock(), exc.retry_after_s)
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

    async def _apply(self, decision: Decision, report: PollReport, seen: RenderJob | None) -> None:
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
            # The download function settles the order: a manifest saying what was stored.
            await self._aws(self._downloads.send, job)
            report.failed += 1
        elif decision.action is Action.RECOVER:
            report.recovered += 1
        if decision.keeps_polling:
            report.rescheduled += 1
            self._log_waiting(job, report)
        if seen is None:
            saved = await self._aws(self._jobs.save, job, owner=self.owner)
        else:
            saved = await self._aws(self._jobs.save_claimed, job, seen=seen)
        if not saved:
            report.lost_leases += 1  # a lease holder that took the job over sets its timer
            if seen is not None:
                await self._rearm_lost_claim(job, report)
            return
        if decision.keeps_polling:
            await self._set_timer(job, report)

    async def _rearm_lost_claim(self, job: RenderJob, report: PollReport) -> None:
        """A claimed job's save lost to another write: set its timer for its due time now.

        The other writer may never set one: a poll run that leased the job and crashed, or a
        render step retry that moved the job to a new task token. Without this timer the job
        would wait for the scheduled rescue (minutes). A live lease holder sets its own next
        poll as well; the extra timer then finds the job not due and does nothing.
        """
        try:
            current = await self._aws(self._jobs.peek, order_pk(job.order_key), job_sk(job.job_id))
        except Exception:
            report.errors += 1
            logger.exception("render job re-read failed: the scheduled run will rescue it")
            return
        if current is not None and current.state in ACTIVE_STATES and current.due_at is not None:
            await self._set_timer(current, report)

    async def _set_timer(self, target: RenderJob | PollTimer, report: PollReport) -> None:
        """Best effort: a timer that cannot be set leaves the job to the sweep."""
        if self._timers is None:
            return
        try:
            if isinstance(target, PollTimer):
                await self._aws(self._timers.set_timer, target)
            else:
                await self._aws(self._timers.set, target)
            report.timers_set += 1
        except Exception:
            report.timer_errors += 1
            logger.exception("poll timer not set: the scheduled run will rescue the job")

    # -- helpers ----------------------------------------------------------------------------

    def _log_waiting(self, job: RenderJob, report: PollReport) -> None:
        """Say why a job is not done yet; otherwise a run reports only ``rescheduled: N``.

        Capped per run so a large backlog does not flood the log.
        """
        if report.rescheduled > WAITING_LOG_LIMIT:
            return
        last = job.history[-1] if job.history else {}
        reason = last.get("detail") or last.get("status") or job.last_status or "not polled yet"
        logger.info(
            "render job waiting",
            extra={
                "job": job.job_id,
                "order": str(job.order_key),
                "provider": job.provider,
                "ref": job.ref,
                "status": job.last_status,
                "reason": reason,
                "next_poll_in_s": round(max(0.0, (job.due_at or 0.0) - self._clock()), 1),
            },
        )

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
            job = job_for_work(
                work,
                parent.order_key,
                parent.task_token,
                parent.step_id,
                created_at=now,
                deadline_at=parent.deadline_at,
                due_at=now,
            )
            if not self._jobs.put_new(job):
                continue  # found at an earlier look: it has its job (and timer) already
            created += 1
            if self._timers is not None:
                try:
                    self._timers.set(job)
                except Exception:
                    logger.exception("poll timer not set: the scheduled run will rescue the job")
        return created

    def _cancel_siblings(self, failed_job: RenderJob) -> None:
        """The step failed: stop polling the order's other jobs of the same step."""
        for sibling in self._jobs.jobs_of(failed_job.order_key):
            if sibling.job_id == failed_job.job_id or sibling.task_token != failed_job.task_token:
                continue
            if (
                sibling.lease_owner == self.owner
                or (sibling.order_key, sibling.job_id) in self._claimed
            ):
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
