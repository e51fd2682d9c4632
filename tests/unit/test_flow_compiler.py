"""The compiled Amazon States Language: shape per step, soundness, determinism."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from printflow.flows import compile_flow, compile_flow_text, parse_flow
from printflow.flows.compiler import (
    DEFINITION_SUBSTITUTIONS,
    FAIL_STATE,
    RETRYABLE_STEP_ERRORS,
    apply_substitutions,
)

SEED: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "seed_flow.json").read_text()
)
DEFAULT_FLOW: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[2] / "flows" / "default.json").read_text()
)


def compiled(document: list[dict[str, Any]]) -> dict[str, Any]:
    return compile_flow(parse_flow(document))


def seed_with(step_id: str, **fields: Any) -> list[dict[str, Any]]:
    flow = copy.deepcopy(SEED)
    for step in flow:
        if step["stepDefinitionId"] == step_id:
            step.update(fields)
    return flow


def test_seed_compiles_to_the_expected_states() -> None:
    asl = compiled(SEED)

    assert asl["StartAt"] == "generate"
    assert asl["QueryLanguage"] == "JSONPath"
    # One state per step: each step writes its own status (no status or error-record
    # states); only a step without onError keeps its ".failed" record, with the Fail state.
    assert list(asl["States"]) == [
        "generate",
        "consume",
        "email",
        "error",
        "error.failed",
        FAIL_STATE,
    ]


def test_render_step_waits_for_its_task_token_with_a_default_timeout() -> None:
    state = compiled(SEED)["States"]["generate"]

    assert state["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert state["TimeoutSeconds"] == 3600
    # The output is replaced by the next step's name: the state data says who runs now.
    assert state["ResultSelector"] == {"step": "consume"}
    assert state["ResultPath"] == "$.running"
    assert state["Parameters"] == {
        "FunctionName": "${GenerateProductionFilesFunctionArn}",
        "Payload": {
            "input.$": "$",
            "step": {
                "id": "generate",
                "type": "generate-production-files",
                "successStatus": "In progress",
                "options": {"fileFormat": "stl"},
                "timeoutSeconds": 3600,
            },
            "execution.$": "$$.Execution.Id",
            "taskToken.$": "$$.Task.Token",
        },
    }
    assert state["Next"] == "consume"


def test_render_step_timeout_from_the_flow() -> None:
    state = compiled(seed_with("generate", timeout=900))["States"]["generate"]
    assert state["TimeoutSeconds"] == 900


def test_other_steps_invoke_synchronously_without_a_token() -> None:
    states = compiled(SEED)["States"]

    consume = states["consume"]
    assert consume["Resource"] == "arn:aws:states:::lambda:invoke"
    assert consume["Parameters"]["FunctionName"] == "${ConsumeRestApiFunctionArn}"
    assert "taskToken.$" not in consume["Parameters"]["Payload"]
    assert "TimeoutSeconds" not in consume
    assert states["email"]["Parameters"]["FunctionName"] == "${SendEmailFunctionArn}"


def test_timeout_of_a_lambda_step() -> None:
    assert compiled(seed_with("consume", timeout=20))["States"]["consume"]["TimeoutSeconds"] == 20


def test_default_retry_on_transient_errors_only() -> None:
    (retry,) = compiled(SEED)["States"]["consume"]["Retry"]

    assert retry == {
        "ErrorEquals": list(RETRYABLE_STEP_ERRORS),
        "IntervalSeconds": 2,
        "MaxAttempts": 3,
        "BackoffRate": 2.0,
        "MaxDelaySeconds": 60,
        "JitterStrategy": "FULL",
    }
    for never in ("States.ALL", "States.Timeout", "StepFailed", "States.TaskFailed"):
        assert never not in retry["ErrorEquals"]


def test_per_step_retry_override() -> None:
    retry = {"maxAttempts": 5, "intervalSeconds": 1, "backoffRate": 3, "maxDelaySeconds": 9}
    (compiled_retry,) = compiled(seed_with("consume", retry=retry))["States"]["consume"]["Retry"]

    assert compiled_retry["MaxAttempts"] == 5
    assert compiled_retry["IntervalSeconds"] == 1
    assert compiled_retry["BackoffRate"] == 3.0
    assert isinstance(compiled_retry["BackoffRate"], float)
    assert compiled_retry["MaxDelaySeconds"] == 9


def test_no_retry_block_when_retries_are_switched_off() -> None:
    state = compiled(seed_with("consume", retry={"maxAttempts": 0}))["States"]["consume"]
    assert "Retry" not in state


def test_on_error_catches_everything_and_goes_straight_to_the_error_step() -> None:
    states = compiled(SEED)["States"]

    assert states["consume"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "error"}
    ]
    # The error step records the error with its own status: it knows who failed from
    # "running" (or, before any step finished, from flowStart).
    assert states["error"]["Parameters"]["Payload"]["step"]["flowStart"] == "generate"
    assert "flowStart" not in states["consume"]["Parameters"]["Payload"]["step"]


def test_without_on_error_the_order_is_marked_failed_and_the_execution_fails() -> None:
    states = compiled(SEED)["States"]

    assert states["error"]["Catch"][0]["Next"] == "error.failed"
    failed = states["error.failed"]
    values = failed["Parameters"]["ExpressionAttributeValues"]
    assert values[":status"] == {"S": "Failed"}
    assert values[":error"]["M"]["step"] == {"S": "error"}
    assert values[":entry"]["L"][0]["M"]["status"] == {"S": "Failed"}
    assert failed["Next"] == FAIL_STATE
    assert states[FAIL_STATE] == {
        "Type": "Fail",
        "Comment": states[FAIL_STATE]["Comment"],
        "Error": "OrderFailed",
        "CausePath": "States.Format('{}: {}', $.error.Error, $.error.Cause)",
    }


def test_no_state_writes_a_status_the_steps_write_their_own() -> None:
    states = compiled(SEED)["States"]

    writes = [name for name, state in states.items() if "dynamodb" in state.get("Resource", "")]
    assert writes == ["error.failed"]  # only a step without onError keeps its failure record
    assert states["consume"]["Next"] == "email"
    assert states["consume"]["ResultSelector"] == {"step": "email"}
    assert states["email"]["End"] is True
    assert states["email"]["ResultPath"] is None
    assert "Next" not in states["email"]
    for name in ("generate", "consume", "email", "error"):
        assert states[name]["Parameters"]["Payload"]["step"]["successStatus"]


@pytest.mark.parametrize("document", [SEED, DEFAULT_FLOW], ids=["seed", "default"])
def test_every_update_expression_uses_exactly_the_names_and_values_it_declares(
    document: list[dict[str, Any]],
) -> None:
    """DynamoDB rejects unused or undeclared expression names and values."""
    for name, state in compiled(document)["States"].items():
        if state.get("Resource") != "arn:aws:states:::dynamodb:updateItem":
            continue
        params = state["Parameters"]
        expressions = params["UpdateExpression"] + " " + params["ConditionExpression"]
        assert set(re.findall(r"#\w+", expressions)) == set(params["ExpressionAttributeNames"]), (
            name
        )
        assert set(re.findall(r":\w+", expressions)) == set(params["ExpressionAttributeValues"]), (
            name
        )


def _branching_flow() -> list[dict[str, Any]]:
    def step(step_id: str, **extra: Any) -> dict[str, Any]:
        return {
            "stepDefinitionId": step_id,
            "type": "consume-rest-api",
            "successStatus": step_id,
            "options": {"uri": f"https://example.com/{step_id}"},
            **extra,
        }

    return [
        step("a", onSuccess="b", onError="notify"),
        step("b", onSuccess="c"),
        step("notify", onSuccess="c"),
        step("c"),
    ]


@pytest.mark.parametrize(
    "document", [SEED, DEFAULT_FLOW, _branching_flow()], ids=["seed", "default", "branching"]
)
def test_compiled_machine_is_sound(document: list[dict[str, Any]]) -> None:
    """Every transition target exists, every state is reachable, every path terminates."""
    asl = compiled(document)
    states = asl["States"]
    targets: dict[str, list[str]] = {}
    for name, state in states.items():
        assert len(name) <= 80
        nexts = [state["Next"]] if "Next" in state else []
        nexts += [catch["Next"] for catch in state.get("Catch", [])]
        assert all(target in states for target in nexts), name
        terminal = state.get("End") is True or state["Type"] in {"Fail", "Succeed"}
        assert terminal != bool("Next" in state), name
        targets[name] = nexts
    seen = {asl["StartAt"]}
    pending = [asl["StartAt"]]
    while pending:
        for target in targets[pending.pop()]:
            if target not in seen:
                seen.add(target)
                pending.append(target)
    assert seen == set(states)


def test_only_the_compilers_own_parameters_are_paths() -> None:
    """Flow content never becomes a JSONPath: no user key ends in '.$'."""
    text = compile_flow_text(parse_flow(DEFAULT_FLOW))
    path_keys = set(re.findall(r'"([^"]*\.\$)"\s*:', text))
    assert path_keys == {"input.$", "execution.$", "taskToken.$", "S.$"}


def test_output_is_deterministic_pretty_json_with_a_trailing_newline() -> None:
    first = compile_flow_text(parse_flow(DEFAULT_FLOW))
    second = compile_flow_text(parse_flow(copy.deepcopy(DEFAULT_FLOW)))

    assert first == second
    assert first.endswith("}\n")
    assert first.startswith('{\n  "Comment": ')
    assert json.loads(first) == compile_flow(parse_flow(DEFAULT_FLOW))


def test_state_names_of_40_character_ids_fit() -> None:
    long_id = "x" * 40
    flow = copy.deepcopy(SEED)
    flow[3]["stepDefinitionId"] = long_id
    for step in flow:
        if step.get("onError") == "error":
            step["onError"] = long_id
    states = compiled(flow)["States"]
    assert f"{long_id}.failed" in states
    assert max(len(name) for name in states) <= 80


def with_write_back(flow: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``flow`` with an update-storefront-order step ``tell`` after its first step."""
    flow = copy.deepcopy(flow)
    tell = {
        "stepDefinitionId": "tell",
        "type": "update-storefront-order",
        "successStatus": "In progress",
        "options": {"tags": ["printflow"], "note": "{{artifacts.links}}"},
        "onSuccess": flow[0]["onSuccess"],
        "onError": "error",
    }
    flow[0]["onSuccess"] = "tell"
    return [flow[0], tell, *flow[1:]]


def test_substitutions_are_the_templates_names() -> None:
    text = compile_flow_text(parse_flow(with_write_back(SEED)))
    used = set(re.findall(r"\$\{(\w+)\}", text))

    assert used == set(DEFINITION_SUBSTITUTIONS)


def test_a_write_back_step_is_a_plain_lambda_task_with_its_own_function() -> None:
    states = compiled(with_write_back(SEED))["States"]
    task = states["tell"]

    assert task["Resource"] == "arn:aws:states:::lambda:invoke"
    assert task["Parameters"]["FunctionName"] == "${UpdateStorefrontOrderFunctionArn}"
    assert task["Parameters"]["Payload"]["step"]["options"] == {
        "tags": ["printflow"],
        "note": "{{artifacts.links}}",
    }
    assert "taskToken.$" not in task["Parameters"]["Payload"]
    assert task["Catch"][0]["Next"] == "error"
    assert states["generate"]["Next"] == "tell"
    assert task["Next"] == "consume"


def test_apply_substitutions() -> None:
    values = {name: f"value-of-{name}" for name in DEFINITION_SUBSTITUTIONS}
    text = apply_substitutions(compile_flow_text(parse_flow(SEED)), values)

    assert "${" not in text
    assert json.loads(text)["States"]["error.failed"]["Parameters"]["TableName"] == (
        "value-of-OrderTable"
    )
    with pytest.raises(KeyError, match="SendEmailFunctionArn"):
        apply_substitutions("${OrderTable} ${SendEmailFunctionArn}", {"OrderTable": "t"})


def test_a_step_reached_only_after_an_error_ends_the_execution_as_failed() -> None:
    states = compiled(SEED)["States"]
    # "error" is only ever reached through onError edges: it runs as a callback task that
    # its Lambda fails with OrderFailed once its work is done; its own errors are caught,
    # OrderFailed is not (it must end the execution).
    error = states["error"]
    assert error["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert error["Parameters"]["Payload"]["taskToken.$"] == "$$.Task.Token"
    assert error["Parameters"]["Payload"]["step"]["endsFlowFailed"] is True
    assert error["TimeoutSeconds"] == 900
    assert error["End"] is True
    (catch,) = error["Catch"]
    assert "OrderFailed" not in catch["ErrorEquals"]
    assert "States.ALL" not in catch["ErrorEquals"]
    assert {"StepFailed", "StepRetryable", "States.Timeout"} <= set(catch["ErrorEquals"])
    assert catch["Next"] == "error.failed"
    assert "endsFlowFailed" not in states["email"]["Parameters"]["Payload"]["step"]
    assert states["email"]["End"] is True


def test_a_render_step_reached_only_after_an_error_ends_the_execution_itself() -> None:
    # Its token is failed with OrderFailed by the download function once the files are
    # stored: no Fail state follows it (one transition per step on the error path).
    flow = copy.deepcopy(SEED)
    flow[3] = {**flow[1], "stepDefinitionId": "error", "onSuccess": None}
    flow[3].pop("onSuccess")
    flow[3].pop("onError", None)
    flow[3]["type"] = "generate-production-files"
    flow[3]["options"] = {"fileFormat": "pdf"}
    states = compiled(flow)["States"]
    error = states["error"]
    assert error["End"] is True and "Next" not in error
    step = error["Parameters"]["Payload"]["step"]
    assert step["endsFlowFailed"] is True
    assert "failsOrder" not in step  # a render step's failure comes from the poller
    (catch,) = error["Catch"]
    assert "OrderFailed" not in catch["ErrorEquals"]
    # The render failures the poller and the download function report are still caught.
    assert {"Render.Failed", "Download.Failed", "States.Timeout"} <= set(catch["ErrorEquals"])
    assert catch["Next"] == "error.failed"


def test_the_render_error_names_the_catch_lists_are_the_ones_reported() -> None:
    from printflow.download.service import DOWNLOAD_FAILED
    from printflow.flows.step_types.generate_production_files import RENDER_STEP_ERRORS
    from printflow.render import decisions

    reported = {
        DOWNLOAD_FAILED,
        decisions.RENDER_FAILED,
        decisions.RENDER_EXPIRED,
        decisions.RENDER_UNAVAILABLE,
        decisions.RENDER_TIMED_OUT,
    }
    assert set(RENDER_STEP_ERRORS) == reported


def test_a_lambda_step_without_on_error_fails_the_order_itself() -> None:
    # consume without onError: a callback task whose Lambda marks the order Failed and
    # fails the task with OrderFailed when its work fails; only what no Lambda saw (a
    # timeout, a crash) is caught by its .failed record and the Fail state.
    flow = copy.deepcopy(SEED)
    flow[1].pop("onError")
    states = compiled(flow)["States"]
    consume = states["consume"]
    assert consume["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert consume["Parameters"]["Payload"]["taskToken.$"] == "$$.Task.Token"
    assert consume["Parameters"]["Payload"]["step"]["failsOrder"] is True
    assert "endsFlowFailed" not in consume["Parameters"]["Payload"]["step"]
    assert consume["Next"] == "email"
    (catch,) = consume["Catch"]
    assert "OrderFailed" not in catch["ErrorEquals"] and "States.ALL" not in catch["ErrorEquals"]
    assert catch["Next"] == "consume.failed"
    assert states["consume.failed"]["Next"] == FAIL_STATE
    # A render step without onError cannot record its own failure: States.ALL as before.
    flow[0].pop("onError")
    generate = compiled(flow)["States"]["generate"]
    assert "failsOrder" not in generate["Parameters"]["Payload"]["step"]
    assert generate["Catch"][0]["ErrorEquals"] == ["States.ALL"]


def test_a_step_on_both_paths_ends_successfully() -> None:
    flow = [
        {
            "stepDefinitionId": "a",
            "type": "consume-rest-api",
            "successStatus": "A",
            "options": {"uri": "https://example.com/a"},
            "onSuccess": "notify",
            "onError": "notify",
        },
        {
            "stepDefinitionId": "notify",
            "type": "consume-rest-api",
            "successStatus": "Done",
            "options": {"uri": "https://example.com/n"},
        },
    ]
    notify = compiled(flow)["States"]["notify"]
    assert notify["End"] is True
    assert "endsFlowFailed" not in notify["Parameters"]["Payload"]["step"]
