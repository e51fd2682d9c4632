"""Retrying a failed order: a new execution of the retry state machine, from a chosen step.

What is finished is reused, so nothing a user notices happens twice:

- a render step whose jobs are all done, with every file in S3 as the manifest says, is
  skipped (the retry starts at the step after it);
- a render step that runs again moves its finished jobs to the new execution, polls again
  the jobs whose download failed (no new render) and renders only the line items whose
  render failed (see :mod:`printflow.render.start`);
- REST and email steps key their deliveries on the order's first execution, so the REST
  receiver sees the same ``X-PrintFlow-Delivery`` and an email already sent is not resent.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from printflow.adapters.order_executions import OrderExecutions
from printflow.adapters.order_flows import execution_input
from printflow.adapters.order_table import OrderTable
from printflow.adapters.render_job_table import RenderJobTable
from printflow.adapters.stored_artifacts import StoredArtifacts
from printflow.domain.order import OrderKey
from printflow.domain.render_job import JobState
from printflow.errors import NotFound, PrintFlowError
from printflow.flows.retry_entry import next_step, retry_steps
from printflow.operations.orders import StateMachines

RETRYING_STATUS = "Retrying"
_UNSAFE = re.compile(r"[^0-9A-Za-z_-]")
_CALLBACK_SUFFIX = ".waitForTaskToken"


class RetryRefused(PrintFlowError):
    """The order may not be retried now (running, succeeded, unknown step, ...)."""

    def __init__(self, message: str, *, running: bool = False) -> None:
        super().__init__(message)
        self.running = running


@dataclass(frozen=True, slots=True)
class RetryStarted:
    key: OrderKey
    attempt: int
    from_step: str
    execution_arn: str
    skipped: tuple[str, ...] = ()  # steps reused as they are (finished render steps)

    def to_document(self) -> dict[str, Any]:
        return {
            "storefrontId": self.key.storefront_id,
            "orderId": self.key.order_id,
            "attempt": self.attempt,
            "fromStep": self.from_step,
            "executionArn": self.execution_arn,
            "skipped": list(self.skipped),
        }


def retry_execution_name(key: OrderKey, attempt: int) -> str:
    """``{storefront}-{order}-{hash}-r{attempt}``: at most 80 characters, unique per attempt."""
    digest = hashlib.sha256(str(key).encode()).hexdigest()[:12]
    suffix = f"-{digest}-r{attempt}"
    readable = _UNSAFE.sub("_", f"{key.storefront_id}-{key.order_id}")
    return readable[: 80 - len(suffix)] + suffix


class OrderRetries:
    """``retry(key)``: the library behind ``printflow orders retry``."""

    def __init__(
        self,
        orders: OrderTable,
        jobs: RenderJobTable,
        executions: OrderExecutions,
        machines: StateMachines,
        artifacts: StoredArtifacts | None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._orders = orders
        self._jobs = jobs
        self._executions = executions
        self._machines = machines
        self._artifacts = artifacts
        self._clock = clock

    def retry(
        self, key: OrderKey, *, from_step: str | None = None, force: bool = False
    ) -> RetryStarted:
        """Start retry attempt n+1 of the order; :class:`RetryRefused` says why not."""
        item = self._orders.get_order(key)
        if item is None:
            raise NotFound(f"order {key.order_id!r} of storefront {key.storefront_id!r} not found")
        flow = str(item.get("flow") or "default")
        machine = self._machines.retry.get(flow)
        if machine is None:
            known = ", ".join(sorted(self._machines.retry)) or "none"
            raise RetryRefused(
                f"order {key}: its flow {flow!r} has no retry state machine in this stack "
                f"(flows with one: {known}); deploy the flow's retry entry (template.yaml)"
            )
        self._refuse_if_running_or_done(key, item, force)

        definition = self._executions.definition(machine)
        steps = retry_steps(definition)
        step = from_step or _failed_step(item) or (steps[0] if steps else None)
        if step is None or step not in steps:
            known = ", ".join(steps) or "none"
            raise RetryRefused(f"step {step!r} is not a step of flow {flow!r} (steps: {known})")
        step, skipped = self._skip_finished_renders(key, item, definition, step)

        attempt = int(item.get("retryAttempt") or 0) + 1
        name = retry_execution_name(key, attempt)
        at = self._clock().isoformat(timespec="milliseconds")
        if not self._orders.record_retry(
            key, attempt=attempt, from_step=step, execution_name=name, status=RETRYING_STATUS, at=at
        ):
            raise RetryRefused(f"order {key} is being retried by someone else right now")
        first = self._machines.first_execution(item) or ""
        document = {
            **execution_input(key),
            # What the step before it would have set: an onError step reads the failing step
            # from it (see printflow.flows.compiler).
            "running": {"step": step},
            "retry": {"fromStep": step, "attempt": attempt, "firstExecution": first},
        }
        arn = self._executions.start(machine, name, document)
        return RetryStarted(key, attempt, step, arn, tuple(skipped))

    def _refuse_if_running_or_done(self, key: OrderKey, item: dict[str, Any], force: bool) -> None:
        executions = self._machines.executions(item)
        if not executions:
            return
        latest = executions[-1][0]
        status = self._executions.status(latest)
        if status == "RUNNING":
            if not force:
                raise RetryRefused(
                    f"order {key} is still running ({latest}); wait, or pass --force to stop "
                    "that execution and retry",
                    running=True,
                )
            self._executions.stop(latest, "stopped by printflow orders retry --force")
        elif status == "SUCCEEDED" and not force:
            raise RetryRefused(
                f"order {key} already succeeded; pass --force to run it again from a step"
            )

    def _skip_finished_renders(
        self, key: OrderKey, item: dict[str, Any], definition: dict[str, Any], step: str
    ) -> tuple[str, list[str]]:
        """Move past render steps whose files are all stored and verified by the manifest."""
        skipped: list[str] = []
        current: str | None = step
        while current is not None and _is_render_step(definition, current):
            jobs = [j for j in self._jobs.jobs_of(key) if j.step_id == current]
            live = [j for j in jobs if j.state is not JobState.SUPERSEDED]
            if not live or any(j.state is not JobState.DONE for j in live):
                break
            manifest = item.get("manifestKey")
            if self._artifacts is None or not manifest or self._artifacts.problems(manifest):
                break
            skipped.append(current)
            current = next_step(definition, current)
        if current is None:
            raise RetryRefused(
                f"order {key}: every step from {step!r} on is finished and its files are "
                "stored; nothing to retry"
            )
        return current, skipped


def _failed_step(item: dict[str, Any]) -> str | None:
    error = item.get("error")
    if isinstance(error, dict) and isinstance(error.get("step"), str):
        return str(error["step"])
    step = item.get("currentStep")
    return str(step) if isinstance(step, str) else None


def _is_render_step(definition: dict[str, Any], step: str) -> bool:
    state = definition.get("States", {}).get(step, {})
    return str(state.get("Resource", "")).endswith(_CALLBACK_SUFFIX)
