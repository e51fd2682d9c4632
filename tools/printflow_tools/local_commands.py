"""``printflow local``: the whole template on this machine until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from printflow_tools.connection import remove_local_stack_file, write_local_stack_file
from printflow_tools.localstack.stack import StackOptions


def register(subparsers: Any) -> None:
    local = subparsers.add_parser(
        "local", help="run the local stack (moto, HTTP API, schedules, queues, sandboxes)"
    )
    local.add_argument(
        "--api-port", type=int, default=3000, help="HTTP API port (default: %(default)s)"
    )
    local.add_argument(
        "--aws-port", type=int, default=4566, help="AWS endpoint port (default: %(default)s)"
    )
    local.add_argument(
        "--speedup",
        type=float,
        default=1.0,
        help="run schedules this many times faster (60: the poller every second)",
    )
    local.add_argument("--quiet", action="store_true", help="hide the functions' log lines")
    local.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from printflow_tools.localstack.environment import LocalEnvironment

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    options = StackOptions(
        aws_port=args.aws_port,
        api_port=args.api_port,
        schedule_speedup=args.speedup,
        quiet_functions=args.quiet,
    )
    environment = LocalEnvironment(options=options).start()
    try:
        print(environment.describe(), flush=True)
        path = _describe_for_cli(environment)
        print(f"  CLI settings      {path}  (printflow commands need no flags)", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        stop.wait()
    finally:
        print("stopping ...", flush=True)
        remove_local_stack_file()
        environment.stop()
    return 0


def _describe_for_cli(environment: Any) -> Any:
    """Write the one file the other ``printflow`` commands read to find this stack."""
    from printflow_tools.localstack.resources import template_outputs
    from printflow_tools.localstack.stack import LOCAL_CREDENTIALS

    stack = environment.stack
    outputs = template_outputs(stack.resources)
    outputs["ApiUrl"] = stack.api_url
    return write_local_stack_file(
        stack.aws_endpoint,
        LOCAL_CREDENTIALS["AWS_REGION"],
        (LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"], LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]),
        outputs,
    )
