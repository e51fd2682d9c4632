"""AWS's own brief outages are a step's transient failures, never an order's.

A step's Lambda that meets a timeout, a lost connection, throttling or a 5xx from DynamoDB,
S3, SQS or Step Functions (after botocore's attempts) would otherwise report the botocore
class name (``ReadTimeoutError``) as its ``errorType``, which the compiled ``Retry`` does not
name: the flow's ``Catch`` took it and failed the order. Seen in the 1,000-order fault run,
where the loaded local stack answered some calls after the client's read timeout. As
:class:`~printflow.errors.StepRetryable` it is retried like a provider's 503, within the
step's retry policy (every step guards its work against a second run).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from printflow.adapters import aws
from printflow.errors import StepRetryable


@contextmanager
def aws_outages_are_retried() -> Iterator[None]:
    """Raise :class:`StepRetryable` for a transient AWS failure inside the block."""
    try:
        yield
    except Exception as exc:
        if aws.is_transient(exc):
            raise StepRetryable(f"AWS unavailable: {type(exc).__name__}: {exc}") from exc
        raise
