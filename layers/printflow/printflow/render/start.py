"""The generate-production-files step: start (or find) the order's render work.

The step's Lambda is a ``.waitForTaskToken`` task: it records one render job per CHILI task
or Customer's Canvas project, each carrying the task token, and returns at once. The token
is completed later: by the download function once the last job's files are in S3, or by
the poller when a job fails for good.

A retried step (Step Functions gives every attempt a new token) finds the jobs of earlier
attempts and moves them to the new token instead of starting the work again. CHILI's start
is not idempotent, so each task is recorded the moment CHILI answers, and the order notes
when a step's start has finished (``renderStartsDone``). A start that failed half-way (CHILI
unavailable on the fifth of eight line items, the Lambda's time up) is resumed by the retry
from the first line item without a job; at most the one task in flight when it died is an
unused task at CHILI (a cost, never a duplicate file: only recorded tasks are downloaded).

A provider that is unavailable while the work is being started (5xx, 429, a timeout) is
waited out until the render step's timeout, as a poll's transient error is: the step fails as
retryable (Step Functions retries it, the flow giving render steps enough attempts to span the
timeout), and the order notes when this run of the step first met the outage. Once the
timeout has passed since then, the step fails for good (``StepFailed``, its ``onError``
path). Never a fixed number of retries: those turned a short outage into a failed order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from printflow.adapters.order_table import START_DONE_ATTRIBUTE, OrderTable
from printflow.adapters.render_job_table import RenderJobTable
from printflow.domain.order import Order, OrderKey, order_from_document
from printflow.domain.render_job import JobState, RenderJob
from printflow.domain.storefront import Storefront
from printflow.errors import StepFailed, StepRetryable, ValidationError
from printflow.flows.step_types import generate_production_files
from printflow.flows.step_types.generate_production_files import GenerateProductionFilesOptions
from printflow.observability import logger
from printflow.orders.completion import OrderCompleter, OrderNotCompletable, StoreUnavailable
from printflow.providers.errors import ProviderRejected, ProviderUnavailable
from printflow.providers.formats import settings_for_step
from printflow.providers.protocol import RenderWork
from printflow.providers.registry import ProviderRegistry, start_render
from printflow.render.jobs import job_for_work
from printflow.render.policies import policy_for
from printflow.steps.context import StepInvocation

if TYPE_CHECKING:
    from printflow.render.poller import PollTimers

DEFAULT_RENDER_TIMEOUT_S = 3600


@dataclass(frozen=True, slots=True)
class RenderRequest:
    order: OrderKey
    step_id: str
    task_token: str
    timeout_s: int = DEFAULT_RENDER_TIMEOUT_S
    # Seconds left in the Lambda (its context); None: no limit (tests, tools).
    remaining_s: Callable[[], float] | None = None
    # Set on the order by the download function when it completes the token.
    success_status: str = ""
    # The step's ``fileFormat`` option; None: the storefront's provider settings decide.
    file_format: str | None = None
    # In an order retry (``printflow orders retry``) failed jobs are taken up again.
    order_retry: bool = False
    # A step that ends a failed flow (reached through onError, no onSuccess): the download
    # function fails its token with ``OrderFailed`` and this cause once the files are stored,
    # so no Fail state follows the step; ``error`` is the error record written with its status.
    fail_flow_cause: str | None = None
    error: dict[str, str] | None = None
    # This execution's run of the step (``StepInvocation.run_id``): an outage met while
    # starting is timed from this run's first attempt, so an order retry starts afresh.
    run_id: str = ""


def render_options(invocation: StepInvocation) -> GenerateProductionFilesOptions:
    """The step's options, checked with the flow's own rules (the event may not come from a
    validated flow); a bad option fails the step with the validator's message."""
    try:
        return generate_production_files.SPEC.parse_options(dict(invocation.options), "options")
    except ValidationError as exc:
        raise StepFailed(f"step {invocation.step_id!r}: {exc}") from exc


class _TimeRunningOut(Exception):
    """Raised between two CHILI starts when another one might not finish in time."""


@dataclass(frozen=True, slots=True)
class RenderStarted:
    jobs: int
    provider: str
    resumed: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"jobs": self.jobs, "provider": self.provider, "resumed": self.resumed}


class RenderStarter:
    def __init__(
        self,
        orders: OrderTable,
        jobs: RenderJobTable,
        registry: ProviderRegistry,
        *,
        completer: OrderCompleter | None = None,
        min_time_left_s: float = 15.0,
        clock: Callable[[], float] = time.time,
        timers: PollTimers | None = None,
    ) -> None:
        self._timers = timers
        self._completer = completer
        self._min_time_left_s = min_time_left_s
        self._orders = orders
        self._jobs = jobs
        self._registry = registry
        self._clock = clock

    def start(self, request: RenderRequest) -> RenderStarted:
        item = self._orders.get_order(request.order)
        if item is None:
            raise StepFailed(f"order {request.order} not found")
        storefront = self._orders.get_storefront(request.order.storefront_id)
        if storefront is None or storefront.provider is None:
            raise StepFailed(
                f"storefront {request.order.storefront_id!r} has no render provider configured"
            )
        provider_name = storefront.provider.name.value
        # The last line against a format the provider cannot make: refused before any work.
        try:
            provider = settings_for_step(
                request.step_id,
                request.file_format,
                storefront.provider,
                self._registry.settings_for(storefront.provider),
            )
        except ValidationError as exc:
            raise StepFailed(str(exc)) from exc

        earlier = [j for j in self._jobs.jobs_of(request.order) if j.step_id == request.step_id]
        for job in earlier:
            self._jobs.set_task_token(request.order, job.job_id, request.task_token)
        if request.order_retry:
            earlier = self._take_up_failed_jobs(request, earlier, item)
        if request.step_id in (item.get(START_DONE_ATTRIBUTE) or ()):
            return RenderStarted(len(earlier), provider_name, resumed=True)

        # A large completed order keeps its document beside the raw body.
        bucket = (item.get("rawBody") or {}).get("bucket")
        order = self._complete(order_from_document(item["order"]), storefront, bucket)
        recorded = frozenset(j.line_item_id for j in earlier if j.line_item_id)
        new_jobs = 0

        def record(work: RenderWork) -> None:
            nonlocal new_jobs
            new_jobs += self._record(request, work)
            # A big order against a slow CHILI may not fit in one invocation: stop between two
            # starts, with every task so far recorded, and let the step's retry go on.
            if request.remaining_s is not None and request.remaining_s() < self._min_time_left_s:
                raise _TimeRunningOut

        try:
            asyncio.run(
                start_render(
                    self._registry,
                    provider,
                    order,
                    skip_line_items=recorded,
                    started=record,
                )
            )
        except (ProviderRejected, ValidationError) as exc:
            raise StepFailed(f"{provider_name} refused the render: {exc}") from exc
        except ProviderUnavailable as exc:
            raise self._unavailable(request, provider_name, exc) from exc
        except _TimeRunningOut:
            raise StepRetryable(
                f"started {len(earlier) + new_jobs} render job(s) before the function's time ran "
                "low; the step's retry starts the rest"
            ) from None
        self._orders.mark_render_started(
            request.order,
            request.step_id,
            request.success_status,
            fail_flow_cause=request.fail_flow_cause,
            error=request.error,
        )
        return RenderStarted(len(earlier) + new_jobs, provider_name, resumed=bool(earlier))

    def _unavailable(
        self, request: RenderRequest, provider_name: str, exc: ProviderUnavailable
    ) -> StepRetryable | StepFailed:
        """Retry while the render step's timeout has not passed since this run first met
        the outage; after that, fail the step for good."""
        now = self._clock()
        since = self._orders.note_render_start_unavailable(
            request.order, request.run_id or request.step_id, now
        )
        waited = now - since
        if waited >= request.timeout_s:
            return StepFailed(
                f"{provider_name} was still unavailable {waited:.0f} s after the render "
                f"start first met it (the render step's timeout is {request.timeout_s} s): "
                f"{exc.message}"
            )
        return StepRetryable(
            f"{provider_name} is unavailable: {exc.message} (retried until the render "
            f"step's timeout, {request.timeout_s - waited:.0f} s left)"
        )

    def _take_up_failed_jobs(
        self, request: RenderRequest, earlier: list[RenderJob], item: dict[str, Any]
    ) -> list[RenderJob]:
        """An order retry: failed jobs run again, finished ones are kept as they are.

        A job that failed after its render finished (it has files: the download failed)
        is polled again, which yields fresh download links without rendering again; files
        already in S3 with the recorded size and sha256 are not downloaded twice. A job
        whose render failed is forgotten, so the start below renders that line item anew.
        Runs after the tokens moved, so whoever finishes a job completes this attempt.
        """
        now = self._clock()
        live = [j for j in earlier if j.state is not JobState.SUPERSEDED]
        if live and all(j.state is JobState.DONE for j in live):
            # Every job is done, yet the retry runs this step (its files did not match the
            # manifest): poll them again, so the download stores what is missing and
            # completes this attempt's token. Nothing is rendered again.
            for job in live:
                self._reopen(request, job, now, JobState.DONE)
            return earlier
        kept: list[RenderJob] = []
        forgotten = False
        for job in earlier:
            if job.state is not JobState.FAILED:
                kept.append(job)
            elif job.files:
                self._reopen(request, job, now, JobState.FAILED)
                kept.append(job)
            else:
                self._jobs.forget_failed(request.order, job.job_id)
                forgotten = True
        if forgotten and request.step_id in (item.get(START_DONE_ATTRIBUTE) or ()):
            self._orders.forget_render_start(request.order, request.step_id)
            item[START_DONE_ATTRIBUTE] = [
                s for s in item.get(START_DONE_ATTRIBUTE) or () if s != request.step_id
            ]
        return kept

    def _reopen(self, request: RenderRequest, job: RenderJob, now: float, state: JobState) -> None:
        """Put ``job`` back on the poll path (due now, on its timer when there are timers)."""
        reopened = self._jobs.reopen(
            request.order,
            job.job_id,
            due_at=now,
            deadline_at=now + request.timeout_s,
            from_state=state,
        )
        if not reopened or self._timers is None:
            return
        fresh = self._jobs.get(request.order, job.job_id)
        try:
            if fresh is not None:
                self._timers.set(fresh)
        except Exception:
            logger.exception("poll timer not set: the scheduled run will rescue the job")

    def _complete(self, order: Order, storefront: Storefront, bucket: str | None) -> Order:
        """The full order: a thin one (BigCommerce) is read from its store first."""
        if self._completer is None:
            return order
        try:
            return self._completer.complete(order, storefront, document_bucket=bucket)
        except OrderNotCompletable as exc:
            raise StepFailed(str(exc)) from exc
        except StoreUnavailable as exc:
            wait = f" (it asks to wait {exc.retry_after_s:g} s)" if exc.retry_after_s else ""
            raise StepRetryable(f"the store API is unavailable: {exc.message}{wait}") from exc

    def _record(self, request: RenderRequest, work: RenderWork) -> int:
        """Record ``work`` as a job (1), or find it recorded already (0: found again)."""
        now = self._clock()
        policy = policy_for(work.provider.value)
        job = job_for_work(
            work,
            request.order,
            request.task_token,
            request.step_id,
            created_at=now,
            deadline_at=now + request.timeout_s,
            due_at=now + policy.first_poll_s,
        )
        created = self._jobs.put_new(job)
        if created and self._timers is not None:
            # After the job exists: a timer never fires on a job that is not there. If this
            # fails, the job is still recorded and the scheduled run rescues it.
            try:
                self._timers.set(job)
            except Exception:
                logger.exception("poll timer not set: the scheduled run will rescue the job")
        return int(created)
