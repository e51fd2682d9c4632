"""The CLI as operators expect it: help on every command and option, --json on every list
and show, --version."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from printflow_tools.cli import build_parser, main


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str | None]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), sub, helps.get(name)
                yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(build_parser()))


def test_the_cli_has_commands_to_check() -> None:
    names = {" ".join(path) for path, _, _ in COMMANDS}
    assert {"orders list", "orders show", "orders retry", "dlq list", "dlq replay"} <= names


@pytest.mark.parametrize(("path", "parser", "summary"), COMMANDS, ids=lambda v: str(v))
def test_every_command_and_option_has_help(
    path: tuple[str, ...], parser: argparse.ArgumentParser, summary: str | None
) -> None:
    assert summary, f"printflow {' '.join(path)}: no help line in its group's list"
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help != argparse.SUPPRESS, (
            f"printflow {' '.join(path)} {name}: no --help text"
        )


@pytest.mark.parametrize(
    "path", [p for p, _, _ in COMMANDS if p[-1] in ("list", "show")], ids=" ".join
)
def test_every_list_and_show_has_json(path: tuple[str, ...]) -> None:
    parser = next(p for q, p, _ in COMMANDS if q == path)
    options = {o for action in parser._actions for o in action.option_strings}
    assert "--json" in options, f"printflow {' '.join(path)} has no --json"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("printflow ")
