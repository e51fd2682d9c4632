"""Render job items in the order table, and the conditional writes that lease them.

Item: ``pk = ORDER#{storefrontId}#{orderId}``, ``sk = JOB#{jobId}`` (next to its order).
While a job waits for a poll it carries ``dueShard = JOB#{n}`` and ``dueAt`` (epoch seconds)
and so appears in the sparse ``DueIndex``. Leasing moves ``dueAt`` to the lease's expiry: a
poller that crashes leaves the job due again when the lease runs out, and two pollers can
never hold the same job (the lease is a conditional update on ``dueAt <= now``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from printflow.adapters.dynamo_types import deserialize_item, serialize_item, serialize_value
from printflow.adapters.order_table import DUE_INDEX, order_key_attributes, order_pk
from printflow.adapters.own_writes import ALL_OLD, WRITE_ID, new_write_id, own_write
from printflow.domain.order import OrderKey
from printflow.domain.render_job import ACTIVE_STATES, JobKind, JobState, RenderJob

JOB_SK_PREFIX = "JOB#"
JOB_SHARD_PREFIX = "JOB#"


def job_sk(job_id: str) -> str:
    return f"{JOB_SK_PREFIX}{job_id}"


def due_shard(pk: str, sk: str, shards: int) -> str:
    """A stable shard per job, so re-queueing never moves it between partitions."""
    return f"{JOB_SHARD_PREFIX}{zlib.crc32(f'{pk}|{sk}'.encode()) % shards}"


def _is_condition_failure(exc: ClientError) -> bool:
    code = exc.response["Error"]["Code"]
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons") or []
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
    return False


def job_to_item(job: RenderJob, shards: int) -> dict[str, Any]:
    pk, sk = order_pk(job.order_key), job_sk(job.job_id)
    item: dict[str, Any] = {
        **order_key_attributes(job.order_key),
        "sk": sk,
        "entity": "RenderJob",
        "storefrontId": job.order_key.storefront_id,
        "orderId": job.order_key.order_id,
        "jobId": job.job_id,
        "provider": job.provider,
        "kind": job.kind.value,
        "state": job.state.value,
        "taskToken": job.task_token,
        "stepId": job.step_id,
        "ref": job.ref,
        "lineItemId": job.line_item_id,
        "attempts": job.attempts,
        "failures": job.failures,
        "recoveries": job.recoveries,
        "createdAt": job.created_at,
        "deadlineAt": job.deadline_at,
        "lastPolledAt": job.last_polled_at,
        "lastStatus": job.last_status,
        "history": list(job.history),
        "files": list(job.files),
        "error": job.error,
        "details": job.details,
        "leaseOwner": job.lease_owner,
    }
    if job.due_at is not None:
        item["dueShard"] = due_shard(pk, sk, shards)
        item["dueAt"] = round(job.due_at, 3)
    return item


def job_from_item(item: dict[str, Any]) -> RenderJob:
    return RenderJob(
        order_key=OrderKey(str(item["storefrontId"]), str(item["orderId"])),
        job_id=str(item["jobId"]),
        provider=str(item["provider"]),
        kind=JobKind(item["kind"]),
        state=JobState(item["state"]),
        task_token=str(item.get("taskToken", "")),
        step_id=str(item.get("stepId", "")),
        ref=str(item.get("ref", "")),
        line_item_id=item.get("lineItemId"),
        attempts=int(item.get("attempts", 0)),
        failures=int(item.get("failures", 0)),
        recoveries=int(item.get("recoveries", 0)),
        created_at=float(item.get("createdAt", 0)),
        deadline_at=float(item.get("deadlineAt", 0)),
        due_at=float(item["dueAt"]) if "dueAt" in item else None,
        lease_owner=item.get("leaseOwner"),
        last_polled_at=float(item["lastPolledAt"]) if item.get("lastPolledAt") else None,
        last_status=item.get("lastStatus"),
        history=tuple(item.get("history") or ()),
        files=tuple(item.get("files") or ()),
        error=item.get("error"),
        details=dict(item.get("details") or {}),
    )


# Attributes a poll or a download may change; everything else is fixed at creation.
# Not ``taskToken``: only ``set_task_token`` writes it. A poll saved the token it had read at
# its lease, so a render step retried meanwhile (its new token set on the job between the
# lease and the save) had it put back: the job then completed a token whose attempt was over,
# and when that job was the order's last to finish, no live token was ever completed (both
# jobs done, the order stuck until the step's timeout).
_MUTABLE = (
    "state",
    "ref",
    "attempts",
    "failures",
    "recoveries",
    "lastPolledAt",
    "lastStatus",
    "history",
    "files",
    "error",
    "details",
)


class RenderJobTable:
    def __init__(self, client: Any, table_name: str, due_shards: int) -> None:
        self._client = client
        self.table_name = table_name
        self.due_shards = due_shards

    # -- creation ---------------------------------------------------------------------------

    def put_new(self, job: RenderJob) -> bool:
        """Create the job unless it exists; ``False`` when it was already there."""
        write_id = new_write_id()
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=serialize_item({**job_to_item(job, self.due_shards), WRITE_ID: write_id}),
                ConditionExpression="attribute_not_exists(sk)",
                ReturnValuesOnConditionCheckFailure=ALL_OLD,
            )
        except ClientError as exc:
            return own_write(exc, write_id) is not None  # True: our own create, sent again
        return True

    def get(self, key: OrderKey, job_id: str) -> RenderJob | None:
        response = self._client.get_item(
            TableName=self.table_name,
            Key=serialize_item({"pk": order_pk(key), "sk": job_sk(job_id)}),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return job_from_item(deserialize_item(item)) if item else None

    def jobs_of(self, key: OrderKey) -> list[RenderJob]:
        jobs: list[RenderJob] = []
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=serialize_item(
                {":pk": order_pk(key), ":prefix": JOB_SK_PREFIX}
            ),
            ConsistentRead=True,
        ):
            jobs.extend(job_from_item(deserialize_item(item)) for item in page.get("Items", []))
        return jobs

    # -- polling ----------------------------------------------------------------------------

    def due(self, shard: int, now: float, limit: int) -> Iterator[tuple[str, str]]:
        """Keys of jobs due by ``now`` in one shard (the index is eventually consistent: a key
        may be stale, which the lease's condition catches)."""
        paginator = self._client.get_paginator("query")
        seen = 0
        for page in paginator.paginate(
            TableName=self.table_name,
            IndexName=DUE_INDEX,
            KeyConditionExpression="dueShard = :shard AND dueAt <= :now",
            ExpressionAttributeValues=serialize_item(
                {":shard": f"{JOB_SHARD_PREFIX}{shard}", ":now": round(now, 3)}
            ),
            PaginationConfig={"PageSize": min(limit, 500)},
        ):
            for item in page.get("Items", []):
                yield item["pk"]["S"], item["sk"]["S"]
                seen += 1
                if seen >= limit:
                    return

    def lease(self, pk: str, sk: str, owner: str, now: float, until: float) -> RenderJob | None:
        """Take the job for polling if it is still due; ``None`` if another poller has it."""
        write_id = new_write_id()
        try:
            response = self._client.update_item(
                TableName=self.table_name,
                Key=serialize_item({"pk": pk, "sk": sk}),
                UpdateExpression="SET #state = :leased, leaseOwner = :owner, dueAt = :until, "
                f"{WRITE_ID} = :writeId",
                ConditionExpression="dueAt <= :now AND #state IN (:pending, :leased)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=serialize_item(
                    {
                        ":leased": JobState.LEASED.value,
                        ":pending": JobState.PENDING.value,
                        ":owner": owner,
                        ":until": round(until, 3),
                        ":now": round(now, 3),
                        ":writeId": write_id,
                    }
                ),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure=ALL_OLD,
            )
        except ClientError as exc:
            mine = own_write(exc, write_id)  # our own lease, its answer lost: still ours
            return job_from_item(mine) if mine is not None else None
        return job_from_item(deserialize_item(response["Attributes"]))

    def peek(self, pk: str, sk: str) -> RenderJob | None:
        """The job as stored now (a strongly consistent read), to claim it without a lease:
        see :meth:`save_claimed`."""
        response = self._client.get_item(
            TableName=self.table_name,
            Key=serialize_item({"pk": pk, "sk": sk}),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return job_from_item(deserialize_item(item)) if item else None

    def save(self, job: RenderJob, *, owner: str | None) -> bool:
        """Write the job's mutable state; with ``owner``, only while that poller holds it.

        The lease is released (``leaseOwner`` removed). ``job.due_at`` keeps the job in the
        index (next poll) or, when ``None``, takes it out. ``False`` if the lease was lost.
        """
        condition, values = "attribute_exists(sk)", dict[str, Any]()
        if owner is not None:
            # Still ours and still leased: a job cancelled meanwhile (moved to failed) stays so.
            condition += " AND leaseOwner = :owner AND #state = :leased_state"
            values = {":owner": owner, ":leased_state": JobState.LEASED.value}
        return self._write_mutable(job, condition, values)

    def save_claimed(self, job: RenderJob, *, seen: RenderJob) -> bool:
        """Write the job's mutable state if the stored job is still the version ``seen``
        (:meth:`peek`): same state, same ``dueAt``. ``False`` if anyone wrote it meanwhile.

        The one write of a poll that claimed its job by reading it: every write that takes or
        settles a job (a lease, a save, a cancellation, a reopening) changes its state or its
        ``dueAt``, so of two pollers that read the same version, one saves and the other finds
        the condition failed. Like :meth:`save`, it releases a lease (an expired one: a claimed
        job is never validly leased) and sets or clears the next ``dueAt``.
        """
        if seen.due_at is None:
            return False  # not due: nothing to claim
        condition = "#state = :seen_state AND dueAt = :seen_due"
        values: dict[str, Any] = {
            ":seen_state": seen.state.value,
            ":seen_due": round(seen.due_at, 3),
        }
        return self._write_mutable(job, condition, values)

    def _write_mutable(self, job: RenderJob, condition: str, values: dict[str, Any]) -> bool:
        """One UpdateItem of the mutable attributes under ``condition`` (which may use
        ``#state``); ``False`` when the condition failed."""
        item = job_to_item(job, self.due_shards)
        sets = {name: item[name] for name in _MUTABLE if item.get(name) is not None}
        removes = ["leaseOwner"] + [n for n in _MUTABLE if item.get(n) is None]
        if job.due_at is not None:
            sets["dueShard"], sets["dueAt"] = item["dueShard"], item["dueAt"]
        else:
            removes += ["dueShard", "dueAt"]
        names = {f"#{n}": n for n in (*sets, *removes)}
        if "#state" in condition:
            names["#state"] = "state"
        expression = "SET " + ", ".join(f"#{n} = :{n}" for n in sets)
        expression += " REMOVE " + ", ".join(f"#{n}" for n in removes)
        write_id = new_write_id()
        expression = expression.replace("SET ", f"SET {WRITE_ID} = :writeId, ", 1)
        values = {**{f":{n}": v for n, v in sets.items()}, **values, ":writeId": write_id}
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=serialize_item({"pk": item["pk"], "sk": item["sk"]}),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={k: serialize_value(v) for k, v in values.items()},
                ReturnValuesOnConditionCheckFailure=ALL_OLD,
            )
        except ClientError as exc:
            # Our own save sent again finds the lease it released: saved, not lost.
            return own_write(exc, write_id) is not None
        return True

    def set_task_token(self, key: OrderKey, job_id: str, token: str) -> None:
        """A retried render step waits on a new token: completions must use it."""
        self._client.update_item(
            TableName=self.table_name,
            Key=serialize_item({"pk": order_pk(key), "sk": job_sk(job_id)}),
            UpdateExpression="SET taskToken = :token",
            ConditionExpression="attribute_exists(sk)",
            ExpressionAttributeValues=serialize_item({":token": token}),
        )

    def move(
        self,
        key: OrderKey,
        job_id: str,
        from_states: tuple[JobState, ...],
        to_state: JobState,
        **attributes: Any,
    ) -> RenderJob | None:
        """Change state if the job is in one of ``from_states``; return the new job or None."""
        sets = {"state": to_state.value, **attributes, WRITE_ID: new_write_id()}
        names = {f"#{n}": n for n in sets}
        # Only active jobs wait in the due index: any other state takes the job out of it. A
        # job that was not active has no entry there (only active states carry ``dueAt``), so
        # nothing is removed then: the write stays an in-place update with no index change.
        leave_index = to_state not in ACTIVE_STATES and any(s in ACTIVE_STATES for s in from_states)
        if leave_index:
            names.update({"#dueShard": "dueShard", "#dueAt": "dueAt"})
        values = {f":{n}": v for n, v in sets.items()}
        allowed = [f":from{i}" for i in range(len(from_states))]
        values.update({a: s.value for a, s in zip(allowed, from_states, strict=True)})
        try:
            response = self._client.update_item(
                TableName=self.table_name,
                Key=serialize_item({"pk": order_pk(key), "sk": job_sk(job_id)}),
                UpdateExpression="SET "
                + ", ".join(f"#{n} = :{n}" for n in sets)
                + (" REMOVE #dueShard, #dueAt" if leave_index else ""),
                ConditionExpression=f"#state IN ({', '.join(allowed)})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={k: serialize_value(v) for k, v in values.items()},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure=ALL_OLD,
            )
        except ClientError as exc:
            mine = own_write(exc, str(sets[WRITE_ID]))  # our own move, its answer lost
            return job_from_item(mine) if mine is not None else None
        return job_from_item(deserialize_item(response["Attributes"]))

    # -- operations -------------------------------------------------------------------------

    def oldest_due_at(self, shard: int, now: float) -> float | None:
        """The earliest ``dueAt`` of a due job in one shard (None: nothing due).

        One single-item Query on the index, in ``dueAt`` order: cheap enough for every run.
        """
        response = self._client.query(
            TableName=self.table_name,
            IndexName=DUE_INDEX,
            KeyConditionExpression="dueShard = :shard AND dueAt <= :now",
            ExpressionAttributeValues=serialize_item(
                {":shard": f"{JOB_SHARD_PREFIX}{shard}", ":now": round(now, 3)}
            ),
            ScanIndexForward=True,
            Limit=1,
        )
        items = response.get("Items", [])
        return float(items[0]["dueAt"]["N"]) if items else None

    # -- order retries (printflow orders retry) ----------------------------------------------

    def reopen(
        self,
        key: OrderKey,
        job_id: str,
        *,
        due_at: float,
        deadline_at: float,
        from_state: JobState = JobState.FAILED,
    ) -> bool:
        """A failed (or done) job waits for a poll again, with a new deadline.

        False when the job is not in ``from_state`` any more.
        """
        pk, sk = order_pk(key), job_sk(job_id)
        write_id = new_write_id()
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=serialize_item({"pk": pk, "sk": sk}),
                UpdateExpression="SET #state = :pending, dueShard = :shard, dueAt = :due, "
                f"deadlineAt = :deadline, failures = :zero, {WRITE_ID} = :writeId "
                "REMOVE #error, leaseOwner",
                ConditionExpression="#state = :failed",
                ExpressionAttributeNames={"#state": "state", "#error": "error"},
                ExpressionAttributeValues=serialize_item(
                    {
                        ":pending": JobState.PENDING.value,
                        ":failed": from_state.value,
                        ":shard": due_shard(pk, sk, self.due_shards),
                        ":due": round(due_at, 3),
                        ":deadline": round(deadline_at, 3),
                        ":zero": 0,
                        ":writeId": write_id,
                    }
                ),
                ReturnValuesOnConditionCheckFailure=ALL_OLD,
            )
        except ClientError as exc:
            return own_write(exc, write_id) is not None
        return True

    def forget_failed(self, key: OrderKey, job_id: str) -> None:
        """Delete a failed job (its render is started again); other states are kept."""
        try:
            self._client.delete_item(
                TableName=self.table_name,
                Key=serialize_item({"pk": order_pk(key), "sk": job_sk(job_id)}),
                ConditionExpression="#state = :failed",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=serialize_item({":failed": JobState.FAILED.value}),
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise


def is_active(job: RenderJob) -> bool:
    return job.state in ACTIVE_STATES
