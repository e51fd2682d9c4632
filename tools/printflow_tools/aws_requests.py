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

Usage::

    counter = AwsRequestCounter()
    counter.install()                 # boto3's default session; clients created from now on
    with counter.counting():
        ...                           # the run to measure
    counter.snapshot().requests       # {("dynamodb", "PutItem"): 40, ...}
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_UNITS_KEY = "printflow_billing_units"
SQS_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class RequestCounts:
    """Requests per ``(service, operation)`` and billing units per ``(service, unit)``."""

    requests: Mapping[tuple[str, str], int] = field(default_factory=dict)
    units: Mapping[tuple[str, str], int] = field(default_factory=dict)

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

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str]] = Counter()
        self._units: Counter[tuple[str, str]] = Counter()
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

    def snapshot(self) -> RequestCounts:
        with self._lock:
            return RequestCounts(dict(self._requests), dict(self._units))

    def _before_call(self, model: Any, params: Mapping[str, Any], context: Any, **_: Any) -> None:
        if not self._active or not isinstance(context, dict):
            return
        context[_UNITS_KEY] = billing_units(model.service_model.service_name, model.name, params)

    def _after_call(self, model: Any, parsed: Any, context: Any, **_: Any) -> None:
        if not self._active or not isinstance(context, dict) or _UNITS_KEY not in context:
            return
        service, operation = model.service_model.service_name, model.name
        if operation == "ReceiveMessage" and not (parsed or {}).get("Messages"):
            operation = "ReceiveMessage:empty"
        with self._lock:
            self._requests[(service, operation)] += 1
            for unit, amount in context[_UNITS_KEY].items():
                self._units[(service, unit)] += amount


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
    return {}
