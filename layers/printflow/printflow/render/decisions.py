"""What a poll's answer means for a render job: pure functions, no I/O.

The poller applies the returned :class:`Decision`: it performs the ``action`` (queue the
download, fail the flow's step, recover the pipeline, create jobs for discovered work) and
then saves ``job``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from printflow.domain.render_job import JobKind, JobState, PollingPolicy, RenderJob
from printflow.providers.protocol import PollResult, PollState, RecoveryPlan, RenderWork

RENDER_FAILED = "Render.Failed"
RENDER_EXPIRED = "Render.Expired"
RENDER_UNAVAILABLE = "Render.Unavailable"
RENDER_TIMED_OUT = "Render.TimedOut"


class Action(StrEnum):
    NONE = "none"
    QUEUE_DOWNLOAD = "queue-download"
    FAIL_STEP = "fail-step"
    RECOVER = "recover"
    CREATE_JOBS = "create-jobs"


@dataclass(frozen=True, slots=True)
class Decision:
    job: RenderJob
    action: Action = Action.NONE
    error: str | None = None  # the Step Functions error name when failing the step
    discovered: tuple[RenderWork, ...] = ()

    @property
    def keeps_polling(self) -> bool:
        return self.job.due_at is not None


def failed(job: RenderJob, now: float, error: str, cause: str) -> Decision:
    """The job failed for good: the flow's step fails with ``error`` and ``cause``."""
    done = replace(
        job.with_history(now, "failed", cause), state=JobState.FAILED, due_at=None, error=cause
    )
    return Decision(done, Action.FAIL_STEP, error=error)


def too_soon(job: RenderJob, policy: PollingPolicy, now: float) -> float | None:
    """When the provider's minimum interval forbids polling now, the earliest allowed time."""
    if job.last_polled_at is None or policy.min_interval_s <= 0:
        return None
    earliest = job.last_polled_at + policy.min_interval_s
    return earliest if earliest > now else None


def past_deadline(job: RenderJob, now: float) -> Decision | None:
    if job.deadline_at and now > job.deadline_at:
        return failed(
            job,
            now,
            RENDER_TIMED_OUT,
            f"render job {job.job_id} did not finish before its deadline",
        )
    return None


def after_poll(
    job: RenderJob,
    result: PollResult,
    policy: PollingPolicy,
    now: float,
    recovery: RecoveryPlan | None = None,
) -> Decision:
    """The job's next state once the provider answered.

    ``recovery`` is the provider's plan for a FAILED result (resume/restart allowed now, or
    later, or never).
    """
    status = result.state.value.lower()
    polled = replace(job, attempts=job.attempts + 1, failures=0, last_polled_at=now)
    if status != job.last_status:
        polled = polled.with_history(now, status, result.detail or "")
    next_poll = now + max(policy.next_poll_delay(now - job.created_at), result.retry_after_s or 0.0)

    if job.kind is JobKind.DISCOVERY:
        return after_discovery(polled, result, next_poll, now)
    match result.state:
        case PollState.RUNNING | PollState.NOT_READY:
            return Decision(replace(polled, state=JobState.PENDING, due_at=next_poll))
        case PollState.DONE:
            if not result.files:
                return failed(
                    polled,
                    now,
                    RENDER_FAILED,
                    f"{job.provider} finished {job.ref or job.job_id} without files",
                )
            files = tuple(source.to_document() for source in result.files)
            return Decision(
                replace(polled, state=JobState.READY, due_at=None, files=files),
                Action.QUEUE_DOWNLOAD,
            )
        case PollState.EXPIRED:
            return failed(
                polled,
                now,
                RENDER_EXPIRED,
                result.detail or f"{job.provider} no longer has {job.ref}",
            )
        case PollState.FAILED:
            cause = result.detail or f"{job.provider} reported {job.ref} failed"
            if recovery is not None and recovery.allowed:
                at = now + max(recovery.wait_s, policy.next_poll_delay(now - job.created_at))
                recovering = replace(polled, state=JobState.PENDING, due_at=at)
                return Decision(recovering.with_history(now, "recovering", cause), Action.RECOVER)
            reason = f" ({recovery.reason})" if recovery is not None and recovery.reason else ""
            return failed(polled, now, RENDER_FAILED, cause + reason)
    raise AssertionError(f"unhandled poll state {result.state}")  # pragma: no cover


def after_discovery(job: RenderJob, result: PollResult, next_poll: float, now: float) -> Decision:
    """A discovery job's next state: create jobs for the projects found so far, and go on
    looking until no line item that carries a design lacks a project, or the deadline passes.

    A finished discovery job becomes ``ready`` with no files and is queued for download like
    any job: the download function marks it done and completes the step once every project's
    files are in too. Cut short by the deadline, it says so in ``details["discovery"]``, which
    the download function records on the order. No project at all by then fails the step.
    """
    found = result.discovered
    missing = result.missing_line_items
    deadline = RenderWork.from_document(job.details["work"]).discovery_deadline_at
    if result.state is PollState.DONE or (found and not missing):
        note: dict[str, Any] = {"complete": True, "projects": len(found)}
        return _discovery_finished(job, now, note, found, "all projects found")
    if deadline is None or now <= deadline:
        return Decision(
            replace(job, state=JobState.PENDING, due_at=next_poll),
            Action.CREATE_JOBS if found else Action.NONE,
            discovered=found,
        )
    if not found:
        return failed(
            job,
            now,
            RENDER_FAILED,
            f"no Customer's Canvas project appeared for order {job.ref} "
            "before the discovery deadline",
        )
    note = {
        "complete": False,
        "cutShortAt": round(now, 3),
        "projects": len(found),
        "missingLineItems": list(missing),
    }
    cause = f"discovery deadline passed; {len(missing)} line item(s) without a project"
    return _discovery_finished(job, now, note, found, cause)


def _discovery_finished(
    job: RenderJob,
    now: float,
    note: dict[str, Any],
    found: tuple[RenderWork, ...],
    detail: str,
) -> Decision:
    done = replace(
        job.with_history(now, "discovered", detail),
        state=JobState.READY,
        due_at=None,
        files=(),
        details={**job.details, "discovery": note},
    )
    return Decision(done, Action.QUEUE_DOWNLOAD, discovered=found)


def after_transient_error(
    job: RenderJob, policy: PollingPolicy, now: float, message: str, retry_after: float | None
) -> Decision:
    """Back off and poll again: a transient error (5xx, 429, network) never fails a job.

    The job's deadline (the render step's timeout) is what ends the retries, through
    :func:`past_deadline`: a provider that is down for a while costs time, not the order.
    Only a job without a deadline gives up after ``max_transient_failures`` in a row.
    """
    failures = job.failures + 1
    noted = replace(
        job.with_history(now, "transient-error", message), failures=failures, last_polled_at=now
    )
    if not job.deadline_at and failures > policy.max_transient_failures:
        return failed(
            noted,
            now,
            RENDER_UNAVAILABLE,
            f"{job.provider} kept failing ({failures} times): {message}",
        )
    due = now + policy.backoff_delay(failures, retry_after)
    if job.deadline_at:
        # Never sleep through the deadline: the step's timeout is then reported on time.
        due = min(due, max(job.deadline_at, now))
    return Decision(replace(noted, state=JobState.PENDING, due_at=due))


def refused_too_soon(job: RenderJob, now: float, retry_after: float | None) -> Decision:
    """The adapter refused to call yet (its own minimum interval): wait, count no failure.

    Nothing reached the provider, so this is neither a poll nor a transient error.
    """
    return Decision(replace(job, state=JobState.PENDING, due_at=now + (retry_after or 0.0)))
