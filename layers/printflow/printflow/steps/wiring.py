"""Composition root of the step functions: steps built from settings and injectable clients."""

from __future__ import annotations

from typing import Any

import httpx

from printflow.adapters import aws
from printflow.adapters.artifact_bucket import ArtifactBucket
from printflow.adapters.order_table import OrderTable
from printflow.adapters.ses_email import SEND_ATTEMPTS, SesMailer
from printflow.adapters.signing_secrets import SigningSecrets
from printflow.adapters.step_effects import StepEffects
from printflow.adapters.task_tokens import TaskTokens
from printflow.errors import ConfigurationError
from printflow.net.safe_http import guarded_client
from printflow.net.ssrf import EgressGuard, Resolver
from printflow.steps.completion import StepCompletion
from printflow.steps.email import EmailStep
from printflow.steps.rest import Presigner, RestStep
from printflow.steps.settings import StepSettings
from printflow.steps.write_back import WriteBackStep
from printflow.validators import UrlPolicy


def build_rest_step(
    settings: StepSettings,
    *,
    dynamodb: Any = None,
    secretsmanager: Any = None,
    http: httpx.Client | None = None,
    resolver: Resolver | None = None,
    presign: Presigner | None = None,
    s3: Any = None,
) -> RestStep:
    """``http`` replaces the guarded client (tests); otherwise every call passes the guard.

    ``presign`` signs the artifact links; by default S3 presigned GETs on the artifact
    bucket when ``ARTIFACT_BUCKET`` is set.
    """
    if presign is None and settings.artifact_bucket:
        presign = ArtifactBucket(s3 or aws.client("s3"), settings.artifact_bucket).presign
    client = http or guarded_client(
        EgressGuard(settings.egress, resolver), timeout=settings.rest_timeout_s
    )
    return RestStep(
        OrderTable(dynamodb or aws.client("dynamodb"), settings.core.order_table),
        client,
        SigningSecrets(
            secretsmanager or aws.client("secretsmanager"),
            settings.core.secrets_prefix,
            max_age_s=settings.secret_cache_s,
        ),
        max_timeout_s=settings.rest_timeout_s,
        presign=presign,
    )


def build_email_step(
    settings: StepSettings, *, dynamodb: Any = None, sesv2: Any = None
) -> EmailStep:
    if not settings.sender_email:
        raise ConfigurationError("environment variable SENDER_EMAIL is not set")
    return EmailStep(
        OrderTable(dynamodb or aws.client("dynamodb"), settings.core.order_table),
        SesMailer(
            sesv2 or aws.client("sesv2", total_attempts=SEND_ATTEMPTS), settings.sender_email
        ),
        operations_email=settings.operations_email,
    )


def build_step_completion(
    settings: StepSettings, *, dynamodb: Any = None, stepfunctions: Any = None
) -> StepCompletion:
    """What every Lambda step does last: its status write (and, at a failed flow's end, the
    ``OrderFailed`` of its own callback task)."""
    return StepCompletion(
        OrderTable(dynamodb or aws.client("dynamodb"), settings.core.order_table),
        TaskTokens(stepfunctions or aws.client("stepfunctions")),
    )


def write_back_url_policy(settings: StepSettings) -> UrlPolicy:
    """Store API URLs may use http only for hosts the egress allowlist names (local stack)."""
    return UrlPolicy.from_egress(settings.egress)


def build_write_back_step(
    settings: StepSettings,
    *,
    dynamodb: Any = None,
    secretsmanager: Any = None,
    resolver: Resolver | None = None,
    presign: Presigner | None = None,
    s3: Any = None,
) -> WriteBackStep:
    """Every store request passes the egress guard (``resolver`` is for tests)."""
    if presign is None and settings.artifact_bucket:
        presign = ArtifactBucket(s3 or aws.client("s3"), settings.artifact_bucket).presign
    guard = EgressGuard(settings.egress, resolver)

    def http(budget_s: float) -> httpx.Client:
        per_wait = budget_s / 3
        return guarded_client(guard, timeout=httpx.Timeout(per_wait, connect=min(5.0, per_wait)))

    client = dynamodb or aws.client("dynamodb")
    return WriteBackStep(
        OrderTable(client, settings.core.order_table),
        StepEffects(client, settings.core.order_table),
        secretsmanager or aws.client("secretsmanager"),
        http,
        url_policy=write_back_url_policy(settings),
        presign=presign,
        operations_email=settings.operations_email,
        max_timeout_s=settings.rest_timeout_s,
    )
