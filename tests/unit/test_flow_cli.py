"""``printflow flow validate|compile|graph``: exit codes, output, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from printflow.flows import compile_flow_text, parse_flow
from printflow_tools.cli import main

SEED: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "seed_flow.json").read_text()
)


@pytest.fixture
def seed_file(tmp_path: Path) -> Path:
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(SEED))
    return path


@pytest.fixture
def invalid_file(tmp_path: Path) -> Path:
    flow = json.loads(json.dumps(SEED))
    flow[1]["options"]["uri"] = "http://httpbin.org/anything"
    path = tmp_path / "invalid.json"
    path.write_text(json.dumps(flow))
    return path


def test_validate_ok(seed_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flow", "validate", str(seed_file)]) == 0

    out = capsys.readouterr()
    assert out.out == f"{seed_file}: valid (4 steps, starts at 'generate')\n"
    assert out.err == ""


@pytest.mark.parametrize("command", ["validate", "compile", "graph"])
def test_invalid_flow_gives_one_line_naming_step_and_field(
    command: str, invalid_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["flow", command, str(invalid_file)]) == 1

    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == f"{invalid_file}: step 'consume'.options.uri: must be an https URL\n"


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.json"

    assert main(["flow", "validate", str(missing)]) == 1

    err = capsys.readouterr().err
    assert err.startswith(f"{missing}: cannot read the file (FileNotFoundError")
    assert err.count("\n") == 1


def test_not_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "flow.json"
    path.write_text("[{,]")

    assert main(["flow", "validate", str(path)]) == 1
    assert capsys.readouterr().err.startswith(f"{path}: flow: not valid JSON (")


def test_compile_to_stdout(seed_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flow", "compile", str(seed_file)]) == 0

    assert capsys.readouterr().out == compile_flow_text(parse_flow(SEED))


def test_compile_to_a_file_and_check_it(
    seed_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "statemachine" / "flow.asl.json"

    assert main(["flow", "compile", str(seed_file), "-o", str(out)]) == 0
    assert out.read_text() == compile_flow_text(parse_flow(SEED))
    assert main(["flow", "compile", str(seed_file), "-o", str(out), "--check"]) == 0

    out.write_text(out.read_text().replace("In progress", "Busy"))
    capsys.readouterr()
    assert main(["flow", "compile", str(seed_file), "-o", str(out), "--check"]) == 1
    assert capsys.readouterr().err == (
        f"{out}: stale; regenerate with: printflow flow compile {seed_file} -o {out}\n"
    )


def test_check_needs_an_output(seed_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flow", "compile", str(seed_file), "--check"]) == 1
    assert "--check needs -o OUT" in capsys.readouterr().err


def test_graph(seed_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flow", "graph", str(seed_file)]) == 0

    out = capsys.readouterr().out
    assert out.startswith("flowchart TD\n")
    assert "s0 -. onError .-> s3" in out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["flow"])
    assert excinfo.value.code == 2
    with pytest.raises(SystemExit):
        main(["flow", "draw", "x.json"])


def test_validate_reports_every_error_each_naming_its_step_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a flow with problems in three steps
    flow = json.loads(json.dumps(SEED))
    flow[1]["options"]["uri"] = "http://httpbin.org/anything"
    flow[1]["timeout"] = 0
    flow[2]["options"]["recipients"] = ["not-an-address"]
    flow[2]["options"]["subject"] = "Hello {{order.nope}}"
    flow[3]["successStatus"] = ""
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(flow))

    # When it is validated
    assert main(["flow", "validate", str(path)]) == 1

    # Then every problem is listed, in the flow's order, each on its own line
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"{path}: step 'consume'.options.uri: must be an https URL"
    located = [line.removeprefix(f"{path}: ").split(":")[0] for line in lines[:-1]]
    assert located == [
        "step 'consume'.options.uri",
        "step 'consume'.timeout",
        "step 'email'.options.recipients[0]",
        "step 'email'.options.subject",
        "step 'error'.successStatus",
    ]
    assert lines[-1] == f"{path}: 5 errors"
