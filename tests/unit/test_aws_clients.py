"""The shared boto3 clients hold a connection for every thread that calls AWS at once."""

from __future__ import annotations

import logging
import threading

import pytest
from moto.server import ThreadedMotoServer

from printflow.adapters import aws
from printflow_tools.bench_servers import free_port
from printflow_tools.localstack.template import load_template


def test_the_pool_holds_the_poll_function_s_concurrency() -> None:
    resources = load_template()["Resources"]
    concurrencies = [
        int(variables["POLL_CONCURRENCY"])
        for resource in resources.values()
        for variables in [
            resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        ]
        if "POLL_CONCURRENCY" in variables
    ]

    assert concurrencies  # the poll functions still say how many threads they run
    assert max(concurrencies) <= aws.MAX_POOL_CONNECTIONS


def test_concurrent_calls_reuse_their_connections(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws.client.cache_clear()
    try:
        client = aws.client("dynamodb")
        caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")
        threads = [
            threading.Thread(target=lambda: [client.list_tables() for _ in range(5)])
            for _ in range(30)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        aws.client.cache_clear()
        server.stop()

    messages = [record.getMessage() for record in caplog.records]
    opened = sum("Starting new HTTP connection" in message for message in messages)
    assert not [m for m in messages if "pool is full" in m]
    assert opened <= 30  # at most one per thread, each kept for the thread's next calls
