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


def test_the_write_back_flow_definition_is_up_to_date() -> None:
    fresh = compile_flow_text(parse_flow_json((ROOT / "flows" / "write-back.json").read_text()))
    checked_in = (ROOT / "statemachine" / "write-back.asl.json").read_text()

    assert checked_in == fresh, (
        "statemachine/write-back.asl.json is stale. Regenerate it with:\n"
        "    printflow flow compile flows/write-back.json -o statemachine/write-back.asl.json"
    )


def test_every_flow_file_has_its_state_machine_in_the_template() -> None:
    template = (ROOT / "template.yaml").read_text()
    for name, definition in (("default", "order-flow"), ("write-back", "write-back")):
        assert (ROOT / "flows" / f"{name}.json").exists()
        assert f"DefinitionUri: statemachine/{definition}.asl.json" in template
        assert f'"{name}": "${{' in template  # in ORDER_FLOWS
