"""Composition root of the render functions: the start step, the poller, its timers and the
sweep."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx

from printflow.adapters import aws
from printflow.adapters.download_queue import DownloadQueue
from printflow.adapters.order_flows import OrderFlowStarter
from printflow.adapters.order_table import OrderTable
from printflow.adapters.poll_timers import PollTimerQueue
from printflow.adapters.render_job_table import RenderJobTable
from printflow.adapters.task_tokens import TaskTokens
from printflow.domain.render_job import RenderJob
from printflow.domain.storefront import Storefront
from printflow.net.egress import egress_policy
from printflow.net.safe_http import guarded_async_client, guarded_client
from printflow.net.ssrf import EgressGuard
from printflow.orders.completion import OrderCompleter
from printflow.orders.sweep import StuckOrderSweep
from printflow.providers.protocol import RenderProvider
from printflow.providers.registry import ProviderRegistry
from printflow.render.policies import policy_for
from printflow.render.poller import Poller, PollerSettings
from printflow.render.start import RenderStarter
from printflow.settings import RenderSettings
from printflow.validators import UrlPolicy


def url_policy(settings: RenderSettings) -> UrlPolicy:
    """Provider URLs may use http only for hosts the egress allowlist names (local stack)."""
    return UrlPolicy.from_egress(egress_policy(settings))


def provider_registry(settings: RenderSettings, secretsmanager: Any = None) -> ProviderRegistry:
    return ProviderRegistry(
        secretsmanager or aws.client("secretsmanager"),
        url_policy=url_policy(settings),
        egress_guard=EgressGuard(egress_policy(settings)),
    )


# httpcore's pool checks every connection of a pool each time it hands out or takes back one,
# so its CPU cost per request grows with the pool: 2,000 polls at concurrency 100 took ~25 s
# through one client of 100 connections and ~4.1-5 s through clients of 5-7 (bench/poller.py).
# Jobs are spread round robin over several small clients.
CONNECTIONS_PER_CLIENT = 7


class ProviderDirectory:
    """Adapters for the poller: per storefront and client shard, over guarded HTTP clients.

    Create it inside the run's event loop (an ``AsyncClient`` belongs to its loop) and close it
    at the end of the run.
    """

    def __init__(
        self, orders: OrderTable, registry: ProviderRegistry, settings: RenderSettings
    ) -> None:
        self._orders = orders
        self._registry = registry
        self._settings = settings
        self._clients: list[httpx.AsyncClient] = []
        self._storefronts: dict[str, Storefront | None] = {}
        self._adapters: dict[tuple[str, int], RenderProvider] = {}
        self._turn = itertools.count()
        self._lock = asyncio.Lock()

    async def provider_for(self, job: RenderJob) -> RenderProvider:
        storefront_id = job.order_key.storefront_id
        async with self._lock:
            if not self._clients:
                self._open_clients()
            # Round robin keeps every client's pool equally loaded (a queue in one pool costs
            # more CPU than the same requests spread over idle connections elsewhere).
            shard = next(self._turn) % len(self._clients)
            adapter = self._adapters.get((storefront_id, shard))
            if adapter is not None:
                return adapter
            if storefront_id not in self._storefronts:
                self._storefronts[storefront_id] = await asyncio.to_thread(
                    self._orders.get_storefront, storefront_id
                )
            storefront = self._storefronts[storefront_id]
            if storefront is None or storefront.provider is None:
                raise LookupError(f"storefront {storefront_id!r} has no render provider")
            adapter = await self._registry.adapter_for(
                storefront.provider, self._clients[shard], storefront_id=storefront_id
            )
            self._adapters[(storefront_id, shard)] = adapter
            return adapter

    def _open_clients(self) -> None:
        guard = EgressGuard(egress_policy(self._settings))
        shards = max(1, -(-self._settings.poll_concurrency // CONNECTIONS_PER_CLIENT))
        limits = httpx.Limits(
            max_connections=CONNECTIONS_PER_CLIENT, max_keepalive_connections=CONNECTIONS_PER_CLIENT
        )
        self._clients = [
            guarded_async_client(guard, timeout=self._settings.provider_timeout_s, limits=limits)
            for _ in range(shards)
        ]

    async def aclose(self) -> None:
        clients, self._clients, self._adapters = self._clients, [], {}
        for client in clients:
            await client.aclose()


def poll_timers(settings: RenderSettings, sqs: Any = None) -> PollTimerQueue | None:
    """The poll queue, when the function has one (``POLL_QUEUE_URL``)."""
    if not settings.poll_queue_url:
        return None
    return PollTimerQueue(sqs or aws.client("sqs"), settings.poll_queue_url)


def build_render_starter(
    settings: RenderSettings, *, dynamodb: Any = None, secretsmanager: Any = None
) -> RenderStarter:
    client = dynamodb or aws.client("dynamodb")
    secrets = secretsmanager or aws.client("secretsmanager")
    orders = OrderTable(client, settings.core.order_table)
    guard = EgressGuard(egress_policy(settings))
    completer = OrderCompleter(
        orders,
        secrets,
        lambda: guarded_client(guard, timeout=settings.provider_timeout_s),
        url_policy(settings),
    )
    return RenderStarter(
        orders,
        RenderJobTable(client, settings.core.order_table, settings.due_shards),
        provider_registry(settings, secrets),
        completer=completer,
        # Room for one more provider request (its timeout) and recording it.
        min_time_left_s=settings.provider_timeout_s + 5.0,
        timers=poll_timers(settings),
    )


def build_poller(
    settings: RenderSettings,
    registry: ProviderRegistry,
    *,
    dynamodb: Any = None,
    sqs: Any = None,
    stepfunctions: Any = None,
    rescue: bool = False,
) -> tuple[Poller, ProviderDirectory]:
    """The poller of fired timers or, with ``rescue``, of the scheduled safety net."""
    client = dynamodb or aws.client("dynamodb")
    orders = OrderTable(client, settings.core.order_table)
    directory = ProviderDirectory(orders, registry, settings)
    poller = Poller(
        RenderJobTable(client, settings.core.order_table, settings.due_shards),
        directory.provider_for,
        policy_for,
        DownloadQueue(sqs or aws.client("sqs"), settings.require_queue()),
        TaskTokens(stepfunctions or aws.client("stepfunctions")),
        PollerSettings(
            due_shards=settings.due_shards,
            concurrency=settings.poll_concurrency,
            rescue_after_s=settings.rescue_after_s if rescue else 0.0,
        ),
        timers=poll_timers(settings, sqs),
    )
    return poller, directory


def build_sweep(
    settings: RenderSettings, *, dynamodb: Any = None, stepfunctions: Any = None
) -> StuckOrderSweep:
    return StuckOrderSweep(
        OrderTable(dynamodb or aws.client("dynamodb"), settings.core.order_table),
        OrderFlowStarter(stepfunctions or aws.client("stepfunctions"), settings.order_flows),
        due_shards=settings.due_shards,
    )


def build_job_table(settings: RenderSettings, *, dynamodb: Any = None) -> RenderJobTable:
    """The render jobs alone (the poller's operations metrics read the due index)."""
    return RenderJobTable(
        dynamodb or aws.client("dynamodb"), settings.core.order_table, settings.due_shards
    )
