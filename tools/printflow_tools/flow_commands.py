"""``printflow flow validate|compile|check|graph FILE``: order flows from the command line.

Every command exits 0 on success and 1 with a single ``FILE: <problem>`` line on stderr when
the file cannot be read or the flow is invalid (the problem names the step and field).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from printflow.errors import ValidationError, ValidationErrors
from printflow.flows import compile_flow_text, parse_flow_json, render_mermaid
from printflow.flows.model import OrderFlow
from printflow.flows.retry_entry import compile_retry_flow_text
from printflow.storefront_flows import flows_of, misfits
from printflow_tools.storefront_commands import _clients, _connection_options

REGENERATE_DEFAULT = "printflow flow compile flows/default.json -o statemachine/order-flow.asl.json"
REGENERATE_RETRY = (
    "printflow flow compile flows/default.json --retry-entry "
    "-o statemachine/order-flow-retry.asl.json"
)


def register(subparsers: Any) -> None:
    """Add the ``flow`` command group to the top-level CLI."""
    flow = subparsers.add_parser("flow", help="validate, compile and draw order flows")
    commands = flow.add_subparsers(dest="flow_command", metavar="COMMAND", required=True)

    validate = commands.add_parser("validate", help="check a flow file")
    validate.add_argument("file", type=Path, metavar="FILE", help="flow JSON file")
    validate.set_defaults(handler=validate_command)

    compile_ = commands.add_parser("compile", help="compile a flow to Amazon States Language")
    compile_.add_argument("file", type=Path, metavar="FILE", help="flow JSON file")
    compile_.add_argument(
        "-o", "--output", type=Path, metavar="OUT", help="write here instead of stdout"
    )
    compile_.add_argument(
        "--retry-entry",
        action="store_true",
        help="compile the retry state machine (entered at $.retry.fromStep; orders retry)",
    )
    compile_.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if OUT differs from a fresh compile (for CI)",
    )
    compile_.set_defaults(handler=compile_command)

    check = commands.add_parser(
        "check", help="check a flow against the registered storefronts that run it"
    )
    check.add_argument("file", type=Path, metavar="FILE", help="flow JSON file")
    check.add_argument(
        "--name", help="the flow's name in the stack (default: the file name without .json)"
    )
    _connection_options(check)
    check.set_defaults(handler=check_command)

    graph = commands.add_parser("graph", help="print the flow as a Mermaid flowchart")
    graph.add_argument("file", type=Path, metavar="FILE", help="flow JSON file")
    graph.set_defaults(handler=graph_command)


def validate_command(args: argparse.Namespace) -> int:
    flow = _load(args.file)
    if flow is None:
        return 1
    print(f"{args.file}: valid ({len(flow.steps)} steps, starts at '{flow.first.id}')")
    return 0


def compile_command(args: argparse.Namespace) -> int:
    flow = _load(args.file)
    if flow is None:
        return 1
    text = compile_retry_flow_text(flow) if args.retry_entry else compile_flow_text(flow)
    out: Path | None = args.output
    if args.check:
        if out is None:
            return _error("compile", "--check needs -o OUT")
        current = out.read_text(encoding="utf-8") if out.exists() else None
        if current != text:
            retry = " --retry-entry" if args.retry_entry else ""
            return _error(
                str(out),
                f"stale; regenerate with: printflow flow compile {args.file}{retry} -o {out}",
            )
        print(f"{out}: up to date")
        return 0
    if out is None:
        sys.stdout.write(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"{out}: written ({len(flow.steps)} steps)", file=sys.stderr)
    return 0


def check_command(args: argparse.Namespace) -> int:
    """Every storefront on the flow must fit it (e.g. its provider makes the fileFormat)."""
    flow = _load(args.file)
    if flow is None:
        return 1
    name = args.name or args.file.stem
    try:
        table, _ = _clients(args)
        storefronts = flows_of(table.list_storefronts(), name)
    except ValidationError as exc:
        return _error("check", str(exc))
    except (ClientError, BotoCoreError) as exc:
        return _error("check", f"AWS error: {exc}")
    problems = misfits(flow, storefronts)
    for problem in problems:
        print(f"{args.file}: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"{args.file}: fits the {len(storefronts)} storefront(s) on flow {name!r}")
    return 0


def graph_command(args: argparse.Namespace) -> int:
    flow = _load(args.file)
    if flow is None:
        return 1
    sys.stdout.write(render_mermaid(flow))
    return 0


def _load(path: Path) -> OrderFlow | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _error(str(path), f"cannot read the file ({exc.__class__.__name__}: {exc})")
        return None
    try:
        return parse_flow_json(text)
    except ValidationErrors as exc:
        for message in exc.messages:
            _error(str(path), message)
        if len(exc.messages) > 1:
            print(f"{path}: {len(exc.messages)} errors", file=sys.stderr)
        return None
    except ValidationError as exc:
        _error(str(path), str(exc))
        return None


def _error(where: str, message: str) -> int:
    print(f"{where}: {message}", file=sys.stderr)
    return 1
