"""The artifact bucket's S3 server access logs, as the template declares and the stack creates."""

from __future__ import annotations

import json

import boto3

from printflow_tools.localstack.resources import LocalResources
from printflow_tools.localstack.template import load_template


def test_the_artifact_bucket_logs_into_its_own_log_bucket_with_a_retention(
    local_aws: LocalResources,
) -> None:
    s3 = boto3.client("s3")
    log_bucket = local_aws.bucket("AccessLogBucket")

    logging = s3.get_bucket_logging(Bucket=local_aws.bucket())["LoggingEnabled"]

    assert logging == {"TargetBucket": log_bucket, "TargetPrefix": "artifact-bucket/"}
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=log_bucket)["Rules"]
    default_days = load_template()["Parameters"]["AccessLogRetentionDays"]["Default"]
    assert rule["Expiration"] == {"Days": default_days}
    policy = json.loads(s3.get_bucket_policy(Bucket=log_bucket)["Policy"])
    (grant,) = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert grant["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert grant["Resource"].endswith(f"{log_bucket}/artifact-bucket/*")
