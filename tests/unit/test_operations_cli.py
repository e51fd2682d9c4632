"""The operator CLI: help everywhere, --version, where the stack is, names and durations."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from printflow.domain.order import OrderKey
from printflow.errors import ValidationError
from printflow.operations.orders import parse_since
from printflow.operations.retry import retry_execution_name
from printflow_tools.cli import build_parser, main
from printflow_tools.connection import connect, write_local_stack_file


def all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += all_parsers(child)
    return found


def test_every_command_and_option_has_help_text() -> None:
    missing = [
        f"{parser.prog}: {action.dest}"
        for parser in all_parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction | argparse._HelpAction)
        and not action.help
    ]
    assert missing == []


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("printflow ")


def test_lists_and_shows_take_json() -> None:
    for command in (["orders", "list"], ["orders", "show", "s", "o"], ["dlq", "list"]):
        assert build_parser().parse_args([*command, "--json"]).json is True


def test_the_running_local_stack_is_found_with_no_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "local-stack.json"
    monkeypatch.setenv("PRINTFLOW_LOCAL_STACK_FILE", str(path))
    monkeypatch.delenv("PRINTFLOW_TABLE", raising=False)
    args = build_parser().parse_args(["orders", "list"])
    with pytest.raises(ValidationError, match="printflow local"):
        connect(args)

    write_local_stack_file(
        "http://127.0.0.1:4566", "us-east-1", ("local", "local"), {"OrderTableName": "t"}
    )
    connection = connect(args)

    assert connection.local and connection.endpoint_url == "http://127.0.0.1:4566"
    assert connection.region == "us-east-1"
    assert connection.output("OrderTableName") == "t"
    assert json.loads(path.read_text())["accessKeyId"] == "local"
    # an explicit table wins over the local stack
    explicit = connect(build_parser().parse_args(["orders", "list", "--table", "other"]))
    assert not explicit.local and explicit.output("OrderTableName") == "other"
    with pytest.raises(ValidationError, match="no OrderFlowRetryStateMachineArn"):
        explicit.output("OrderFlowRetryStateMachineArn")


def test_since_accepts_durations_and_times() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert parse_since("2h", now) == "2026-12-02T10:00:00+00:00"
    assert parse_since("90m", now) == "2026-12-02T10:30:00+00:00"
    assert parse_since("7d", now) == "2026-11-25T12:00:00+00:00"
    assert parse_since("2026-12-01T08:00:00", now) == "2026-12-01T08:00:00+00:00"
    assert parse_since(None, now) is None
    with pytest.raises(ValidationError, match="--since 'yesterday'"):
        parse_since("yesterday", now)
    # digits str.isdigit() accepts and int() refuses, and a number past what a date can hold
    with pytest.raises(ValidationError, match="--since '²h'"):
        parse_since("²h", now)
    with pytest.raises(ValidationError, match="--since '9999999999d'"):
        parse_since("9999999999d", now)
    assert parse_since("999999999d", now) == "0001-01-01T00:00:00+00:00"


def test_retry_execution_names_fit_and_differ_per_attempt() -> None:
    key = OrderKey("s" * 60, "o" * 60)
    names = {retry_execution_name(key, n) for n in range(1, 12)}
    assert len(names) == 11
    assert all(len(n) <= 80 for n in names)
    assert retry_execution_name(OrderKey("acme", "1001"), 2).startswith("acme-1001-")
    assert retry_execution_name(OrderKey("acme", "1001"), 2).endswith("-r2")


def test_bulk_retry_needs_a_selection(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["orders", "retry"]) == 2
    assert "--status" in capsys.readouterr().err
