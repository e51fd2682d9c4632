"""Function log lines on the local stack: each labelled with the function that wrote it.

Every function runs in this one process, several at a time, and they share Powertools'
``Logger`` and ``Metrics`` singletons. The ``function_name`` key that ``inject_lambda_context``
appends is therefore whichever invocation started last, not the one writing the line (a
poll run's lines came out as ``[DownloadFunction]``). The stack records the running function
in a context variable for the invocation's thread (asyncio tasks inherit it), and the
formatter prefers that name; the keys functions append (``order_key``, ``job``) are kept per
invocation the same way. Work a function hands to a thread pool (the poller's AWS calls,
the download's part uploads) carries the name too: while a stack runs, pool threads run each
task in a copy of the submitter's context, as ``asyncio.to_thread`` does.

Powertools prints each invocation's EMF metrics document to stdout as raw JSON. The local
stack keeps metrics out of the log (it sets ``POWERTOOLS_METRICS_DISABLED``): the functions
share one metric set, so a flush cannot be attributed to one function for sure. Turned back
on, each flush becomes one labelled line in the function log instead of raw JSON
(``[WebhookFunction] metrics OrdersReceived=1``; the label is the flushing function).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any, TextIO

from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from printflow_tools.localstack.shared_process import METRICS_LOCK, share_one_process

CURRENT_FUNCTION: ContextVar[str | None] = ContextVar("printflow_local_function", default=None)
# The logger keys of the running invocation (None outside one): see PerInvocationKeys.
_INVOCATION_KEYS: ContextVar[dict[str, Any] | None] = ContextVar(
    "printflow_local_log_keys", default=None
)
_key_formatters: list[Any] = []

_NOISE = (
    "location",
    "timestamp",
    "service",
    "cold_start",
    "function_arn",
    "function_memory_size",
    "function_request_id",
    "xray_trace_id",
    "sampling_rate",
    "stack_trace",
)


@contextlib.contextmanager
def running(function: str) -> Iterator[None]:
    """Label everything logged in this context (and tasks started from it) ``function``.

    With :func:`keys_per_invocation` installed, the invocation also starts from the logger's
    keys as they were outside any invocation: keys another invocation appends stay its own.
    """
    token = CURRENT_FUNCTION.set(function)
    shared = _key_formatters[-1].shared_log_format if _key_formatters else None
    keys_token = _INVOCATION_KEYS.set(dict(shared) if shared is not None else None)
    try:
        yield
    finally:
        _INVOCATION_KEYS.reset(keys_token)
        CURRENT_FUNCTION.reset(token)


@contextlib.contextmanager
def keys_per_invocation(formatter: logging.Formatter) -> Iterator[None]:
    """Give each invocation its own copy of the Powertools formatter's keys while open.

    In Lambda every function has its process, so ``logger.append_keys(order_key=...)`` in
    one invocation never shows up in another function's lines; here they share one
    formatter, whose keys (its ``log_format`` dict) are swapped for a per-context copy.
    """
    original_class = type(formatter)

    class PerInvocationKeys(original_class):  # type: ignore[valid-type,misc]
        @property
        def log_format(self) -> dict[str, Any]:
            keys = _INVOCATION_KEYS.get()
            return keys if keys is not None else self.shared_log_format

        @log_format.setter
        def log_format(self, value: dict[str, Any]) -> None:
            if _INVOCATION_KEYS.get() is not None:
                _INVOCATION_KEYS.set(value)
            else:
                self.shared_log_format = value

    state = formatter.__dict__
    state["shared_log_format"] = state.pop("log_format")
    formatter.__class__ = PerInvocationKeys
    _key_formatters.append(formatter)
    try:
        yield
    finally:
        _key_formatters.remove(formatter)
        formatter.__class__ = original_class
        state["log_format"] = state.pop("shared_log_format")


_original_submit = ThreadPoolExecutor.submit
_carriers = 0
_carriers_lock = threading.Lock()


def _submit_in_context(
    self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> Future[Any]:
    return _original_submit(self, contextvars.copy_context().run, fn, *args, **kwargs)


@contextlib.contextmanager
def pools_carry_context() -> Iterator[None]:
    """While open, thread-pool tasks run in a copy of the submitter's context (nestable)."""
    global _carriers
    with _carriers_lock:
        _carriers += 1
        ThreadPoolExecutor.submit = _submit_in_context  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        with _carriers_lock:
            _carriers -= 1
            if _carriers == 0:
                ThreadPoolExecutor.submit = _original_submit  # type: ignore[method-assign]


class FunctionLogFormatter(logging.Formatter):
    """Powertools' JSON log line -> ``[FunctionName] level message key=value``."""

    def __init__(self, powertools: logging.Formatter) -> None:
        super().__init__()
        self._powertools = powertools

    def format(self, record: logging.LogRecord) -> str:
        line = self._powertools.format(record)
        try:
            doc = json.loads(line)
        except ValueError:
            return line
        logged_as = doc.pop("function_name", None)
        name = CURRENT_FUNCTION.get() or logged_as or "printflow"
        level = str(doc.pop("level", "INFO")).lower()
        message = doc.pop("message", "")
        for noise in _NOISE:
            doc.pop(noise, None)
        extra = " ".join(f"{k}={v}" for k, v in doc.items() if k != "exception")
        text = f"[{name}] {level:<7} {message}" + (f"  {extra}" if extra else "")
        if "exception" in doc and level == "error":
            text += "\n" + str(doc["exception"])
        return text


def metrics_line(document: dict[str, Any]) -> str:
    """An EMF document as ``[FunctionName] metrics Name=value ...`` (dimensions left out)."""
    names: list[str] = []
    for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
        names.extend(str(m.get("Name")) for m in directive.get("Metrics", []))
    values = " ".join(f"{name}={_value(document.get(name))}" for name in names)
    return f"[{CURRENT_FUNCTION.get() or 'printflow'}] metrics {values}"


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_value(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class MetricsToLog:
    """Route the shared ``Metrics`` provider's flushes into the function log, labelled."""

    def __init__(self, provider: Any, stream: TextIO | None) -> None:
        self._provider = provider
        self._stream = stream
        self._original: Any = None
        self._closed = False

    def install(self) -> None:
        share_one_process()
        self._original = self._provider.__dict__.get("flush_metrics")
        self._provider.flush_metrics = self._flush
        self._closed = False

    def close(self) -> None:
        """The stack stopped: a run still finishing flushes nothing (not raw JSON either)."""
        self._closed = True

    def uninstall(self) -> None:
        if self._original is None:
            self._provider.__dict__.pop("flush_metrics", None)
        else:
            self._provider.flush_metrics = self._original

    def _flush(self, raise_on_empty_metrics: bool = False) -> None:
        provider = self._provider
        with METRICS_LOCK:  # nothing added between the serialising and the clearing
            if not provider.metric_set:
                return  # nothing recorded: Lambda would print nothing either
            document = provider.serialize_metric_set()
            provider.clear_metrics()
        if self._closed:
            return
        if self._stream is not None and not is_metrics_disabled():
            self._stream.write(metrics_line(document) + "\n")
            self._stream.flush()
