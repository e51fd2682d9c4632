"""Make moto behave like AWS where PrintFlow's correctness depends on it.

- moto's DynamoDB checks a ``ConditionExpression`` and then writes, without a lock: two
  threads can both pass ``attribute_not_exists(pk)``. Real DynamoDB evaluates the condition
  and the write atomically per item, and PrintFlow relies on that (duplicate webhooks, job
  leases). Serialising moto's item writes restores the real semantics.
- moto's reads iterate an item's attributes while another thread may be writing them (its
  Step Functions engine runs ``dynamodb:updateItem`` states on a thread of its own), which
  fails with "dictionary changed size during iteration". DynamoDB never returns a torn item,
  so reads take the same lock.
- moto 5.2's ``SendTaskFailure`` handler drops the ``cause`` parameter, so a flow's Catch
  sees ``Cause: null``. AWS passes it through; so does the patched handler.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.stepfunctions.responses import StepFunctionResponse

_ITEM_LOCK = threading.RLock()
_SERIALISED = (
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "batch_write_item",
    "get_item",
    "batch_get_item",
    "query",
    "scan",
    "transact_get_items",
)
_installed = False


def make_moto_behave_like_aws() -> None:
    """Idempotent: applies the corrections above to the moto backends in this process."""
    global _installed
    if _installed:
        return
    for name in _SERIALISED:
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(
            self: DynamoDBBackend, *args: Any, __original: Any = original, **kwargs: Any
        ) -> Any:
            with _ITEM_LOCK:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)
    StepFunctionResponse.send_task_failure = _send_task_failure_with_cause  # type: ignore[method-assign]
    _installed = True


def _send_task_failure_with_cause(self: StepFunctionResponse) -> Any:
    from moto.core.responses import EmptyResult

    self.stepfunction_backend.send_task_failure(  # type: ignore[call-arg]
        self._get_param("taskToken"),
        error=self._get_param("error"),
        cause=self._get_param("cause"),
    )
    return EmptyResult()
