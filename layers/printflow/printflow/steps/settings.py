"""Settings of the step functions (consume-rest-api, send-email), read once at cold start.

Same pattern as :mod:`printflow.settings`: logic never reads ``os.environ``, and a missing
or malformed variable fails the cold start with its name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from printflow.errors import ConfigurationError
from printflow.net.ssrf import EgressPolicy
from printflow.settings import CoreSettings, _int, _require

# A bare address or "Display Name <address>", as SES accepts for FromEmailAddress.
_SENDER = re.compile(r"^(?:[^<>\x00-\x1f]*<)?[^@<>\s]+@[^@<>\s]+\.[^@<>\s]+>?$")
# A recipient: the bare address only.
_ADDRESS = re.compile(r"^[^@<>\s]+@[^@<>\s]+\.[^@<>\s]+$")


@dataclass(frozen=True, slots=True)
class StepSettings:
    """``SENDER_EMAIL`` is required only by the send-email function (``email=True``)."""

    core: CoreSettings
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    sender_email: str | None = None
    # Rendered for {{config.operationsEmail}}; empty when unset.
    operations_email: str | None = None
    # Upper bound of one REST call; the Lambda's remaining time may shorten it.
    rest_timeout_s: int = 10
    # Seconds a signing secret stays cached in a warm function.
    secret_cache_s: int = 300
    # Where the order's artifacts are: REST documents carry presigned links to them.
    artifact_bucket: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, email: bool = False) -> StepSettings:
        env = os.environ if env is None else env
        sender = _require(env, "SENDER_EMAIL") if email else env.get("SENDER_EMAIL", "").strip()
        if sender and not _SENDER.match(sender):
            raise ConfigurationError("environment variable SENDER_EMAIL must be an email address")
        operations = env.get("OPERATIONS_EMAIL", "").strip()
        if operations and not _ADDRESS.match(operations):
            raise ConfigurationError(
                "environment variable OPERATIONS_EMAIL must be a bare email address"
            )
        timeout = _int(env, "REST_TIMEOUT_SECONDS", 10)
        if not 1 <= timeout <= 900:
            raise ConfigurationError("environment variable REST_TIMEOUT_SECONDS must be 1-900")
        return cls(
            core=CoreSettings.from_env(env),
            egress=EgressPolicy.from_env(env),
            sender_email=sender or None,
            operations_email=operations or None,
            rest_timeout_s=timeout,
            secret_cache_s=_int(env, "SIGNING_SECRET_CACHE_SECONDS", 300),
            artifact_bucket=env.get("ARTIFACT_BUCKET", "").strip() or None,
        )
