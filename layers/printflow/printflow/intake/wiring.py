"""Composition root of the intake: builds the service from settings and (injectable) clients."""

from __future__ import annotations

from typing import Any

from printflow.adapters import aws
from printflow.adapters.order_flows import OrderFlowStarter
from printflow.adapters.order_table import OrderTable
from printflow.adapters.raw_bodies import RawBodyStore
from printflow.adapters.webhook_secrets import WebhookSecrets
from printflow.intake.directory import StorefrontDirectory
from printflow.intake.service import IntakeService
from printflow.settings import IntakeSettings


def build_intake_service(
    settings: IntakeSettings,
    *,
    dynamodb: Any = None,
    s3: Any = None,
    stepfunctions: Any = None,
    secretsmanager: Any = None,
) -> IntakeService:
    table = OrderTable(dynamodb or aws.client("dynamodb"), settings.core.order_table)
    secrets = WebhookSecrets(
        secretsmanager or aws.client("secretsmanager"),
        settings.core.secrets_prefix,
        max_age_s=settings.config_cache_s,
    )
    return IntakeService(
        settings=settings,
        directory=StorefrontDirectory(table, secrets, ttl_s=settings.config_cache_s),
        table=table,
        raw_bodies=RawBodyStore(s3 or aws.client("s3"), settings.artifact_bucket),
        flows=OrderFlowStarter(stepfunctions or aws.client("stepfunctions"), settings.order_flows),
    )
