"""The botocore request counter the benches price AWS traffic with."""

from __future__ import annotations

import boto3
from moto import mock_aws

from printflow_tools.aws_requests import AwsRequestCounter, billing_units


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
