"""Counting the AWS API requests boto3 clients make, per service and operation.

A botocore event hook on each client (``before-parameter-build`` sees the call's parameters,
``after-call`` its answer) sees every request it sends: what the benches price is what the
code really asked for, not an estimate.
Install the counter on a boto3 session *before* the clients you care about are created
(botocore copies the session's hooks into each new client; :func:`printflow.adapters.aws.
client` caches its clients, so clear that cache after installing), or attach it to a client
that exists already. Clients of another session are not counted: use one for the bench's own
calls (waiting for results, reading histories) so they stay out of the figures.

Besides requests, a few billing units come from the request itself: EventBridge bills each
``PutEvents`` entry, SES each recipient, SQS each 64 KiB of a message; a ``ReceiveMessage``
that returned nothing is counted apart (``ReceiveMessage:empty``): it is the idle polling of
an event source mapping, not work done for an order.

What AWS would not bill is kept apart (:data:`LOCAL_ONLY`): requests that exist only because
of the local stack, e.g. the ``PutMetricData`` that stands in for Powertools' EMF lines (on
AWS the metrics arrive through CloudWatch Logs, priced as log bytes). Each request is also
attributed to the function that made it (the local stack labels each invocation), so a bench
can price a scheduled function's runs as the fixed cost they are.

DynamoDB writes are counted per item kind (the sort key's prefix: ``ORDER``, ``JOB``, ...), so
a bench can size each write by its kind's items, and the global secondary index entries each
write changes (``index_entries``: 1 per index whose key a ``PutItem`` sets; 2 per index whose
key an ``UpdateItem`` sets, the old entry deleted and the new one written; 1 per index whose
key it removes).

Usage::

    counter = AwsRequestCounter()
    counter.install()                 # boto3's default session; clients created from now on
    with counter.counting():
        ...                           # the run to measure
    counter.snapshot().requests       # {("dynamodb", "PutItem"): 40, ...}
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_UNITS_KEY = "printflow_billing_units"
SQS_CHUNK_BYTES = 64 * 1024
# Requests the local stack makes that have no billed counterpart on AWS, with the reason.
LOCAL_ONLY: Mapping[tuple[str, str], str] = {
    ("cloudwatch", "PutMetricData"): (
        "the local stack's stand-in for EMF log lines (on AWS: CloudWatch Logs bytes)"
    ),
}
# An EMF line's ``_aws`` directive (namespace, dimension sets, metric names and units) and its
# dimension values, beyond the metric values themselves: measured on Powertools' output.
EMF_ENVELOPE_BYTES = 250
DYNAMODB_ITEM_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})


@dataclass(frozen=True)
class RequestCounts:
    """Requests per ``(service, operation)`` and billing units per ``(service, unit)``."""

    requests: Mapping[tuple[str, str], int] = field(default_factory=dict)
    units: Mapping[tuple[str, str], int] = field(default_factory=dict)
    local_only: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def of(self, service: str, *operations: str) -> int:
        """Requests to ``service`` (only ``operations``, when given)."""
        return sum(
            n
            for (svc, op), n in self.requests.items()
            if svc == service and (not operations or op in operations)
        )

    def unit(self, service: str, unit: str) -> int:
        return self.units.get((service, unit), 0)

    def services(self) -> list[str]:
        return sorted({service for service, _ in self.requests})


class AwsRequestCounter:
    """Thread-safe; counts only inside :meth:`counting` (installed hooks cost ~nothing else)."""

    def __init__(
        self,
        *,
        caller: Callable[[], str | None] = lambda: None,
        index_keys: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        """``caller`` names who makes the current request (a function; None: anyone);
        ``index_keys`` maps each global secondary index to its key attributes."""
        self._lock = threading.Lock()
        self._caller = caller
        self._index_keys = dict(index_keys or {})
        self._requests: Counter[tuple[str | None, str, str]] = Counter()
        self._units: Counter[tuple[str | None, str, str]] = Counter()
        self._local_only: Counter[tuple[str, str]] = Counter()
        self._active = False
        self._id = f"printflow-request-counter-{id(self)}"

    # -- hooking up ---------------------------------------------------------------------------

    def install(self, session: Any = None) -> AwsRequestCounter:
        """Hook every client ``session`` (default: boto3's) creates from now on."""
        if session is None:
            import boto3

            session = boto3._get_default_session()
        self._register(session.events)
        return self

    def attach(self, client: Any) -> Any:
        """Hook one existing client; returns it."""
        self._register(client.meta.events)
        return client

    def _register(self, events: Any) -> None:
        events.register("before-parameter-build", self._before_call, unique_id=self._id + "-before")
        events.register("after-call", self._after_call, unique_id=self._id + "-after")

    # -- counting -----------------------------------------------------------------------------

    @contextmanager
    def counting(self) -> Iterator[AwsRequestCounter]:
        """Count the requests made inside the block (added to what was counted before)."""
        self._active = True
        try:
            yield self
        finally:
            self._active = False

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._units.clear()
            self._local_only.clear()

    def snapshot(
        self, *, only: frozenset[str] | None = None, without: frozenset[str] = frozenset()
    ) -> RequestCounts:
        """What was counted (of the callers in ``only``, when given; never of ``without``)."""

        def kept(caller: str | None) -> bool:
            return caller not in without and (only is None or caller in only)

        with self._lock:
            requests: Counter[tuple[str, str]] = Counter()
            units: Counter[tuple[str, str]] = Counter()
            for (caller, service, operation), n in self._requests.items():
                if kept(caller):
                    requests[(service, operation)] += n
            for (caller, service, unit), n in self._units.items():
                if kept(caller):
                    units[(service, unit)] += n
            return RequestCounts(dict(requests), dict(units), dict(self._local_only))

    def _before_call(self, model: Any, params: Mapping[str, Any], context: Any, **_: Any) -> None:
        if not self._active or not isinstance(context, dict):
            return
        service, operation = model.service_model.service_name, model.name
        units = billing_units(service, operation, params)
        if service == "dynamodb" and operation in DYNAMODB_ITEM_WRITES:
            units.update(dynamodb_write_units(operation, params, self._index_keys))
        context[_UNITS_KEY] = units

    def _after_call(self, model: Any, parsed: Any, context: Any, **_: Any) -> None:
        if not self._active or not isinstance(context, dict) or _UNITS_KEY not in context:
            return
        service, operation = model.service_model.service_name, model.name
        if (service, operation) in LOCAL_ONLY:
            with self._lock:
                self._local_only[(service, operation)] += 1
                for unit, amount in context[_UNITS_KEY].items():
                    self._units[(self._caller(), service, unit)] += amount
            return
        if operation == "ReceiveMessage" and not (parsed or {}).get("Messages"):
            operation = "ReceiveMessage:empty"
        caller = self._caller()
        with self._lock:
            self._requests[(caller, service, operation)] += 1
            for unit, amount in context[_UNITS_KEY].items():
                self._units[(caller, service, unit)] += amount


def billing_units(service: str, operation: str, params: Mapping[str, Any]) -> dict[str, int]:
    """The units a request is billed in beyond "one request" (see the module docstring)."""
    if service == "events" and operation == "PutEvents":
        return {"events": len(params.get("Entries") or ())}
    if service == "sesv2" and operation == "SendEmail":
        destination = params.get("Destination") or {}
        recipients = sum(
            len(destination.get(kind) or ()) for kind in ("ToAddresses", "CcAddresses")
        ) + len(destination.get("BccAddresses") or ())
        return {"recipients": recipients}
    if service == "sqs" and operation in ("SendMessage", "SendMessageBatch"):
        # A request is billed per 64 KiB of its payload (a batch's messages together).
        bodies = (
            [params.get("MessageBody") or ""]
            if operation == "SendMessage"
            else [entry.get("MessageBody") or "" for entry in params.get("Entries") or ()]
        )
        size = sum(len(str(body).encode()) for body in bodies)
        return {"payload_chunks": max(1, -(-size // SQS_CHUNK_BYTES))}
    if service == "cloudwatch" and operation == "PutMetricData":
        # The EMF line it stands in for: the metric data plus the ``_aws`` envelope.
        data = json.dumps(params.get("MetricData") or [], default=str)
        return {"emf_log_bytes": len(data) + EMF_ENVELOPE_BYTES}
    return {}


def dynamodb_write_units(
    operation: str, params: Mapping[str, Any], index_keys: Mapping[str, tuple[str, ...]]
) -> dict[str, int]:
    """``write:<kind>`` (the item's kind, its sort key's prefix) and ``index_entries``."""
    key = params.get("Item") if operation == "PutItem" else params.get("Key")
    sort_key = ((key or {}).get("sk") or {}).get("S", "")
    kind = str(sort_key).split("#", 1)[0] or "other"
    units = {f"write:{kind}": 1}
    entries = 0
    if operation == "PutItem":
        item = params.get("Item") or {}
        entries = sum(1 for attrs in index_keys.values() if all(a in item for a in attrs))
    elif operation == "UpdateItem":
        names = params.get("ExpressionAttributeNames") or {}
        expression = str(params.get("UpdateExpression") or "")
        for placeholder, name in names.items():
            expression = expression.replace(str(placeholder), str(name))
        updated, _, removed = expression.partition("REMOVE")
        set_words = set(updated.replace(",", " ").replace("=", " ").split())
        removed_words = set(removed.replace(",", " ").split())
        for attrs in index_keys.values():
            if any(a in set_words for a in attrs):
                entries += 2  # the entry moves: the old one deleted, the new one put
            elif any(a in removed_words for a in attrs):
                entries += 1  # the item leaves the index: its entry is deleted
    elif operation == "DeleteItem":
        entries = len(index_keys)  # at most one entry per index goes with the item
    if entries:
        units["index_entries"] = entries
    return units
