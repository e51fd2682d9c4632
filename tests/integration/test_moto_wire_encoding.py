"""fidelity.py's one-pass encoding of ``Query`` and ``Scan`` answers sends the bytes moto's
own serializer sends: same status, same headers, same body, for every page of many queries.

Each answer the test's requests get is encoded twice, by the correction and by moto's
serializer (the original ``DynamoResult.execute_result``), and the two must be identical. The
queries cover the table and both index kinds, projections (index and expression),
pagination (``Limit`` and 1 MB pages), filters, ``Select=COUNT``, consumed capacity, and
every attribute type (the table of the partition-query test, which holds them all).
"""

from __future__ import annotations

from typing import Any

import pytest
from moto.core.responses import ActionContext
from moto.dynamodb.responses import DynamoResult

from printflow_tools.localstack.dynamodb_wire import NotWireShaped, output_encoder
from tests.integration.test_moto_partition_queries import QUERIES, TABLE, _pages
from tests.integration.test_moto_partition_queries import dynamodb as dynamodb  # the fixture

Encoded = tuple[int, dict[str, str], str]

MORE_QUERIES: list[dict[str, Any]] = [
    {"IndexName": "Sparse", "KeyConditionExpression": "gpk = :p", "Limit": 3,
     "ReturnConsumedCapacity": "TOTAL", "ExpressionAttributeValues": {":p": {"S": "sf-a#Failed"}}},
    {"IndexName": "Local", "KeyConditionExpression": "pk = :p", "Limit": 8,
     "ReturnConsumedCapacity": "INDEXES",
     "ExpressionAttributeValues": {":p": {"S": "ORDER#sf-b"}}},
    {"KeyConditionExpression": "pk = :p", "Select": "COUNT", "FilterExpression": "flag = :f",
     "ExpressionAttributeValues": {":p": {"S": "ORDER#sf-c"}, ":f": {"BOOL": True}}},
    {"KeyConditionExpression": "pk = :p", "Limit": 9,
     "ProjectionExpression": "sk, nested.deep, #n, tags, bins",
     "ExpressionAttributeNames": {"#n": "number"},
     "ExpressionAttributeValues": {":p": {"S": "ORDER#sf-a"}}},
    {"KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
     "FilterExpression": "attribute_exists(bin) OR size(note) > :z",
     "ExpressionAttributeValues": {":p": {"S": "ORDER#sf-b"}, ":s": {"S": "001"},
                                   ":z": {"N": "7"}}},
    {"IndexName": "Sparse", "KeyConditionExpression": "gpk = :p",
     "Select": "ALL_PROJECTED_ATTRIBUTES",
     "ExpressionAttributeValues": {":p": {"S": "sf-c#Received"}}},
]  # fmt: skip


Seen = list[tuple[Encoded, Encoded, bool]]


@pytest.fixture
def both_encodings(monkeypatch: pytest.MonkeyPatch) -> Seen:
    """Every DynamoDB answer, as (the correction's bytes, moto's bytes, one pass was used)."""
    corrected = DynamoResult.execute_result
    moto_own = corrected.__wrapped__  # type: ignore[attr-defined]
    seen: Seen = []

    def both(self: DynamoResult, context: ActionContext) -> Any:
        ours, theirs = corrected(self, context), moto_own(self, context)
        encoder = output_encoder(context.operation_model)
        try:
            one_pass = encoder is not None and encoder(self.result) is not None
        except NotWireShaped:
            one_pass = False
        # Snapshots: moto adds its response headers to the returned dict afterwards.
        seen.append(((ours[0], dict(ours[1]), ours[2]), (theirs[0], dict(theirs[1]), theirs[2]),
                     one_pass))  # fmt: skip
        return ours

    monkeypatch.setattr(DynamoResult, "execute_result", both)
    return seen


def test_query_answers_are_encoded_as_moto_encodes_them(
    dynamodb: Any, both_encodings: Seen
) -> None:
    pages = [page for query in QUERIES + MORE_QUERIES for page in _pages(dynamodb, query)]

    assert len(both_encodings) == len(pages) > 40
    for ours, theirs, _ in both_encodings:
        assert ours == theirs
    # The one-pass encoder did the work (it stepped aside for nothing here)
    assert all(one_pass for _, _, one_pass in both_encodings)
    bodies = "".join(theirs[2] for _, theirs, _ in both_encodings)
    expected = ('"SS": [', '"BS": [', '"B": "', '"NULL": true', '"BOOL": false', '"M": {}',
                '"LastEvaluatedKey"', '"ConsumedCapacity"', '"LocalSecondaryIndexes"')  # fmt: skip
    for wire in expected:
        assert wire in bodies, wire
    counted = [p for p in pages if "Items" not in p]
    assert counted and all(p["Count"] <= p["ScannedCount"] for p in counted)


def test_scan_answers_are_encoded_as_moto_encodes_them(dynamodb: Any, both_encodings: Seen) -> None:
    start: dict[str, Any] | None = None
    pages = 0
    while True:
        extra = {"ExclusiveStartKey": start} if start else {}
        page = dynamodb.scan(
            TableName=TABLE, Limit=50, FilterExpression="flag = :f",
            ExpressionAttributeValues={":f": {"BOOL": False}}, **extra,
        )  # fmt: skip
        pages += 1
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    dynamodb.scan(TableName=TABLE, IndexName="Sparse", Select="COUNT")

    assert len(both_encodings) == pages + 1 > 2
    assert all(ours == theirs and one_pass for ours, theirs, one_pass in both_encodings)


def test_an_unexpected_value_is_left_to_moto(dynamodb: Any) -> None:
    """What the encoder does not know (here a member the output shape lacks), it refuses, so
    moto's serializer answers instead."""
    from botocore.session import get_session

    query = get_session().get_service_model("dynamodb").operation_model("Query")
    encoder = output_encoder(query)
    assert encoder is not None
    assert encoder({"Count": 1, "ScannedCount": 1, "Items": [{"a": {"S": "x"}}]}) == {
        "Items": [{"a": {"S": "x"}}], "Count": 1, "ScannedCount": 1,
    }  # fmt: skip
    for unexpected in (
        {"Count": 1, "Surprise": 2},
        {"Count": True},
        {"Items": [{"a": {"S": 5}}]},
        {"Items": [None]},
        {"Items": [{"a": {"S": "x", "Q": "y"}}]},
    ):
        with pytest.raises(NotWireShaped):
            encoder(unexpected)


def test_item_operation_answers_are_encoded_as_moto_encodes_them(
    dynamodb: Any, both_encodings: Seen
) -> None:
    """GetItem, BatchGetItem, the writes with every ReturnValues and consumed capacity, the
    batch and transactional calls."""
    key = {"pk": {"S": "ORDER#sf-b"}, "sk": {"S": "00001"}}  # an item with every type
    new = {"pk": {"S": "ORDER#sf-b"}, "sk": {"S": "new"}, "lsk": {"S": "L1"},
           "bins": {"BS": [b"\x00"]}, "n": {"N": "1.50"}, "m": {"M": {"l": {"L": []}}}}  # fmt: skip
    capacity = {"ReturnConsumedCapacity": "INDEXES", "ReturnItemCollectionMetrics": "SIZE"}
    calls: list[tuple[str, dict[str, Any]]] = [
        ("get_item", {"Key": key}),
        ("get_item", {"Key": key, "ConsistentRead": True, "ReturnConsumedCapacity": "TOTAL"}),
        ("get_item", {"Key": key, "ProjectionExpression": "nested.deep, bins, #n",
                      "ExpressionAttributeNames": {"#n": "number"}}),
        ("get_item", {"Key": {"pk": {"S": "ORDER#sf-b"}, "sk": {"S": "missing"}}}),
        ("put_item", {"Item": new, **capacity}),
        ("put_item", {"Item": new, "ReturnValues": "ALL_OLD", **capacity}),
        ("update_item", {"Key": key, "UpdateExpression": "SET note = :v, tally = :n",
                         "ExpressionAttributeValues": {":v": {"S": "é"}, ":n": {"N": "3"}},
                         "ReturnValues": "ALL_NEW", **capacity}),
        ("update_item", {"Key": key, "UpdateExpression": "SET note = :v",
                         "ExpressionAttributeValues": {":v": {"S": "x"}},
                         "ReturnValues": "UPDATED_OLD"}),
        ("update_item", {"Key": key, "UpdateExpression": "REMOVE tally",
                         "ReturnValues": "NONE"}),
        ("delete_item", {"Key": {k: new[k] for k in ("pk", "sk")}, "ReturnValues": "ALL_OLD",
                         **capacity}),
        ("delete_item", {"Key": {k: new[k] for k in ("pk", "sk")}}),
    ]  # fmt: skip
    for method, params in calls:
        getattr(dynamodb, method)(TableName=TABLE, **params)
    keys = [{"pk": {"S": f"ORDER#sf-{s}"}, "sk": {"S": f"{i:05d}"}}
            for s, i in (("a", 0), ("b", 1), ("c", 2), ("a", 999))]  # fmt: skip
    dynamodb.batch_get_item(RequestItems={TABLE: {"Keys": keys}}, ReturnConsumedCapacity="TOTAL")
    dynamodb.batch_get_item(
        RequestItems={TABLE: {"Keys": keys[:2], "ProjectionExpression": "pk, note"}}
    )
    dynamodb.batch_write_item(
        RequestItems={TABLE: [{"PutRequest": {"Item": {**new, "sk": {"S": f"w{i}"}}}}
                              for i in range(3)]},
        **capacity,
    )  # fmt: skip
    dynamodb.transact_get_items(
        TransactItems=[{"Get": {"TableName": TABLE, "Key": k}} for k in keys[:3]],
        ReturnConsumedCapacity="TOTAL",
    )
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": {**new, "sk": {"S": "t1"}}}},
            {"Update": {"TableName": TABLE, "Key": key, "UpdateExpression": "SET note = :v",
                        "ExpressionAttributeValues": {":v": {"S": "t"}}}},
        ],
        **capacity,
    )  # fmt: skip
    # A refused write is an error: moto answers it before any result is encoded.
    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
        dynamodb.put_item(TableName=TABLE, Item=new, ConditionExpression="attribute_exists(x)")

    # The batch and transactional writes answer with moto's plain ActionResult (not seen here)
    assert len(both_encodings) == len(calls) + 3
    assert all(ours == theirs for ours, theirs, _ in both_encodings)
    # moto's DeleteItem result carries a member of its own (ConsumedCapacityUnits) that its
    # serializer drops: the one-pass encoder steps aside for those two, and only for them.
    stepped_aside = [i for i, (_, _, one_pass) in enumerate(both_encodings) if not one_pass]
    deletes = [i for i, (method, _) in enumerate(calls) if method == "delete_item"]
    assert stepped_aside == deletes
    bodies = "".join(theirs[2] for _, theirs, _ in both_encodings)
    # (moto returns no ItemCollectionMetrics, asked or not)
    wires = ('"Attributes"', r'"\u00e9"', '"ConsumedCapacity"', '"Responses"', '"UnprocessedKeys"',
             '"BS": [', '"NULL": true', '"M": {}')  # fmt: skip
    for wire in wires:
        assert wire in bodies, wire
