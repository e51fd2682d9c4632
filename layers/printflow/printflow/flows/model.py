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

Each step type's options dataclass, rules and defaults live in its module of
:mod:`printflow.flows.step_types` (:attr:`Step.spec`, set by the parser); this module names
the shipped types (:class:`StepType`) and holds what every step shares. Instances are built by
:func:`printflow.flows.validation.parse_flow`, which guarantees the invariants;
``to_document`` gives the seed-format JSON back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class StepType(StrEnum):
    GENERATE_PRODUCTION_FILES = "generate-production-files"
    CONSUME_REST_API = "consume-rest-api"
    SEND_EMAIL = "send-email"
    UPDATE_STOREFRONT_ORDER = "update-storefront-order"


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


class StepOptions(Protocol):
    """A step type's typed options (each type's dataclass is in its module of
    :mod:`printflow.flows.step_types`); ``to_document`` gives the flow's JSON back."""

    def to_document(self) -> dict[str, Any]: ...


class StepKind(Protocol):
    """What every step reads of its type's spec
    (:class:`~printflow.flows.step_types.spec.StepTypeSpec` is the full one)."""

    def retry_for(self, timeout_s: int | None) -> RetryPolicy: ...

    @property
    def waits_for_callback(self) -> bool: ...

    @property
    def default_timeout_s(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Step:
    """One step definition. ``retry`` is ``None`` when the flow relies on the defaults."""

    id: str
    # A registered step type's name (printflow.flows.step_types.registry): a StepType
    # member for the shipped types.
    type: str
    success_status: str
    options: StepOptions
    # The registered type, set by the parser. Typed by what the model reads of it, so the
    # model does not import the step-type modules that build on it (no import cycle).
    spec: StepKind
    timeout: int | None = None
    on_success: str | None = None
    on_error: str | None = None
    retry: RetryPolicy | None = None

    @property
    def retry_policy(self) -> RetryPolicy:
        if self.retry is not None:
            return self.retry
        return self.spec.retry_for(self.effective_timeout)

    @property
    def waits_for_callback(self) -> bool:
        """Callback steps finish when another component completes their task token."""
        return self.spec.waits_for_callback

    @property
    def effective_timeout(self) -> int | None:
        if self.timeout is None:
            return self.spec.default_timeout_s
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
            "type": str(self.type),
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
