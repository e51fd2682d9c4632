"""Local-stack function logs: the right function's name on every line, metrics labelled."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from aws_lambda_powertools import Logger, Metrics

from printflow_tools.localstack.function_logs import (
    CURRENT_FUNCTION,
    FunctionLogFormatter,
    MetricsToLog,
    keys_per_invocation,
    pools_carry_context,
    running,
)


def capture(logger: Logger) -> io.StringIO:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(FunctionLogFormatter(logger.registered_formatter))
    python_logger = logging.getLogger(logger.name)
    python_logger.handlers = [handler]
    python_logger.propagate = False
    return stream


def test_a_line_is_labelled_with_the_function_running_not_the_last_one_started() -> None:
    logger = Logger(service="function-logs-test", level="INFO")
    stream = capture(logger)
    # Given the shared logger's keys say another invocation's function (the one started last)
    logger.append_keys(function_name="DownloadFunction")

    # When the poller logs, from its handler and from an asyncio task it started
    async def poll_run() -> None:
        logger.info("poll run")

    with running("PollerFunction"):
        logger.info("leasing jobs")
        asyncio.run(poll_run())
    logger.info("outside any function")

    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[PollerFunction] info    leasing jobs")
    assert lines[1].startswith("[PollerFunction] info    poll run")
    assert lines[2].startswith("[DownloadFunction] info    outside any function")


def test_emf_metrics_become_one_labelled_line_not_raw_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = Metrics(namespace="PrintFlowTest", service="function-logs-test")
    stream = io.StringIO()
    to_log = MetricsToLog(metrics.provider, stream)
    to_log.install()
    try:
        with running("WebhookFunction"):
            metrics.add_metric(name="OrdersReceived", unit="Count", value=1)
            metrics.add_metric(name="DuplicateDeliveries", unit="Count", value=2)
            metrics.flush_metrics()
            metrics.flush_metrics()  # nothing left: no line
    finally:
        to_log.uninstall()

    assert stream.getvalue() == "[WebhookFunction] metrics OrdersReceived=1 DuplicateDeliveries=2\n"
    assert capsys.readouterr().out == ""

    # Uninstalled, Powertools prints its EMF document again
    metrics.add_metric(name="OrdersReceived", unit="Count", value=1)
    metrics.flush_metrics()
    printed = json.loads(capsys.readouterr().out)
    assert printed["OrdersReceived"] == [1.0] or printed["OrdersReceived"] == 1.0


def test_a_run_finishing_after_the_stack_stopped_prints_no_raw_metrics(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = Metrics(namespace="PrintFlowTest", service="function-logs-test")
    stream = io.StringIO()
    to_log = MetricsToLog(metrics.provider, stream)
    to_log.install()
    to_log.close()  # the stack stopped while a poll run was still going
    try:
        metrics.add_metric(name="RenderPolls", unit="Count", value=6)
        metrics.flush_metrics()
    finally:
        to_log.uninstall()

    assert stream.getvalue() == ""
    assert capsys.readouterr().out == ""


def test_work_handed_to_a_thread_pool_keeps_the_functions_name() -> None:
    async def poll_run() -> str | None:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(2) as pool:
            return await loop.run_in_executor(pool, CURRENT_FUNCTION.get)

    with running("PollerFunction"):
        without = asyncio.run(poll_run())
        with pools_carry_context():
            carried = asyncio.run(poll_run())

    assert without is None  # what a plain pool does: why the stack turns carrying on
    assert carried == "PollerFunction"


def test_keys_one_invocation_appends_stay_out_of_another_functions_lines() -> None:
    logger = Logger(service="function-logs-keys", level="INFO")
    stream = capture(logger)
    logger.append_keys(region="local")  # appended at cold start, outside any invocation

    with keys_per_invocation(logger.registered_formatter):
        with running("WebhookFunction"):
            logger.append_keys(order_key="demo-woo/7311")
            logger.info("order recorded")
            with running("PollerFunction"):  # another invocation, meanwhile
                logger.info("poll run")
            logger.info("flow started")
        logger.info("between invocations")
    logger.append_keys(after="yes")
    logger.info("uninstalled")

    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[WebhookFunction] info    order recorded")
    assert "order_key=demo-woo/7311" in lines[0] and "region=local" in lines[0]
    assert lines[1].startswith("[PollerFunction] info    poll run")
    assert "order_key" not in lines[1] and "region=local" in lines[1]
    assert "order_key=demo-woo/7311" in lines[2]
    assert "order_key" not in lines[3]
    assert "after=yes" in lines[4] and "region=local" in lines[4]
