"""Composition root of the step functions: steps built from settings and injectable clients."""

from __future__ import annotations

from typing import Any

import httpx

from printflow.adapters import aws
from printflow.adapters.artifact_bucket import ArtifactBucket
from printflow.adapters.order_table import OrderTable
from printflow.adapters.ses_email import SesMailer
from printflow.adapters.signing_secrets import SigningSecrets
from printflow.adapters.task_tokens import TaskTokens
from printflow.errors import ConfigurationError
from printflow.net.safe_http import guarded_client
from printflow.net.ssrf import EgressGuard, Resolver
from printflow.steps.completion import StepCompletion
from printflow.steps.email import EmailStep
from printflow.steps.rest import Presigner, RestStep
from printflow.steps.settings import StepSettings


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
        SesMailer(sesv2 or aws.client("sesv2"), settings.sender_email),
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
