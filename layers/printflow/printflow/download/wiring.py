"""Composition root of the download function: the service and its queue's redelivery."""

from __future__ import annotations

from typing import Any

from printflow.adapters import aws
from printflow.adapters.artifact_bucket import ArtifactBucket
from printflow.adapters.domain_events import DomainEvents
from printflow.adapters.download_queue import DownloadQueue
from printflow.adapters.order_table import OrderTable
from printflow.adapters.render_job_table import RenderJobTable
from printflow.adapters.task_tokens import TaskTokens
from printflow.download.provider_auth import ProviderAuth
from printflow.download.redelivery import DownloadRedelivery
from printflow.download.service import DownloadService
from printflow.download.streaming import ArtifactStreamer
from printflow.net.egress import egress_policy
from printflow.net.safe_http import guarded_client
from printflow.net.ssrf import EgressGuard
from printflow.providers.registry import ProviderRegistry
from printflow.settings import DownloadSettings


def build_download_service(
    settings: DownloadSettings,
    registry: ProviderRegistry,
    *,
    dynamodb: Any = None,
    s3: Any = None,
    stepfunctions: Any = None,
    events: Any = None,
) -> DownloadService:
    dynamodb = dynamodb or aws.client("dynamodb")
    s3 = s3 or aws.client("s3")
    table = settings.render.core.order_table
    guard = EgressGuard(egress_policy(settings.render))
    orders = OrderTable(dynamodb, table)
    return DownloadService(
        RenderJobTable(dynamodb, table, settings.render.due_shards),
        orders,
        ArtifactStreamer(s3, settings.artifact_bucket, guarded_client(guard), guard),
        ProviderAuth(orders, registry, guard),
        TaskTokens(stepfunctions or aws.client("stepfunctions")),
        DomainEvents(events or aws.client("events"), settings.event_bus),
        ArtifactBucket(s3, settings.artifact_bucket),
        bucket=settings.artifact_bucket,
    )


def build_download_redelivery(
    settings: DownloadSettings,
    registry: ProviderRegistry,
    *,
    sqs: Any = None,
    **clients: Any,
) -> DownloadRedelivery:
    """The download queue's consumer; ``clients`` as for :func:`build_download_service`."""
    return DownloadRedelivery(
        build_download_service(settings, registry, **clients),
        DownloadQueue(sqs or aws.client("sqs"), settings.render.require_queue()),
        max_receives=settings.max_receives,
    )
