"""A conditional write whose answer was lost is sent again by botocore (its retry of a
timeout or reset connection). The second send finds the item the first one wrote: that is
our own write done, not a conflict.

CI fault runs met it: an order's first delivery answered 200 "duplicate" (its PutItem
retried), an order failed at its email step with ``ConditionalCheckFailedException`` (the
``finish_email`` retried), and an email claim read as "may have been sent" and sent nothing.

:class:`LoseFirstAnswer` makes botocore itself do what it does after a read timeout: the
request was carried out, its answer is dropped, and the same request is sent again. Each
test writes once through it; each fails on the code before the write ids
(:mod:`printflow.adapters.own_writes`).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from moto import mock_aws

from printflow.adapters import aws
from printflow.adapters.order_table import (
    EMAIL_SENT,
    NewOrderRecord,
    OrderAlreadyRecorded,
    OrderTable,
)
from printflow.adapters.reconcile_state import ReconcileStateTable
from printflow.adapters.render_job_table import RenderJobTable
from printflow.adapters.ses_email import SEND_ATTEMPTS
from printflow.adapters.step_effects import Claim, StepEffects
from printflow.domain.order import Order, OrderKey, RawBodyRef
from printflow.domain.render_job import JobKind, JobState, RenderJob
from printflow_tools.localstack.resources import create_table_from_template

KEY = OrderKey("shop-a", "1001")
JOB_PK, JOB_SK = "ORDER#shop-a#1001", "JOB#li-1"


class LoseFirstAnswer:
    """Drop the first successful answer of each named operation, so botocore sends the
    same request again (as after a read timeout whose request was carried out)."""

    def __init__(self, client: Any, *operations: str) -> None:
        self._pending = set(operations)
        self.lost: list[str] = []
        client.meta.events.register("needs-retry", self._needs_retry)

    def arm(self, *operations: str) -> None:
        self._pending.update(operations)

    def _needs_retry(
        self, response: Any, operation: Any, attempts: int, caught_exception: Any, **_: Any
    ) -> float | None:
        answered = response is not None and response[0].status_code == 200
        if caught_exception is None and answered and operation.name in self._pending:
            self._pending.discard(operation.name)
            self.lost.append(operation.name)
            return 0.0  # retry at once: the answer "never came"
        return None


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def table_name(client: Any) -> str:
    return create_table_from_template(client, "lost-answers")


@pytest.fixture
def table(client: Any, table_name: str) -> OrderTable:
    return OrderTable(client, table_name)


def new_record() -> NewOrderRecord:
    order = Order(KEY, "generic", "1001", "#1001", None, None, "2026-12-03T10:00:00")
    return NewOrderRecord(order, RawBodyRef("b", "k"), "default", "2026-12-03T10:00:00", 0, 1)


def new_job(state: JobState = JobState.PENDING, due_at: float | None = 100.0) -> RenderJob:
    return RenderJob(
        order_key=KEY,
        job_id="li-1",
        provider="chili",
        kind=JobKind.TASK,
        state=state,
        task_token="token-1",
        step_id="generate",
        ref="task-1",
        created_at=90.0,
        deadline_at=5000.0,
        due_at=due_at,
    )


# -- the order item and its records ------------------------------------------------------


def test_a_new_order_whose_answer_was_lost_is_still_new(client: Any, table: OrderTable) -> None:
    lose = LoseFirstAnswer(client, "PutItem")
    intake_id = table.record_new_order(new_record())
    assert lose.lost == ["PutItem"]
    stored = table.get_order(KEY)
    assert stored is not None and stored["intakeId"] == intake_id


def test_another_delivery_of_the_order_is_still_a_duplicate(table: OrderTable) -> None:
    table.record_new_order(new_record())
    with pytest.raises(OrderAlreadyRecorded):
        table.record_new_order(new_record())  # a new intake id: another delivery


def test_an_email_claim_whose_answer_was_lost_may_send(client: Any, table: OrderTable) -> None:
    table.record_new_order(new_record())
    lose = LoseFirstAnswer(client, "PutItem")
    claim = table.claim_email(KEY, "email", "d1", "2026-12-03T10:00:01")
    assert lose.lost == ["PutItem"]
    assert claim.claimed  # not "may have been sent", which would send nothing


def test_a_second_email_claim_is_still_refused(table: OrderTable) -> None:
    table.record_new_order(new_record())
    assert table.claim_email(KEY, "email", "d1", "2026-12-03T10:00:01").claimed
    again = table.claim_email(KEY, "email", "d1", "2026-12-03T10:00:05")
    assert not again.claimed and again.state == "sending"


def test_an_email_finish_whose_answer_was_lost_is_done(client: Any, table: OrderTable) -> None:
    table.record_new_order(new_record())
    assert table.claim_email(KEY, "email", "d1", "2026-12-03T10:00:01").claimed
    lose = LoseFirstAnswer(client, "UpdateItem")
    table.finish_email(KEY, "email", "d1", EMAIL_SENT, "2026-12-03T10:00:02", "msg-1")
    assert lose.lost == ["UpdateItem"]
    (record,) = table.email_records(KEY)
    assert (record["state"], record["messageId"]) == (EMAIL_SENT, "msg-1")


def test_an_email_record_finished_by_another_write_still_refuses(table: OrderTable) -> None:
    table.record_new_order(new_record())
    assert table.claim_email(KEY, "email", "d1", "2026-12-03T10:00:01").claimed
    table.finish_email(KEY, "email", "d1", EMAIL_SENT, "2026-12-03T10:00:02", "msg-1")
    with pytest.raises(ClientError):
        table.finish_email(KEY, "email", "d1", EMAIL_SENT, "2026-12-03T10:00:09", "msg-2")


def test_an_event_claim_whose_answer_was_lost_still_publishes(
    client: Any, table: OrderTable
) -> None:
    table.record_new_order(new_record())
    lose = LoseFirstAnswer(client, "UpdateItem")
    assert table.claim_event(KEY, "ArtifactsReady", "token-1") is True
    assert lose.lost == ["UpdateItem"]
    assert table.claim_event(KEY, "ArtifactsReady", "token-1") is False  # a redelivery


def test_a_retry_record_whose_answer_was_lost_is_recorded(client: Any, table: OrderTable) -> None:
    table.record_new_order(new_record())
    lose = LoseFirstAnswer(client, "UpdateItem")
    recorded = table.record_retry(
        KEY, attempt=1, from_step="email", execution_name="o-1-r1", status="Retrying", at="t"
    )
    assert lose.lost == ["UpdateItem"] and recorded is True
    stored = table.get_order(KEY)
    assert stored is not None and len(stored["retries"]) == 1  # written once
    # Another operator's retry of the same attempt still loses.
    assert not table.record_retry(
        KEY, attempt=1, from_step="email", execution_name="o-1-r1", status="Retrying", at="u"
    )


def test_a_step_effect_claim_whose_answer_was_lost_is_mine(client: Any, table_name: str) -> None:
    effects = StepEffects(client, table_name)
    lose = LoseFirstAnswer(client, "PutItem")
    claim = effects.claim(KEY, "rest", "d1", step="notify", execution="arn:x", now=1000)
    assert lose.lost == ["PutItem"] and claim is Claim.MINE
    again = effects.claim(KEY, "rest", "d1", step="notify", execution="arn:y", now=1001)
    assert again is Claim.BUSY


# -- render jobs -------------------------------------------------------------------------


@pytest.fixture
def jobs(client: Any, table_name: str) -> RenderJobTable:
    return RenderJobTable(client, table_name, due_shards=4)


def test_a_job_created_with_its_answer_lost_is_new(client: Any, jobs: RenderJobTable) -> None:
    lose = LoseFirstAnswer(client, "PutItem")
    assert jobs.put_new(new_job()) is True
    assert lose.lost == ["PutItem"]
    assert jobs.put_new(new_job()) is False  # the next create finds it


def test_a_lease_whose_answer_was_lost_is_held(client: Any, jobs: RenderJobTable) -> None:
    jobs.put_new(new_job())
    lose = LoseFirstAnswer(client, "UpdateItem")
    leased = jobs.lease(JOB_PK, JOB_SK, "poller-1", now=150.0, until=180.0)
    assert lose.lost == ["UpdateItem"]
    assert leased is not None and leased.lease_owner == "poller-1" and leased.due_at == 180.0
    assert jobs.lease(JOB_PK, JOB_SK, "poller-2", now=151.0, until=181.0) is None


def test_a_save_whose_answer_was_lost_is_saved(client: Any, jobs: RenderJobTable) -> None:
    jobs.put_new(new_job())
    leased = jobs.lease(JOB_PK, JOB_SK, "poller-1", now=150.0, until=180.0)
    assert leased is not None
    lose = LoseFirstAnswer(client, "UpdateItem")
    assert jobs.save(replace(leased, state=JobState.READY, due_at=None), owner="poller-1")
    assert lose.lost == ["UpdateItem"]  # not counted as a lost lease
    stored = jobs.get(KEY, "li-1")
    assert stored is not None and stored.state is JobState.READY and stored.lease_owner is None


def test_a_claimed_save_whose_answer_was_lost_is_saved(client: Any, jobs: RenderJobTable) -> None:
    jobs.put_new(new_job())
    seen = jobs.peek(JOB_PK, JOB_SK)
    assert seen is not None
    lose = LoseFirstAnswer(client, "UpdateItem")
    assert jobs.save_claimed(replace(seen, due_at=200.0, attempts=1), seen=seen)
    assert lose.lost == ["UpdateItem"]
    assert not jobs.save_claimed(replace(seen, due_at=300.0), seen=seen)  # another poller


def test_a_move_whose_answer_was_lost_is_moved(client: Any, jobs: RenderJobTable) -> None:
    jobs.put_new(new_job(JobState.READY, due_at=None))
    lose = LoseFirstAnswer(client, "UpdateItem")
    moved = jobs.move(KEY, "li-1", (JobState.READY,), JobState.DOWNLOADING)
    assert lose.lost == ["UpdateItem"]
    assert moved is not None and moved.state is JobState.DOWNLOADING
    assert jobs.move(KEY, "li-1", (JobState.READY,), JobState.DOWNLOADING) is None


def test_a_reopen_whose_answer_was_lost_is_reopened(client: Any, jobs: RenderJobTable) -> None:
    jobs.put_new(new_job(JobState.FAILED, due_at=None))
    lose = LoseFirstAnswer(client, "UpdateItem")
    assert jobs.reopen(KEY, "li-1", due_at=10.0, deadline_at=9000.0) is True
    assert lose.lost == ["UpdateItem"]
    assert jobs.reopen(KEY, "li-1", due_at=10.0, deadline_at=9000.0) is False


# -- reconciliation ----------------------------------------------------------------------


def test_a_reconcile_claim_whose_answer_was_lost_is_held(client: Any, table_name: str) -> None:
    state = ReconcileStateTable(client, table_name)
    lose = LoseFirstAnswer(client, "UpdateItem")
    assert state.claim("shop-a", now=1000.0, lease_until=1300.0) is True
    assert lose.lost == ["UpdateItem"]
    assert state.claim("shop-a", now=1001.0, lease_until=1301.0) is False


# -- SES: a send is never repeated by botocore ---------------------------------------------


@pytest.fixture
def silent_endpoint() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback endpoint that reads each request and never answers (a lost answer)."""
    listener = socket.create_server(("127.0.0.1", 0))
    requests: list[bytes] = []
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(connection)
            requests.append(connection.recv(65536))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", requests
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


def test_the_ses_client_sends_an_email_once_when_its_answer_is_lost(
    silent_endpoint: tuple[str, list[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, requests = silent_endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL_SESV2", url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    ses = aws.client.__wrapped__("sesv2", total_attempts=SEND_ATTEMPTS)  # the step's client
    with pytest.raises(ReadTimeoutError):
        ses.send_email(
            FromEmailAddress="orders@example.com",
            Destination={"ToAddresses": ["customer@example.com"]},
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}},
        )
    assert len(requests) == 1  # botocore's default would have sent it three times
