"""The ``printflow`` command line: one argparse sub-command group per module.

A group is a module exposing ``register(subparsers)``; each command it adds sets a
``handler(args) -> int`` default, and :func:`main` returns that exit code. Adding a group is
one line in :data:`COMMAND_GROUPS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

from printflow_tools import (
    dlq_commands,
    flow_commands,
    local_commands,
    order_commands,
    storefront_commands,
)

COMMAND_GROUPS: list[Callable[[Any], None]] = [
    storefront_commands.register,
    order_commands.register,
    dlq_commands.register,
    flow_commands.register,
    local_commands.register,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="printflow", description="PrintFlow operator and developer tools."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    for register in COMMAND_GROUPS:
        register(subparsers)
    return parser


def _version() -> str:
    try:
        return metadata.version("printflow")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
