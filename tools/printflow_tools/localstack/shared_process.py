"""What running every function in one process changes, and how the local stack undoes it.

On AWS each execution environment is a process that serves one invocation at a time, so
Powertools keeps its state in plain, unlocked dictionaries shared by every instance:

- ``Metrics``: the metric set, dimensions and metadata are class-level dictionaries (so that
  a metric added anywhere is flushed by the handler's ``log_metrics``). Here two functions
  run at once in two threads: a flush iterating the set while the other thread adds a metric
  raised ``RuntimeError: dictionary changed size during iteration`` from the ``finally`` of
  ``log_metrics``, which replaced the step's own error (seen once in CI: a write-back step's
  ``HTTP 401`` cause came out as that RuntimeError).
- ``Logger``: every function has the same service name, so they share one formatter, whose
  keys each invocation clears and appends while another thread's log line iterates them (a
  line lost to logging's "--- Logging error ---").

:func:`share_one_process` makes those operations atomic with one lock per kind of state. It
serialises only Powertools' bookkeeping (microseconds), not the functions, and changes
nothing a function can observe on AWS. It does not separate the state: one function's
metrics may be flushed by another's handler, and a log line may carry keys another thread
appended; the metrics' totals are the same either way.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

# Held by every reader and writer of the shared metric set, the flushes included (each
# serialises the set and clears it under it, so no metric added between is lost).
METRICS_LOCK = threading.RLock()
_FORMATTER_LOCK = threading.RLock()
_METRIC_OPERATIONS = (
    "add_metric",
    "add_dimension",
    "add_dimensions",
    "add_metadata",
    "set_default_dimensions",
    "clear_metrics",
    "serialize_metric_set",
    "flush_metrics",
)
_FORMATTER_OPERATIONS = ("format", "append_keys", "remove_keys", "clear_state")
_installed = False
_install_lock = threading.Lock()


def share_one_process() -> None:
    """Idempotent: from now on Powertools' shared state is changed and read atomically."""
    global _installed
    with _install_lock:
        if _installed:
            return
        for name in _METRIC_OPERATIONS:
            _hold_while_running(AmazonCloudWatchEMFProvider, name, METRICS_LOCK)
        for name in _FORMATTER_OPERATIONS:
            _hold_while_running(LambdaPowertoolsFormatter, name, _FORMATTER_LOCK)
        _installed = True


def _hold_while_running(owner: type, name: str, lock: Any) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def holding(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(*args, **kwargs)

    setattr(owner, name, holding)
