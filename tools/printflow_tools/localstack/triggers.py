"""Event sources the emulator does not run: Scheduler schedules and SQS event-source mappings.

moto stores Scheduler schedules but never fires them, and it has no Lambda event-source
mappings without Docker. The local stack reads both from the functions' events in the
template and drives the handlers itself.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from printflow_tools.localstack.template import LOCAL_ACCOUNT, LOCAL_REGION, FunctionSpec, Resolver

Invoke = Callable[[str, dict[str, Any]], Any]
_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|second|seconds|hour|hours)\)$")
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600}


def rate_seconds(expression: str) -> float:
    """``rate(1 minute)`` -> 60.0. Cron expressions are not run locally."""
    found = _RATE.match(expression.strip())
    if not found:
        raise ValueError(f"local scheduler runs rate() expressions only, not {expression!r}")
    return int(found.group(1)) * _UNIT_SECONDS[found.group(2).rstrip("s")]


@dataclass
class Schedule:
    function: str
    name: str
    every_s: float


# Lambda polls a standard queue with five concurrent batches to begin with; while messages
# remain it adds up to 300 more a minute, to the mapping's ``ScalingConfig.MaximumConcurrency``
# (at most 1,000), and goes back to five when traffic is low (services-sqs-scaling). moto has
# no event-source mappings at all. Locally each mapping starts with five batches in flight
# (fewer when its MaximumConcurrency says so) and scales the same way: one at a time queued
# every timer and download behind the batch in hand, and hid races that production meets
# (five once left an order whose two jobs were done uncompleted: a poll's save put back the
# task token of a render attempt that was over; see RenderJobTable.save), and five forever
# queued a burst's poll timers for 13 s beyond their due time in the 200-order fault run.
LOCAL_BATCHES_PER_MAPPING = 5
MAXIMUM_BATCHES_PER_MAPPING = 1_000
ADDED_BATCHES_PER_SECOND = 5  # 300 a minute


@dataclass
class QueueMapping:
    function: str
    queue_url: str
    queue_arn: str
    batch_size: int
    report_batch_item_failures: bool
    concurrency: int = 1  # batches in flight at once to begin with, and when traffic is low
    maximum_concurrency: int = 1  # batches in flight at most, while messages remain


def schedules_of(functions: dict[str, FunctionSpec], speedup: float = 1.0) -> list[Schedule]:
    found = []
    for spec in functions.values():
        for name, event in spec.events.items():
            if event.get("Type") in ("ScheduleV2", "Schedule"):
                expression = str((event.get("Properties") or {})["ScheduleExpression"])
                found.append(Schedule(spec.logical_id, name, rate_seconds(expression) / speedup))
    return found


def queue_mappings_of(functions: dict[str, FunctionSpec], resolver: Resolver) -> list[QueueMapping]:
    found = []
    for spec in functions.values():
        for event in spec.events.values():
            if event.get("Type") != "SQS":
                continue
            props = event.get("Properties") or {}
            arn = str(resolver.resolve(props["Queue"]))
            logical_id = next((lid for lid, known in resolver.arns.items() if known == arn), None)
            if logical_id is None:
                raise KeyError(f"{spec.logical_id}: queue {arn} is not in the template")
            maximum = (props.get("ScalingConfig") or {}).get("MaximumConcurrency")
            most = min(MAXIMUM_BATCHES_PER_MAPPING, int(maximum or MAXIMUM_BATCHES_PER_MAPPING))
            found.append(
                QueueMapping(
                    function=spec.logical_id,
                    queue_url=resolver.physical[logical_id],
                    queue_arn=arn,
                    batch_size=int(props.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (props.get("FunctionResponseTypes") or []),
                    concurrency=min(LOCAL_BATCHES_PER_MAPPING, most),
                    maximum_concurrency=most,
                )
            )
    return found


class Scheduler:
    """Runs each ``ScheduleV2`` function on its rate (divided by ``speedup``)."""

    def __init__(self, schedules: list[Schedule], invoke: Invoke) -> None:
        self.schedules = schedules
        self._invoke = invoke
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for schedule in self.schedules:
            thread = threading.Thread(
                target=self._run,
                args=(schedule,),
                daemon=True,
                name=f"schedule-{schedule.function}",
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def fire(self, schedule: Schedule) -> None:
        # The event EventBridge Scheduler sends when the schedule has no input of its own.
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.scheduler",
            "account": LOCAL_ACCOUNT,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": LOCAL_REGION,
            "resources": [
                f"arn:aws:scheduler:{LOCAL_REGION}:{LOCAL_ACCOUNT}:schedule/default/"
                f"{schedule.function}-{schedule.name}"
            ],
            "detail": {},
        }
        # A failing run was logged by the function; the schedule keeps running, as on AWS.
        with contextlib.suppress(Exception):
            self._invoke(schedule.function, event)

    def _run(self, schedule: Schedule) -> None:
        while not self._stop.wait(schedule.every_s):
            self.fire(schedule)


class QueuePoller:
    """An SQS event-source mapping: receive batches, invoke, delete what succeeded."""

    def __init__(
        self, mappings: list[QueueMapping], invoke: Invoke, sqs: Any, wait_s: int = 1
    ) -> None:
        self.mappings = mappings
        self._invoke = invoke
        self._sqs = sqs
        self._wait_s = wait_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        # Per mapping (by queue URL): batches in flight now, and whether a receive came back
        # full since the scaler last looked (messages remain).
        self._running: dict[str, int] = {}
        self._backlog: dict[str, bool] = {}

    def running(self, mapping: QueueMapping) -> int:
        """How many batches of ``mapping`` may be in flight now (its pollers)."""
        with self._lock:
            return self._running.get(mapping.queue_url, 0)

    def start(self) -> None:
        for mapping in self.mappings:
            for _ in range(mapping.concurrency):
                self._add_poller(mapping, lasting=True)
            if mapping.maximum_concurrency > mapping.concurrency:
                self._spawn(self._scale, mapping, f"sqs-{mapping.function}-scaler")

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)

    def _spawn(self, target: Callable[..., None], mapping: QueueMapping, name: str) -> None:
        thread = threading.Thread(target=target, args=(mapping,), daemon=True, name=name)
        with self._lock:
            self._threads = [known for known in self._threads if known.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _add_poller(self, mapping: QueueMapping, *, lasting: bool) -> None:
        with self._lock:
            number = self._running.get(mapping.queue_url, 0)
            self._running[mapping.queue_url] = number + 1
        target = self._run if lasting else self._run_while_busy
        self._spawn(target, mapping, f"sqs-{mapping.function}-{number}")

    def _scale(self, mapping: QueueMapping) -> None:
        """Each second that a receive came back full, up to five more pollers."""
        while not self._stop.wait(1.0):
            with self._lock:
                backlog = self._backlog.pop(mapping.queue_url, False)
                room = mapping.maximum_concurrency - self._running.get(mapping.queue_url, 0)
            for _ in range(min(room, ADDED_BATCHES_PER_SECOND) if backlog else 0):
                self._add_poller(mapping, lasting=False)

    def _run(self, mapping: QueueMapping) -> None:
        while not self._stop.is_set():
            self._poll_safely(mapping)

    def _run_while_busy(self, mapping: QueueMapping) -> None:
        """An added poller: it retires at the first receive that finds the queue empty."""
        try:
            while not self._stop.is_set() and self._poll_safely(mapping) > 0:
                pass
        finally:
            with self._lock:
                self._running[mapping.queue_url] -= 1

    def _poll_safely(self, mapping: QueueMapping) -> int:
        try:
            received = self.poll_once(mapping)
        except Exception:
            self._stop.wait(1.0)
            return 0
        if received >= min(mapping.batch_size, 10):
            with self._lock:
                self._backlog[mapping.queue_url] = True
        return received

    def poll_once(self, mapping: QueueMapping) -> int:
        """Deliver one batch; return how many messages it held."""
        response = self._sqs.receive_message(
            QueueUrl=mapping.queue_url,
            MaxNumberOfMessages=min(mapping.batch_size, 10),
            WaitTimeSeconds=self._wait_s,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [self._record(mapping, m) for m in messages]}
        try:
            result = self._invoke(mapping.function, event)
        except Exception:
            return len(messages)  # the whole batch becomes visible again and is retried
        failed: set[str] = set()
        if mapping.report_batch_item_failures and isinstance(result, dict):
            failed = {str(f.get("itemIdentifier")) for f in result.get("batchItemFailures") or []}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=mapping.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return len(messages)

    @staticmethod
    def _record(mapping: QueueMapping, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": mapping.queue_arn,
            "awsRegion": LOCAL_REGION,
        }
