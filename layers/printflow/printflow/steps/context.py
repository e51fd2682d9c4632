"""What a step Lambda is asked to do: the event contract of the compiled order flow.

The flow compiler (:mod:`printflow.flows.compiler`) invokes each step Lambda with::

    {
      "input": {
        "order": {"pk": "...", "sk": "ORDER", "storefrontId": "...", "orderId": "..."},
        "running": {"step": "consume"},                       # set by the previous step
        "error": {"Error": "StepFailed", "Cause": "..."},     # only on an onError path
        "retry": {"fromStep": "...", "attempt": 2,            # only in a retry execution
                  "firstExecution": "arn:aws:states:...:execution:OrderFlow:..."}
      },
      "step": {"id": "error", "type": "send-email", "successStatus": "Failed",
               "options": {...},
               "flowStart": "generate",     # onError targets: the step failing without "running"
               "endsFlowFailed": true,      # the flow's end after an error: see below
               "failsOrder": true},         # no onError: its own failure fails the order
      "execution": "arn:aws:states:...:execution:OrderFlow:...",
      "taskToken": "..."                    # render steps, endsFlowFailed, failsOrder
    }

The step writes its own ``successStatus`` when its work is done (:mod:`printflow.steps.completion`);
a step with ``endsFlowFailed`` then fails its task with ``OrderFailed`` and the original cause,
which ends the execution as failed; a step with ``failsOrder`` completes its task, or, when
its work failed for good, marks the order ``Failed`` and fails the task with ``OrderFailed``.

A malformed event is a bug in the flow or the compiler, not a transient problem, so it
fails the step for good (:class:`StepFailed`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from printflow.adapters.order_table import OrderTable, order_key_attributes
from printflow.domain.order import OrderKey
from printflow.errors import StepFailed, StepRetryable

# Errors of the order table that are worth a Step Functions retry.
_TRANSIENT_AWS_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
    }
)
MAX_CAUSE_CHARS = 1000


@dataclass(frozen=True, slots=True)
class FlowError:
    """The error an ``onError`` step reports: the Catch's ``Error`` and a readable ``Cause``.

    ``step`` is the step that failed: the state data's ``running.step`` (each step hands it
    to the next), else the flow's first step.
    """

    error: str
    cause: str
    step: str | None = None
    raw_cause: str = ""  # the Catch's Cause as it came (a Lambda error's is JSON)

    def to_document(self) -> dict[str, str]:
        doc = {"error": self.error, "cause": self.cause}
        return {"step": self.step, **doc} if self.step else doc


@dataclass(frozen=True, slots=True)
class StepInvocation:
    """One run of one step for one order."""

    order: OrderKey
    step_id: str
    step_type: str
    success_status: str
    execution: str
    options: Mapping[str, Any] = field(default_factory=dict)
    error: FlowError | None = None
    task_token: str | None = None
    ends_flow_failed: bool = False
    fails_order: bool = False
    # The order's first execution when this one is a retry (``printflow orders retry``).
    first_execution: str | None = None

    @property
    def fails_own_task(self) -> bool:
        """Its callback task catches only named errors (its own ``OrderFailed`` ends the
        execution), so an unexpected exception must become a :class:`StepFailed`."""
        return self.ends_flow_failed or self.fails_order

    @property
    def run_id(self) -> str:
        """This execution's run of this step (status writes happen once per run)."""
        digest = hashlib.sha256(f"{self.execution}\n{self.step_id}".encode())
        return digest.hexdigest()[:32]

    @property
    def delivery_id(self) -> str:
        """Stable across retries of this step, in this execution and in the order's retries.

        Receivers dedupe on it; email and REST steps may repeat after a timeout. A retry
        execution keys it on the order's first execution, so the REST receiver sees the
        same ``X-PrintFlow-Delivery`` and the email step its own record.
        """
        scope = self.first_execution or self.execution
        digest = hashlib.sha256(f"{scope}\n{self.step_id}".encode())
        return digest.hexdigest()[:32]

    def with_recorded_error(self, item: Mapping[str, Any]) -> StepInvocation:
        """Add the failing step's id from the error the flow recorded on the order item."""
        recorded = item.get("error")
        if self.error is None or self.error.step or not isinstance(recorded, dict):
            return self
        step = recorded.get("step")
        if not isinstance(step, str) or not step:
            return self
        return replace(self, error=replace(self.error, step=step))


def parse_step_event(event: Any, *, expected_type: str) -> StepInvocation:
    """Read the step event; :class:`StepFailed` names the first field that is wrong."""
    if not isinstance(event, dict):
        raise StepFailed("step event: expected a JSON object")
    payload = event.get("input")
    if not isinstance(payload, dict):
        raise StepFailed("step event: 'input' must be an object")
    order = payload.get("order")
    if not isinstance(order, dict):
        raise StepFailed("step event: 'input.order' must be an object")
    storefront_id = _text(order, "storefrontId", "input.order")
    order_id = _text(order, "orderId", "input.order")
    key = OrderKey(storefront_id, order_id)
    expected = order_key_attributes(key)
    for name in ("pk", "sk"):
        if name in order and order[name] != expected[name]:
            raise StepFailed(f"step event: input.order.{name} does not match the order id")

    step = event.get("step")
    if not isinstance(step, dict):
        raise StepFailed("step event: 'step' must be an object")
    step_type = _text(step, "type", "step")
    if step_type != expected_type:
        raise StepFailed(
            f"step event: step.type is {step_type!r}; this function runs {expected_type!r}"
        )
    options = step.get("options", {})
    if not isinstance(options, dict):
        raise StepFailed("step event: 'step.options' must be an object")
    return StepInvocation(
        order=key,
        step_id=_text(step, "id", "step"),
        step_type=step_type,
        success_status=str(step.get("successStatus") or ""),
        execution=_text(event, "execution", "step event"),
        options=options,
        error=_flow_error(payload.get("error"), _failed_step(payload, step)),
        task_token=_optional_text(event, "taskToken"),
        ends_flow_failed=step.get("endsFlowFailed") is True,
        fails_order=step.get("failsOrder") is True,
        first_execution=_first_execution(payload.get("retry")),
    )


def _first_execution(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise StepFailed("step event: 'input.retry' must be an object")
    return _text(raw, "firstExecution", "input.retry")


def _text(doc: Mapping[str, Any], name: str, where: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value:
        raise StepFailed(f"step event: '{where}.{name}' must be a non-empty string")
    return value


def _optional_text(doc: Mapping[str, Any], name: str) -> str | None:
    value = doc.get(name)
    return value if isinstance(value, str) and value else None


def _failed_step(payload: Mapping[str, Any], step: Mapping[str, Any]) -> str | None:
    """The step an ``onError`` step was reached from: the one running when it failed."""
    running = payload.get("running")
    if isinstance(running, dict) and isinstance(running.get("step"), str) and running["step"]:
        return str(running["step"])
    return _optional_text(step, "flowStart")


def _flow_error(raw: Any, failed_step: str | None) -> FlowError | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise StepFailed("step event: 'input.error' must be an object")
    error = str(raw.get("Error") or raw.get("error") or "")
    step = raw.get("step") or raw.get("Step") or failed_step
    raw_cause = raw.get("Cause") if "Cause" in raw else raw.get("cause")
    return FlowError(
        error=error or "Unknown",
        cause=readable_cause(raw_cause),
        step=step if isinstance(step, str) and step else None,
        raw_cause="" if raw_cause is None else str(raw_cause),
    )


def readable_cause(cause: Any) -> str:
    """The human part of a Catch ``Cause``, without a stack trace.

    A Lambda error's cause is JSON (``errorMessage``, ``errorType``, ``stackTrace``, ...):
    only ``errorMessage`` is meant for people, and stack traces must not reach emails or
    third-party endpoints. Other causes (timeouts, service errors) are plain text.
    """
    if cause is None:
        return ""
    text = cause if isinstance(cause, str) else json.dumps(cause, default=str)
    try:
        doc = json.loads(text)
    except (ValueError, TypeError):
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("errorMessage"), str):
        text = doc["errorMessage"]
    return text[:MAX_CAUSE_CHARS]


def load_order(table: OrderTable, key: OrderKey) -> dict[str, Any]:
    """The stored order item; a missing order fails the step, throttling retries it."""
    try:
        item = table.get_order(key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _TRANSIENT_AWS_CODES or status >= 500:
            raise StepRetryable(f"order table unavailable ({code})") from exc
        raise
    except BotoCoreError as exc:
        raise StepRetryable(f"order table unreachable ({type(exc).__name__})") from exc
    if item is None:
        raise StepFailed(f"order {key.order_id!r} of storefront {key.storefront_id!r} not found")
    return item
