"""Make moto behave like AWS where PrintFlow's correctness depends on it.

moto's DynamoDB checks a ``ConditionExpression`` and then writes, without a lock: two
threads can both pass ``attribute_not_exists(pk)``. Real DynamoDB evaluates the condition and
the write atomically per item, and PrintFlow relies on that (duplicate webhooks, job leases).
Serialising moto's item writes restores the real semantics for the tests and the local stack.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

_WRITE_LOCK = threading.RLock()
_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_installed = False


def make_conditional_writes_atomic() -> None:
    """Idempotent: wraps moto's DynamoDB item writes in one process-wide lock."""
    global _installed
    if _installed:
        return
    for name in _WRITES:
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(self: DynamoDBBackend, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _WRITE_LOCK:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)
    _installed = True
