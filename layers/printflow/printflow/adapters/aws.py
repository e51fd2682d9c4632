"""boto3 clients, created once per execution environment and injectable in tests.

boto3 is imported on first use, not at module import: it costs ~0.15 s, and handler modules
are imported on every cold start before the first request can be served.
"""

from __future__ import annotations

from functools import cache
from typing import Any

# The poll function calls AWS from up to POLL_CONCURRENCY threads at once (100 in the
# template) through these shared clients. botocore's pool keeps 10 connections: every call
# beyond them opened a new one (a TCP and TLS handshake on AWS) and threw it away after
# ("Connection pool is full, discarding connection"). Connections are opened only when
# needed, so a function that calls from one thread still holds one.
MAX_POOL_CONNECTIONS = 100


@cache
def client(service: str, *, total_attempts: int = 4) -> Any:
    """A shared boto3 client for ``service`` (region and endpoint from the environment).

    ``AWS_ENDPOINT_URL`` (honoured by boto3 itself) points every client at the local stack.
    Retries are few and timeouts short: Lambda has little time, and each caller has its own
    retry policy (the storefront's redelivery, Step Functions' Retry, SQS redelivery).
    ``total_attempts`` counts the first send (botocore's own ``max_attempts`` counts only the
    retries). ``total_attempts=1`` for a request that must not be sent twice blindly:
    botocore re-sends a request whose answer was lost, which the service may have carried
    out already.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "total_max_attempts": total_attempts},
        connect_timeout=2,
        read_timeout=5,
        max_pool_connections=MAX_POOL_CONNECTIONS,
    )
    return boto3.client(service, config=config)  # type: ignore[call-overload]


# Error codes AWS services answer when they are throttling or briefly unable to serve.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)


def is_transient(exc: BaseException) -> bool:
    """Whether an AWS call failed in a way a later attempt may not: a timeout, a lost
    connection, throttling or a 5xx (after botocore's own attempts were spent)."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, HTTPClientError | ConnectionError):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error.get("Code") in TRANSIENT_ERROR_CODES or int(status or 0) >= 500
    return False
