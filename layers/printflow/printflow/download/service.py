"""The download function's work: one render job's files into S3, then the order's completion.

Per queue message (one render job):

1. the job must be ``ready`` (or ``downloading``, when an earlier attempt died);
2. every file is streamed into ``orders/{storefrontId}/{orderId}/{jobId}/{filename}``; a file
   an earlier attempt already stored (same size and SHA-256 in S3) is not uploaded again;
3. the job becomes ``done`` with its artifacts;
4. when every job of the step is done: the order's ``manifest.json`` is written (last, so a
   consumer that sees it knows the set is complete), the order records its artifacts, the
   flow's task token is completed with the artifact list, and ``ArtifactsReady`` is published
   once.

Failures: a permanent one (the file expired, a blocked redirect, a 4xx) fails the flow's step
at once with ``Download.Failed``; a transient one (5xx, 429, a reset, a body cut short) is
retried, with a short backoff, until the job's deadline (the render step's timeout): only then
does the step fail. A provider that is down for a while costs time, never the order. (The
function keeps the message out of the dead-letter queue by sending it again before its
deliveries run out; the DLQ holds messages that crash the function.)

Failed orders get a manifest too. Once every job of the step has ended and one of them failed
(here, or in the poller, which then queues a message for the failed job so that this function
settles the order), ``manifest.json`` is written with ``"complete": false``, the cause, and
the artifacts that were stored: a consumer can tell an order's files are orphans, never
mistake them for a set still being written. A successful order's manifest says
``"complete": true``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from printflow.adapters.domain_events import ARTIFACTS_READY
from printflow.adapters.order_table import PENDING_STATUS_ATTRIBUTE, OrderTable, StepStatus
from printflow.adapters.render_job_table import RenderJobTable
from printflow.domain.object_keys import artifact_key, manifest_key, unique_filenames
from printflow.domain.order import OrderKey, order_from_document
from printflow.domain.render_job import JobKind, JobState, RenderJob
from printflow.download.errors import DownloadPermanent, DownloadTransient, DownloadUnauthorized
from printflow.download.streaming import ArtifactStreamer, StoredArtifact
from printflow.observability import logger
from printflow.providers.protocol import ArtifactSource
from printflow.steps.completion import ORDER_FAILED_ERROR, iso_now

DOWNLOAD_FAILED = "Download.Failed"
# Step Functions' task output limit is 256 KiB: above this many artifacts the output names
# the manifest and the count, and consumers read the manifest.
MAX_ARTIFACTS_IN_OUTPUT = 500
READY_WAIT_S = 3.0


class Outcome(StrEnum):
    DONE = "done"  # the job's files are stored
    SKIPPED = "skipped"  # nothing to do (unknown job, already done, failed or superseded)
    RETRY = "retry"  # transient failure: deliver the message again later
    FAILED = "failed"  # the flow's step was failed; do not deliver again


@dataclass(frozen=True, slots=True)
class DownloadResult:
    outcome: Outcome
    retry_after_s: float | None = None
    detail: str = ""


class AuthHeaders(Protocol):
    """Provider credentials for a file: the bearer token, or nothing for public URLs."""

    def headers_for(self, job: RenderJob, source: ArtifactSource) -> Awaitable[dict[str, str]]: ...

    def forget(self, job: RenderJob, headers: dict[str, str]) -> Awaitable[None]: ...


class Tokens(Protocol):
    def succeed(self, token: str, output: dict[str, Any]) -> bool: ...

    def fail(self, token: str, error: str, cause: str) -> None: ...


class Events(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...


class ManifestStore(Protocol):
    def put_json(self, key: str, doc: dict[str, Any]) -> None: ...


class DownloadService:
    def __init__(
        self,
        jobs: RenderJobTable,
        orders: OrderTable,
        streamer: ArtifactStreamer,
        auth: AuthHeaders,
        tokens: Tokens,
        events: Events,
        manifests: ManifestStore,
        *,
        bucket: str,
        clock: Callable[[], float] = time.time,
        run: Callable[[Awaitable[Any]], Any] | None = None,
    ) -> None:
        self._jobs = jobs
        self._orders = orders
        self._streamer = streamer
        self._auth = auth
        self._tokens = tokens
        self._events = events
        self._manifests = manifests
        self.bucket = bucket
        self._clock = clock
        self._run = run or _run_coroutine

    # -- one job ------------------------------------------------------------------------------

    def download(self, key: OrderKey, job_id: str, *, deadline: float) -> DownloadResult:
        job = self._ready_job(key, job_id)
        if job is None:
            return DownloadResult(Outcome.SKIPPED, detail="unknown job")
        if job.state is JobState.DONE:
            self.complete_order_if_done(job)
            return DownloadResult(Outcome.SKIPPED, detail="already done")
        if job.state not in (JobState.READY, JobState.DOWNLOADING):
            if job.state in (JobState.PENDING, JobState.LEASED):
                return DownloadResult(Outcome.RETRY, 5.0, "job not ready yet")
            if job.state is JobState.FAILED:
                # The poller failed it: the order's manifest must say what is left.
                self.complete_order_if_done(job)
            return DownloadResult(Outcome.SKIPPED, detail=f"job is {job.state.value}")
        if job.state is JobState.READY:
            moved = self._jobs.move(key, job_id, (JobState.READY,), JobState.DOWNLOADING)
            job = moved or job

        try:
            artifacts = self._store_files(job, deadline)
        except DownloadPermanent as exc:
            return self._fail(job, str(exc))
        except (DownloadTransient, OSError) as exc:
            retry_after = getattr(exc, "retry_after_s", None)
            if job.deadline_at and self._clock() > job.deadline_at:
                # The render step's timeout: the step has timed out by now anyway.
                return self._fail(job, f"{exc} (still failing at the render step's timeout)")
            logger.warning("download will be retried", extra={"job": job_id, "reason": str(exc)})
            return DownloadResult(Outcome.RETRY, retry_after, str(exc))

        done = self._jobs.move(
            key,
            job_id,
            (JobState.DOWNLOADING,),
            JobState.DONE,
            details={**job.details, "stored": artifacts, "artifacts": artifacts},
        )
        if done is not None:
            note = done.details.get("discovery")
            if done.kind is JobKind.DISCOVERY and isinstance(note, dict):
                self._orders.note_project_discovery(key, done.step_id, note)
            self.complete_order_if_done(done)
        return DownloadResult(Outcome.DONE, detail=f"{len(artifacts)} file(s)")

    def _ready_job(self, key: OrderKey, job_id: str) -> RenderJob | None:
        # The poller queues the message just before it saves the job as ready: give that
        # save a moment instead of a whole visibility timeout.
        give_up = time.monotonic() + READY_WAIT_S
        while True:
            job = self._jobs.get(key, job_id)
            if job is None or job.state not in (JobState.PENDING, JobState.LEASED):
                return job
            if time.monotonic() > give_up:
                return job
            time.sleep(0.2)

    def _store_files(self, job: RenderJob, deadline: float) -> list[dict[str, Any]]:
        sources = [ArtifactSource.from_document(doc) for doc in job.files]
        names = unique_filenames([source.filename for source in sources])
        stored: dict[str, dict[str, Any]] = {
            a["key"]: a for a in job.details.get("stored", []) if isinstance(a, dict)
        }
        artifacts: list[dict[str, Any]] = []
        for source, name in zip(sources, names, strict=True):
            key = artifact_key(
                job.order_key.storefront_id, job.order_key.order_id, job.job_id, name
            )
            earlier = stored.get(key)
            if earlier and self._streamer.existing_matches(key, earlier["size"], earlier["sha256"]):
                artifacts.append(earlier)
                continue
            result = self._stream_one(job, source, key, deadline)
            artifact = _artifact_record(self.bucket, job, source, name, result)
            artifacts.append(artifact)
            stored[key] = artifact
            if len(artifacts) == len(sources):
                break  # the job's move to DONE records the last one: no write of its own
            # Progress survives a crash: a redelivery skips what is already stored.
            self._jobs.move(
                job.order_key,
                job.job_id,
                (JobState.DOWNLOADING,),
                JobState.DOWNLOADING,
                details={**job.details, "stored": list(stored.values())},
            )
        return artifacts

    def _stream_one(
        self, job: RenderJob, source: ArtifactSource, key: str, deadline: float
    ) -> StoredArtifact:
        metadata = {
            "order-id": job.order_key.order_id,
            "storefront-id": job.order_key.storefront_id,
            "job-id": job.job_id,
            "provider": job.provider,
            "provider-reference": source.reference or job.ref,
        }
        for attempt in (1, 2):
            headers = self._run(self._auth.headers_for(job, source))
            try:
                return self._streamer.stream(
                    source.url,
                    headers,
                    key,
                    content_type=source.content_type,
                    declared_size=source.declared_size,
                    metadata=metadata,
                    deadline=deadline,
                )
            except DownloadUnauthorized:
                if attempt == 2 or not headers:
                    raise
                self._run(self._auth.forget(job, headers))  # a fresh token, once
        raise AssertionError("unreachable")  # pragma: no cover

    def _fail(self, job: RenderJob, cause: str) -> DownloadResult:
        logger.error("download failed", extra={"job": job.job_id, "reason": cause})
        moved = self._jobs.move(
            job.order_key,
            job.job_id,
            (JobState.READY, JobState.DOWNLOADING),
            JobState.FAILED,
            error=cause,
        )
        # The job as stored now, not as read before the files were fetched: a render step
        # retried meanwhile waits on a new token, and failing the old one would fail nothing.
        job = moved or self._jobs.get(job.order_key, job.job_id) or job
        self._tokens.fail(job.task_token, DOWNLOAD_FAILED, f"{job.job_id}: {cause}")
        self.complete_order_if_done(job)
        return DownloadResult(Outcome.FAILED, detail=cause)

    # -- the order ----------------------------------------------------------------------------

    def complete_order_if_done(self, job: RenderJob) -> bool:
        """When every job of the step has ended: the manifest, and on success the rest.

        All done: manifest (``complete: true``), order artifacts, token, event. Some failed:
        the manifest says ``complete: false`` with the cause and lists what was stored (the
        step's failure was already reported). Of two functions finishing the last two jobs
        at once, the one that claims the completion completes it (the manifest is written
        once); each part is idempotent, so a message redelivered after a crash half-way ends
        the same way (the event is published once).
        """
        siblings = [
            j
            for j in self._jobs.jobs_of(job.order_key)
            if j.step_id == job.step_id and j.state is not JobState.SUPERSEDED
        ]
        if not siblings or any(j.state not in _ENDED for j in siblings):
            return False
        failed = sorted((j for j in siblings if j.state is JobState.FAILED), key=_cause_first)
        if failed:
            # Two jobs failing at once (one failed, the poller cancelled its siblings) each
            # queue a message, and each would see every job ended: the same claim as a
            # completion picks the one that writes the manifest (a crash half-way lets that
            # same job's redelivered message write it again).
            if self._orders.claim_completion(job.order_key, job.task_token[-32:], job.job_id):
                self._write_incomplete_manifest(job, siblings, failed)
            return True
        token_id = job.task_token[-32:]
        item = self._orders.get_order(job.order_key) or {}
        if (item.get("publishedEvents") or {}).get(ARTIFACTS_READY) == token_id:
            return True  # completed before (a redelivered message): nothing to redo
        # The last two jobs may end in two invocations at once (Lambda runs several batches
        # of the queue concurrently), and each then sees every job done: one conditional
        # claim picks the one that completes (manifest written once, one token call); the
        # other stops here. The same job's redelivered message may claim again (a crash
        # half-way through), so a completion is never left to nobody.
        if not self._orders.claim_completion(job.order_key, token_id, job.job_id):
            logger.info("another download is completing the order")
            return True
        ordered = sorted(siblings, key=_by_id)
        artifacts = [a for j in ordered for a in j.details.get("artifacts", [])]
        key = manifest_key(job.order_key.storefront_id, job.order_key.order_id)
        completed_at = datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="seconds")
        self._manifests.put_json(key, manifest(item, artifacts, self.bucket, completed_at))
        # The render step's successStatus, written with the artifacts: the flow has no status
        # state after the step (one transition per step).
        self._orders.set_artifacts(
            job.order_key,
            artifacts,
            key,
            completed_at,
            render_step_status(item, job),
            manifest_bucket=self.bucket,
        )
        output: dict[str, Any] = {
            "manifestKey": key,
            "bucket": self.bucket,
            "count": len(artifacts),
        }
        if len(artifacts) <= MAX_ARTIFACTS_IN_OUTPUT:
            output["artifacts"] = [
                {k: a[k] for k in ("key", "size", "sha256", "contentType")} for a in artifacts
            ]
        fail_cause = pending_fail_flow_cause(item, job)
        if fail_cause is None:
            self._tokens.succeed(job.task_token, output)
        else:
            # The step ends a failed flow (reached through onError): its files are stored and
            # its status written; failing its token ends the execution without a Fail state.
            self._tokens.fail(job.task_token, ORDER_FAILED_ERROR, fail_cause)
        if self._orders.claim_event(job.order_key, ARTIFACTS_READY, token_id):
            self._events.publish(
                ARTIFACTS_READY,
                {
                    "storefrontId": job.order_key.storefront_id,
                    "orderId": job.order_key.order_id,
                    "bucket": self.bucket,
                    "manifestKey": key,
                    "artifactCount": len(artifacts),
                },
            )
        return True

    def _write_incomplete_manifest(
        self, job: RenderJob, siblings: list[RenderJob], failed: list[RenderJob]
    ) -> None:
        item = self._orders.get_order(job.order_key) or {}
        stored = [
            a
            for j in sorted(siblings, key=_by_id)
            if j.state is JobState.DONE
            for a in j.details.get("artifacts", [])
        ]
        key = manifest_key(job.order_key.storefront_id, job.order_key.order_id)
        ended_at = datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="seconds")
        doc = manifest(item, stored, self.bucket, ended_at, complete=False)
        doc["cause"] = f"render job {failed[0].job_id} failed: {failed[0].error or 'no cause'}"
        doc["failedJobs"] = [{"jobId": j.job_id, "error": j.error} for j in failed]
        self._manifests.put_json(key, doc)
        logger.info("order ended incomplete", extra={"artifacts": len(stored)})


_ENDED = frozenset({JobState.DONE, JobState.FAILED})


def _by_id(job: RenderJob) -> str:
    return job.job_id


def _cause_first(job: RenderJob) -> tuple[bool, str]:
    # Jobs the poller cancelled because another failed name that one, not the cause.
    return (job.error or "").startswith("cancelled"), job.job_id


def render_step_status(item: dict[str, Any], job: RenderJob) -> StepStatus | None:
    """The status the job's render step sets once its files are stored (``None``: the
    order carries none for this step, e.g. it was started before statuses moved here)."""
    pending = item.get(PENDING_STATUS_ATTRIBUTE)
    if not isinstance(pending, dict) or pending.get("step") != job.step_id:
        return None
    status = pending.get("status")
    if not isinstance(status, str) or not status:
        return None
    error = pending.get("error")
    return StepStatus(
        step_id=job.step_id,
        status=status,
        at=iso_now(),
        run_id=f"render:{job.task_token[-32:]}",
        error=dict(error) if isinstance(error, dict) else None,
    )


def pending_fail_flow_cause(item: dict[str, Any], job: RenderJob) -> str | None:
    """The ``OrderFailed`` cause when the job's render step ends a failed flow (None: the
    token is completed with success)."""
    pending = item.get(PENDING_STATUS_ATTRIBUTE)
    if not isinstance(pending, dict) or pending.get("step") != job.step_id:
        return None
    cause = pending.get("failFlowCause")
    return cause if isinstance(cause, str) and cause else None


def _artifact_record(
    bucket: str, job: RenderJob, source: ArtifactSource, filename: str, stored: StoredArtifact
) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "key": stored.key,
        "filename": filename,
        "size": stored.size,
        "sha256": stored.sha256,
        "contentType": stored.content_type,
        "jobId": job.job_id,
        "provider": job.provider,
        "providerReference": source.reference or job.ref,
        "lineItemId": source.line_item_id or job.line_item_id,
    }


def manifest(
    item: dict[str, Any],
    artifacts: list[dict[str, Any]],
    bucket: str,
    completed_at: str,
    *,
    complete: bool = True,
) -> dict[str, Any]:
    """``manifest.json``: the order, its line items and every artifact (schema v1).

    ``complete`` is False for an order whose render step failed: ``artifacts`` then lists
    the files that were stored before it did (orphans a consumer should not print).
    """
    order = order_from_document(item["order"]) if item.get("order") else None
    return {
        "schema": "printflow.manifest/v1",
        "complete": complete,
        "bucket": bucket,
        "storefrontId": item.get("storefrontId"),
        "orderId": item.get("orderId"),
        "orderName": order.name if order else None,
        "orderNumber": order.number if order else None,
        "platform": order.platform if order else None,
        "receivedAt": item.get("receivedAt"),
        "completedAt": completed_at,
        "lineItems": [
            {"id": li.id, "name": li.name, "sku": li.sku, "quantity": li.quantity}
            for li in (order.line_items if order else ())
        ],
        "artifacts": artifacts,
    }


def _run_coroutine(awaitable: Awaitable[Any]) -> Any:
    async def wait() -> Any:
        return await awaitable

    return asyncio.run(wait())
