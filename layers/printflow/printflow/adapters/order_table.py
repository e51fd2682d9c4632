"""The single DynamoDB table: every item shape PrintFlow stores is defined here.

Items (``pk`` / ``sk``):

- order:       ``ORDER#{storefrontId}#{orderId}`` / ``ORDER``
- storefront:  ``STOREFRONTS`` / ``{storefrontId}`` (one small partition, listed with a Query)

The sparse ``DueIndex`` (``dueShard`` / ``dueAt``, epoch seconds) holds only items that need
attention at a given time: orders the sweep must check (``SWEEP#{n}``) and, later, render
jobs due for a poll. Items leave the index by dropping the two attributes.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from printflow.adapters.dynamo_types import deserialize_item, serialize_item
from printflow.domain.order import Order, OrderKey, OrderStatus, RawBodyRef
from printflow.domain.storefront import Storefront, storefront_from_document
from printflow.errors import OrderAlreadyRecorded

ORDER_SK = "ORDER"
STOREFRONTS_PK = "STOREFRONTS"
DUE_INDEX = "DueIndex"
SWEEP_SHARD_PREFIX = "SWEEP#"


# The render steps of an order whose start finished: a retry then only moves its jobs to the
# new task token (see printflow.render.start).
START_DONE_ATTRIBUTE = "renderStartsDone"


def order_pk(key: OrderKey) -> str:
    return f"ORDER#{key.storefront_id}#{key.order_id}"


def order_key_attributes(key: OrderKey) -> dict[str, str]:
    """The key of an order item, in the plain form the flow's execution input carries."""
    return {"pk": order_pk(key), "sk": ORDER_SK}


@dataclass(frozen=True, slots=True)
class NewOrderRecord:
    """What intake writes for a first delivery."""

    order: Order
    raw_body: RawBodyRef
    flow: str
    received_at: str
    sweep_due_at: int
    due_shards: int

    def to_item(self, intake_id: str) -> dict[str, Any]:
        key = self.order.key
        return {
            **order_key_attributes(key),
            "entity": "Order",
            "storefrontId": key.storefront_id,
            "orderId": key.order_id,
            "status": OrderStatus.RECEIVED.value,
            "statusHistory": [{"status": OrderStatus.RECEIVED.value, "at": self.received_at}],
            "order": self.order.to_document(),
            "rawBody": {"bucket": self.raw_body.bucket, "key": self.raw_body.key},
            "flow": self.flow,
            "executionName": key.execution_name,
            "receivedAt": self.received_at,
            "updatedAt": self.received_at,
            "intakeId": intake_id,
            "publishedEvents": {},
            # Sparse index entry: the sweep checks the execution is running after this time.
            "dueShard": f"{SWEEP_SHARD_PREFIX}{random.randrange(self.due_shards)}",
            "dueAt": self.sweep_due_at,
        }


class OrderTable:
    """Typed access to the order table through a low-level DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    # -- orders ---------------------------------------------------------------------------

    def record_new_order(self, record: NewOrderRecord) -> str:
        """Write the order if it is new; return the intake id that owns the write.

        Raises :class:`OrderAlreadyRecorded` carrying the stored item when the order exists,
        in the same single call (``ReturnValuesOnConditionCheckFailure``).
        """
        intake_id = uuid.uuid4().hex
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=serialize_item(record.to_item(intake_id)),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            stored: dict[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
            existing = deserialize_item(stored)
            raise OrderAlreadyRecorded(existing) from exc
        return intake_id

    def forget_unacknowledged_order(self, key: OrderKey, intake_id: str) -> None:
        """Undo :meth:`record_new_order` when intake could not finish before answering.

        Only the write made by this intake attempt is removed (the storefront will retry and
        must then be treated as new, not as a duplicate of a half-recorded order).
        """
        try:
            self._client.delete_item(
                TableName=self.table_name,
                Key=serialize_item(order_key_attributes(key)),
                ConditionExpression="intakeId = :mine",
                ExpressionAttributeValues=serialize_item({":mine": intake_id}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def get_order(self, key: OrderKey) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self.table_name,
            Key=serialize_item(order_key_attributes(key)),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return deserialize_item(item) if item else None

    def recorded_orders(self, keys: list[OrderKey]) -> set[OrderKey]:
        """Which of ``keys`` have an order item (batches of 100, keys only, consistent)."""
        found: set[OrderKey] = set()
        by_pk = {order_pk(key): key for key in keys}
        pending = [order_key_attributes(key) for key in by_pk.values()]
        while pending:
            batch, pending = pending[:100], pending[100:]
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [serialize_item(k) for k in batch],
                    "ProjectionExpression": "pk",
                    "ConsistentRead": True,
                }
            }
            while request:
                answer = self._client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table_name, []):
                    found.add(by_pk[deserialize_item(item)["pk"]])
                # Throttled keys come back unprocessed: ask again for those only.
                request = answer.get("UnprocessedKeys") or {}
        return found

    def complete_order(self, order: Order, at: str) -> None:
        """Replace a thin order (``complete: false``) with the full one read from its store.

        Conditional on the stored order still being thin, so a slower retry never overwrites
        a completion with an older read; the order's status and history are not touched.
        """
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=serialize_item(order_key_attributes(order.key)),
                UpdateExpression="SET #order = :order, completedFromStoreAt = :at, updatedAt = :at",
                ConditionExpression="attribute_exists(pk) AND #order.complete = :thin",
                ExpressionAttributeNames={"#order": "order"},
                ExpressionAttributeValues=serialize_item(
                    {":order": order.to_document(), ":at": at, ":thin": False}
                ),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def mark_render_started(self, key: OrderKey, step_id: str) -> None:
        """Note that ``step_id`` started all its render work (every job is recorded).

        A list, not a string set: the order item stays plain JSON for every reader. A step
        noted twice (a retry racing the first attempt) is harmless.
        """
        self._client.update_item(
            TableName=self.table_name,
            Key=serialize_item(order_key_attributes(key)),
            UpdateExpression=(
                f"SET {START_DONE_ATTRIBUTE} = "
                f"list_append(if_not_exists({START_DONE_ATTRIBUTE}, :none), :step)"
            ),
            ExpressionAttributeValues=serialize_item({":none": [], ":step": [step_id]}),
        )

    def set_artifacts(
        self, key: OrderKey, artifacts: list[dict[str, Any]], manifest_key: str, at: str
    ) -> None:
        """Record the order's stored artifacts (what the status API and REST documents show)."""
        self._client.update_item(
            TableName=self.table_name,
            Key=serialize_item(order_key_attributes(key)),
            UpdateExpression="SET artifacts = :artifacts, manifestKey = :manifest, updatedAt = :at",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=serialize_item(
                {":artifacts": artifacts, ":manifest": manifest_key, ":at": at}
            ),
        )

    def note_project_discovery(self, key: OrderKey, step_id: str, note: dict[str, Any]) -> None:
        """Record how a render step's project discovery ended (e.g. cut short by its deadline)."""
        self._client.update_item(
            TableName=self.table_name,
            Key=serialize_item(order_key_attributes(key)),
            UpdateExpression="SET projectDiscovery = :note",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=serialize_item({":note": {"stepId": step_id, **note}}),
        )

    def claim_event(self, key: OrderKey, event: str, token_id: str) -> bool:
        """True once per (event, flow step attempt): a redelivery publishes nothing twice."""
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=serialize_item(order_key_attributes(key)),
                UpdateExpression="SET publishedEvents.#event = :token",
                ConditionExpression="attribute_exists(pk) AND "
                "(attribute_not_exists(publishedEvents.#event)"
                " OR publishedEvents.#event <> :token)",
                ExpressionAttributeNames={"#event": event},
                ExpressionAttributeValues=serialize_item({":token": token_id}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # -- the sweep ------------------------------------------------------------------------

    def sweep_candidates(self, shard: int, now: float, limit: int) -> list[OrderKey]:
        """Orders whose sweep check is due (still in the sparse index, ``dueAt <= now``)."""
        response = self._client.query(
            TableName=self.table_name,
            IndexName=DUE_INDEX,
            KeyConditionExpression="dueShard = :shard AND dueAt <= :now",
            ExpressionAttributeValues=serialize_item(
                {":shard": f"{SWEEP_SHARD_PREFIX}{shard}", ":now": round(now, 3)}
            ),
            Limit=limit,
        )
        keys = []
        for item in response.get("Items", []):
            _, storefront_id, order_id = item["pk"]["S"].split("#", 2)
            keys.append(OrderKey(storefront_id, order_id))
        return keys

    def leave_sweep(self, key: OrderKey) -> None:
        """The order's execution exists: take it out of the sweep's index."""
        self._client.update_item(
            TableName=self.table_name,
            Key=serialize_item(order_key_attributes(key)),
            UpdateExpression="REMOVE dueShard, dueAt",
            ConditionExpression="attribute_exists(pk)",
        )

    def postpone_sweep(self, key: OrderKey, due_at: float) -> None:
        self._client.update_item(
            TableName=self.table_name,
            Key=serialize_item(order_key_attributes(key)),
            UpdateExpression="SET dueAt = :due",
            ConditionExpression="attribute_exists(dueShard)",
            ExpressionAttributeValues=serialize_item({":due": round(due_at, 3)}),
        )

    # -- storefronts ----------------------------------------------------------------------

    def put_storefront(self, storefront: Storefront, updated_at: str) -> None:
        self._client.put_item(
            TableName=self.table_name,
            Item=serialize_item(
                {
                    "pk": STOREFRONTS_PK,
                    "sk": storefront.storefront_id,
                    "entity": "Storefront",
                    "config": storefront.to_document(),
                    "updatedAt": updated_at,
                }
            ),
        )

    def get_storefront(self, storefront_id: str) -> Storefront | None:
        response = self._client.get_item(
            TableName=self.table_name,
            Key=serialize_item({"pk": STOREFRONTS_PK, "sk": storefront_id}),
        )
        item = response.get("Item")
        if not item:
            return None
        return storefront_from_document(deserialize_item(item)["config"])

    def list_storefronts(self) -> list[Storefront]:
        storefronts: list[Storefront] = []
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=serialize_item({":pk": STOREFRONTS_PK}),
        ):
            for item in page.get("Items", []):
                storefronts.append(storefront_from_document(deserialize_item(item)["config"]))
        return storefronts
