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
