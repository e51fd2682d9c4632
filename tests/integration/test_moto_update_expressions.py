"""fidelity.py parses each UpdateExpression once and copies its tree node by node: the same
items and the same errors as moto's own parser and ``copy.deepcopy``, update after update.

Every update below runs twice, on two fresh accounts: once with the corrections, once with
moto's own parse and copy put back; the items after each update, and each refusal's message,
must be equal. Each expression is used more than once, so the kept tree is reused (and would
show any change a validation made to it).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.parsing import validators
from moto.dynamodb.parsing.expressions import UpdateExpressionParser

from printflow_tools.localstack.fidelity import make_moto_behave_like_aws

KEY = {"pk": {"S": "ORDER#sf-a#1001"}, "sk": {"S": "ORDER"}}

UPDATES: list[dict[str, Any]] = [
    {"UpdateExpression": "SET #s = :s, history = list_append(if_not_exists(history, :e), :h)",
     "ExpressionAttributeNames": {"#s": "status"},
     "ExpressionAttributeValues": {":s": {"S": "Received"}, ":e": {"L": []},
                                   ":h": {"L": [{"M": {"status": {"S": "Received"}}}]}}},
    {"UpdateExpression": "SET #s = :s, history = list_append(if_not_exists(history, :e), :h)",
     "ExpressionAttributeNames": {"#s": "status"},
     "ExpressionAttributeValues": {":s": {"S": "In progress"}, ":e": {"L": []},
                                   ":h": {"L": [{"M": {"status": {"S": "In progress"}}}]}}},
    {"UpdateExpression": "ADD attempts :one, tags :t SET nested.deep = :d",
     "ExpressionAttributeValues": {":one": {"N": "1"}, ":t": {"SS": ["a", "b"]},
                                   ":d": {"N": "2"}}},  # nested does not exist: refused
    {"UpdateExpression": "SET nested = :m", "ExpressionAttributeValues": {":m": {"M": {}}}},
    {"UpdateExpression": "ADD attempts :one, tags :t SET nested.deep = :d",
     "ExpressionAttributeValues": {":one": {"N": "1"}, ":t": {"SS": ["a", "b"]},
                                   ":d": {"N": "2"}}},
    {"UpdateExpression": "ADD attempts :one, tags :t SET nested.deep = :d",
     "ExpressionAttributeValues": {":one": {"N": "1"}, ":t": {"SS": ["c"]}, ":d": {"N": "3"}}},
    {"UpdateExpression": "DELETE tags :t REMOVE history[0], nested.deep",
     "ExpressionAttributeValues": {":t": {"SS": ["a"]}}},
    {"UpdateExpression": "SET attempts = attempts + :one, lease = :l",
     "ExpressionAttributeValues": {":one": {"N": "1"}, ":l": {"S": "owner"}},
     "ConditionExpression": "attribute_not_exists(lease)"},
    {"UpdateExpression": "SET attempts = attempts + :one, lease = :l",
     "ExpressionAttributeValues": {":one": {"N": "1"}, ":l": {"S": "owner"}},
     "ConditionExpression": "attribute_not_exists(lease)"},  # refused: the lease is held
    {"UpdateExpression": "SET #s = :s, #s = :t",  # two paths overlap: refused
     "ExpressionAttributeNames": {"#s": "status"},
     "ExpressionAttributeValues": {":s": {"S": "a"}, ":t": {"S": "b"}}},
    {"UpdateExpression": "SET attempts = attempts + :s",  # a number plus a string: refused
     "ExpressionAttributeValues": {":s": {"S": "x"}}},
    {"UpdateExpression": "SET = :s", "ExpressionAttributeValues": {":s": {"S": "x"}}},
    {"UpdateExpression": "SET = :s", "ExpressionAttributeValues": {":s": {"S": "x"}}},
    {"UpdateExpression": "REMOVE lease, #s", "ExpressionAttributeNames": {"#s": "status"}},
    {"UpdateExpression": "SET sk = :s", "ExpressionAttributeValues": {":s": {"S": "x"}}},
]  # fmt: skip


@pytest.fixture
def moto_s_own() -> Iterator[Any]:
    """A context switch: inside it, moto's own parse and deepcopy are back."""
    make_moto_behave_like_aws()
    patched_make, patched_copy = UpdateExpressionParser.__dict__["make"], validators.deepcopy

    class Own:
        def __enter__(self) -> None:
            original = patched_make.__func__.__wrapped__
            UpdateExpressionParser.make = classmethod(original)  # type: ignore[method-assign,assignment]
            validators.deepcopy = copy.deepcopy  # type: ignore[attr-defined]

        def __exit__(self, *exc: object) -> None:
            UpdateExpressionParser.make = patched_make  # type: ignore[method-assign]
            validators.deepcopy = patched_copy  # type: ignore[attr-defined]

    yield Own()
    UpdateExpressionParser.make = patched_make  # type: ignore[method-assign]
    validators.deepcopy = patched_copy  # type: ignore[attr-defined]


def _outcomes() -> list[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
        )  # fmt: skip
        outcomes: list[Any] = []
        for _round in range(2):  # each expression again, from the kept tree
            for update in UPDATES:
                try:
                    client.update_item(TableName="t", Key=KEY, **update)
                    outcome: Any = client.get_item(TableName="t", Key=KEY)["Item"]
                except client.exceptions.ClientError as error:
                    outcome = (error.response["Error"]["Code"], error.response["Error"]["Message"])
                outcomes.append(outcome)
        return outcomes


def test_updates_and_refusals_are_moto_s_own(moto_s_own: Any) -> None:
    corrected = _outcomes()
    with moto_s_own:
        own = _outcomes()

    assert corrected == own
    refused = [o for o in own if isinstance(o, tuple)]
    # Seven refused in the first round; in the second, ``nested`` exists, so six
    assert len(refused) == 7 + 6
    assert any("ConditionalCheckFailed" in code for code, _ in refused)
    assert any("ValidationException" in code for code, _ in refused)


def test_the_kept_tree_is_not_changed_by_an_update(moto_s_own: Any) -> None:
    expression = UPDATES[0]["UpdateExpression"]
    make_moto_behave_like_aws()
    kept = UpdateExpressionParser.make(expression)
    before = _shape(kept)
    _outcomes()

    assert UpdateExpressionParser.make(expression) is kept
    assert _shape(kept) == before


def _shape(node: Any) -> Any:
    children = getattr(node, "children", None)
    if not isinstance(children, list):
        return repr(node)
    return (type(node).__name__, [_shape(c) for c in children])
