"""Typed model of an order flow: the Twikit step-definition format plus PrintFlow extensions.

The seed format (``stepDefinitionId``, ``type``, ``successStatus``, ``options``, ``timeout``,
``onSuccess``, ``onError``) is the contract; extensions are optional fields, so every seed
flow is also a PrintFlow flow:

- ``retry`` on any step: ``maxAttempts`` (0-10), ``intervalSeconds`` (1-300), ``backoffRate``
  (1-10), ``maxDelaySeconds`` (1-3600); missing keys keep the defaults of :class:`RetryPolicy`;
- send-email ``subject`` / ``message`` templates with ``{{order.name}}``-style placeholders
  (see :mod:`printflow.flows.placeholders`), recipients that are ``{{order.email}}`` or
  ``{{config.operationsEmail}}``;
- consume-rest-api ``headers`` and ``signingSecret`` (the *name* of a Secrets Manager secret
  used to sign the request body, never the secret itself);
- generate-production-files ``provider``: opaque provider options passed to the render step;
- the ``update-storefront-order`` step type (tags, status, note written back to the shop).

Instances are built by :func:`printflow.flows.validation.parse_flow`, which guarantees the
invariants; ``to_document`` gives the seed-format JSON back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class StepType(StrEnum):
    GENERATE_PRODUCTION_FILES = "generate-production-files"
    CONSUME_REST_API = "consume-rest-api"
    SEND_EMAIL = "send-email"
    UPDATE_STOREFRONT_ORDER = "update-storefront-order"


# A render step waits for its task token; without a timeout it could wait a year.
DEFAULT_RENDER_TIMEOUT_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How transient step failures (``StepRetryable``, Lambda service errors) are retried."""

    max_attempts: int = 3
    interval_seconds: int = 2
    backoff_rate: float = 2.0
    max_delay_seconds: int = 60

    def to_document(self) -> dict[str, Any]:
        return {
            "maxAttempts": self.max_attempts,
            "intervalSeconds": self.interval_seconds,
            "backoffRate": self.backoff_rate,
            "maxDelaySeconds": self.max_delay_seconds,
        }


@dataclass(frozen=True, slots=True)
class GenerateProductionFilesOptions:
    """``fileFormat`` and ``provider`` are passed to the render provider untouched."""

    file_format: str | None = None
    provider: dict[str, Any] | None = field(default=None, hash=False)

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.file_format is not None:
            doc["fileFormat"] = self.file_format
        if self.provider is not None:
            doc["provider"] = self.provider
        return doc


@dataclass(frozen=True, slots=True)
class ConsumeRestApiOptions:
    """POST the order document to ``uri``; optional static headers and HMAC signing."""

    uri: str
    headers: tuple[tuple[str, str], ...] = ()
    signing_secret: str | None = None

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"uri": self.uri}
        if self.headers:
            doc["headers"] = dict(self.headers)
        if self.signing_secret is not None:
            doc["signingSecret"] = self.signing_secret
        return doc


@dataclass(frozen=True, slots=True)
class SendEmailOptions:
    """Recipients are addresses or recipient placeholders; subject/message are templates."""

    recipients: tuple[str, ...]
    subject: str
    message: str

    def to_document(self) -> dict[str, Any]:
        return {
            "recipients": list(self.recipients),
            "subject": self.subject,
            "message": self.message,
        }


RENDER_RETRY = RetryPolicy(max_attempts=10)


@dataclass(frozen=True, slots=True)
class UpdateStorefrontOrderOptions:
    """Tell the shop: ``tags`` added (never replacing the shop's own), an optional platform
    ``status``, an optional ``note`` template (the email placeholders plus
    ``{{artifacts.links}}``). At least one of the three."""

    tags: tuple[str, ...] = ()
    status: str | None = None
    note: str | None = None

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.tags:
            doc["tags"] = list(self.tags)
        if self.status is not None:
            doc["status"] = self.status
        if self.note is not None:
            doc["note"] = self.note
        return doc


StepOptions = (
    GenerateProductionFilesOptions
    | ConsumeRestApiOptions
    | SendEmailOptions
    | UpdateStorefrontOrderOptions
)


@dataclass(frozen=True, slots=True)
class Step:
    """One step definition. ``retry`` is ``None`` when the flow relies on the defaults."""

    id: str
    type: StepType
    success_status: str
    options: StepOptions
    timeout: int | None = None
    on_success: str | None = None
    on_error: str | None = None
    retry: RetryPolicy | None = None

    @property
    def retry_policy(self) -> RetryPolicy:
        if self.retry is not None:
            return self.retry
        # A render start meets the provider's 5xx/429 on every call: three retries (14 s)
        # turned a short outage into a failed order. Ten retries ride out ~6 minutes.
        return RENDER_RETRY if self.waits_for_callback else RetryPolicy()

    @property
    def waits_for_callback(self) -> bool:
        """Render steps finish when another component completes their task token."""
        return self.type is StepType.GENERATE_PRODUCTION_FILES

    @property
    def effective_timeout(self) -> int | None:
        if self.timeout is None and self.waits_for_callback:
            return DEFAULT_RENDER_TIMEOUT_SECONDS
        return self.timeout

    def successors(self) -> Iterator[str]:
        """The steps this one can hand over to: ``onSuccess`` first, then ``onError``."""
        if self.on_success is not None:
            yield self.on_success
        if self.on_error is not None:
            yield self.on_error

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "stepDefinitionId": self.id,
            "type": self.type.value,
            "successStatus": self.success_status,
            "options": self.options.to_document(),
        }
        if self.timeout is not None:
            doc["timeout"] = self.timeout
        if self.on_success is not None:
            doc["onSuccess"] = self.on_success
        if self.on_error is not None:
            doc["onError"] = self.on_error
        if self.retry is not None:
            doc["retry"] = self.retry.to_document()
        return doc


@dataclass(frozen=True, slots=True)
class OrderFlow:
    """A validated flow: ids unique, references resolved, every step reachable, no cycles."""

    steps: tuple[Step, ...]

    @property
    def first(self) -> Step:
        """Execution starts at the first step of the list (seed semantics)."""
        return self.steps[0]

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def success_path(self) -> frozenset[str]:
        """Steps reachable from the first one through ``onSuccess`` edges alone.

        Every other step runs only after an error was caught, so finishing it means the
        order failed. A step reachable both ways counts as success path.
        """
        reached: list[str] = []
        current: str | None = self.first.id
        while current is not None and current not in reached:  # validation forbids cycles
            reached.append(current)
            current = self.step(current).on_success
        return frozenset(reached)

    def to_document(self) -> list[dict[str, Any]]:
        return [step.to_document() for step in self.steps]
