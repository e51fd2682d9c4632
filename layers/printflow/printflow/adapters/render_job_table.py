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
    "taskToken",
)


class RenderJobTable:
    def __init__(self, client: Any, table_name: str, due_shards: int) -> None:
        self._client = client
        self.table_name = table_name
        self.due_shards = due_shards

    # -- creation ---------------------------------------------------------------------------

    def put_new(self, job: RenderJob) -> bool:
        """Create the job unless it exists; ``False`` when it was already there."""
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=serialize_item(job_to_item(job, self.due_shards)),
                ConditionExpression="attribute_not_exists(sk)",
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise
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
        try:
            response = self._client.update_item(
                TableName=self.table_name,
                Key=serialize_item({"pk": pk, "sk": sk}),
                UpdateExpression="SET #state = :leased, leaseOwner = :owner, dueAt = :until",
                ConditionExpression="dueAt <= :now AND #state IN (:pending, :leased)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=serialize_item(
                    {
                        ":leased": JobState.LEASED.value,
                        ":pending": JobState.PENDING.value,
                        ":owner": owner,
                        ":until": round(until, 3),
                        ":now": round(now, 3),
                    }
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return None
            raise
        return job_from_item(deserialize_item(response["Attributes"]))

    def lease_held_until(self, pk: str, sk: str, now: float, *, other_than: str) -> float | None:
        """When the lease a poller other than ``other_than`` holds on the job runs out
        (``None``: the job is not leased, or by ``other_than``, or the lease has expired)."""
        response = self._client.get_item(
            TableName=self.table_name,
            Key=serialize_item({"pk": pk, "sk": sk}),
            ProjectionExpression="#state, dueAt, leaseOwner",
            ExpressionAttributeNames={"#state": "state"},
            ConsistentRead=True,
        )
        item = deserialize_item(response.get("Item") or {})
        if item.get("state") != JobState.LEASED.value or item.get("dueAt") is None:
            return None
        if item.get("leaseOwner") == other_than:
            return None
        until = float(item["dueAt"])  # a leased job's dueAt is its lease's expiry
        return until if until > now else None

    def save(self, job: RenderJob, *, owner: str | None) -> bool:
        """Write the job's mutable state; with ``owner``, only while that poller holds it.

        The lease is released (``leaseOwner`` removed). ``job.due_at`` keeps the job in the
        index (next poll) or, when ``None``, takes it out. ``False`` if the lease was lost.
        """
        item = job_to_item(job, self.due_shards)
        sets = {name: item[name] for name in _MUTABLE if item.get(name) is not None}
        removes = ["leaseOwner"] + [n for n in _MUTABLE if item.get(n) is None and n != "taskToken"]
        if job.due_at is not None:
            sets["dueShard"], sets["dueAt"] = item["dueShard"], item["dueAt"]
        else:
            removes += ["dueShard", "dueAt"]
        names = {f"#{n}": n for n in (*sets, *removes)}
        expression = "SET " + ", ".join(f"#{n} = :{n}" for n in sets)
        expression += " REMOVE " + ", ".join(f"#{n}" for n in removes)
        values = {f":{n}": v for n, v in sets.items()}
        condition = "attribute_exists(sk)"
        if owner is not None:
            # Still ours and still leased: a job cancelled meanwhile (moved to failed) stays so.
            condition += " AND leaseOwner = :owner AND #state = :leased_state"
            values[":owner"] = owner
            values[":leased_state"] = JobState.LEASED.value
            names["#state"] = "state"
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=serialize_item({"pk": item["pk"], "sk": item["sk"]}),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={k: serialize_value(v) for k, v in values.items()},
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise
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
        sets = {"state": to_state.value, **attributes}
        names = {f"#{n}": n for n in sets}
        # Only active jobs wait in the due index: any other state takes the job out of it.
        leave_index = to_state not in ACTIVE_STATES
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
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return None
            raise
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
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=serialize_item({"pk": pk, "sk": sk}),
                UpdateExpression="SET #state = :pending, dueShard = :shard, dueAt = :due, "
                "deadlineAt = :deadline, failures = :zero REMOVE #error, leaseOwner",
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
                    }
                ),
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise
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
