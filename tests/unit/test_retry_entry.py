"""The retry state machine: the same flow entered at any step, the normal path untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from printflow.flows import compile_flow, parse_flow_json
from printflow.flows.retry_entry import (
    RETRY_ENTRY_STATE,
    UNKNOWN_STEP_STATE,
    compile_retry_flow,
    compile_retry_flow_text,
    next_step,
    retry_steps,
)

ROOT = Path(__file__).parents[2]
DEFAULT = parse_flow_json((ROOT / "flows" / "default.json").read_text())
# Every deployed flow has its retry entry (template.yaml's RetryFlows output names them).
RETRY_DEFINITIONS = [
    ("default.json", "order-flow-retry.asl.json"),
    ("write-back.json", "write-back-retry.asl.json"),
]


@pytest.mark.parametrize(("flow_file", "definition_file"), RETRY_DEFINITIONS)
def test_checked_in_retry_definition_is_up_to_date(flow_file: str, definition_file: str) -> None:
    flow = parse_flow_json((ROOT / "flows" / flow_file).read_text())
    checked_in = (ROOT / "statemachine" / definition_file).read_text()
    regenerate = (
        f"printflow flow compile flows/{flow_file} --retry-entry -o statemachine/{definition_file}"
    )
    assert checked_in == compile_retry_flow_text(flow), f"stale; regenerate: {regenerate}"


def test_retry_entry_adds_only_a_choice_and_its_fail_state() -> None:
    normal = compile_flow(DEFAULT)
    retry = compile_retry_flow(DEFAULT)

    assert retry["StartAt"] == RETRY_ENTRY_STATE
    added = set(retry["States"]) - set(normal["States"])
    assert added == {RETRY_ENTRY_STATE, UNKNOWN_STEP_STATE}
    for name, state in normal["States"].items():
        assert retry["States"][name] == state, name
    # The normal state machine itself has no Choice state: its transition count is unchanged.
    assert all(s["Type"] != "Choice" for s in normal["States"].values())


def test_every_step_is_an_entry_and_unknown_steps_fail() -> None:
    retry = compile_retry_flow(DEFAULT)
    entry = retry["States"][RETRY_ENTRY_STATE]

    assert retry_steps(retry) == [step.id for step in DEFAULT.steps]
    assert {c["Next"] for c in entry["Choices"]} == {step.id for step in DEFAULT.steps}
    assert entry["Default"] == UNKNOWN_STEP_STATE
    assert retry["States"][UNKNOWN_STEP_STATE]["Type"] == "Fail"


def test_next_step_follows_the_success_path() -> None:
    retry = json.loads(compile_retry_flow_text(DEFAULT))

    assert next_step(retry, "generate") == "consume"
    assert next_step(retry, "consume") == "email"
    assert next_step(retry, "email") is None
    assert next_step(retry, "error") is None
