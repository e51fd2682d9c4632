"""Two download jobs of one order finishing at once, in two threads, against moto.

On AWS, Lambda runs several batches of the download queue concurrently, so the last two jobs
of an order often end in two invocations at the same moment. Exactly what the order needs
must still happen: its manifest lists every file, its artifacts are recorded, its step's
task token is completed and ``ArtifactsReady`` is published once.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from typing import Any

import boto3

from printflow.adapters.artifact_bucket import ArtifactBucket
from printflow.adapters.order_table import OrderTable
from printflow.adapters.render_job_table import RenderJobTable
from printflow.domain.order import OrderKey
from printflow.domain.render_job import JobState, RenderJob
from printflow.domain.storefront import ProviderName
from printflow.download.service import DownloadService, Outcome
from printflow.download.streaming import StoredArtifact
from printflow.providers.protocol import ArtifactSource, RenderWork, WorkKind
from printflow.render.jobs import job_for_work
from printflow_tools.localstack.resources import LocalResources

ORDERS = 25


class BarrierStreamer:
    """Stores nothing; both jobs of an order leave their one file together."""

    def __init__(self, parties: int = 2) -> None:
        self._parties = parties
        self._barriers: dict[str, threading.Barrier] = {}
        self._lock = threading.Lock()

    def barrier(self, order_id: str) -> threading.Barrier:
        with self._lock:
            return self._barriers.setdefault(order_id, threading.Barrier(self._parties, timeout=10))

    def existing_matches(self, key: str, size: int, sha256: str) -> bool:
        return False

    def stream(self, url: str, headers: dict[str, str], key: str, **_: Any) -> StoredArtifact:
        self.barrier(key.split("/")[2]).wait()
        return StoredArtifact(key, 3, "0" * 64, "application/pdf", '"etag"')


class NoAuth:
    async def headers_for(self, job: RenderJob, source: ArtifactSource) -> dict[str, str]:
        return {}

    async def forget(self, job: RenderJob, headers: dict[str, str]) -> None:
        pass


class Recorded:
    """Task tokens and domain events, as the order's flow and subscribers would see them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.succeeded: list[tuple[str, dict[str, Any]]] = []
        self.failed: list[tuple[str, str]] = []
        self.published: list[dict[str, Any]] = []

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        with self._lock:
            self.succeeded.append((token, output))
            return True

    def fail(self, token: str, error: str, cause: str) -> None:
        with self._lock:
            self.failed.append((token, f"{error}: {cause}"))

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        with self._lock:
            self.published.append(detail)


class CountedManifests:
    """The artifact bucket's manifest writes, counted."""

    def __init__(self, bucket: ArtifactBucket) -> None:
        self._bucket = bucket
        self._lock = threading.Lock()
        self.written: list[str] = []

    def put_json(self, key: str, doc: dict[str, Any]) -> None:
        with self._lock:
            self.written.append(key)
        self._bucket.put_json(key, doc)


def ready_job(key: OrderKey, task: str, token: str) -> RenderJob:
    job = job_for_work(
        RenderWork(ProviderName.CHILI, WorkKind.OUTPUT_TASK, task),
        key,
        token,
        "generate",
        created_at=1.0,
        deadline_at=0.0,
        due_at=1.0,
    )
    source = {"url": f"https://files.example/{task}.pdf", "auth": "none", "filename": f"{task}.pdf"}
    return replace(job, state=JobState.READY, due_at=None, files=(source,))


def test_the_last_two_jobs_finishing_at_once_complete_the_order(
    local_aws: LocalResources,
) -> None:
    # Given orders whose two render jobs are ready, each order's two files finishing together
    dynamodb = boto3.client("dynamodb")
    table, bucket = local_aws.table(), local_aws.bucket()
    jobs = RenderJobTable(dynamodb, table, due_shards=4)
    recorded = Recorded()
    manifests = CountedManifests(ArtifactBucket(boto3.client("s3"), bucket))
    service = DownloadService(
        jobs,
        OrderTable(dynamodb, table),
        BarrierStreamer(),  # type: ignore[arg-type]
        NoAuth(),
        recorded,
        recorded,
        manifests,
        bucket=bucket,
    )
    pairs: list[tuple[OrderKey, RenderJob, RenderJob]] = []
    for n in range(ORDERS):
        key = OrderKey("demo-chili", str(9_000 + n))
        dynamodb.put_item(
            TableName=table,
            Item={
                "pk": {"S": f"ORDER#demo-chili#{9_000 + n}"},
                "sk": {"S": "ORDER"},
                "storefrontId": {"S": "demo-chili"},
                "orderId": {"S": str(9_000 + n)},
                "status": {"S": "Received"},
                "publishedEvents": {"M": {}},
            },
        )
        first, second = (ready_job(key, f"task-{n}-{s}", f"token-{n}") for s in "ab")
        assert jobs.put_new(first) and jobs.put_new(second)
        pairs.append((key, first, second))

    # When both jobs of each order are downloaded in two threads at the same moment
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def download(key: OrderKey, job: RenderJob) -> None:
        result = service.download(key, job.job_id, deadline=float("inf"))
        with lock:
            outcomes.append(result.outcome)

    for key, first, second in pairs:
        threads = [threading.Thread(target=download, args=(key, j)) for j in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    # Then every order is completed: its token, its one event, a manifest of both files
    assert outcomes == [Outcome.DONE] * (2 * ORDERS)
    assert not recorded.failed
    # ... once: one token call and one manifest write per order, however the two interleave
    completed = sorted(token for token, _ in recorded.succeeded)
    assert completed == sorted(f"token-{n}" for n in range(ORDERS))
    assert sorted(manifests.written) == sorted(
        f"orders/demo-chili/{key.order_id}/manifest.json" for key, _, _ in pairs
    )
    for _, output in recorded.succeeded:
        assert output["count"] == 2, output
    assert sorted(e["orderId"] for e in recorded.published) == sorted(
        str(9_000 + n) for n in range(ORDERS)
    )
    s3 = boto3.client("s3")
    for key, _, _ in pairs:
        doc = json.loads(
            s3.get_object(Bucket=bucket, Key=f"orders/demo-chili/{key.order_id}/manifest.json")[
                "Body"
            ].read()
        )
        assert doc["complete"] is True and len(doc["artifacts"]) == 2, doc


class LiveTokens(Recorded):
    """Like Step Functions: only the waiting attempt's token can be completed."""

    def __init__(self, live: set[str]) -> None:
        super().__init__()
        self.live = live

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        with self._lock:
            if token not in self.live:
                return False  # TaskTimedOut / InvalidToken: the service answers nothing
            self.succeeded.append((token, output))
            return True


def test_a_render_step_retried_while_a_poll_holds_a_job_completes_the_new_token(
    local_aws: LocalResources,
) -> None:
    # Given orders whose render step was retried while the poller held one of their jobs:
    # the poll leased it with the first attempt's token, the retry moved both jobs to its
    # own token, and then the poll saved the job as ready
    dynamodb = boto3.client("dynamodb")
    table, bucket = local_aws.table(), local_aws.bucket()
    jobs = RenderJobTable(dynamodb, table, due_shards=4)
    live = {f"token-{n}-retry" for n in range(ORDERS)}
    tokens = LiveTokens(live)
    service = DownloadService(
        jobs,
        OrderTable(dynamodb, table),
        BarrierStreamer(parties=1),  # type: ignore[arg-type]
        NoAuth(),
        tokens,
        tokens,
        ArtifactBucket(boto3.client("s3"), bucket),
        bucket=bucket,
    )
    pairs = []
    for n in range(ORDERS):
        key = OrderKey("demo-chili", str(8_000 + n))
        dynamodb.put_item(
            TableName=table,
            Item={
                "pk": {"S": f"ORDER#demo-chili#{8_000 + n}"},
                "sk": {"S": "ORDER"},
                "storefrontId": {"S": "demo-chili"},
                "orderId": {"S": str(8_000 + n)},
                "publishedEvents": {"M": {}},
            },
        )
        polled, other = (ready_job(key, f"task-{n}-{s}", f"token-{n}") for s in "ab")
        pending = replace(polled, state=JobState.PENDING, due_at=1.0, files=())
        assert jobs.put_new(pending) and jobs.put_new(other)
        pk, sk = f"ORDER#demo-chili#{8_000 + n}", f"JOB#{polled.job_id}"
        leased = jobs.lease(pk, sk, "poller-1", now=2.0, until=60.0)
        assert leased is not None and leased.task_token == f"token-{n}"
        for job in (polled, other):
            jobs.set_task_token(key, job.job_id, f"token-{n}-retry")
        assert jobs.save(
            replace(leased, state=JobState.READY, due_at=None, files=polled.files), owner="poller-1"
        )
        pairs.append((key, polled, other))

    # When the other job's download ends first (it sees the polled one not done) and the
    # polled job's download ends last, in a later invocation: the one that completes
    for key, polled, other in pairs:
        for job in (other, polled):
            assert service.download(key, job.job_id, deadline=1e12).outcome is Outcome.DONE

    # Then every order's waiting attempt is completed (before: the stale token, refused)
    assert {token for token, _ in tokens.succeeded} == live
    for key, polled, _ in pairs:
        stored = jobs.get(key, polled.job_id)
        assert stored is not None and stored.task_token.endswith("-retry")


def test_the_completion_claim_goes_to_one_job_per_attempt_and_back_to_it(
    local_aws: LocalResources,
) -> None:
    dynamodb = boto3.client("dynamodb")
    orders = OrderTable(dynamodb, local_aws.table())
    key = OrderKey("demo-chili", "7001")
    dynamodb.put_item(
        TableName=local_aws.table(),
        Item={"pk": {"S": "ORDER#demo-chili#7001"}, "sk": {"S": "ORDER"}},
    )

    assert orders.claim_completion(key, "token-1", "job-a")  # the first to end
    assert not orders.claim_completion(key, "token-1", "job-b")  # the other, at once
    assert orders.claim_completion(key, "token-1", "job-a")  # its message, redelivered
    assert orders.claim_completion(key, "token-2", "job-b")  # a retried step's attempt
    assert not orders.claim_completion(OrderKey("demo-chili", "404"), "token-1", "job-a")
