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
