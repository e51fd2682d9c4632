"""The local stack: template.yaml running on one machine, in one process, without Docker.

- moto in server mode (``http://127.0.0.1:4566``) with Step Functions executing ASL;
- every resource created from ``template.yaml`` (see :mod:`.resources`);
- the functions' handlers loaded in process with their template environment; the state
  machine's Lambda tasks, the HTTP API routes, the ``ScheduleV2`` schedules and the SQS
  event-source mappings all invoke them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
import urllib.request
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import boto3

from printflow.adapters import aws
from printflow_tools.localstack.executions import end_every_execution
from printflow_tools.localstack.fidelity import make_moto_behave_like_aws
from printflow_tools.localstack.function_logs import (
    FunctionLogFormatter,
    MetricsToLog,
    keys_per_invocation,
    pools_carry_context,
    running,
)
from printflow_tools.localstack.gateway import HttpApiGateway
from printflow_tools.localstack.handlers import Handler, load_handler
from printflow_tools.localstack.lambda_dispatch import LambdaContext, LambdaDispatcher
from printflow_tools.localstack.resources import LocalResources, create_resources
from printflow_tools.localstack.service_metrics import ServiceMetrics
from printflow_tools.localstack.template import LOCAL_REGION
from printflow_tools.localstack.triggers import (
    QueuePoller,
    Scheduler,
    queue_mappings_of,
    schedules_of,
)

LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": LOCAL_REGION,
    "AWS_REGION": LOCAL_REGION,
}


@dataclass
class StackOptions:
    aws_port: int = 4566
    api_port: int = 3000
    host: str = "127.0.0.1"
    # Divides every schedule's rate: 60 turns "rate(1 minute)" into once a second.
    schedule_speedup: float = 1.0
    # Extra environment for every function (egress allowlist, sender address, ...).
    function_env: dict[str, str] = field(default_factory=dict)
    log_stream: TextIO | None = None
    quiet_functions: bool = False


class LocalStack:
    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self.dispatcher = LambdaDispatcher()
        self.handlers: dict[str, Handler] = {}
        self.resources: LocalResources | None = None
        self.gateway: HttpApiGateway | None = None
        self.scheduler: Scheduler | None = None
        self.queues: QueuePoller | None = None
        self._moto: Any = None
        self._invoke_lock = threading.Lock()
        self.invocation_counts: dict[str, int] = {}
        self._in_flight = 0
        self.invocation_seconds: dict[str, float] = {}
        self._saved_env: dict[str, str | None] = {}
        self._metrics_to_log: MetricsToLog | None = None
        self._pool_context: contextlib.ExitStack | None = None
        # Called with (function, event, result) after each invocation: what happens around
        # the application in real life (a storefront plugin reacting to an order) hooks in here.
        self.after_invoke: list[Callable[[str, Any, Any], None]] = []
        self.service_metrics: ServiceMetrics | None = None

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def aws_endpoint(self) -> str:
        return f"http://{self.options.host}:{self.options.aws_port}"

    @property
    def api_url(self) -> str:
        assert self.gateway is not None
        return self.gateway.url

    def start(self) -> LocalStack:
        from moto.server import ThreadedMotoServer

        # Every client in this process (the handlers', the CLI's) must reach the emulator;
        # stop() puts the environment back as it was.
        overrides = {
            **LOCAL_CREDENTIALS,
            "MOTO_PORT": str(self.options.aws_port),  # moto's engine calls itself here
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            # All functions share this process: metrics (EMF lines on stdout in Lambda) would
            # only bury the log lines here (unless asked for: see function_logs).
            "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
        }
        self._saved_env = {name: os.environ.get(name) for name in overrides}
        os.environ.update(overrides)
        aws.client.cache_clear()  # clients keep the endpoint they were created with
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        # moto's werkzeug access log and its engine's failure traces would drown the
        # functions' own log lines; failures stay visible in the flow's history and logs.
        for noisy in ("werkzeug", "moto"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
        make_moto_behave_like_aws()
        self._moto = ThreadedMotoServer(self.options.host, self.options.aws_port, verbose=False)
        self._moto.start()
        # moto's backends are globals of this process: what an earlier stack or test left
        # there (tables, sent emails) must not appear in this one, a fresh account.
        self._reset_moto()
        self._configure_moto({"stepfunctions": {"execute_state_machine": True}})
        self._route_function_logs()

        self.service_metrics = ServiceMetrics(self.client("cloudwatch"))
        self.service_metrics.install()
        session = boto3.Session(region_name=LOCAL_REGION)
        self.resources = create_resources(session, endpoint_url=self.aws_endpoint)
        self.dispatcher.install()
        for logical_id, spec in self.resources.functions.items():
            handler = load_handler(spec, self.options.function_env)
            self.handlers[logical_id] = handler
            self.dispatcher.register(
                logical_id,
                self._counted(logical_id, handler),
                timeout_seconds=spec.timeout_s,
                memory_limit_in_mb=spec.memory_mb,
            )

        self.gateway = HttpApiGateway(
            self.resources.functions, self.invoke, self.options.host, self.options.api_port
        )
        self.gateway.start()
        self.scheduler = Scheduler(
            schedules_of(self.resources.functions, self.options.schedule_speedup), self.invoke
        )
        self.scheduler.start()
        self.queues = QueuePoller(
            queue_mappings_of(self.resources.functions, self.resources.resolver),
            self.invoke,
            self.client("sqs"),
        )
        self.queues.start()
        return self

    def stop(self) -> None:
        for part in (self.queues, self.scheduler, self.gateway):
            if part is not None:
                part.stop()
        if self._moto is not None:
            # Before the dispatcher goes: a stopped execution finishes the step it is in.
            end_every_execution(self.client("stepfunctions"))
        self.dispatcher.uninstall()
        if self._metrics_to_log is not None:
            # An invocation the triggers did not wait for may still flush its metrics after
            # the environment is restored: it must not print raw EMF JSON into the log.
            self._metrics_to_log.close()
            with self._invoke_lock:
                idle = self._in_flight == 0
            if idle:
                self._metrics_to_log.uninstall()
            self._metrics_to_log = None
        if self._pool_context is not None:
            self._pool_context.close()
            self._pool_context = None
        if self.service_metrics is not None:
            self.service_metrics.uninstall()
            self.service_metrics = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}
        aws.client.cache_clear()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- helpers ----------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=LOCAL_REGION,  # type: ignore[call-overload]
            endpoint_url=self.aws_endpoint,
        )

    def update_function_environment(self, function: str, variables: dict[str, str]) -> None:
        """As ``aws lambda update-function-configuration --environment``: ``variables`` over
        the template's environment (``{}``: the template's again) for ``function``.

        Its next invocations run in a fresh environment (a cold start, which reads the new
        settings), as Lambda's do after a configuration change; one already running ends in
        the old environment.
        """
        assert self.resources is not None, "the stack is not started"
        spec = self.resources.functions[function]
        handler = load_handler(spec, {**self.options.function_env, **variables})
        self.handlers[function] = handler
        self.dispatcher.register(
            function,
            self._counted(function, handler),
            timeout_seconds=spec.timeout_s,
            memory_limit_in_mb=spec.memory_mb,
        )

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Run a function's handler in this process, as Lambda would."""
        spec = self.resources.functions[function] if self.resources else None
        context = LambdaContext(
            function_name=function,
            invoked_function_arn=spec.arn if spec else function,
            memory_limit_in_mb=spec.memory_mb if spec else 256,
            aws_request_id=str(uuid.uuid4()),
            deadline=time.monotonic() + (spec.timeout_s if spec else 30),
        )
        return self._counted(function, self.handlers[function])(event, context)

    def _counted(self, function: str, handler: Handler) -> Handler:
        def run(event: Any, context: Any) -> Any:
            with self._invoke_lock:
                self.invocation_counts[function] = self.invocation_counts.get(function, 0) + 1
                self._in_flight += 1
            started = time.perf_counter()
            try:
                with running(function):
                    if self.service_metrics is None:
                        result = handler(event, context)
                    else:
                        result = self.service_metrics.counting(function, handler)(event, context)
            finally:
                # What Lambda would bill as duration (benches price it at the function's memory).
                elapsed = time.perf_counter() - started
                with self._invoke_lock:
                    self._in_flight -= 1
                    seconds = self.invocation_seconds.get(function, 0.0) + elapsed
                    self.invocation_seconds[function] = seconds
            for hook in self.after_invoke:
                try:
                    hook(function, event, result)
                except Exception:  # what happens around the app must not change its answer
                    logging.getLogger(__name__).exception("after-invoke hook failed")
            return result

        return run

    def _configure_moto(self, config: dict[str, Any]) -> None:
        request = urllib.request.Request(  # noqa: S310 - our own loopback server
            f"{self.aws_endpoint}/moto-api/config",
            data=json.dumps(config).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310
            pass

    def _reset_moto(self) -> None:
        request = urllib.request.Request(  # noqa: S310 (the local moto server on loopback)
            f"{self.aws_endpoint}/moto-api/reset", method="POST"
        )
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310
            pass

    def _route_function_logs(self) -> None:
        from printflow.observability import logger, metrics

        stream = self.options.log_stream or sys.stdout
        handler = logging.StreamHandler(stream)
        handler.setFormatter(FunctionLogFormatter(logger.registered_formatter))
        python_logger = logging.getLogger(logger.name)
        for existing in list(python_logger.handlers):
            python_logger.removeHandler(existing)
        if not self.options.quiet_functions:
            python_logger.addHandler(handler)
        python_logger.propagate = False
        self._metrics_to_log = MetricsToLog(
            metrics.provider, None if self.options.quiet_functions else stream
        )
        self._metrics_to_log.install()
        self._pool_context = contextlib.ExitStack()
        self._pool_context.enter_context(pools_carry_context())
        self._pool_context.enter_context(keys_per_invocation(logger.registered_formatter))


def wait_for(predicate: Callable[[], Any], timeout_s: float, interval_s: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy; ``TimeoutError`` otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout_s} s")
        time.sleep(interval_s)
