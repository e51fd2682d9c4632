"""The checked-in state machine is the compiled default flow, byte for byte."""

from __future__ import annotations

from pathlib import Path

from printflow.flows import compile_flow_text, parse_flow_json

ROOT = Path(__file__).parents[2]
REGENERATE = "printflow flow compile flows/default.json -o statemachine/order-flow.asl.json"


def test_statemachine_definition_is_up_to_date() -> None:
    fresh = compile_flow_text(parse_flow_json((ROOT / "flows" / "default.json").read_text()))
    checked_in = (ROOT / "statemachine" / "order-flow.asl.json").read_text()

    assert checked_in == fresh, (
        "statemachine/order-flow.asl.json is stale (flows/default.json or the compiler "
        f"changed). Regenerate it with:\n    {REGENERATE}"
    )
