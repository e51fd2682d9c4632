"""Conditional writes that recognise their own retry.

botocore sends a request again when its answer was lost (a read timeout, a reset
connection), and DynamoDB may have applied the first send. The second send then fails its own
condition against the item it has just written: a claim reads as taken by someone else, a
lease as lost, a move as refused. CI fault runs met each of these under load.

So every guarded write that must tell "mine" from "someone else's" stamps the item with a
write id made for that one call (:func:`new_write_id`) and asks for the stored item on a
condition failure (``ReturnValuesOnConditionCheckFailure="ALL_OLD"``). A failure whose stored
item carries the call's own write id is the call's write, done (:func:`own_write`).

A later write by someone else replaces the stamp, so the retry then reads as the conflict it
has become. Writes whose condition already accepts their own repeat (a completion claimed
again by the same job, a status run recorded once) need no stamp.
"""

from __future__ import annotations

import uuid
from typing import Any

from botocore.exceptions import ClientError

from printflow.adapters.dynamo_types import deserialize_item

WRITE_ID = "writeId"
WRITE_ID_VALUE = ":writeId"  # the expression value name the guarded writes use
ALL_OLD = "ALL_OLD"


def new_write_id() -> str:
    """A write id for one call (all its botocore attempts share it)."""
    return uuid.uuid4().hex


def is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def stored_item(exc: ClientError) -> dict[str, Any]:
    """The item a condition failure found (asked for with ``ALL_OLD``; empty if none)."""
    return deserialize_item(exc.response.get("Item") or {})  # type: ignore[arg-type]


def own_write(exc: ClientError, write_id: str) -> dict[str, Any] | None:
    """The stored item when the condition failure ``exc`` found this call's own write
    (its answer was lost and botocore sent it again); ``None`` for a real conflict.

    Re-raises ``exc`` when it is not a condition failure at all.
    """
    if not is_condition_failure(exc):
        raise exc
    stored = stored_item(exc)
    return stored if stored and stored.get(WRITE_ID) == write_id else None
