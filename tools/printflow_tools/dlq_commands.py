"""``printflow dlq list | replay``: the download dead-letter queue.

Thin shells over :mod:`printflow.operations.dead_letters`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from printflow.adapters.dead_letters import DeadLetterQueue
from printflow.operations.dead_letters import describe, replay
from printflow_tools.connection import StackConnection, add_connection_options, connect
from printflow_tools.stack_operations import (
    OPERATION_ERRORS,
    fail,
    order_retries,
    reason,
    render_jobs,
)


def register(subparsers: Any) -> None:
    """Add the ``dlq`` command group to the top-level CLI."""
    group = subparsers.add_parser(
        "dlq",
        help="inspect and replay the download dead-letter queue",
        description="Download messages that ran out of deliveries: why, and back to work.",
    )
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)

    listing = commands.add_parser(
        "list",
        help="each dead-lettered message, its order and job, and why it died",
        description="Messages are read, not consumed: each is back in the queue at once.",
    )
    listing.add_argument("--json", action="store_true", help="one JSON document per line")
    add_connection_options(listing)
    listing.set_defaults(handler=_list)

    replay_ = commands.add_parser(
        "replay",
        help="put messages back to work (--all, or one MESSAGE_ID)",
        description="A message whose job is waiting goes back on the download queue; one "
        "whose job failed retries the order from its render step (nothing finished is "
        "redone); one already handled is dropped; a malformed one stays.",
    )
    which = replay_.add_mutually_exclusive_group(required=True)
    which.add_argument("message_id", nargs="?", metavar="MESSAGE_ID", help="one message")
    which.add_argument("--all", action="store_true", help="every message in the queue")
    replay_.add_argument("--json", action="store_true", help="print results as JSON lines")
    add_connection_options(replay_)
    replay_.set_defaults(handler=_replay)


def _queue(connection: StackConnection) -> DeadLetterQueue:
    return DeadLetterQueue(
        connection.client("sqs"),
        connection.output("DownloadDeadLetterQueueUrl"),
        connection.output("DownloadQueueUrl"),
    )


def _list(args: argparse.Namespace) -> int:
    try:
        connection = connect(args)
        queue, jobs = _queue(connection), render_jobs(connection)
        letters = list(queue.messages())
        views = [describe(letter, jobs) for letter in letters]
        # Reading hid them (SQS has no peek): visible again at once, so that a replay
        # right after the list finds them (only after the whole read: hidden while
        # reading, so none is read twice).
        for letter in letters:
            queue.release(letter)
    except OPERATION_ERRORS as exc:
        return fail(reason(exc))
    if args.json:
        for view in views:
            print(json.dumps(view.to_document()))
        return 0
    if not views:
        print("the dead-letter queue is empty", file=sys.stderr)
        return 0
    for view in views:
        order = str(view.order) if view.order else "-"
        print(
            f"{view.message_id}  {order}  job {view.job_id or '-'} ({view.job_state or '-'})  "
            f"received {view.receive_count}x, first sent {view.sent_at}\n    {view.reason}"
        )
    print(f"{len(views)} message(s)", file=sys.stderr)
    return 0


def _replay(args: argparse.Namespace) -> int:
    try:
        connection = connect(args)
        queue, jobs = _queue(connection), render_jobs(connection)
        retries = order_retries(connection)
        letters = list(queue.messages())
    except OPERATION_ERRORS as exc:
        return fail(reason(exc))
    chosen = [m for m in letters if args.all or m.message_id == args.message_id]
    for letter in letters:
        if letter not in chosen:
            queue.release(letter)
    if not chosen:
        return fail(f"no message {args.message_id} in the dead-letter queue")
    kept = 0
    for index, letter in enumerate(chosen, 1):
        try:
            result = replay(letter, queue, jobs, retries)
        except OPERATION_ERRORS as exc:
            kept += 1
            print(f"[{index}/{len(chosen)}] {letter.message_id}: {reason(exc)}", file=sys.stderr)
            continue
        kept += result.action.startswith("kept")
        if args.json:
            print(json.dumps(result.to_document()))
        else:
            print(f"[{index}/{len(chosen)}] {letter.message_id}: {result.action}")
    print(f"{len(chosen) - kept} replayed, {kept} kept, of {len(chosen)}", file=sys.stderr)
    return 0 if kept == 0 else 1
