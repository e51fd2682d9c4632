"""The local stack, started once for the e2e tests, on free ports."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator

import pytest

from printflow_tools.localstack.environment import LocalEnvironment
from printflow_tools.localstack.stack import StackOptions


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="package")
def local_stack() -> Iterator[LocalEnvironment]:
    options = StackOptions(
        api_port=free_port(),
        aws_port=free_port(),
        schedule_speedup=60.0,
        log_stream=io.StringIO(),
    )
    environment = LocalEnvironment(options=options).start()
    try:
        yield environment
    finally:
        environment.stop()
