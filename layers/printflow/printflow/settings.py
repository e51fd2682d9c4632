"""Typed settings read from the environment once, at cold start.

Logic never reads ``os.environ``; handlers build the settings they need with
``XSettings.from_env()`` and a missing variable fails the cold start with its name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypedDict

from printflow.errors import ConfigurationError
from printflow.validators import bounded_int


def _require(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    return bounded_int(
        raw, f"environment variable {name} must be an integer", text=True, error=ConfigurationError
    )


def _json_map(env: Mapping[str, str], name: str) -> dict[str, str]:
    raw = _require(env, name)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigurationError(f"environment variable {name} must be a JSON object") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigurationError(f"environment variable {name} must map names to strings")
    return {str(k): v for k, v in value.items()}


MAX_WEBHOOK_BODY_BYTES = 5 * 1024 * 1024


class _EgressEnv(TypedDict):
    egress_allowlist: str
    egress_reroutes: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EgressFields:
    """The two egress variables of a function that calls out, kept as written.

    :func:`printflow.net.egress.egress_policy` parses them into the SSRF guard's policy; the
    render and reconciliation settings inherit these two fields (the steps' settings parse the
    same variables into an :class:`~printflow.net.ssrf.EgressPolicy` at once).
    Keyword-only, so a subclass's own fields keep their positions.
    """

    egress_allowlist: str = ""
    egress_reroutes: str = ""


def _egress(env: Mapping[str, str]) -> _EgressEnv:
    return {
        "egress_allowlist": env.get("EGRESS_ALLOWLIST", ""),
        "egress_reroutes": env.get("EGRESS_REROUTES", ""),
    }


@dataclass(frozen=True, slots=True)
class CoreSettings:
    """Resources every function touches."""

    order_table: str
    secrets_prefix: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CoreSettings:
        env = os.environ if env is None else env
        return cls(
            order_table=_require(env, "ORDER_TABLE"),
            secrets_prefix=env.get("SECRETS_PREFIX", "printflow").strip() or "printflow",
        )


@dataclass(frozen=True, slots=True)
class IntakeSettings:
    """Settings of the webhook function."""

    core: CoreSettings
    artifact_bucket: str
    # Flow name -> state machine ARN, e.g. {"default": "arn:aws:states:...:OrderFlow"}.
    order_flows: dict[str, str]
    # Shopify's own webhook limit; a larger delivery is answered 413 (README: Large orders).
    max_body_bytes: int = MAX_WEBHOOK_BODY_BYTES
    # Seconds the generic scheme accepts between the signed timestamp and now.
    replay_window_s: int = 300
    # Seconds a storefront config (and its secret) stays cached in a warm function.
    config_cache_s: int = 60
    # Seconds after receipt when the sweep checks that the order's execution is running.
    sweep_after_s: int = 180
    due_shards: int = 4

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IntakeSettings:
        env = os.environ if env is None else env
        return cls(
            core=CoreSettings.from_env(env),
            artifact_bucket=_require(env, "ARTIFACT_BUCKET"),
            order_flows=_json_map(env, "ORDER_FLOWS"),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", MAX_WEBHOOK_BODY_BYTES),
            replay_window_s=_int(env, "REPLAY_WINDOW_SECONDS", 300),
            config_cache_s=_int(env, "CONFIG_CACHE_SECONDS", 60),
            sweep_after_s=_int(env, "SWEEP_AFTER_SECONDS", 180),
            due_shards=_int(env, "DUE_SHARDS", 4),
        )


@dataclass(frozen=True, slots=True)
class RenderSettings(EgressFields):
    """Settings of the generate-production-files step, the poller and the download function."""

    core: CoreSettings
    due_shards: int
    download_queue_url: str
    order_flows: dict[str, str]
    poll_concurrency: int = 100
    provider_timeout_s: float = 10.0
    # The poll queue that carries every render job's poll timer ("" : no timers, tests).
    poll_queue_url: str = ""
    # Seconds a job may stay due before the scheduled run rescues it (its timer was lost).
    rescue_after_s: float = 300.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RenderSettings:
        env = os.environ if env is None else env
        return cls(
            core=CoreSettings.from_env(env),
            due_shards=_int(env, "DUE_SHARDS", 4),
            download_queue_url=env.get("DOWNLOAD_QUEUE_URL", "").strip(),
            order_flows=_json_map(env, "ORDER_FLOWS") if env.get("ORDER_FLOWS") else {},
            **_egress(env),
            poll_concurrency=_int(env, "POLL_CONCURRENCY", 100),
            provider_timeout_s=float(_int(env, "PROVIDER_TIMEOUT_SECONDS", 10)),
            poll_queue_url=env.get("POLL_QUEUE_URL", "").strip(),
            rescue_after_s=float(_int(env, "RESCUE_AFTER_SECONDS", 300)),
        )

    def require_queue(self) -> str:
        if not self.download_queue_url:
            raise ConfigurationError("environment variable DOWNLOAD_QUEUE_URL is not set")
        return self.download_queue_url


@dataclass(frozen=True, slots=True)
class DownloadSettings:
    """Settings of the download function."""

    render: RenderSettings
    artifact_bucket: str
    event_bus: str = "default"
    # Deliveries before SQS moves a message to the dead-letter queue (the queue's
    # maxReceiveCount): the last one fails the flow's step instead of retrying.
    max_receives: int = 5

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DownloadSettings:
        env = os.environ if env is None else env
        return cls(
            render=RenderSettings.from_env(env),
            artifact_bucket=_require(env, "ARTIFACT_BUCKET"),
            event_bus=env.get("EVENT_BUS", "default").strip() or "default",
            max_receives=_int(env, "DOWNLOAD_MAX_RECEIVES", 5),
        )


@dataclass(frozen=True, slots=True)
class ReconcileSettings(EgressFields):
    """Settings of the reconciliation function: the intake's, plus egress to the stores."""

    intake: IntakeSettings
    store_timeout_s: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ReconcileSettings:
        env = os.environ if env is None else env
        return cls(
            intake=IntakeSettings.from_env(env),
            **_egress(env),
            store_timeout_s=float(_int(env, "STORE_TIMEOUT_SECONDS", 10)),
        )
