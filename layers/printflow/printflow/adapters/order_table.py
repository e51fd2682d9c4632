"""The single DynamoDB table: every item shape PrintFlow stores is defined here.

Items (``pk`` / ``sk``):

- order:       ``ORDER#{storefrontId}#{orderId}`` / ``ORDER``
- storefront:  ``STOREFRONTS`` / ``{storefrontId}`` (one small partition, listed with a Query)

The ``StatusIndex`` (``statusKey`` = ``{storefrontId}#{status}`` / ``statusAt``, ISO 8601)
lists a storefront's orders in one status, newest first; every write of an order's status
writes both attributes too (:func:`status_index_attributes`; the compiled flow's
``.failed`` states build the same values in ASL).

Likewise an order with more artifacts than :data:`INLINE_ARTIFACTS_MAX_BYTES` hold keeps
``artifactCount`` and a reference to its manifest in S3 (``artifactsDocument``), which
:meth:`OrderTable.get_order` reads the full list back from.

An order whose document would make its item larger than :data:`INLINE_ORDER_MAX_BYTES`
(a B2B order with hundreds of customised line items; DynamoDB refuses items over 400 KB)
keeps its full document in S3 beside its raw body (``orderDocument``) and a bounded one in
the item: the same fields without ``lineItems``, plus ``lineItemCount``. :meth:`OrderTable.
get_order` puts the full document back, so every step reads the order it always did.

The sparse ``DueIndex`` (``dueShard`` / ``dueAt``, epoch seconds) holds only items that need
attention at a given time: orders the sweep must check (``SWEEP#{n}``) and, later, render
jobs due for a poll. Items leave the index by dropping the two attributes.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from printflow.adapters import aws
from printflow.adapters.dynamo_types import deserialize_item, serialize_item
from printflow.adapters.own_writes import ALL_OLD, WRITE_ID, new_write_id, own_write
from printflow.adapters.raw_bodies import OrderDocuments
from printflow.domain.order import Order, OrderKey, OrderStatus, RawBodyRef
from printflow.domain.storefront import Storefront
from printflow.errors import OrderAlreadyRecorded
from printflow.platforms.documents import storefront_from_document

ORDER_SK = "ORDER"
STOREFRONTS_PK = "STOREFRONTS"
DUE_INDEX = "DueIndex"
STATUS_INDEX = "StatusIndex"
SWEEP_SHARD_PREFIX = "SWEEP#"
# The order document's JSON size above which it moves to S3: leaves the rest of the 400 KB
# item (status history, artifacts, events) ample room.
INLINE_ORDER_MAX_BYTES = 256 * 1024
ORDER_DOCUMENT_ATTRIBUTE = "orderDocument"
# The artifact list's JSON size above which the item keeps only ``artifactCount`` and a
# reference to the manifest (which lists every artifact): a 2,000-line order's ~1 MB list
# would take the item over DynamoDB's 400 KB. 256 KB of order document + this + history fit.
INLINE_ARTIFACTS_MAX_BYTES = 64 * 1024
ARTIFACTS_DOCUMENT_ATTRIBUTE = "artifactsDocument"


# The render steps of an order whose start finished: a retry then only moves its jobs to the
# new task token (see printflow.render.start).
START_DONE_ATTRIBUTE = "renderStartsDone"
# When a run of a render step first met its provider unavailable while starting (render.start).
RENDER_START_UNAVAILABLE_ATTRIBUTE = "renderStartUnavailable"
# Which download completes a render step attempt: {token, job} (download.service).
COMPLETION_ATTRIBUTE = "renderCompletion"
# The successStatus a started render step sets once its files are stored: the download
# function writes it when it completes the step's task token (one write, with the artifacts).
PENDING_STATUS_ATTRIBUTE = "renderPendingStatus"
# The last step run (execution + step) whose status was written: a repeated write of the same
# run (a Lambda retried after it had written, a redelivered download) appends no second entry.
STATUS_RUN_ATTRIBUTE = "statusRun"


@dataclass(frozen=True, slots=True)
class StepStatus:
    """One step's ``successStatus`` write: the status, the step and, on an error path, the
    error the step was reached with (``{step, error, cause, at}``)."""

    step_id: str
    status: str
    at: str
    run_id: str
    error: dict[str, str] | None = None


EMAIL_SK_PREFIX = "EMAIL#"
REST_SK_PREFIX = "REST#"
EMAIL_SENDING = "sending"  # claimed; the send may or may not have happened
EMAIL_SENT = "sent"
EMAIL_UNSENT = "unsent"  # SES refused it: nothing went out, a retry may send


def email_sk(step_id: str, delivery_id: str) -> str:
    return f"{EMAIL_SK_PREFIX}{step_id}#{delivery_id}"


@dataclass(frozen=True, slots=True)
class EmailClaim:
    """The answer to :meth:`OrderTable.claim_email`."""

    claimed: bool
    state: str
    record: dict[str, Any]


def order_pk(key: OrderKey) -> str:
    return f"ORDER#{key.storefront_id}#{key.order_id}"


def status_key(storefront_id: str, status: str) -> str:
    """The ``StatusIndex`` partition of a storefront's orders in ``status``."""
    return f"{storefront_id}#{status}"


def status_index_attributes(key: OrderKey, status: str, at: str) -> dict[str, str]:
    """What an order item carries so that it appears in the ``StatusIndex`` under ``status``.

    Whoever writes an order's ``status`` writes these two attributes in the same update.
    """
    return {"statusKey": status_key(key.storefront_id, status), "statusAt": at}


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
            **status_index_attributes(key, OrderStatus.RECEIVED.value, self.received_at),
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

    def __init__(
        self, client: Any, table_name: str, documents: OrderDocuments | None = None
    ) -> None:
        self._client = client
        self.table_name = table_name
        self._documents = documents

    @property
    def documents(self) -> OrderDocuments:
        # Most items never need S3: the client is created the first time one does.
        if self._documents is None:
            self._documents = OrderDocuments(aws.client("s3"))
        return self._documents

    def _bounded(self, order: Order, bucket: str | None) -> tuple[dict[str, Any], Any]:
        """The order document for the item, and the S3 reference of the full one (or None)."""
        document = order.to_document()
        if len(json.dumps(document, separators=(",", ":"))) <= INLINE_ORDER_MAX_BYTES:
            return document, None
        if bucket is None:
            raise ValueError("a large order needs a bucket for its document")
        ref = self.documents.put(bucket, order.key, document)
        bounded = {k: v for k, v in document.items() if k != "lineItems"}
        bounded["lineItemCount"] = len(order.line_items)
        return bounded, ref

    # -- orders ---------------------------------------------------------------------------

    def record_new_order(self, record: NewOrderRecord) -> str:
        """Write the order if it is new; return the intake id that owns the write.

        Raises :class:`OrderAlreadyRecorded` carrying the stored item when the order exists,
        in the same single call (``ReturnValuesOnConditionCheckFailure``).
        """
        intake_id = uuid.uuid4().hex
        item = record.to_item(intake_id)
        item["order"], item[ORDER_DOCUMENT_ATTRIBUTE] = self._bounded(
            record.order, record.raw_body.bucket
        )
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=serialize_item(item),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            stored: dict[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
            existing = deserialize_item(stored)
            if existing.get("intakeId") == intake_id:
                # Our own write: its answer was lost and botocore sent it again, which found
                # the item it had just written. The order is new, not a duplicate delivery.
                return intake_id
            raise OrderAlreadyRecorded(existing) from exc
        return intake_id

    def get_order(self, key: OrderKey, *, full_order: bool = True) -> dict[str, Any] | None:
        """The order item; with ``full_order`` its ``order`` is the full document and its
        ``artifacts`` the full list, wherever kept.

        ``full_order=False`` leaves a large order's bounded document and list (no S3 read).
        """
        response = self._client.get_item(
            TableName=self.table_name,
            Key=serialize_item(order_key_attributes(key)),
            ConsistentRead=True,
        )
        raw = response.get("Item")
        if not raw:
            return None
        item = deserialize_item(raw)
        ref = item.get(ORDER_DOCUMENT_ATTRIBUTE)
        if full_order and isinstance(ref, dict):
            item["order"] = self.documents.get(ref)
        artifacts = item.get(ARTIFACTS_DOCUMENT_ATTRIBUTE)
        if full_order and isinstance(artifacts, dict):
            item["artifacts"] = self.documents.get(artifacts).get("artifacts") or []
        return item

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

    def complete_order(self, order: Order, at: str, document_bucket: str | None = None) -> None:
        """Replace a thin order (``complete: false``) with the full one read from its store.

        Conditional on the stored order still being thin, so a slower retry never overwrites
        a completion with an older read; the order's status and history are not touched. A
        large completed order keeps its full document in ``document_bucket``.
        """
        document, ref = self._bounded(order, document_bucket)
        values: dict[str, Any] = {":order": document, ":at": at, ":thin": False}
        update = "SET #order = :order, completedFromStoreAt = :at, updatedAt = :at"
        if ref is not None:
            update += f", {ORDER_DOCUMENT_ATTRIBUTE} = :ref"
            values[":ref"] = ref
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=serialize_item(order_key_attributes(order.key)),
                UpdateExpression=update,
                ConditionExpression="attribute_exists(pk) AND #order.complete = :thin",
                ExpressionAttributeNames={"#order": "order"},
                ExpressionAttributeValues=serialize_item(values),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def mark_render_started(
        self,
        key: OrderKey,
        step_id: str,
        success_status: str = "",
        *,
        fail_flow_cause: str | None = None,
        error: dict[str, str] | None = None,
    ) -> None:
        """Note that ``step_id`` started all its render work (every job is recorded), and the
        status the step sets when its files are stored (with the error record of an onError
        path, and the cause its token fails with when the step ends a failed flow).

        A list, not a string set: the order item stays plain JSON for every reader. A step
        noted twice (a retry racing the first attempt) is harmless.
        """
        self._client.update_item(
            TableName=self.table_name,
            Key=serialize_item(order_key_attributes(key)),
            UpdateExpression=(
                f"SET {START_DONE_ATTRIBUTE} = "
                f"list_append(if_not_exists({START_DONE_ATTRIBUTE}, :none), :step), "
                f"{PENDING_STATUS_ATTRIBUTE} = :pending"
            ),
            ExpressionAttributeValues=serialize_item(
                {
                    ":none": [],
                    ":step": [step_id],
                    ":pending": {
                        "step": step_id,
                        "status": success_status,
                        **({"error": error} if error else {}),
                        **({"failFlowCause": fail_flow_cause} if fail_flow_cause else {}),
                    },
                }
            ),
        )

    def forget_render_start(self, key: OrderKey, step_id: str) -> None:
        """An order retry starts some of the step's render work again (see render.start)."""
        item = self.get_order(key) or {}
        done = list(item.get(START_DONE_ATTRIBUTE) or ())
        self._client.update_item(
            TableName=self.table_name,
            Key=serialize_item(order_key_attributes(key)),
            UpdateExpression=f"SET {START_DONE_ATTRIBUTE} = :kept",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=serialize_item({":kept": [s for s in done if s != step_id]}),
        )

    def note_render_start_unavailable(self, key: OrderKey, run_id: str, now: float) -> float:
        """When this run of a render step first met its provider unavailable (``now`` the
        first time): ``{runId, since}``, replaced when another run meets an outage.

        A read, then a write only when the run is new: the attempts of one run never
        overlap (Step Functions starts a retry after the attempt failed), and two runs of one
        step (an order retry) do not run at once either.
        """
        response = self._client.get_item(
            TableName=self.table_name,
            Key=serialize_item(order_key_attributes(key)),
            ProjectionExpression=RENDER_START_UNAVAILABLE_ATTRIBUTE,
            ConsistentRead=True,
        )
        noted = deserialize_item(response.get("Item") or {}).get(RENDER_START_UNAVAILABLE_ATTRIBUTE)
        if isinstance(noted, dict) and noted.get("runId") == run_id and "since" in noted:
            return float(noted["since"])
        self._client.update_item(
            TableName=self.table_name,
            Key=serialize_item(order_key_attributes(key)),
            UpdateExpression=f"SET {RENDER_START_UNAVAILABLE_ATTRIBUTE} = :noted",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=serialize_item(
                {":noted": {"runId": run_id, "since": round(now, 3)}}
            ),
        )
        return now

    def record_step_status(self, key: OrderKey, status: StepStatus) -> bool:
        """Set the order's status to a step's ``successStatus``: status, current step, a
        history entry and, on an error path, the error it was reached with. One write.

        ``False`` when this run's status was written before (nothing changes). The state
        machine has no status states: this is each step's own last act (see
        :mod:`printflow.flows.compiler`).
        """
        expression = (
            "SET #status = :status, currentStep = :step, updatedAt = :at, "
            f"{STATUS_RUN_ATTRIBUTE} = :run, "
            "statusHistory = list_append(if_not_exists(statusHistory, :empty), :entry), "
            "statusKey = :statusKey, statusAt = :at"
        )
        values: dict[str, Any] = {
            ":status": status.status,
            ":statusKey": status_key(key.storefront_id, status.status),
            ":step": status.step_id,
            ":at": status.at,
            ":run": status.run_id,
            ":empty": [],
            ":entry": [{"status": status.status, "at": status.at, "step": status.step_id}],
        }
        if status.error is not None:
            expression += ", #error = :error"
            values[":error"] = status.error
        return self._update_once(key, expression, values, status.run_id)

    def set_artifacts(
        self,
        key: OrderKey,
        artifacts: list[dict[str, Any]],
        manifest_key: str,
        at: str,
        status: StepStatus | None = None,
        *,
        manifest_bucket: str | None = None,
    ) -> None:
        """Record the order's stored artifacts (what the status API and REST documents show),
        with the render step's ``status`` in the same write when given.

        A list too large for the item (over :data:`INLINE_ARTIFACTS_MAX_BYTES`) stays in the
        manifest (already written, in ``manifest_bucket``): the item refers to it.
        """
        base, values = self._artifact_fields(artifacts, manifest_key, at, manifest_bucket)
        expression = base
        if status is not None:
            expression += (
                ", #status = :status, currentStep = :step, "
                f"{STATUS_RUN_ATTRIBUTE} = :run, "
                "statusHistory = list_append(if_not_exists(statusHistory, :empty), :entry), "
                "statusKey = :statusKey, statusAt = :at"
            )
            status_values: dict[str, Any] = {
                ":status": status.status,
                ":statusKey": status_key(key.storefront_id, status.status),
                ":step": status.step_id,
                ":run": status.run_id,
                ":empty": [],
                ":entry": [{"status": status.status, "at": status.at, "step": status.step_id}],
            }
            if status.error is not None:  # a render step reached through onError
                expression += ", #error = :error"
                status_values[":error"] = status.error
            if self._update_once(key, expression, {**values, **status_values}, status.run_id):
                return
            expression = base
        self._client.update_item(
            TableName=self.table_name,
            Key=serialize_item(order_key_attributes(key)),
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=serialize_item(values),
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

    @staticmethod
    def _artifact_fields(
        artifacts: list[dict[str, Any]], manifest_key: str, at: str, bucket: str | None
    ) -> tuple[str, dict[str, Any]]:
        """The update's SET clause (no REMOVE: a clause may follow) for the artifacts."""
        values: dict[str, Any] = {
            ":manifest": manifest_key,
            ":at": at,
            ":count": len(artifacts),
        }
        expression = "SET manifestKey = :manifest, updatedAt = :at, artifactCount = :count"
        size = len(json.dumps(artifacts, separators=(",", ":"), default=str))
        if size <= INLINE_ARTIFACTS_MAX_BYTES or bucket is None:
            values[":artifacts"] = artifacts
            return expression + ", artifacts = :artifacts", values
        # The list itself: an empty one, so readers of the bounded item see no stale list.
        values[":artifacts"] = []
        values[":artifactsDoc"] = {"bucket": bucket, "key": manifest_key}
        expression += f", artifacts = :artifacts, {ARTIFACTS_DOCUMENT_ATTRIBUTE} = :artifactsDoc"
        return expression, values

    def _update_once(
        self, key: OrderKey, expression: str, values: dict[str, Any], run_id: str
    ) -> bool:
        """Apply ``expression`` unless this run was recorded already; ``False`` if it was."""
        names = {"#status": "status"}
        if "#error" in expression:
            names["#error"] = "error"
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=serialize_item(order_key_attributes(key)),
                UpdateExpression=expression,
                ConditionExpression=(
                    "attribute_exists(pk) AND "
                    f"(attribute_not_exists({STATUS_RUN_ATTRIBUTE}) "
                    f"OR {STATUS_RUN_ATTRIBUTE} <> :run)"
                ),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=serialize_item(values),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def claim_completion(self, key: OrderKey, token_id: str, job_id: str) -> bool:
        """True for the one download that completes this render step attempt (``token_id``):
        the first to claim it, or that same job again (its message redelivered after a
        crash). One conditional write, so two jobs ending at once never both complete it.
        """
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=serialize_item(order_key_attributes(key)),
                UpdateExpression=f"SET {COMPLETION_ATTRIBUTE} = :claim",
                ConditionExpression="attribute_exists(pk) AND "
                f"(attribute_not_exists({COMPLETION_ATTRIBUTE})"
                f" OR {COMPLETION_ATTRIBUTE}.#token <> :token"
                f" OR {COMPLETION_ATTRIBUTE}.#job = :job)",
                ExpressionAttributeNames={"#token": "token", "#job": "job"},
                ExpressionAttributeValues=serialize_item(
                    {
                        ":claim": {"token": token_id, "job": job_id},
                        ":token": token_id,
                        ":job": job_id,
                    }
                ),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def claim_event(self, key: OrderKey, event: str, token_id: str) -> bool:
        """True once per (event, flow step attempt): a redelivery publishes nothing twice
        (and a retry of this very claim, its answer lost, still publishes)."""
        write_id = new_write_id()
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=serialize_item(order_key_attributes(key)),
                UpdateExpression=f"SET publishedEvents.#event = :token, {WRITE_ID} = :writeId",
                ConditionExpression="attribute_exists(pk) AND "
                "(attribute_not_exists(publishedEvents.#event)"
                " OR publishedEvents.#event <> :token)",
                ExpressionAttributeNames={"#event": event},
                ExpressionAttributeValues=serialize_item(
                    {":token": token_id, ":writeId": write_id}
                ),
                ReturnValuesOnConditionCheckFailure=ALL_OLD,
            )
        except ClientError as exc:
            return own_write(exc, write_id) is not None
        return True

    # -- finding orders by status (operations) --------------------------------------------

    def orders_in_status(
        self,
        storefront_id: str,
        status: str,
        *,
        since: str | None = None,
        until: str | None = None,
        page_size: int = 100,
        start_key: dict[str, Any] | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of a storefront's orders in ``status``, newest first (``StatusIndex``).

        ``since`` / ``until`` (ISO 8601) keep orders that entered the status at or after /
        before that time (``until``: orders stuck in a status). Returns the projected items
        and the key to pass for the next page (None: no more).
        """
        condition = "statusKey = :key"
        values: dict[str, Any] = {":key": status_key(storefront_id, status)}
        if since is not None and until is not None:
            condition += " AND statusAt BETWEEN :since AND :until"
            values.update({":since": since, ":until": until})
        elif since is not None:
            condition += " AND statusAt >= :since"
            values[":since"] = since
        elif until is not None:
            condition += " AND statusAt < :until"
            values[":until"] = until
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": STATUS_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": serialize_item(values),
            "ScanIndexForward": False,
            "Limit": page_size,
        }
        if start_key is not None:
            request["ExclusiveStartKey"] = start_key
        response = self._client.query(**request)
        items = [deserialize_item(item) for item in response.get("Items", [])]
        return items, response.get("LastEvaluatedKey")

    def record_retry(
        self,
        key: OrderKey,
        *,
        attempt: int,
        from_step: str,
        execution_name: str,
        status: str,
        at: str,
    ) -> bool:
        """Note retry ``attempt`` on the order (status, history, the retries list).

        Conditional on the previous attempt number, so two operators retrying at once start
        one retry; False for the one that lost. The last error moves to ``lastError``.
        """
        write_id = new_write_id()
        entry = {"attempt": attempt, "fromStep": from_step, "executionName": execution_name}
        history = {"status": status, "at": at, "step": from_step}
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=serialize_item(order_key_attributes(key)),
                UpdateExpression="SET retryAttempt = :attempt, #status = :status, "
                "updatedAt = :at, currentStep = :step, "
                "lastError = if_not_exists(#error, :noError), "
                "retries = list_append(if_not_exists(retries, :empty), :entry), "
                "statusHistory = list_append(if_not_exists(statusHistory, :empty), :history), "
                f"statusKey = :statusKey, statusAt = :at, {WRITE_ID} = :writeId REMOVE #error",
                ConditionExpression="attribute_exists(pk) AND "
                "(attribute_not_exists(retryAttempt) OR retryAttempt = :previous)",
                ExpressionAttributeNames={"#status": "status", "#error": "error"},
                ExpressionAttributeValues=serialize_item(
                    {
                        ":attempt": attempt,
                        ":previous": attempt - 1,
                        ":status": status,
                        ":at": at,
                        ":step": from_step,
                        ":noError": {},
                        ":empty": [],
                        ":entry": [{**entry, "at": at}],
                        ":history": [history],
                        ":statusKey": status_key(key.storefront_id, status),
                        ":writeId": write_id,
                    }
                ),
                ReturnValuesOnConditionCheckFailure=ALL_OLD,
            )
        except ClientError as exc:
            return own_write(exc, write_id) is not None
        return True

    # -- email records (send-email sends once per order step) ---------------------------

    def claim_email(self, key: OrderKey, step_id: str, delivery_id: str, at: str) -> EmailClaim:
        """Record that the step is about to send, unless a record exists (then return it).

        ``EmailClaim.claimed`` is True for the caller that may send. An earlier record in
        state ``unsent`` (the send was refused, nothing went out) is claimed again.
        """
        item_key = {"pk": order_pk(key), "sk": email_sk(step_id, delivery_id)}
        write_id = new_write_id()
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=serialize_item(
                    {
                        **item_key,
                        "entity": "EmailRecord",
                        "storefrontId": key.storefront_id,
                        "orderId": key.order_id,
                        "stepId": step_id,
                        "deliveryId": delivery_id,
                        "state": EMAIL_SENDING,
                        "claimedAt": at,
                        WRITE_ID: write_id,
                    }
                ),
                ConditionExpression="attribute_not_exists(pk) OR #state = :unsent",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=serialize_item({":unsent": EMAIL_UNSENT}),
                ReturnValuesOnConditionCheckFailure=ALL_OLD,
            )
        except ClientError as exc:
            if own_write(exc, write_id) is not None:
                # Our own claim, its answer lost: we may send (read as "sending" it would
                # have reported "may have been sent" and sent nothing).
                return EmailClaim(True, EMAIL_SENDING, {})
            stored = deserialize_item(exc.response.get("Item") or {})  # type: ignore[arg-type]
            return EmailClaim(False, str(stored.get("state", EMAIL_SENDING)), stored)
        return EmailClaim(True, EMAIL_SENDING, {})

    def finish_email(
        self,
        key: OrderKey,
        step_id: str,
        delivery_id: str,
        state: str,
        at: str,
        message_id: str | None = None,
    ) -> None:
        """Mark the claimed record ``sent`` (with the SES message id) or ``unsent``."""
        values: dict[str, Any] = {":state": state, ":at": at, ":sending": EMAIL_SENDING}
        expression = "SET #state = :state, finishedAt = :at"
        if message_id is not None:
            expression += ", messageId = :id"
            values[":id"] = message_id
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=serialize_item({"pk": order_pk(key), "sk": email_sk(step_id, delivery_id)}),
                UpdateExpression=expression,
                ConditionExpression="#state = :sending",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=serialize_item(values),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            stored = deserialize_item(exc.response.get("Item") or {})  # type: ignore[arg-type]
            if (stored.get("state"), stored.get("finishedAt"), stored.get("messageId")) != (
                state,
                at,
                message_id,
            ):
                raise
            # This very write landed and its answer was lost: botocore sent it again (a
            # CI fault run failed an order's email step with this condition failure).

    def email_records(self, key: OrderKey) -> list[dict[str, Any]]:
        """Every email record of the order (``printflow orders show``)."""
        return self._items_with_prefix(key, EMAIL_SK_PREFIX)

    # -- REST deliveries (what `printflow orders show` lists) -------------------------------

    def record_rest_delivery(
        self, key: OrderKey, step_id: str, delivery_id: str, status: int, at: str
    ) -> None:
        """Note an accepted delivery of a REST step (repeats count up ``deliveries``)."""
        self._client.update_item(
            TableName=self.table_name,
            Key=serialize_item(
                {"pk": order_pk(key), "sk": f"{REST_SK_PREFIX}{step_id}#{delivery_id}"}
            ),
            UpdateExpression="SET entity = :entity, stepId = :step, deliveryId = :delivery, "
            "httpStatus = :status, deliveredAt = :at ADD deliveries :one",
            ExpressionAttributeValues=serialize_item(
                {
                    ":entity": "RestDelivery",
                    ":step": step_id,
                    ":delivery": delivery_id,
                    ":status": status,
                    ":at": at,
                    ":one": 1,
                }
            ),
        )

    def rest_deliveries(self, key: OrderKey) -> list[dict[str, Any]]:
        return self._items_with_prefix(key, REST_SK_PREFIX)

    def _items_with_prefix(self, key: OrderKey, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=serialize_item({":pk": order_pk(key), ":prefix": prefix}),
            ConsistentRead=True,
        ):
            items.extend(deserialize_item(item) for item in page.get("Items", []))
        return items

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
