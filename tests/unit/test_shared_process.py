"""The local stack runs every function in one process: Powertools' shared metric set and log
formatter must stay whole while two functions use them at once (on AWS each is alone in its
process). Each test races two threads, as two concurrent invocations would."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from printflow_tools.localstack.shared_process import METRICS_LOCK, share_one_process

ROUNDS = 4_000


def race(writer: Callable[[int], None], reader: Callable[[], None]) -> list[BaseException]:
    """Run ``writer`` and ``reader`` at once; the exceptions either raised."""
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        try:
            for n in range(ROUNDS):
                writer(n)
        except BaseException as exc:  # the race's outcome is the result
            errors.append(exc)
        finally:
            done.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows at once
    thread = threading.Thread(target=write)
    thread.start()
    try:
        while not done.is_set():
            reader()
    except BaseException as exc:
        errors.append(exc)
    finally:
        thread.join()
        sys.setswitchinterval(interval)
    return errors


def test_a_flush_meets_metrics_added_by_another_function() -> None:
    share_one_process()
    metrics = Metrics(namespace="PrintFlowTest", service="race")
    metrics.clear_metrics()

    def add(n: int) -> None:
        if n % 99 == 0:  # a new invocation's metrics: the set grows again (under Powertools'
            metrics.clear_metrics()  # own flush at 100)
        metrics.add_metric(name=f"Metric{n % 99}", unit=MetricUnit.Count, value=1)

    def flush() -> None:  # as the local stack's flushes read the set
        with METRICS_LOCK:
            if metrics.metric_set:
                metrics.serialize_metric_set()

    errors = race(add, flush)
    metrics.clear_metrics()

    assert errors == []


def test_a_log_line_meets_keys_another_function_appends() -> None:
    share_one_process()
    lines: list[str] = []

    class Keep:
        def write(self, text: str) -> None:
            lines.append(text)

        def flush(self) -> None:
            pass

    logger = Logger(service="race-logs", stream=Keep())

    def append(n: int) -> None:
        logger.structure_logs(**{f"key{n % 50}": n})  # clear and append, as each invocation
        logger.append_keys(**{f"extra{n % 70}": n})

    logged = 0

    def log() -> None:
        nonlocal logged
        logger.warning("a line")  # a line lost to the race goes to logging's handleError
        logged += 1

    errors = race(append, log)

    assert errors == []
    assert len(lines) == logged > 0
    assert all('"message":"a line"' in line for line in lines)
