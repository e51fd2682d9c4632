"""Records of the side effects a flow step must not repeat: one item per order, effect and
execution+step, beside the order in the single table.

Item: ``pk = ORDER#{storefrontId}#{orderId}`` (the order's own partition: every record is
keyed per storefront too), ``sk = EFFECT#{kind}#{deliveryId}`` where ``deliveryId`` is the
step invocation's id (stable across the retries of one step in one execution, see
:attr:`printflow.steps.context.StepInvocation.delivery_id`).

The write-back step claims ``note`` before it writes a note to the shop and marks it done
after: a retry finds it done and writes nothing. A claim left by an attempt that died is
taken over once it is older than ``stale_after_s`` (longer than the function's timeout), so
the note is written at least once and twice only if a function dies between the shop's answer
and the record. Built to be the one mechanism for every exactly-once step effect (emails
included): ``kind`` names the effect.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from printflow.adapters.dynamo_types import deserialize_item, serialize_item
from printflow.adapters.order_table import order_pk
from printflow.adapters.own_writes import ALL_OLD, WRITE_ID, new_write_id, own_write
from printflow.domain.order import OrderKey

EFFECT_PREFIX = "EFFECT#"


class Claim(StrEnum):
    MINE = "mine"  # do the effect, then mark it done
    DONE = "done"  # an earlier attempt did it: do nothing
    BUSY = "busy"  # another attempt holds a fresh claim: retry later


def effect_key(key: OrderKey, kind: str, delivery_id: str) -> dict[str, str]:
    return {"pk": order_pk(key), "sk": f"{EFFECT_PREFIX}{kind}#{delivery_id}"}


class StepEffects:
    """Conditional claims on the order table (low-level DynamoDB client)."""

    def __init__(self, client: Any, table_name: str, *, stale_after_s: float = 300.0) -> None:
        self._client = client
        self._table = table_name
        self._stale_after_s = stale_after_s

    def claim(
        self, key: OrderKey, kind: str, delivery_id: str, *, step: str, execution: str, now: float
    ) -> Claim:
        write_id = new_write_id()
        item = {
            **effect_key(key, kind, delivery_id),
            "entity": "StepEffect",
            "kind": kind,
            "step": step,
            "execution": execution,
            "state": "claimed",
            "claimedAt": int(now),
            WRITE_ID: write_id,
        }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=serialize_item(item),
                ConditionExpression=(
                    "attribute_not_exists(pk) OR (#state = :claimed AND #claimedAt < :stale)"
                ),
                ExpressionAttributeNames={"#state": "state", "#claimedAt": "claimedAt"},
                ExpressionAttributeValues=serialize_item(
                    {":claimed": "claimed", ":stale": int(now - self._stale_after_s)}
                ),
                ReturnValuesOnConditionCheckFailure=ALL_OLD,
            )
        except ClientError as exc:
            if own_write(exc, write_id) is not None:
                return Claim.MINE  # our own claim, its answer lost and the request sent again
            stored = deserialize_item(exc.response.get("Item") or {})  # type: ignore[arg-type]
            return Claim.DONE if stored.get("state") == "done" else Claim.BUSY
        return Claim.MINE

    def mark_done(self, key: OrderKey, kind: str, delivery_id: str, *, now: float) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=serialize_item(effect_key(key, kind, delivery_id)),
            UpdateExpression="SET #state = :done, #doneAt = :at",
            ExpressionAttributeNames={"#state": "state", "#doneAt": "doneAt"},
            ExpressionAttributeValues=serialize_item({":done": "done", ":at": int(now)}),
        )

    def release(self, key: OrderKey, kind: str, delivery_id: str) -> None:
        """Drop a claim whose effect certainly did not happen (the shop refused it), so the
        step's retry may try again at once. A record marked done meanwhile is kept."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=serialize_item(effect_key(key, kind, delivery_id)),
                ConditionExpression="#state = :claimed",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=serialize_item({":claimed": "claimed"}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
