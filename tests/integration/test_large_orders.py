"""Large orders: recorded up to the documented bound with a bounded item, refused above it."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, cast

import boto3
import pytest

from printflow.adapters.artifact_bucket import ArtifactBucket
from printflow.adapters.order_table import INLINE_ORDER_MAX_BYTES, OrderTable
from printflow.adapters.render_job_table import RenderJobTable
from printflow.domain.order import OrderKey
from printflow.domain.render_job import JobState
from printflow.domain.storefront import ProviderName
from printflow.download.service import DownloadService
from printflow.providers.protocol import RenderWork, WorkKind
from printflow.render.jobs import job_for_work
from printflow.settings import MAX_WEBHOOK_BODY_BYTES
from printflow_tools.localstack.resources import LocalResources
from printflow_tools.webhook_events import payload

from .test_webhook import signed, snapshot, storefronts, webhook  # noqa: F401 (fixtures)

DYNAMODB_ITEM_LIMIT = 400 * 1024


def b2b_order(order_id: int, target_bytes: int, lines: int = 500) -> bytes:
    """A Shopify order of about ``target_bytes``: many line items with long properties."""
    doc = json.loads(payload("shopify-orders-create.json"))
    doc["id"] = order_id
    template = doc["line_items"][0]
    doc["line_items"] = [
        {
            **template,
            "id": 10_000 + n,
            "properties": [
                {"name": f"Line {k}", "value": "Company name and address " * 8} for k in range(4)
            ],
        }
        for n in range(lines)
    ]
    body = json.dumps(doc).encode()
    # Pad with a field no normaliser reads, to land exactly on the wanted size.
    # ("note": null becomes "note": "xx…": the quotes replace the four letters of null.)
    assert len(body) <= target_bytes, len(body)
    doc["note"] = "x" * (target_bytes - len(body) + len(b"null") - len(b'""'))
    body = json.dumps(doc).encode()
    assert len(body) == target_bytes
    return body


def item_size(item: dict[str, Any]) -> int:
    return len(json.dumps(item))


@pytest.mark.parametrize("size", [790 * 1024, MAX_WEBHOOK_BODY_BYTES - 1024])
def test_a_large_order_is_recorded_with_a_bounded_item_and_its_full_document_in_s3(
    local_aws: LocalResources,
    webhook: Any,  # noqa: F811
    size: int,
) -> None:
    body = b2b_order(7_000_001, size)

    status, answer = webhook(signed("shopify", "demo-shopify", body))

    assert status == 202, answer
    raw = boto3.client("dynamodb").get_item(
        TableName=local_aws.table(),
        Key={"pk": {"S": "ORDER#demo-shopify#7000001"}, "sk": {"S": "ORDER"}},
    )["Item"]
    assert item_size(raw) < DYNAMODB_ITEM_LIMIT
    assert "lineItems" not in raw["order"]["M"]
    assert raw["order"]["M"]["lineItemCount"]["N"] == "500"
    document_key = raw["orderDocument"]["M"]["key"]["S"]
    assert document_key.startswith("webhooks/demo-shopify/7000001/order-")

    # Every step reads the order through get_order: it sees all 800 line items.
    table = OrderTable(boto3.client("dynamodb"), local_aws.table())
    item = table.get_order(OrderKey("demo-shopify", "7000001"))
    assert item is not None
    assert len(item["order"]["lineItems"]) == 500
    assert item["order"]["lineItems"][499]["properties"][3]["name"] == "Line 3"
    bounded = table.get_order(OrderKey("demo-shopify", "7000001"), full_order=False)
    assert bounded is not None and "lineItems" not in bounded["order"]


def test_just_over_the_bound_is_a_413_that_writes_nothing(
    local_aws: LocalResources,
    webhook: Any,  # noqa: F811
) -> None:
    body = b2b_order(7_000_002, MAX_WEBHOOK_BODY_BYTES + 1)
    before = snapshot(local_aws)

    status, answer = webhook(signed("shopify", "demo-shopify", body))

    assert status == 413, answer
    assert f"the limit is {MAX_WEBHOOK_BODY_BYTES}" in answer["message"]
    assert snapshot(local_aws) == before


def test_a_small_order_stays_inline(
    local_aws: LocalResources,
    webhook: Any,  # noqa: F811
) -> None:
    body = b2b_order(7_000_003, INLINE_ORDER_MAX_BYTES // 2, lines=50)

    status, _ = webhook(signed("shopify", "demo-shopify", body))

    assert status == 202
    raw = boto3.client("dynamodb").get_item(
        TableName=local_aws.table(),
        Key={"pk": {"S": "ORDER#demo-shopify#7000003"}, "sk": {"S": "ORDER"}},
    )["Item"]
    assert "orderDocument" not in raw
    assert len(raw["order"]["M"]["lineItems"]["L"]) == 50


def test_an_order_of_two_thousand_artifacts_records_them_and_completes(
    local_aws: LocalResources,
    webhook: Any,  # noqa: F811
) -> None:
    # Given a recorded order of 1,000 line items (intake's bound) whose 1,000 render jobs
    # have stored two files each (a PDF and a PNG preview): 2,000 artifacts, ~1 MB of records
    body = b2b_order(7_000_004, 2 * 1024 * 1024, lines=1000)
    status, answer = webhook(signed("shopify", "demo-shopify", body))
    assert status == 202, answer
    key = OrderKey("demo-shopify", "7000004")
    jobs = RenderJobTable(boto3.client("dynamodb"), local_aws.table(), due_shards=4)
    bucket = local_aws.bucket()
    for n in range(1000):
        job = job_for_work(
            RenderWork(ProviderName.CHILI, WorkKind.OUTPUT_TASK, f"task-{n:04d}"),
            key,
            "token-7000004",
            "generate",
            created_at=1.0,
            deadline_at=0.0,
            due_at=1.0,
        )
        artifacts = [
            {
                "bucket": bucket,
                "key": f"orders/demo-shopify/7000004/{job.job_id}/{n:04d}.{extension}",
                "filename": f"{n:04d}.{extension}",
                "size": 65536,
                "sha256": "f" * 64,
                "contentType": f"application/{extension}",
                "jobId": job.job_id,
                "provider": "chili",
                "providerReference": f"task-{n:04d}",
                "lineItemId": str(10_000 + n),
            }
            for extension in ("pdf", "png")
        ]
        done = replace(job, state=JobState.DONE, due_at=None, details={"artifacts": artifacts})
        assert jobs.put_new(done)
    tokens = Tokens()
    service = DownloadService(
        jobs,
        OrderTable(boto3.client("dynamodb"), local_aws.table()),
        cast(Any, None),  # no file is streamed here
        cast(Any, None),
        tokens,
        tokens,
        ArtifactBucket(boto3.client("s3"), bucket),
        bucket=bucket,
    )

    # When the last job's download completes the order
    assert service.complete_order_if_done(done)

    # Then the item stays under DynamoDB's limit, the manifest lists all 2,000 files, the
    # order reads them back through get_order, and the step completes with the manifest.
    raw = boto3.client("dynamodb").get_item(
        TableName=local_aws.table(),
        Key={"pk": {"S": "ORDER#demo-shopify#7000004"}, "sk": {"S": "ORDER"}},
    )["Item"]
    assert item_size(raw) < DYNAMODB_ITEM_LIMIT
    assert raw["artifactCount"]["N"] == "2000" and raw["artifacts"]["L"] == []
    manifest = json.loads(
        boto3.client("s3")
        .get_object(Bucket=bucket, Key="orders/demo-shopify/7000004/manifest.json")["Body"]
        .read()
    )
    assert manifest["complete"] is True and len(manifest["artifacts"]) == 2000
    item = OrderTable(boto3.client("dynamodb"), local_aws.table()).get_order(key)
    assert item is not None and len(item["artifacts"]) == 2000
    assert {a["filename"] for a in item["artifacts"]} >= {"0999.pdf", "0999.png", "0000.pdf"}
    ((token, output),) = tokens.succeeded
    assert token == "token-7000004" and output["count"] == 2000 and "artifacts" not in output


def test_a_few_artifacts_stay_in_the_item(local_aws: LocalResources) -> None:
    table = OrderTable(boto3.client("dynamodb"), local_aws.table())
    boto3.client("dynamodb").put_item(
        TableName=local_aws.table(),
        Item={"pk": {"S": "ORDER#shop#1"}, "sk": {"S": "ORDER"}},
    )
    artifact = {"key": "orders/shop/1/job/a.pdf", "size": 3, "sha256": "0" * 64}

    table.set_artifacts(
        OrderKey("shop", "1"),
        [artifact],
        "orders/shop/1/manifest.json",
        "2026-01-01T00:00:00+00:00",
        manifest_bucket=local_aws.bucket(),
    )

    item = table.get_order(OrderKey("shop", "1"), full_order=False)
    assert item is not None and item["artifacts"] == [artifact] and item["artifactCount"] == 1
    assert "artifactsDocument" not in item


class Tokens:
    """The step's task token and the domain events, recorded."""

    def __init__(self) -> None:
        self.succeeded: list[tuple[str, dict[str, Any]]] = []

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        self.succeeded.append((token, output))
        return True

    def fail(self, token: str, error: str, cause: str) -> None:  # pragma: no cover
        raise AssertionError(f"the step failed: {error} {cause}")

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        pass
