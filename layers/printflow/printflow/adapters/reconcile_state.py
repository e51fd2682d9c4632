"""Reconciliation's per-storefront state in the order table: the watermark and the schedule.

One item per storefront, ``pk = RECONCILE``, ``sk = {storefrontId}``:

- ``watermark``: the creation time (UTC, ``YYYY-MM-DDTHH:MM:SSZ``, so strings compare in time
  order) of the newest order of the last page recorded; it only moves forward;
- ``nextDueAt``: when the storefront should be pulled next (epoch seconds). A run claims a
  due storefront by moving it to ``now + lease`` with a conditional write, so two runs never
  pull the same storefront at once, and a run that dies is retried after the lease.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from printflow.adapters.dynamo_types import deserialize_item, serialize_item
from printflow.adapters.own_writes import ALL_OLD, WRITE_ID, new_write_id, own_write

RECONCILE_PK = "RECONCILE"


@dataclass(frozen=True, slots=True)
class PullState:
    storefront_id: str
    watermark: str | None = None
    next_due_at: float = 0.0


class ReconcileStateTable:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    def states(self) -> dict[str, PullState]:
        """Every storefront's state (one partition: one item per storefront)."""
        found: dict[str, PullState] = {}
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=serialize_item({":pk": RECONCILE_PK}),
            ConsistentRead=True,
        ):
            for raw in page.get("Items", []):
                item = deserialize_item(raw)
                found[item["sk"]] = PullState(
                    item["sk"], item.get("watermark"), float(item.get("nextDueAt") or 0)
                )
        return found

    def claim(self, storefront_id: str, now: float, lease_until: float) -> bool:
        """Take a due storefront for this run; False when it is not due (or another run has it)."""
        write_id = new_write_id()
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=serialize_item({"pk": RECONCILE_PK, "sk": storefront_id}),
                UpdateExpression=f"SET nextDueAt = :lease, {WRITE_ID} = :writeId",
                ConditionExpression="attribute_not_exists(nextDueAt) OR nextDueAt <= :now",
                ExpressionAttributeValues=serialize_item(
                    {":lease": lease_until, ":now": now, ":writeId": write_id}
                ),
                ReturnValuesOnConditionCheckFailure=ALL_OLD,
            )
        except ClientError as exc:
            return own_write(exc, write_id) is not None  # True: our own claim, sent again
        return True

    def advance(self, storefront_id: str, watermark: str) -> None:
        """Move the watermark forward (never back) once a page is recorded."""
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=serialize_item({"pk": RECONCILE_PK, "sk": storefront_id}),
                UpdateExpression="SET watermark = :mark",
                ConditionExpression="attribute_not_exists(watermark) OR watermark < :mark",
                ExpressionAttributeValues=serialize_item({":mark": watermark}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def finish(self, storefront_id: str, next_due_at: float, summary: dict[str, Any]) -> None:
        """Schedule the next pull and keep the last run's outcome (for operators)."""
        self._client.update_item(
            TableName=self.table_name,
            Key=serialize_item({"pk": RECONCILE_PK, "sk": storefront_id}),
            UpdateExpression="SET nextDueAt = :next, lastRun = :summary",
            ExpressionAttributeValues=serialize_item({":next": next_due_at, ":summary": summary}),
        )
