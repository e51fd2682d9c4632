"""Credentials for downloading a render job's files from its provider.

A file with ``auth: none`` (Customer's Canvas ``anonymousAccess``) gets no headers at all;
otherwise the provider adapter supplies its bearer token (cached in the registry across
invocations, refreshed after a 401).
"""

from __future__ import annotations

from printflow.adapters.order_table import OrderTable
from printflow.domain.render_job import RenderJob
from printflow.net.safe_http import guarded_async_client
from printflow.net.ssrf import EgressGuard
from printflow.providers.protocol import ArtifactAuth, ArtifactSource, RenderProvider
from printflow.providers.registry import ProviderRegistry


class ProviderAuth:
    def __init__(self, orders: OrderTable, registry: ProviderRegistry, guard: EgressGuard) -> None:
        self._orders = orders
        self._registry = registry
        self._guard = guard

    async def headers_for(self, job: RenderJob, source: ArtifactSource) -> dict[str, str]:
        if source.auth is ArtifactAuth.NONE:
            return {}
        async with guarded_async_client(self._guard) as http:
            adapter = await self._adapter(job, http)
            return await adapter.download_headers(source)

    async def forget(self, job: RenderJob, headers: dict[str, str]) -> None:
        async with guarded_async_client(self._guard) as http:
            adapter = await self._adapter(job, http)
            adapter.forget_token(headers)

    async def _adapter(self, job: RenderJob, http: object) -> RenderProvider:
        storefront = self._orders.get_storefront(job.order_key.storefront_id)
        if storefront is None or storefront.provider is None:
            raise LookupError(f"storefront {job.order_key.storefront_id!r} has no provider")
        return await self._registry.adapter_for(
            storefront.provider,
            http,  # type: ignore[arg-type]
            storefront_id=storefront.storefront_id,
        )
