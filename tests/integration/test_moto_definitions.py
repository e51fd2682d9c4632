"""fidelity.py parses each state machine definition once and builds every execution's own
evaluation components from the kept syntax tree: executions of one definition run exactly as
with moto's own parse, and none sees another's state.

Each scenario runs twice, on two fresh accounts: once with the corrections, once with moto's
own parser put back; every execution's status and output must be equal. The definition is
run many times, concurrently, with different inputs, so the kept tree is shared (and would
show any state one execution left in it for the next).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

from printflow_tools.localstack.fidelity import make_moto_behave_like_aws

ROLE = "arn:aws:iam::123456789012:role/sfn"
# Choice, Map with its own iteration state, Pass with parameters, a Fail branch and a Catch:
# components that hold an execution's state while it runs.
DEFINITION = json.dumps({
    "StartAt": "Each",
    "States": {
        "Each": {
            "Type": "Map", "ItemsPath": "$.items", "ResultPath": "$.seen",
            "ItemProcessor": {"StartAt": "Double", "States": {
                "Double": {"Type": "Pass", "End": True,
                           "Parameters": {"n.$": "$", "order.$": "$$.Execution.Input.order"}}}},
            "Next": "Route",
        },
        "Route": {"Type": "Choice", "Choices": [
            {"Variable": "$.order", "NumericGreaterThan": 4, "Next": "Refuse"}],
            "Default": "Done"},
        "Refuse": {"Type": "Fail", "Error": "Order.TooLarge", "Cause": "over four"},
        "Done": {"Type": "Pass", "Parameters": {"order.$": "$.order", "seen.$": "$.seen"},
                 "End": True},
    },
})  # fmt: skip
INPUTS = [{"order": n, "items": list(range(n))} for n in range(8)]
BROKEN = '{"StartAt": "Nowhere", "States": {"Nowhere": {"Type": "Pass", "Next": }}}'
TERMINAL = ("SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT")


@contextlib.contextmanager
def moto_s_own_parse() -> Iterator[None]:
    kept = AmazonStateLanguageParser.__dict__["parse"]
    AmazonStateLanguageParser.parse = staticmethod(kept.__func__.__wrapped__)  # type: ignore[method-assign]
    try:
        yield
    finally:
        AmazonStateLanguageParser.parse = kept  # type: ignore[method-assign]


def run_executions() -> tuple[list[tuple[str, Any]], str]:
    """Every input's status and output, then the broken definition's refusal."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(name="m", definition=DEFINITION, roleArn=ROLE)
        arns = [
            sfn.start_execution(
                stateMachineArn=machine["stateMachineArn"], name=f"e{n}", input=json.dumps(given)
            )["executionArn"]
            for n, given in enumerate(INPUTS + INPUTS)  # each input twice, all at once
        ]
        results = [finished(sfn, arn) for arn in arns]
        with pytest.raises(ClientError) as refused:  # moto's refusal, whatever its code
            sfn.create_state_machine(name="broken", definition=BROKEN, roleArn=ROLE)
        return results, str(refused.value)


def finished(sfn: Any, arn: str) -> tuple[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] in TERMINAL or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    output = described.get("output")
    return described["status"], json.loads(output) if output else described.get("error")


def test_executions_of_a_kept_definition_run_as_with_moto_s_own_parse() -> None:
    make_moto_behave_like_aws()
    with moto_s_own_parse():
        own_results, own_refusal = run_executions()

    kept_results, kept_refusal = run_executions()
    again, again_refusal = run_executions()  # the tree is kept from the first run now

    assert kept_results == own_results == again
    assert kept_refusal == own_refusal == again_refusal
    assert kept_results[:8] == kept_results[8:]
    assert kept_results[3] == ("SUCCEEDED", {"order": 3, "seen": [
        {"n": 0, "order": 3}, {"n": 1, "order": 3}, {"n": 2, "order": 3}]})  # fmt: skip
    assert kept_results[5] == ("FAILED", "Order.TooLarge")


def test_each_execution_gets_its_own_components_from_one_tree() -> None:
    make_moto_behave_like_aws()

    first, first_tree = AmazonStateLanguageParser.parse(DEFINITION)
    second, second_tree = AmazonStateLanguageParser.parse(DEFINITION)

    assert first_tree is second_tree
    assert first is not second
    assert type(first) is type(second)
