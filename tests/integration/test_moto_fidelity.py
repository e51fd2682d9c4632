"""Where moto differs from AWS, ``fidelity.py`` corrects it: each correction, checked."""

from __future__ import annotations

import boto3
import pytest

from printflow_tools.localstack.resources import LocalResources

BODY = b'{"id": 1001, "note": "a=b&c=d"}'


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/json",
        "application/octet-stream",
    ],
)
def test_s3_keeps_a_put_body_whatever_its_content_type(
    local_aws: LocalResources, content_type: str
) -> None:
    # Given an object PUT with a content type a web framework would parse as a form
    s3 = boto3.client("s3")
    s3.put_object(Bucket=local_aws.bucket(), Key="k", Body=BODY, ContentType=content_type)

    # Then S3 returns the bytes that were sent (moto alone stores 0 bytes for form types)
    stored = s3.get_object(Bucket=local_aws.bucket(), Key="k")
    assert stored["Body"].read() == BODY
    assert stored["ContentType"] == content_type


def test_an_object_body_that_looks_like_s3_query_parameters_is_still_a_body(
    local_aws: LocalResources,
) -> None:
    # Form fields of the body must not be read as ?uploadId=... or ?tagging of the request
    s3 = boto3.client("s3")
    body = b"uploadId=123&partNumber=2&tagging="
    s3.put_object(
        Bucket=local_aws.bucket(),
        Key="q",
        Body=body,
        ContentType="application/x-www-form-urlencoded",
    )
    assert s3.get_object(Bucket=local_aws.bucket(), Key="q")["Body"].read() == body


@pytest.mark.parametrize("checksum_type", ["FULL_OBJECT", "COMPOSITE"])
def test_a_multipart_completion_stores_the_object_and_its_checksum_as_moto_did(
    local_aws: LocalResources, checksum_type: str
) -> None:
    # Given three parts uploaded with CRC32 checksums (the download function's full-object)
    import base64
    import zlib

    s3 = boto3.client("s3")
    parts_bytes = [bytes([n]) * (5 * 1024 * 1024) for n in (1, 2)] + [b"tail"]
    upload = s3.create_multipart_upload(
        Bucket=local_aws.bucket(),
        Key="big",
        ChecksumAlgorithm="CRC32",
        ChecksumType=checksum_type,
    )["UploadId"]
    parts = []
    for number, body in enumerate(parts_bytes, start=1):
        answer = s3.upload_part(
            Bucket=local_aws.bucket(), Key="big", UploadId=upload, PartNumber=number,
            Body=body, ChecksumAlgorithm="CRC32",
        )  # fmt: skip
        parts.append(
            {"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC32": answer["ChecksumCRC32"]}
        )
    whole = b"".join(parts_bytes)
    complete: dict[str, object] = {"Parts": parts}

    # When it is completed (the patched completion joins the parts once)
    done = s3.complete_multipart_upload(
        Bucket=local_aws.bucket(), Key="big", UploadId=upload, MultipartUpload=complete,
        **({"ChecksumType": checksum_type} if checksum_type == "FULL_OBJECT" else {}),
    )  # fmt: skip

    # Then the object is the parts in order, with a multipart ETag and, for a full-object
    # checksum, the CRC32 of the whole file (as S3 keeps it)
    stored = s3.get_object(Bucket=local_aws.bucket(), Key="big", ChecksumMode="ENABLED")
    assert stored["Body"].read() == whole
    assert done["ETag"].strip('"').endswith("-3")
    if checksum_type == "FULL_OBJECT":
        expected = base64.b64encode(zlib.crc32(whole).to_bytes(4, "big")).decode()
        assert stored["ChecksumCRC32"] == expected


def test_a_completed_object_reads_copies_and_is_replaced_like_any_other(
    local_aws: LocalResources,
) -> None:
    # Given an upload of three parts that a first, invalid completion (a wrong ETag) refused
    s3 = boto3.client("s3")
    bucket = local_aws.bucket()
    parts_bytes = [bytes([n]) * (5 * 1024 * 1024) for n in (1, 2)] + [b"tail"]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="joined")["UploadId"]
    parts = [
        {
            "PartNumber": number,
            "ETag": s3.upload_part(
                Bucket=bucket, Key="joined", UploadId=upload, PartNumber=number, Body=body
            )["ETag"],
        }
        for number, body in enumerate(parts_bytes, start=1)
    ]
    wrong = [{**parts[0], "ETag": '"0123456789abcdef0123456789abcdef"'}, *parts[1:]]
    with pytest.raises(s3.exceptions.ClientError, match="InvalidPart"):
        s3.complete_multipart_upload(
            Bucket=bucket, Key="joined", UploadId=upload, MultipartUpload={"Parts": wrong}
        )

    # When it is completed (the patched completion keeps the parts' buffers, uncopied)
    s3.complete_multipart_upload(
        Bucket=bucket, Key="joined", UploadId=upload, MultipartUpload={"Parts": parts}
    )

    # Then the object reads whole and by ranges across the parts' edges, copies, and is
    # replaced by a later PUT, as any object is
    whole = b"".join(parts_bytes)
    assert s3.get_object(Bucket=bucket, Key="joined")["Body"].read() == whole
    edge = 5 * 1024 * 1024
    ranged = s3.get_object(Bucket=bucket, Key="joined", Range=f"bytes={edge - 3}-{edge + 2}")
    assert ranged["Body"].read() == b"\x01" * 3 + b"\x02" * 3
    tail = s3.get_object(Bucket=bucket, Key="joined", Range="bytes=-6")["Body"].read()
    assert tail == b"\x02\x02tail"
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "joined"})
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == whole
    s3.put_object(Bucket=bucket, Key="joined", Body=b"replaced")
    assert s3.get_object(Bucket=bucket, Key="joined")["Body"].read() == b"replaced"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_sqs_hands_out_only_messages_within_the_queue_s_retention(
    local_aws: LocalResources,
) -> None:
    # Given two queues that keep messages 60 s, one holding a message sent 61 s ago and the
    # other one sent now
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    sqs = boto3.client("sqs")
    urls = {
        name: sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": "60"})[
            "QueueUrl"
        ]
        for name in ("expired", "fresh")
    }
    for name, url in urls.items():
        sqs.send_message(QueueUrl=url, MessageBody=name)
    queue = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_queue("expired")
    queue._messages[0].sent_timestamp -= 61_000  # sent 61 s ago (ms)

    # When each is received (the patched check reads the one setting moto's check read)
    def bodies(url: str) -> list[str]:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        return [m["Body"] for m in answer.get("Messages", [])]

    # Then only the message within the retention period is handed out
    assert bodies(urls["expired"]) == []
    assert bodies(urls["fresh"]) == ["fresh"]


def test_the_step_functions_engine_keeps_one_client_per_service() -> None:
    # Given the corrections (the engine's Lambda tasks ask for a client per invocation)
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils import boto_client

    from printflow_tools.localstack.fidelity import make_moto_behave_like_aws

    make_moto_behave_like_aws()

    from moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials import (
        StateCredentials,
    )

    # Then a second Lambda task gets the first one's client (the engine passes the state's
    # credentials, the execution role, every time), another service or role its own
    role = StateCredentials(role_arn="arn:aws:iam::123456789012:role/flow")
    first = lambda_eval_utils.boto_client_for("us-east-1", "lambda", state_credentials=role)
    again = StateCredentials(role_arn="arn:aws:iam::123456789012:role/flow")
    assert lambda_eval_utils.boto_client_for("us-east-1", "lambda", again) is first
    other = StateCredentials(role_arn="arn:aws:iam::123456789012:role/other")
    assert lambda_eval_utils.boto_client_for("us-east-1", "lambda", other) is not first
    assert boto_client.boto_client_for("us-east-1", "sqs") is not first
    assert boto_client.boto_client_for("eu-west-1", "lambda") is not first
