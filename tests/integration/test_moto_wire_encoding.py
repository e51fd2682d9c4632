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
