"""Composition root of the reconciliation function."""

from __future__ import annotations

from typing import Any

from printflow.adapters import aws
from printflow.adapters.order_table import OrderTable
from printflow.adapters.reconcile_state import ReconcileStateTable
from printflow.intake.wiring import build_intake_service
from printflow.net.egress import egress_policy
from printflow.net.safe_http import guarded_client
from printflow.net.ssrf import EgressGuard, Resolver
from printflow.reconcile.service import Reconciler
from printflow.settings import ReconcileSettings
from printflow.validators import UrlPolicy


def build_reconciler(
    settings: ReconcileSettings,
    *,
    dynamodb: Any = None,
    s3: Any = None,
    stepfunctions: Any = None,
    secretsmanager: Any = None,
    resolver: Resolver | None = None,
) -> Reconciler:
    """The reconciler over the intake service itself (the same path as a webhook).

    ``resolver``: the egress guard's DNS (tests check the guard with a stubbed one).
    """
    client = dynamodb or aws.client("dynamodb")
    secrets = secretsmanager or aws.client("secretsmanager")
    table_name = settings.intake.core.order_table
    policy = egress_policy(settings)
    guard = EgressGuard(policy, resolver)
    return Reconciler(
        OrderTable(client, table_name),
        ReconcileStateTable(client, table_name),
        build_intake_service(
            settings.intake,
            dynamodb=client,
            s3=s3,
            stepfunctions=stepfunctions,
            secretsmanager=secrets,
        ),
        secrets,
        lambda: guarded_client(guard, timeout=settings.store_timeout_s),
        # Store URLs may use plain http only for hosts the egress allowlist names (local stack).
        UrlPolicy.from_egress(policy),
    )
