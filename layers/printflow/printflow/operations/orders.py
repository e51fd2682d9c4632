"""Listing orders by storefront and status, and the full picture of one order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from printflow.adapters.order_executions import OrderExecutions, console_link, execution_arn_of
from printflow.adapters.order_table import OrderTable
from printflow.adapters.render_job_table import RenderJobTable
from printflow.domain.order import OrderKey
from printflow.errors import NotFound, ValidationError
from printflow.steps.context import readable_cause
from printflow.validators import ascii_int

CAUSE_CHARS = 120
PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class OrderSummary:
    """One line of ``printflow orders list``."""

    storefront_id: str
    order_id: str
    status: str
    step: str | None
    cause: str | None
    at: str
    retries: int

    def to_document(self) -> dict[str, Any]:
        return {
            "storefrontId": self.storefront_id,
            "orderId": self.order_id,
            "status": self.status,
            "step": self.step,
            "cause": self.cause,
            "at": self.at,
            "retries": self.retries,
        }


@dataclass
class ListingStats:
    """How much the listing read (the bench checks one page per 100 orders)."""

    pages: int = 0
    orders: int = 0


def parse_since(text: str | None, now: datetime | None = None) -> str | None:
    """``24h``, ``90m``, ``7d``, ``30s`` or an ISO 8601 time -> an ISO 8601 lower bound."""
    if text is None or text == "":
        return None
    now = now or datetime.now(UTC)
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    amount, unit = ascii_int(text[:-1], max_digits=9), text[-1:]
    if unit in units and amount is not None:
        try:
            since = now - timedelta(**{units[unit]: amount})
        except OverflowError:  # before the year 1: no order is that old
            since = datetime.min.replace(tzinfo=UTC)
        return since.isoformat(timespec="seconds")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            f"--since {text!r}: expected a duration such as 24h, 90m, 7d or an ISO 8601 time"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec="seconds")


def summary_of(item: dict[str, Any]) -> OrderSummary:
    error = item.get("error") if isinstance(item.get("error"), dict) else None
    cause = readable_cause(error.get("cause")) if error else None
    if cause and len(cause) > CAUSE_CHARS:
        cause = cause[: CAUSE_CHARS - 1] + "…"
    return OrderSummary(
        storefront_id=str(item.get("storefrontId")),
        order_id=str(item.get("orderId")),
        status=str(item.get("status")),
        step=(error.get("step") if error else None) or item.get("currentStep"),
        cause=cause,
        at=str(item.get("statusAt") or ""),
        retries=int(item.get("retryAttempt") or 0),
    )


def list_orders(
    table: OrderTable,
    *,
    statuses: Sequence[str],
    storefronts: Sequence[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int | None = None,
    stats: ListingStats | None = None,
) -> Iterator[OrderSummary]:
    """Orders in ``statuses``, per storefront (all registered ones by default), newest first.

    Reads the ``StatusIndex`` one page of :data:`PAGE_SIZE` at a time: never a scan.
    """
    if storefronts is None:
        storefronts = [s.storefront_id for s in table.list_storefronts()]
    stats = stats if stats is not None else ListingStats()
    for storefront_id in storefronts:
        for status in statuses:
            start: dict[str, Any] | None = None
            while True:
                items, start = table.orders_in_status(
                    storefront_id,
                    status,
                    since=since,
                    until=until,
                    page_size=PAGE_SIZE,
                    start_key=start,
                )
                stats.pages += 1
                for item in items:
                    stats.orders += 1
                    yield summary_of(item)
                    if limit is not None and stats.orders >= limit:
                        return
                if start is None:
                    break


@dataclass(frozen=True, slots=True)
class StateMachines:
    """The flow's state machines: the normal one (first executions) and its retry entry."""

    normal: dict[str, str]
    retry: dict[str, str]

    def first_execution(self, item: dict[str, Any]) -> str | None:
        arn = self.normal.get(str(item.get("flow") or "default"))
        name = item.get("executionName")
        return execution_arn_of(arn, str(name)) if arn and name else None

    def retry_execution(self, item: dict[str, Any], name: str) -> str | None:
        arn = self.retry.get(str(item.get("flow") or "default"))
        return execution_arn_of(arn, name) if arn else None

    def executions(self, item: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """Every execution of the order, first one first: (ARN, its retry entry or {})."""
        found: list[tuple[str, dict[str, Any]]] = []
        first = self.first_execution(item)
        if first:
            found.append((first, {}))
        for entry in item.get("retries") or []:
            arn = self.retry_execution(item, str(entry.get("executionName")))
            if arn:
                found.append((arn, entry))
        return found


def order_details(
    table: OrderTable,
    jobs: RenderJobTable,
    executions: OrderExecutions,
    machines: StateMachines,
    key: OrderKey,
) -> dict[str, Any]:
    """Everything an operator needs about one order (``printflow orders show``)."""
    item = table.get_order(key)
    if item is None:
        raise NotFound(f"order {key.order_id!r} of storefront {key.storefront_id!r} not found")
    error = item.get("error") if isinstance(item.get("error"), dict) else None
    return {
        "storefrontId": key.storefront_id,
        "orderId": key.order_id,
        "status": item.get("status"),
        "currentStep": item.get("currentStep"),
        "failedStep": error.get("step") if error else None,
        "error": error,
        "lastError": item.get("lastError") or None,
        "retries": int(item.get("retryAttempt") or 0),
        "statusHistory": item.get("statusHistory") or [],
        "receivedAt": item.get("receivedAt"),
        "updatedAt": item.get("updatedAt"),
        "renderJobs": [
            {
                "jobId": job.job_id,
                "step": job.step_id,
                "provider": job.provider,
                "kind": job.kind.value,
                "state": job.state.value,
                "reference": job.ref,
                "lineItemId": job.line_item_id,
                "lastStatus": job.last_status,
                "error": job.error,
            }
            for job in jobs.jobs_of(key)
        ],
        "artifacts": [
            {k: a.get(k) for k in ("key", "size", "sha256")} for a in item.get("artifacts") or []
        ],
        "manifestKey": item.get("manifestKey"),
        "executions": [
            {
                "arn": arn,
                "status": executions.status(arn) or "NOT_STARTED",
                "attempt": entry.get("attempt", 0),
                "fromStep": entry.get("fromStep"),
                "consoleUrl": console_link(arn),
            }
            for arn, entry in machines.executions(item)
        ],
        "emails": [
            {
                "step": record.get("stepId"),
                "state": record.get("state"),
                "messageId": record.get("messageId"),
                "at": record.get("finishedAt") or record.get("claimedAt"),
            }
            for record in table.email_records(key)
        ],
        "restDeliveries": [
            {
                "step": record.get("stepId"),
                "deliveryId": record.get("deliveryId"),
                "httpStatus": record.get("httpStatus"),
                "deliveries": record.get("deliveries"),
                "at": record.get("deliveredAt"),
            }
            for record in table.rest_deliveries(key)
        ],
    }
