"""boto3 clients, created once per execution environment and injectable in tests."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Lambda has little time: fail fast and let the caller's own retry policy decide.
_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
)


@cache
def client(service: str) -> Any:
    """A shared boto3 client for ``service`` (region and endpoint from the environment).

    ``AWS_ENDPOINT_URL`` (honoured by boto3 itself) points every client at the local stack.
    """
    return boto3.client(service, config=_CONFIG)  # type: ignore[call-overload]
