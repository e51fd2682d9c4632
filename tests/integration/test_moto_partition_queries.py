"""fidelity.py's partition queries (and its one-conversion projection, its direct item sizes,
copies, comparisons and index projections, its one-pass response encoding) answer exactly
what plain moto answers, page by page.

The correction only narrows the items moto's own query walks (to the queried partition); so
every query below is run twice on the same table, once with the correction and once with
moto's original ``Table.query``, and the two answers (items, counts, LastEvaluatedKey of
every page) must be equal, also after writes that move items between partitions.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import SecondaryIndex, Table
from moto.dynamodb.responses import DynamoResult

from printflow_tools.localstack.fidelity import make_moto_behave_like_aws

TABLE = "fidelity-partitions"
STOREFRONTS = ("sf-a", "sf-b", "sf-c")
STATUSES = ("Failed", "Received", "Success")


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    make_moto_behave_like_aws()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": kind}
                for name, kind in (
                    ("pk", "S"),
                    ("sk", "S"),
                    ("gpk", "S"),
                    ("gsk", "S"),
                    ("shard", "N"),
                    ("lsk", "S"),
                )
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "Sparse",
                    "KeySchema": [
                        {"AttributeName": "gpk", "KeyType": "HASH"},
                        {"AttributeName": "gsk", "KeyType": "RANGE"},
                    ],
                    "Projection": {
                        "ProjectionType": "INCLUDE",
                        "NonKeyAttributes": [
                            *("note", "nested", "tags", "number", "flag", "bin", "history")
                        ],
                    },
                },
                {
                    "IndexName": "NoSortKey",
                    "KeySchema": [{"AttributeName": "shard", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                },
            ],
            LocalSecondaryIndexes=[
                {
                    "IndexName": "Local",
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "lsk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
        )
        _load(client)
        yield client


def _item(i: int) -> dict[str, Any]:
    storefront, status = STOREFRONTS[i % 3], STATUSES[(i // 3) % 3]
    item: dict[str, Any] = {
        "pk": {"S": f"ORDER#{storefront}"},
        "sk": {"S": f"{i:05d}"},
        "note": {"S": f"note {i}"},
        "other": {"S": "x" * (i % 7)},
    }
    if i % 4:  # sparse: a quarter of the items are in no partition of Sparse
        item["gpk"] = {"S": f"{storefront}#{status}"}
        # Repeated sort key values: ties are ordered by the table key, as moto does
        item["gsk"] = {"S": f"2026-12-01T{(i * 7) % 24:02d}:00"}
    if i % 5:
        item["shard"] = {"N": str(i % 3)}
    if i % 2:
        item["lsk"] = {"S": f"L{(i * 13) % 50:03d}"}
    # Every attribute type, for the projections, sizes and copies: sets and binaries (which
    # moto's own projection reorders or re-encodes), numbers not in Decimal's printed form
    if i % 3 == 0:
        item["tags"] = {"SS": [f"t{i % 5}", "a", "zz"]}
    item["number"] = {"N": ("7", "1e3", "1.50", "-0.25", "12345678901234567890")[i % 5]}
    item["nested"] = {"M": {
        "list": {"L": [{"N": "1"}, {"S": "x"}, {"BOOL": True}, {"NULL": True}, {"M": {}}]},
        "deep": {"M": {"s": {"S": f"d{i}"}, "n": {"N": str(i)}}},
    }} if i % 2 else {"M": {"plain": {"S": "p"}}}  # fmt: skip
    if i % 4 == 1:
        item["bin"] = {"B": bytes([i % 256]) * 3}
        item["bins"] = {"BS": [b"\x00\x01", b"\xff"]}
    item["flag"] = {"BOOL": i % 2 == 0}
    if i % 6 == 0:
        item["history"] = {"L": [{"M": {"s": {"S": "ä"}}}, {"NS": ["1", "2.5"]}, {"NULL": True}]}
    if i % 17 == 0:  # big items, so some pages end at 1 MB rather than at Limit
        item["blob"] = {"S": "b" * 300_000}
    return item


def _load(client: Any) -> None:
    items = [_item(i) for i in range(240)]
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        client.batch_write_item(RequestItems={TABLE: batch})


# FilterExpression is applied after Limit: pages come back short (or empty) yet continue
FILTERED: dict[str, Any] = {
    "IndexName": "Sparse", "KeyConditionExpression": "gpk = :p", "Limit": 4,
    "FilterExpression": "contains(note, :n)",
    "ExpressionAttributeValues": {":p": {"S": "sf-c#Failed"}, ":n": {"S": "1"}},
}  # fmt: skip
# Its partition holds 1.5 MB of items: its pages end at 1 MB, as on DynamoDB
BIG_ITEMS: dict[str, Any] = {
    "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "ORDER#sf-a"}},
}  # fmt: skip
QUERIES: list[dict[str, Any]] = [
    {"IndexName": "Sparse", "KeyConditionExpression": "gpk = :p",
     "ExpressionAttributeValues": {":p": {"S": "sf-a#Failed"}}},
    {"IndexName": "Sparse", "KeyConditionExpression": "gpk = :p", "Limit": 7,
     "ScanIndexForward": False, "ExpressionAttributeValues": {":p": {"S": "sf-b#Received"}}},
    {"IndexName": "Sparse", "KeyConditionExpression": "gpk = :p AND gsk >= :t", "Limit": 5,
     "ExpressionAttributeValues": {":p": {"S": "sf-c#Success"}, ":t": {"S": "2026-12-01T10"}}},
    {"IndexName": "Sparse",
     "KeyConditionExpression": "gpk = :p AND gsk BETWEEN :a AND :b",
     "ExpressionAttributeValues": {":p": {"S": "sf-a#Received"}, ":a": {"S": "2026-12-01T03"},
                                   ":b": {"S": "2026-12-01T15"}}},
    {"IndexName": "Sparse", "KeyConditionExpression": "gpk = :p AND begins_with(gsk, :t)",
     "ExpressionAttributeValues": {":p": {"S": "sf-b#Failed"}, ":t": {"S": "2026-12-01T1"}}},
    FILTERED,
    {"IndexName": "Sparse", "KeyConditionExpression": "gpk = :p", "Select": "COUNT",
     "ExpressionAttributeValues": {":p": {"S": "sf-a#Success"}}},
    {"IndexName": "Sparse", "KeyConditionExpression": "gpk = :p",
     "ProjectionExpression": "sk, note",
     "ExpressionAttributeValues": {":p": {"S": "sf-b#Success"}}},
    {"IndexName": "Sparse", "KeyConditionExpression": "gpk = :p",
     "ExpressionAttributeValues": {":p": {"S": "no-such#partition"}}},
    {"IndexName": "NoSortKey", "KeyConditionExpression": "shard = :s", "Limit": 9,
     "ExpressionAttributeValues": {":s": {"N": "1"}}},
    {"IndexName": "NoSortKey", "KeyConditionExpression": "shard = :s",
     "ScanIndexForward": False, "ExpressionAttributeValues": {":s": {"N": "0"}}},
    {"IndexName": "Local", "KeyConditionExpression": "pk = :p AND lsk < :l", "Limit": 6,
     "ExpressionAttributeValues": {":p": {"S": "ORDER#sf-a"}, ":l": {"S": "L030"}}},
    {"KeyConditionExpression": "pk = :p AND sk > :s", "Limit": 11,
     "ExpressionAttributeValues": {":p": {"S": "ORDER#sf-c"}, ":s": {"S": "00100"}}},
    {"KeyConditionExpression": "pk = :p", "ScanIndexForward": False,
     "ExpressionAttributeValues": {":p": {"S": "ORDER#sf-b"}}},
    BIG_ITEMS,
]  # fmt: skip


def _pages(client: Any, query: dict[str, Any]) -> list[dict[str, Any]]:
    pages, start = [], None
    while True:
        extra = {"ExclusiveStartKey": start} if start else {}
        page = client.query(TableName=TABLE, **query, **extra)
        page.pop("ResponseMetadata")
        pages.append(page)
        start = page.get("LastEvaluatedKey")
        if not start or len(pages) > 200:
            return pages


def _answers(client: Any) -> list[list[dict[str, Any]]]:
    return [_pages(client, query) for query in QUERIES]


def _plain_moto_answers(client: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as plain:
        plain.setattr(Table, "query", Table.query.__wrapped__)  # type: ignore[attr-defined]
        plain.setattr(Item, "project", Item.project.__wrapped__)  # type: ignore[attr-defined]
        # moto's own size, copy, comparison, index projection and response encoding too
        plain.setattr(Item, "size", Item.size.__wrapped__)  # type: ignore[attr-defined]
        plain.setattr(DynamoType, "size", DynamoType.size.__wrapped__)  # type: ignore[attr-defined]
        plain.setattr(DynamoType, "__deepcopy__", DynamoType.__deepcopy__.__wrapped__)  # type: ignore[attr-defined]
        cast = DynamoType.cast_value.fget.__wrapped__  # type: ignore[attr-defined]
        plain.setattr(DynamoType, "cast_value", property(cast))
        plain.setattr(SecondaryIndex, "project", SecondaryIndex.project.__wrapped__)  # type: ignore[attr-defined]
        plain.setattr(DynamoResult, "execute_result", DynamoResult.execute_result.__wrapped__)  # type: ignore[attr-defined]
        return _answers(client)


def _sets_unordered(value: Any) -> Any:
    """The answer with its sets' members sorted: a DynamoDB set has no order, and moto's is
    that of a Python set it builds on the way, which differs between two ways of building it
    when string hashes collide (and between runs)."""
    if isinstance(value, dict):
        return {
            k: sorted(v) if k in ("SS", "NS", "BS") and isinstance(v, list) else _sets_unordered(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_sets_unordered(v) for v in value]
    return value


def _assert_same_as_plain_moto(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    corrected = _answers(client)
    plain = _plain_moto_answers(client, monkeypatch)
    for query, ours, theirs in zip(QUERIES, corrected, plain, strict=True):
        assert _sets_unordered(ours) == _sets_unordered(theirs), query
    # The table is mixed enough for the comparison to mean something
    assert any(len(pages) > 2 for pages in corrected)
    filtered = corrected[QUERIES.index(FILTERED)]
    assert any(page["Count"] < page["ScannedCount"] for page in filtered[:-1])
    assert len(corrected[QUERIES.index(BIG_ITEMS)]) > 1


def test_partition_queries_answer_as_plain_moto(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _assert_same_as_plain_moto(dynamodb, monkeypatch)


def test_writes_keep_the_partitions_current(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the partitions were built by a first query
    _answers(dynamodb)

    # When items move between partitions, leave the sparse index, join it, or go away,
    # by every write path (update, put over, delete, batch, transaction, rolled-back one)
    dynamodb.update_item(
        TableName=TABLE, Key={"pk": {"S": "ORDER#sf-a"}, "sk": {"S": "00003"}},
        UpdateExpression="SET gpk = :p", ExpressionAttributeValues={":p": {"S": "sf-a#Failed"}},
    )  # fmt: skip
    dynamodb.update_item(
        TableName=TABLE, Key={"pk": {"S": "ORDER#sf-b"}, "sk": {"S": "00001"}},
        UpdateExpression="REMOVE gpk, #shard", ExpressionAttributeNames={"#shard": "shard"},
    )  # fmt: skip
    dynamodb.put_item(TableName=TABLE, Item={**_item(9), "gpk": {"S": "sf-a#Failed"},
                                             "gsk": {"S": "2026-12-01T00:00"}})  # fmt: skip
    dynamodb.delete_item(TableName=TABLE, Key={"pk": {"S": "ORDER#sf-a"}, "sk": {"S": "00018"}})
    dynamodb.batch_write_item(RequestItems={TABLE: [
        {"PutRequest": {"Item": {**_item(300), "gpk": {"S": "sf-a#Failed"},
                                     "gsk": {"S": "2026-12-01T01:00"}}}},
        {"DeleteRequest": {"Key": {"pk": {"S": "ORDER#sf-c"}, "sk": {"S": "00002"}}}},
    ]})  # fmt: skip
    dynamodb.transact_write_items(TransactItems=[
        {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "ORDER#sf-c"}, "sk": {"S": "00005"}},
                    "UpdateExpression": "SET gpk = :p, gsk = :t",
                    "ExpressionAttributeValues": {":p": {"S": "sf-a#Failed"},
                                                  ":t": {"S": "2026-12-02T00:00"}}}},
        {"Put": {"TableName": TABLE, "Item": _item(301)}},
    ])  # fmt: skip
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(TransactItems=[
            {"Update": {"TableName": TABLE,
                        "Key": {"pk": {"S": "ORDER#sf-b"}, "sk": {"S": "00004"}},
                        "UpdateExpression": "SET gpk = :p",
                        "ExpressionAttributeValues": {":p": {"S": "sf-a#Failed"}}}},
            {"ConditionCheck": {"TableName": TABLE,
                                "Key": {"pk": {"S": "ORDER#sf-b"}, "sk": {"S": "00007"}},
                                "ConditionExpression": "attribute_not_exists(pk)"}},
        ])  # fmt: skip

    # Then every query still answers as plain moto does
    _assert_same_as_plain_moto(dynamodb, monkeypatch)
    moved = _pages(dynamodb, QUERIES[0])
    keys = {item["sk"]["S"] for page in moved for item in page["Items"]}
    assert {"00003", "00009", "00300", "00005"} <= keys
    assert "00004" not in keys  # the rolled-back transaction changed nothing
    assert "00018" not in keys  # deleted


def test_item_sizes_copies_and_comparisons_are_moto_s(dynamodb: Any) -> None:
    """Each item's size, every attribute's size, copy and comparison value, as moto's own
    (the pages above would hide a size that is off by a few bytes)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(TABLE)
    moto_item_size = Item.size.__wrapped__  # type: ignore[attr-defined]
    moto_size = DynamoType.size.__wrapped__  # type: ignore[attr-defined]
    moto_copy = DynamoType.__deepcopy__.__wrapped__  # type: ignore[attr-defined]
    moto_cast = vars(DynamoType)["cast_value"].fget.__wrapped__
    items = table.all_items()
    kinds = set()
    for item in items:
        assert item.size() == moto_item_size(item)
        for value in item.attrs.values():
            kinds.add(value.type)
            assert value.size() == moto_size(value)
            ours, theirs = copy.deepcopy(value), moto_copy(value, {})
            assert ours == theirs and ours is not value
            assert ours.to_regular_json() == theirs.to_regular_json()
            assert value.cast_value == moto_cast(value)
    assert kinds == {"S", "N", "M", "L", "SS", "B", "BS", "BOOL"}
    assert len(items) == 240
