"""The botocore request counter the benches price AWS traffic with."""

from __future__ import annotations

import boto3
from moto import mock_aws

from printflow_tools.aws_requests import AwsRequestCounter, billing_units, dynamodb_write_units


def test_counts_requests_and_billing_units_only_while_counting() -> None:
    with mock_aws():
        counter = AwsRequestCounter()
        session = boto3.Session(region_name="us-east-1")
        counter.install(session)
        events = session.client("events")
        sqs = session.client("sqs")
        uncounted = boto3.Session(region_name="us-east-1").client("sqs")
        queue = sqs.create_queue(QueueName="q")["QueueUrl"]  # before counting: not counted

        with counter.counting():
            events.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}"}] * 3)
            sqs.send_message(QueueUrl=queue, MessageBody="x" * 70_000)  # two 64 KiB chunks
            sqs.receive_message(QueueUrl=queue)
            sqs.receive_message(QueueUrl=queue)  # nothing left: an idle poll
            uncounted.list_queues()  # another session's client

        counts = counter.snapshot()
        assert counts.requests == {
            ("events", "PutEvents"): 1,
            ("sqs", "SendMessage"): 1,
            ("sqs", "ReceiveMessage"): 1,
            ("sqs", "ReceiveMessage:empty"): 1,
        }
        assert counts.unit("events", "events") == 3
        assert counts.unit("sqs", "payload_chunks") == 2
        assert counts.of("sqs") == 3
        sqs.list_queues()  # outside the block
        assert counter.snapshot() == counts


def test_an_existing_client_can_be_attached() -> None:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        counter = AwsRequestCounter()
        counter.attach(client)
        with counter.counting():
            client.list_buckets()
        assert counter.snapshot().requests == {("s3", "ListBuckets"): 1}


def test_ses_bills_every_recipient() -> None:
    params = {"Destination": {"ToAddresses": ["a@x.org", "b@x.org"], "BccAddresses": ["c@x.org"]}}
    assert billing_units("sesv2", "SendEmail", params) == {"recipients": 3}
    assert billing_units("s3", "PutObject", {}) == {}


def test_local_only_requests_are_kept_apart_and_callers_can_be_left_out() -> None:
    with mock_aws():
        caller: list[str | None] = [None]
        counter = AwsRequestCounter(caller=lambda: caller[0])
        session = boto3.Session(region_name="us-east-1")
        counter.install(session)
        cloudwatch = session.client("cloudwatch")
        sqs = session.client("sqs")
        queue = sqs.create_queue(QueueName="q")["QueueUrl"]

        with counter.counting():
            # The local stack's stand-in for EMF lines: no AWS bill, so no request
            cloudwatch.put_metric_data(
                Namespace="PrintFlow", MetricData=[{"MetricName": "M", "Value": 1.0}]
            )
            caller[0] = "PollerFunction"
            sqs.send_message(QueueUrl=queue, MessageBody="scheduled")
            caller[0] = "DownloadFunction"
            sqs.send_message(QueueUrl=queue, MessageBody="per order")

        everything = counter.snapshot()
        assert everything.requests == {("sqs", "SendMessage"): 2}
        assert everything.local_only == {("cloudwatch", "PutMetricData"): 1}
        assert everything.unit("cloudwatch", "emf_log_bytes") > 0  # priced as log bytes
        per_order = counter.snapshot(without=frozenset({"PollerFunction"}))
        assert per_order.requests == {("sqs", "SendMessage"): 1}
        scheduled = counter.snapshot(only=frozenset({"PollerFunction"}))
        assert scheduled.requests == {("sqs", "SendMessage"): 1}


def test_dynamodb_writes_are_counted_per_item_kind_with_their_index_entries() -> None:
    indexes = {"DueIndex": ("dueShard", "dueAt"), "StatusIndex": ("statusKey", "statusAt")}
    put = {"Item": {"pk": {"S": "ORDER#s#1"}, "sk": {"S": "JOB#7"}, "dueShard": {"N": "1"},
                    "dueAt": {"N": "5"}}}  # fmt: skip
    assert dynamodb_write_units("PutItem", put, indexes) == {"write:JOB": 1, "index_entries": 1}
    status = {
        "Key": {"pk": {"S": "ORDER#s#1"}, "sk": {"S": "ORDER"}},
        "UpdateExpression": "SET #status = :s, statusKey = :k, statusAt = :at",
        "ExpressionAttributeNames": {"#status": "status"},
    }
    # The index key moves: its old entry is deleted and the new one written
    assert dynamodb_write_units("UpdateItem", status, indexes) == {
        "write:ORDER": 1,
        "index_entries": 2,
    }
    plain = {"Key": {"pk": {"S": "ORDER#s#1"}, "sk": {"S": "REST#x"}},
             "UpdateExpression": "SET httpStatus = :h"}  # fmt: skip
    assert dynamodb_write_units("UpdateItem", plain, indexes) == {"write:REST": 1}


def test_an_update_removing_an_index_key_deletes_one_entry() -> None:
    indexes = {"DueIndex": ("dueShard", "dueAt")}
    done = {
        "Key": {"pk": {"S": "ORDER#s#1"}, "sk": {"S": "JOB#7"}},
        "UpdateExpression": "SET #state = :state REMOVE #dueShard, #dueAt",
        "ExpressionAttributeNames": {"#state": "state", "#dueShard": "dueShard", "#dueAt": "dueAt"},
    }
    assert dynamodb_write_units("UpdateItem", done, indexes) == {"write:JOB": 1, "index_entries": 1}
