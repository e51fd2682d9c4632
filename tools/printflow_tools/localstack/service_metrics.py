"""The CloudWatch metrics AWS publishes by itself, published on the local stack too.

moto stores metrics and evaluates alarms, but nothing feeds it what AWS's services feed
CloudWatch. So that the template's alarms watch real data locally:

- **functions' EMF lines**: in Lambda, Powertools prints an Embedded Metric Format line and
  CloudWatch Logs turns it into metrics; here all functions share one process, so the
  Powertools flush sends the same data with ``PutMetricData`` instead of printing it;
- **AWS/States**: ``ExecutionsSucceeded``/``Failed``/``Aborted``/``TimedOut`` per state
  machine, when moto's engine ends an execution;
- **AWS/Lambda**: ``Invocations`` and ``Errors`` per function, from the in-process invoker.

Installed by :class:`printflow_tools.localstack.stack.LocalStack` and removed on stop.

The data is sent by a thread of its own, in batches: CloudWatch takes it asynchronously on
AWS too (EMF lines are turned into metrics after the function has returned, Lambda's own
metrics never delay an invocation). Sending it inline, under one lock, made every function
invocation wait for the others' ``PutMetricData`` (profiled in the fault run: the local
stack's largest queue after moto's own request lock).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

from printflow_tools.localstack.shared_process import METRICS_LOCK, share_one_process

_EXECUTION_METRICS = {
    "SUCCEEDED": "ExecutionsSucceeded",
    "FAILED": "ExecutionsFailed",
    "ABORTED": "ExecutionsAborted",
    "TIMED_OUT": "ExecutionsTimedOut",
}
_log = logging.getLogger("printflow.localstack")
_BATCH = 500  # metrics per PutMetricData (AWS allows 1,000)


class ServiceMetrics:
    """Publishes into the local CloudWatch through ``cloudwatch`` (a boto3 client)."""

    def __init__(self, cloudwatch: Any) -> None:
        self._cloudwatch = cloudwatch
        self._originals: dict[str, Any] = {}
        self._pending: queue.Queue[tuple[str, list[dict[str, Any]]] | None] = queue.Queue()
        self._sender: threading.Thread | None = None

    def put(self, namespace: str, data: list[dict[str, Any]]) -> None:
        """Queue ``data`` for CloudWatch (sent within milliseconds, by the sender thread)."""
        if self._sender is None:
            self._send({namespace: list(data)})  # not installed: nobody else would send it
            return
        self._pending.put((namespace, list(data)))

    def flush(self) -> None:
        """Wait until everything queued so far is in CloudWatch."""
        self._pending.join()

    def _run_sender(self) -> None:
        while True:
            first = self._pending.get()
            batch = [first]
            while True:  # whatever else is waiting goes in the same calls
                try:
                    batch.append(self._pending.get_nowait())
                except queue.Empty:
                    break
            grouped: dict[str, list[dict[str, Any]]] = {}
            for entry in batch:
                if entry is not None:
                    grouped.setdefault(entry[0], []).extend(entry[1])
            self._send(grouped)
            for _ in batch:
                self._pending.task_done()
            if None in batch:
                return

    def _send(self, grouped: dict[str, list[dict[str, Any]]]) -> None:
        for namespace, data in grouped.items():
            for start in range(0, len(data), _BATCH):
                try:
                    self._cloudwatch.put_metric_data(
                        Namespace=namespace, MetricData=data[start : start + _BATCH]
                    )
                except Exception:  # a metric must never break the local stack
                    _log.warning(
                        "local stack: could not publish %s metrics", namespace, exc_info=True
                    )

    # -- functions ----------------------------------------------------------------------------

    def record_invocation(self, function_name: str, failed: bool) -> None:
        dimensions = [{"Name": "FunctionName", "Value": function_name}]
        self.put(
            "AWS/Lambda",
            [
                {
                    "MetricName": "Invocations",
                    "Dimensions": dimensions,
                    "Value": 1,
                    "Unit": "Count",
                },
                {
                    "MetricName": "Errors",
                    "Dimensions": dimensions,
                    "Value": 1 if failed else 0,
                    "Unit": "Count",
                },
            ],
        )

    def publish_emf(self, document: dict[str, Any]) -> None:
        """One EMF document (what Powertools would print) as ``PutMetricData``."""
        for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
            dimension_names = (directive.get("Dimensions") or [[]])[0]
            dimensions = [{"Name": n, "Value": str(document[n])} for n in dimension_names]
            data = []
            for metric in directive.get("Metrics", []):
                values = document.get(metric["Name"])
                values = values if isinstance(values, list) else [values]
                data.append(
                    {
                        "MetricName": metric["Name"],
                        "Dimensions": dimensions,
                        "Values": [float(v) for v in values],
                        "Unit": metric.get("Unit", "None"),
                    }
                )
            if data:
                self.put(str(directive["Namespace"]), data)

    # -- installation -------------------------------------------------------------------------

    def install(self) -> None:
        if self._originals:
            return
        share_one_process()
        self._sender = threading.Thread(
            target=self._run_sender, daemon=True, name="local-cloudwatch-metrics"
        )
        self._sender.start()
        publisher = self
        flush = AmazonCloudWatchEMFProvider.flush_metrics
        terminated = BaseExecutionWorkerCommunication.terminated
        self._originals = {"flush": flush, "terminated": terminated}

        def flush_to_cloudwatch(
            provider: AmazonCloudWatchEMFProvider, raise_on_empty_metrics: bool = False
        ) -> None:
            with METRICS_LOCK:  # nothing added between the serialising and the clearing
                if not provider.metric_set:
                    return
                document = dict(provider.serialize_metric_set())
                provider.clear_metrics()
            publisher.publish_emf(document)

        def terminated_with_metrics(communication: BaseExecutionWorkerCommunication) -> None:
            terminated(communication)
            execution = communication.execution
            name = _EXECUTION_METRICS.get(str(getattr(execution.exec_status, "value", "")))
            if name:
                dimensions = [{"Name": "StateMachineArn", "Value": execution.state_machine_arn}]
                publisher.put(
                    "AWS/States",
                    [{"MetricName": name, "Dimensions": dimensions, "Value": 1, "Unit": "Count"}],
                )

        AmazonCloudWatchEMFProvider.flush_metrics = flush_to_cloudwatch  # type: ignore[method-assign,assignment]
        BaseExecutionWorkerCommunication.terminated = terminated_with_metrics  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        if not self._originals:
            return
        if self._sender is not None:
            self._pending.put(None)  # sends what is queued, then stops
            self._sender.join(timeout=10)
            self._sender = None
        AmazonCloudWatchEMFProvider.flush_metrics = self._originals["flush"]  # type: ignore[method-assign]
        BaseExecutionWorkerCommunication.terminated = self._originals["terminated"]  # type: ignore[method-assign]
        self._originals = {}

    def counting(self, function_name: str, handler: Callable[[Any, Any], Any]) -> Any:
        """``handler`` reporting its invocations and errors as Lambda does."""

        def run(event: Any, context: Any) -> Any:
            try:
                result = handler(event, context)
            except BaseException:
                self.record_invocation(function_name, failed=True)
                raise
            self.record_invocation(function_name, failed=False)
            return result

        return run
