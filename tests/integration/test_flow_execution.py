"""Compiled flows executed by moto's Step Functions engine, step Lambdas dispatched in process.

State transitions are counted as Step Functions bills them (see
:mod:`printflow.flows.transitions`): one per ``*StateEntered`` history event, plus one per
retry attempt. The compiler's promise is one per step on the success and ``onError`` paths.

The step handlers here are the test's, but each finishes as the real ones do: the Lambda
steps with :class:`StepCompletion` (their status write, and the ``OrderFailed`` of a step that
ends a failed flow), the render step's token like the download function (status, then token).
"""

from __future__ import annotations

import copy
import json
import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from printflow.adapters.dynamo_types import deserialize_item
from printflow.adapters.order_table import OrderTable, StepStatus
from printflow.adapters.task_tokens import TaskTokens
from printflow.errors import StepFailed, StepRetryable
from printflow.flows import compile_flow_text, parse_flow
from printflow.flows.compiler import FUNCTION_ARN_SUBSTITUTIONS, apply_substitutions
from printflow.flows.transitions import state_transitions, states_entered
from printflow.steps.completion import ORDER_FAILED_ANSWER, StepCompletion, iso_now
from printflow.steps.context import parse_step_event
from printflow_tools.localstack.executions import end_every_execution
from printflow_tools.localstack.fidelity import make_moto_behave_like_aws
from printflow_tools.localstack.lambda_dispatch import LambdaDispatcher
from printflow_tools.localstack.resources import create_table_from_template

ACCOUNT = "123456789012"
TABLE = "printflow-orders"
DEFAULT_FLOW: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[2] / "flows" / "default.json").read_text()
)
ORDER_KEY = {"pk": "ORDER#shop-1#1001", "sk": "ORDER"}
EXECUTION_INPUT = {"order": {**ORDER_KEY, "storefrontId": "shop-1", "orderId": "1001"}}
FUNCTIONS = {
    "generate-production-files": "GenerateProductionFiles",
    "consume-rest-api": "ConsumeRestApi",
    "send-email": "SendEmail",
    "update-storefront-order": "UpdateStorefrontOrder",
}
WAIT_LIMIT_SECONDS = 20


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"


@dataclass
class FlowRun:
    """Executes flows and lets a test play the components around them."""

    lambdas: LambdaDispatcher
    sfn: Any = field(default_factory=lambda: boto3.client("stepfunctions"))
    dynamodb: Any = field(default_factory=lambda: boto3.client("dynamodb"))
    tokens: queue.Queue[str] = field(default_factory=queue.Queue)
    render_steps: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    events: list[dict[str, Any]] = field(default_factory=list)

    def handle(self, step_type: str, handler: Callable[[dict[str, Any]], Any]) -> None:
        completion = StepCompletion(OrderTable(self.dynamodb, TABLE), TaskTokens(self.sfn))

        def recorded(event: dict[str, Any], context: Any) -> Any:
            self.events.append(event)
            if step_type == "generate-production-files":
                return handler(event)
            invocation = parse_step_event(event, expected_type=step_type)
            try:  # as the step functions' handlers do
                result = handler(event)
                completion.step_done(invocation)
            except StepFailed as exc:
                if not completion.order_failed(invocation, exc):
                    raise
                return ORDER_FAILED_ANSWER
            return result

        self.lambdas.register(FUNCTIONS[step_type], recorded)

    def render_waits_for_token(self) -> None:
        """The start-render Lambda: records the token; someone completes it later."""

        def start(event: dict[str, Any]) -> None:
            self.render_steps.put(event["step"])
            self.tokens.put(event["taskToken"])

        self.handle("generate-production-files", start)

    def execute(self, flow: list[dict[str, Any]], name: str = "shop-1-1001") -> str:
        substitutions = {"OrderTable": TABLE}
        for step_type, variable in FUNCTION_ARN_SUBSTITUTIONS.items():
            substitutions[variable] = function_arn(FUNCTIONS[step_type.value])
        definition = apply_substitutions(compile_flow_text(parse_flow(flow)), substitutions)
        machine = self.sfn.create_state_machine(
            name=f"order-flow-{name}",
            definition=definition,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/order-flow",
        )["stateMachineArn"]
        return str(
            self.sfn.start_execution(
                stateMachineArn=machine, name=name, input=json.dumps(EXECUTION_INPUT)
            )["executionArn"]
        )

    def complete_render(self, output: Any = None) -> None:
        """As the download function does: the render step's status, then its token."""
        token = self.tokens.get(timeout=WAIT_LIMIT_SECONDS)
        step = self.render_steps.get(timeout=WAIT_LIMIT_SECONDS)
        status = StepStatus(step["id"], step["successStatus"], iso_now(), f"render:{token[-32:]}")
        key = parse_step_event(
            {"input": EXECUTION_INPUT, "step": step, "execution": "x"},
            expected_type="generate-production-files",
        ).order
        OrderTable(self.dynamodb, TABLE).record_step_status(key, status)
        self.sfn.send_task_success(taskToken=token, output=json.dumps(output or {"files": []}))

    def wait(self, execution_arn: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_LIMIT_SECONDS
        while True:
            execution: dict[str, Any] = self.sfn.describe_execution(executionArn=execution_arn)
            if execution["status"] != "RUNNING":
                return execution
            if time.monotonic() > deadline:
                pytest.fail(f"execution still RUNNING after {WAIT_LIMIT_SECONDS} s")
            time.sleep(0.02)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.sfn.get_execution_history(
            executionArn=execution_arn, maxResults=1000
        )["events"]
        return events

    def order(self) -> dict[str, Any]:
        item = self.dynamodb.get_item(
            TableName=TABLE, Key={k: {"S": v} for k, v in ORDER_KEY.items()}
        )["Item"]
        return deserialize_item(item)

    def events_of(self, step_id: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["step"]["id"] == step_id]


@pytest.fixture
def run() -> Iterator[FlowRun]:
    # moto drops SendTaskFailure's cause; AWS keeps it (the error path's cause depends on it).
    make_moto_behave_like_aws()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        dynamodb = boto3.client("dynamodb")
        create_table_from_template(dynamodb, TABLE)
        dynamodb.put_item(
            TableName=TABLE,
            Item={
                **{k: {"S": v} for k, v in ORDER_KEY.items()},
                "status": {"S": "Received"},
                "statusHistory": {
                    "L": [{"M": {"status": {"S": "Received"}, "at": {"S": "2025-01-01T00:00Z"}}}]
                },
            },
        )
        with LambdaDispatcher() as lambdas:
            flow_run = FlowRun(lambdas)
            yield flow_run
            # Every test's execution has the same name and order key: one left running
            # would invoke the next test's handlers and write on its order item.
            end_every_execution(flow_run.sfn)


def flow_with(**changes: dict[str, Any]) -> list[dict[str, Any]]:
    """The default flow with some fields of some steps replaced (``None`` removes a field)."""
    flow = copy.deepcopy(DEFAULT_FLOW)
    for step in flow:
        for key, value in changes.get(step["stepDefinitionId"], {}).items():
            if value is None:
                step.pop(key, None)
            else:
                step[key] = value
    return flow


def ok(event: dict[str, Any]) -> dict[str, Any]:
    return {"done": event["step"]["id"]}


def history_of(order: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(entry["status"], entry.get("step")) for entry in order["statusHistory"]]


def test_success_path(run: FlowRun) -> None:
    # Given handlers that succeed, and a render the test completes like the download function
    run.render_waits_for_token()
    run.handle("consume-rest-api", ok)
    run.handle("send-email", ok)

    # When the default flow runs
    execution_arn = run.execute(DEFAULT_FLOW)
    run.complete_render({"artifacts": ["orders/shop-1/1001/a.pdf"]})
    execution = run.wait(execution_arn)

    # Then every step ran once, in order, and the order went through each status
    assert execution["status"] == "SUCCEEDED"
    assert [event["step"]["id"] for event in run.events] == ["generate", "consume", "email"]
    order = run.order()
    assert order["status"] == "Success"
    assert order["currentStep"] == "email"
    assert "error" not in order
    assert history_of(order) == [
        ("Received", None),
        ("In progress", "generate"),
        ("In progress", "consume"),
        ("Success", "email"),
    ]
    stamps = [entry["at"] for entry in order["statusHistory"][1:]]
    assert stamps == sorted(stamps)
    assert order["updatedAt"] == stamps[-1]

    # The Lambda contract: state input, the step definition, the execution, a token for render
    generate, consume = run.events[0], run.events[1]
    assert generate["input"] == EXECUTION_INPUT
    assert generate["execution"] == execution_arn
    assert generate["step"] == {
        "id": "generate",
        "type": "generate-production-files",
        "successStatus": "In progress",
        "options": {"fileFormat": "pdf"},
        "timeoutSeconds": 3600,
    }
    assert generate["taskToken"]
    assert "taskToken" not in consume
    assert consume["step"]["options"] == {"uri": "https://orders.example.com/printflow"}

    # One transition per step: each step writes its own status, no state follows it
    history = run.history(execution_arn)
    assert states_entered(history) == ["generate", "consume", "email"]
    assert state_transitions(history) == 3 == len(run.events)


def test_transient_error_is_retried(run: FlowRun) -> None:
    attempts: list[int] = []

    def flaky(event: dict[str, Any]) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise StepRetryable("HTTP 503 from https://orders.example.com/printflow")

    run.render_waits_for_token()
    run.handle("consume-rest-api", flaky)
    run.handle("send-email", ok)
    flow = flow_with(consume={"retry": {"intervalSeconds": 1, "maxAttempts": 2}})

    execution_arn = run.execute(flow)
    run.complete_render()
    execution = run.wait(execution_arn)

    assert execution["status"] == "SUCCEEDED"
    assert len(attempts) == 2
    assert run.order()["status"] == "Success"
    assert "error" not in run.order()
    history = run.history(execution_arn)
    failed = [e for e in history if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failed] == ["StepRetryable"]
    # The retry is one more billed transition, not a new state.
    assert len(states_entered(history)) == 3
    assert state_transitions(history) == 4


def test_permanent_failure_runs_the_error_step_with_the_cause(run: FlowRun) -> None:
    def rejected(event: dict[str, Any]) -> None:
        raise StepFailed("HTTP 422 from https://orders.example.com/printflow")

    run.render_waits_for_token()
    run.handle("consume-rest-api", rejected)
    run.handle("send-email", ok)

    execution_arn = run.execute(DEFAULT_FLOW)
    run.complete_render()
    execution = run.wait(execution_arn)

    # StepFailed is not retried: one attempt, then the onError path
    assert len(run.events_of("consume")) == 1
    (error_event,) = run.events_of("error")
    error = error_event["input"]["error"]
    assert error["Error"] == "StepFailed"
    assert json.loads(error["Cause"])["errorMessage"] == (
        "HTTP 422 from https://orders.example.com/printflow"
    )
    assert error_event["input"]["order"] == EXECUTION_INPUT["order"]
    assert run.events_of("email") == []

    # The order shows the failed step and its cause, and the error step's status
    order = run.order()
    assert order["status"] == "Failed"
    assert order["currentStep"] == "error"
    assert order["error"]["step"] == "consume"
    assert order["error"]["error"] == "StepFailed"
    assert "HTTP 422" in order["error"]["cause"]
    assert history_of(order)[1:] == [
        ("In progress", "generate"),
        ("Failed", "error"),
    ]
    # The error step ran (seed semantics) and the order is a failed order: the execution
    # fails with the original error, so alarms on failed executions see it.
    assert execution["status"] == "FAILED"
    assert execution["error"] == "OrderFailed"
    assert execution["cause"].startswith("StepFailed: ")
    history = run.history(execution_arn)
    # One transition per step on the error path too: the error step records the error with
    # its status and fails its own task with OrderFailed (no record or Fail state)
    assert states_entered(history) == ["generate", "consume", "error"]
    assert state_transitions(history) == 3 == len(run.events)


def test_render_timeout_goes_to_on_error(run: FlowRun) -> None:
    # Nobody completes the render's token
    run.render_waits_for_token()
    run.handle("consume-rest-api", ok)
    run.handle("send-email", ok)
    flow = flow_with(generate={"timeout": 1})

    execution_arn = run.execute(flow)
    execution = run.wait(execution_arn)

    assert execution["status"] == "FAILED"
    assert execution["error"] == "OrderFailed"
    assert execution["cause"].startswith("States.Timeout: ")
    assert len(run.events_of("generate")) == 1  # States.Timeout is not retried
    assert run.events_of("consume") == []
    (error_event,) = run.events_of("error")
    assert error_event["input"]["error"]["Error"] == "States.Timeout"
    order = run.order()
    assert order["error"]["step"] == "generate"
    assert order["error"]["error"] == "States.Timeout"
    assert order["status"] == "Failed"
    assert states_entered(run.history(execution_arn)) == ["generate", "error"]


def test_failure_without_on_error_fails_the_execution_and_the_order(run: FlowRun) -> None:
    def rejected(event: dict[str, Any]) -> None:
        raise StepFailed("HTTP 404 from https://orders.example.com/printflow")

    run.render_waits_for_token()
    run.handle("consume-rest-api", rejected)
    run.handle("send-email", ok)
    flow = flow_with(consume={"onError": None})

    execution_arn = run.execute(flow)
    run.complete_render()
    execution = run.wait(execution_arn)

    # The execution fails with the step's own error and cause (Fail state ErrorPath/CausePath)
    assert execution["status"] == "FAILED"
    assert execution["error"] == "OrderFailed"
    assert execution["cause"].startswith("StepFailed: ")
    assert "HTTP 404" in execution["cause"]
    assert run.events_of("error") == []
    order = run.order()
    assert order["status"] == "Failed"
    assert order["currentStep"] == "consume"
    assert order["error"]["step"] == "consume"
    assert order["error"]["error"] == "StepFailed"
    assert "HTTP 404" in order["error"]["cause"]
    assert history_of(order)[-1] == ("Failed", "consume")
    history = run.history(execution_arn)
    # One transition per step: the step's Lambda marked the order and failed its own task
    assert states_entered(history) == ["generate", "consume"]
    assert state_transitions(history) == 2
    assert history[-1]["type"] == "ExecutionFailed"


def test_a_step_without_on_error_that_succeeds_completes_its_own_task(run: FlowRun) -> None:
    run.render_waits_for_token()
    run.handle("consume-rest-api", ok)
    run.handle("send-email", ok)
    flow = flow_with(consume={"onError": None})

    execution_arn = run.execute(flow)
    run.complete_render()
    execution = run.wait(execution_arn)

    assert execution["status"] == "SUCCEEDED"
    assert run.order()["status"] == "Success"
    assert states_entered(run.history(execution_arn)) == ["generate", "consume", "email"]


def test_a_step_without_on_error_that_times_out_is_marked_by_its_failed_state(
    run: FlowRun,
) -> None:
    # Nobody's code sees a timeout: the .failed record and the Fail state still mark it
    def hangs(event: dict[str, Any]) -> None:
        time.sleep(2.5)

    run.render_waits_for_token()
    run.handle("consume-rest-api", hangs)
    run.handle("send-email", ok)
    flow = flow_with(consume={"onError": None, "timeout": 1})

    execution_arn = run.execute(flow)
    run.complete_render()
    execution = run.wait(execution_arn)

    assert execution["status"] == "FAILED"
    assert execution["error"] == "OrderFailed"
    assert execution["cause"].startswith("States.Timeout: ")
    order = run.order()
    assert order["status"] == "Failed"
    assert order["error"]["error"] == "States.Timeout"
    assert states_entered(run.history(execution_arn))[-2:] == ["consume.failed", "Order failed"]


def test_the_error_steps_own_failure_still_marks_the_order_failed(run: FlowRun) -> None:
    # Given the REST step fails and then the error step's email fails too
    def rejected(event: dict[str, Any]) -> None:
        raise StepFailed("HTTP 422 from https://orders.example.com/printflow")

    def email(event: dict[str, Any]) -> None:
        if event["step"]["id"] == "error":
            raise StepFailed("SES refused the operations address")

    run.render_waits_for_token()
    run.handle("consume-rest-api", rejected)
    run.handle("send-email", email)

    execution_arn = run.execute(DEFAULT_FLOW)
    run.complete_render()
    execution = run.wait(execution_arn)

    # Then its own error is caught (its OrderFailed is not: that one never came), the order
    # is marked Failed by the error step's record, and the execution fails with that error
    assert execution["status"] == "FAILED"
    assert execution["error"] == "OrderFailed"
    assert execution["cause"].startswith("StepFailed: ")
    assert "SES refused" in execution["cause"]
    order = run.order()
    assert order["status"] == "Failed"
    assert order["error"]["step"] == "error"
    assert history_of(order)[-1] == ("Failed", "error")
    history = run.history(execution_arn)
    # The error step's Lambda recorded its own failure: still one transition per step
    assert states_entered(history) == ["generate", "consume", "error"]
    assert state_transitions(history) == 3
