"""Poller benchmark: one sweep over N due render jobs against a slow provider.

Run from the repository root: ``.venv/bin/python bench/poller.py [--jobs 2000] [--latency 0.1]``.

moto (DynamoDB, SQS, Secrets Manager) runs as a server in its own process and the CHILI
sandbox in another, each request delayed by ``--latency`` seconds, so the poller process does
only its own work. Every job is an output task that is still running, so each is polled once.
Figures: sweep wall time, polls per second, the fraction of the ideal (N x latency /
concurrency) and the speed-up over a sequential loop like the seed's (measured on a sample).
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_DEFAULT_REGION="us-east-1",
    POWERTOOLS_SERVICE_NAME="printflow",
    POWERTOOLS_LOG_LEVEL="ERROR",
    POWERTOOLS_METRICS_DISABLED="true",
)

SANDBOX = """
import sys, time
from printflow_tools.sandboxes import Behaviour, ChiliSandbox
sandbox = ChiliSandbox(behaviour=Behaviour(latency_s=float(sys.argv[1])),
                       polls_until_done=10**9, running_statuses=(202,)).start()
print(sandbox.base_url, sandbox.environment, flush=True)
while True:
    time.sleep(3600)
"""


class MemoryJobs:
    """The job table's leasing semantics in memory (a lock stands in for DynamoDB's per-item
    conditional writes). moto spends ~5 ms of CPU on every conditional write, which would
    measure moto rather than the poller; the DynamoDB run is reported beside this one."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self.items: dict[tuple[str, str], Any] = {}

    def _key(self, job: Any) -> tuple[str, str]:
        return (
            f"ORDER#{job.order_key.storefront_id}#{job.order_key.order_id}",
            f"JOB#{job.job_id}",
        )

    def put_new(self, job: Any) -> bool:
        with self._lock:
            return self.items.setdefault(self._key(job), job) is job

    def due(self, shard: int, now: float, limit: int) -> list[tuple[str, str]]:
        with self._lock:
            keys = [
                k
                for k, j in self.items.items()
                if j.due_at is not None and j.due_at <= now and hash(k) % 4 == shard
            ]
        return keys[:limit]

    def lease(self, pk: str, sk: str, owner: str, now: float, until: float) -> Any:
        from dataclasses import replace

        from printflow.domain.render_job import JobState

        with self._lock:
            job = self.items.get((pk, sk))
            if job is None or job.due_at is None or job.due_at > now:
                return None
            if job.state not in (JobState.PENDING, JobState.LEASED):
                return None
            leased = replace(job, state=JobState.LEASED, lease_owner=owner, due_at=until)
            self.items[(pk, sk)] = leased
            return leased

    def save(self, job: Any, *, owner: str | None) -> bool:
        from dataclasses import replace

        with self._lock:
            current = self.items.get(self._key(job))
            if current is None or (owner is not None and current.lease_owner != owner):
                return False
            self.items[self._key(job)] = replace(job, lease_owner=None)
            return True

    def jobs_of(self, key: Any) -> list[Any]:
        with self._lock:
            return [j for j in self.items.values() if j.order_key == key]

    def move(self, *args: Any, **kwargs: Any) -> Any:
        return None


async def bearer_headers(http: Any) -> dict[str, str]:
    """A token from the sandbox's token endpoint, as the bench's own requests need one."""
    token = (
        await http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "chili-client",
                "client_secret": "chili-secret",
                "audience": "https://chiligrafx.com",
            },
        )
    ).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


async def start_tasks(base_url: str, environment: str, count: int) -> list[str]:
    """Create ``count`` output tasks at the sandbox (the bench's render work)."""
    import httpx

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        headers = await bearer_headers(http)
        limit = asyncio.Semaphore(100)

        async def one(i: int) -> str:
            async with limit:
                answer = await http.post(
                    f"/grafx/api/v1/environment/{environment}/output/pdf",
                    headers=headers,
                    json={"templateId": f"bench-{i}", "outputSettingsId": "print-pdf"},
                )
                answer.raise_for_status()
                return str(answer.json()["data"]["taskId"])

        return list(await asyncio.gather(*(one(i) for i in range(count))))


async def sequential_poll_seconds(base_url: str, environment: str, task_ids: list[str]) -> float:
    """The seed's loop: one task after another, each awaited before the next."""
    import httpx

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        headers = await bearer_headers(http)
        started = time.perf_counter()
        for task_id in task_ids:
            await http.get(
                f"/grafx/api/v1/environment/{environment}/output/tasks/{task_id}", headers=headers
            )
        return (time.perf_counter() - started) / len(task_ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--sequential-sample", type=int, default=30)
    parser.add_argument(
        "--skip-dynamodb", action="store_true", help="only the in-memory job store run"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI (seconds)")
    args = parser.parse_args()
    if args.smoke:
        args.jobs, args.latency, args.concurrency, args.sequential_sample = 40, 0.01, 10, 5

    import boto3

    from printflow.adapters.order_table import OrderTable
    from printflow.adapters.render_job_table import RenderJobTable
    from printflow.adapters.webhook_secrets import WebhookSecrets
    from printflow.domain.order import OrderKey
    from printflow.domain.render_job import PollingPolicy
    from printflow.domain.storefront import ProviderName
    from printflow.providers.protocol import RenderWork, WorkKind
    from printflow.render.jobs import job_for_work
    from printflow.render.poller import Poller, PollerSettings
    from printflow.render.wiring import ProviderDirectory, provider_registry
    from printflow.settings import CoreSettings, RenderSettings
    from printflow_tools.bench_servers import start_moto, stop_processes
    from printflow_tools.localstack.resources import create_resources
    from printflow_tools.localstack.storefront_setup import register_render_storefront

    moto, endpoint = start_moto()
    children = [
        moto,
        subprocess.Popen(
            [sys.executable, "-c", SANDBOX, str(args.latency)], stdout=subprocess.PIPE, text=True
        ),
    ]
    try:
        base_url, environment = children[1].stdout.readline().split()  # type: ignore[union-attr]
        session = boto3.Session(region_name="us-east-1")
        resources = create_resources(session, endpoint_url=endpoint)
        dynamodb = session.client("dynamodb", endpoint_url=endpoint)
        secrets = session.client("secretsmanager", endpoint_url=endpoint)
        orders = OrderTable(dynamodb, resources.table())
        register_render_storefront(
            orders,
            WebhookSecrets(secrets, "printflow"),
            secrets,
            storefront_id="bench",
            platform="shopify",
            webhook_secret="bench-webhook-secret-0001",
            provider={
                "name": "chili",
                "environment": environment,
                "baseUrl": base_url,
                "tokenUrl": f"{base_url}/oauth/token",
                "credentialsSecret": "printflow/providers/bench/chili",
                "templateId": "bench",
                "outputSettingsId": "print-pdf",
            },
            client_id="chili-client",
            client_secret="chili-secret",
        )

        task_ids = asyncio.run(start_tasks(base_url, environment, args.jobs))

        def seeded(jobs: Any) -> Any:
            now = time.time()
            for i, task_id in enumerate(task_ids):
                work = RenderWork(ProviderName.CHILI, WorkKind.OUTPUT_TASK, task_id)
                jobs.put_new(
                    job_for_work(
                        work,
                        OrderKey("bench", f"order-{i}"),
                        f"token-{i}",
                        "generate",
                        created_at=now,
                        deadline_at=now + 3600,
                        due_at=now,
                    )
                )
            return jobs

        settings = RenderSettings(
            core=CoreSettings(order_table=resources.table(), secrets_prefix="printflow"),
            due_shards=4,
            download_queue_url=resources.queues["DownloadQueue"],
            order_flows={},
            egress_allowlist="127.0.0.1",
            poll_concurrency=args.concurrency,
        )
        registry = provider_registry(settings, secrets)
        # One poll per job: the next poll is far away, so nothing is re-polled in the run.
        once = PollingPolicy(interval_s=600.0, first_poll_s=0.0)

        async def sweep(jobs: Any) -> Any:
            directory = ProviderDirectory(orders, registry, settings)
            poller = Poller(
                jobs,
                directory.provider_for,
                lambda name: once,
                None,
                None,  # type: ignore[arg-type]
                PollerSettings(
                    due_shards=4, concurrency=args.concurrency, max_jobs_per_run=args.jobs
                ),
            )
            try:
                return await poller.sweep(lambda: 600.0)
            finally:
                await directory.aclose()

        # Plain asyncio, as the Lambda runs it: no event loop the runtime does not have.
        report = asyncio.run(sweep(seeded(MemoryJobs())))
        dynamodb_report = None
        if not args.skip_dynamodb:
            dynamodb_report = asyncio.run(
                sweep(seeded(RenderJobTable(dynamodb, resources.table(), due_shards=4)))
            )
        per_poll = asyncio.run(
            sequential_poll_seconds(base_url, environment, task_ids[: args.sequential_sample])
        )
    finally:
        stop_processes(children)

    ideal = args.jobs * args.latency / args.concurrency
    sequential = per_poll * args.jobs
    figures = {
        "jobs": args.jobs,
        "polls": report.polls,
        "errors": report.errors,
        "latency_ms": round(args.latency * 1000),
        "concurrency": args.concurrency,
        "sweep_s": report.seconds,
        "polls_per_s": round(report.polls / report.seconds, 1),
        "ideal_s": round(ideal, 2),
        "fraction_of_ideal": round(ideal / report.seconds, 3),
        "sequential_s_estimated": round(sequential, 1),
        "speedup_vs_sequential": round(sequential / report.seconds, 1),
        "job_store": "memory",
        "sweep_s_dynamodb_moto": dynamodb_report.seconds if dynamodb_report else None,
        "polls_dynamodb_moto": dynamodb_report.polls if dynamodb_report else None,
    }
    print(
        f"{report.polls} polls of {args.jobs} due jobs at {figures['latency_ms']} ms each, "
        f"concurrency {args.concurrency}: sweep {report.seconds} s "
        f"({figures['polls_per_s']} polls/s; errors {report.errors})"
    )
    print(
        f"ideal (N x latency / concurrency): {figures['ideal_s']} s -> "
        f"{figures['fraction_of_ideal']:.0%} of ideal (target >= 50%)"
    )
    print(
        f"sequential loop like the seed's: {per_poll * 1000:.0f} ms per poll, "
        f"~{figures['sequential_s_estimated']} s for {args.jobs} -> "
        f"{figures['speedup_vs_sequential']}x faster (target >= 50x)"
    )
    if dynamodb_report is not None:
        print(
            f"same sweep with the jobs in DynamoDB (moto server, ~5 ms CPU per conditional "
            f"write, 2 writes per job): {dynamodb_report.seconds} s"
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
