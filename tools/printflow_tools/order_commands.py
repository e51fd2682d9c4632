"""``printflow orders list | show | retry``: find failed orders and repair them.

Thin shells over :mod:`printflow.operations`; where the stack is comes from
:mod:`printflow_tools.connection` (no flags against a running ``printflow local``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from printflow.adapters.order_executions import OrderExecutions
from printflow.domain.order import OrderKey, OrderStatus
from printflow.operations.orders import ListingStats, list_orders, order_details, parse_since
from printflow_tools.connection import add_connection_options, connect
from printflow_tools.stack_operations import (
    OPERATION_ERRORS,
    fail,
    order_retries,
    order_table,
    reason,
    render_jobs,
    state_machines,
)


def register(subparsers: Any) -> None:
    """Add the ``orders`` command group to the top-level CLI."""
    group = subparsers.add_parser(
        "orders",
        help="list, inspect and retry orders",
        description="Find failed or stuck orders, see why, and retry them.",
    )
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)

    listing = commands.add_parser(
        "list",
        help="orders by storefront and status, newest first",
        description="Orders in a status (default: Failed), newest first, from the "
        "StatusIndex (one query page per 100 orders; never a table scan).",
    )
    _selection_options(listing)
    listing.add_argument(
        "--limit", type=int, default=None, help="stop after this many orders (default: all)"
    )
    listing.add_argument("--json", action="store_true", help="one JSON document per line")
    add_connection_options(listing)
    listing.set_defaults(handler=_list)

    show = commands.add_parser(
        "show",
        help="one order: history, failed step, jobs, artifacts, executions, emails",
        description="Everything about one order an operator needs to decide what to do.",
    )
    show.add_argument("storefront_id", metavar="STOREFRONT", help="storefront id")
    show.add_argument("order_id", metavar="ORDER", help="order id (as the shop sends it)")
    show.add_argument("--json", action="store_true", help="print the JSON document")
    add_connection_options(show)
    show.set_defaults(handler=_show)

    retry = commands.add_parser(
        "retry",
        help="run a failed order again from its failed step (or --from-step)",
        description="Start a new execution of the order from the step that failed (or "
        "--from-step STEP), reusing finished renders and stored files: nothing is "
        "rendered, downloaded, posted or emailed twice. Without STOREFRONT ORDER, retries "
        "every order that --status/--since/--storefront select.",
    )
    retry.add_argument("storefront_id", metavar="STOREFRONT", nargs="?", help="storefront id")
    retry.add_argument("order_id", metavar="ORDER", nargs="?", help="order id")
    retry.add_argument("--from-step", metavar="STEP", help="step to start at")
    retry.add_argument(
        "--force",
        action="store_true",
        help="also retry a running order (its execution is stopped) or a succeeded one",
    )
    _selection_options(retry, default_status=None)
    retry.add_argument("--json", action="store_true", help="print results as JSON lines")
    add_connection_options(retry)
    retry.set_defaults(handler=_retry)


def _selection_options(
    parser: argparse.ArgumentParser, default_status: str | None = OrderStatus.FAILED.value
) -> None:
    parser.add_argument(
        "--storefront",
        action="append",
        metavar="ID",
        help="only this storefront (repeatable; default: every registered storefront)",
    )
    parser.add_argument(
        "--status",
        action="append",
        metavar="STATUS",
        help=f"status to list, e.g. Failed, Received, Retrying, 'In progress' (repeatable; "
        f"default: {default_status or 'none, bulk retry needs it'})",
    )
    parser.add_argument(
        "--since", metavar="WHEN", help="entered the status within 24h, 90m, 7d, or since ISO time"
    )
    parser.add_argument(
        "--older-than",
        metavar="AGE",
        help="entered the status longer ago than 1h, 30m, ... (orders stuck in a status)",
    )
    parser.set_defaults(default_status=default_status)


def _list(args: argparse.Namespace) -> int:
    try:
        stats = ListingStats()
        rows = list(
            list_orders(
                order_table(connect(args)),
                statuses=args.status or [args.default_status],
                storefronts=args.storefront,
                since=parse_since(args.since),
                until=parse_since(args.older_than),
                limit=args.limit,
                stats=stats,
            )
        )
    except OPERATION_ERRORS as exc:
        return fail(reason(exc))
    if args.json:
        for row in rows:
            print(json.dumps(row.to_document()))
        return 0
    if not rows:
        print("no orders", file=sys.stderr)
        return 0
    print(f"{'ORDER':<40} {'STATUS':<12} {'STEP':<12} {'RETRIES':>7}  {'AT':<25} CAUSE")
    for row in rows:
        key = f"{row.storefront_id}/{row.order_id}"
        print(
            f"{key:<40} {row.status:<12} {row.step or '-':<12} {row.retries:>7}  "
            f"{row.at:<25} {row.cause or ''}"
        )
    print(f"{len(rows)} order(s), {stats.pages} query page(s)", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    key = OrderKey(args.storefront_id, args.order_id)
    try:
        connection = connect(args)
        details = order_details(
            order_table(connection),
            render_jobs(connection),
            OrderExecutions(connection.client("stepfunctions")),
            state_machines(connection),
            key,
        )
    except OPERATION_ERRORS as exc:
        return fail(reason(exc))
    if not connection.region or connection.local:
        for execution in details["executions"]:
            execution["consoleUrl"] = None  # no console for the local stack
    if args.json:
        print(json.dumps(details, indent=2, default=str))
        return 0
    print(_readable(details))
    return 0


def _readable(d: dict[str, Any]) -> str:
    lines = [
        f"order      {d['storefrontId']}/{d['orderId']}",
        f"status     {d['status']}   current step: {d['currentStep'] or '-'}"
        f"   retries: {d['retries']}",
    ]
    if d["error"]:
        e = d["error"]
        lines.append(f"failed     step {e.get('step')}: {e.get('error')}: {e.get('cause')}")
    lines.append("history")
    lines += [
        f"  {h.get('at')}  {h.get('status')}  {h.get('step', '')}" for h in d["statusHistory"]
    ]
    lines.append("render jobs")
    lines += [
        f"  {j['jobId']}  {j['provider']}  {j['state']}  {j['reference']}"
        + (f"  error: {j['error']}" if j["error"] else "")
        for j in d["renderJobs"]
    ] or ["  none"]
    lines.append("artifacts")
    lines += [f"  {a['key']}  {a['size']} B  sha256 {a['sha256']}" for a in d["artifacts"]] or [
        "  none"
    ]
    lines.append("executions")
    lines += [
        f"  {x['status']:<10} attempt {x['attempt']}  {x['arn']}"
        + (f"\n             {x['consoleUrl']}" if x["consoleUrl"] else "")
        for x in d["executions"]
    ] or ["  none"]
    lines.append("REST deliveries")
    lines += [
        f"  {r['step']}  HTTP {r['httpStatus']}  x{r['deliveries']}  {r['deliveryId']}"
        for r in d["restDeliveries"]
    ] or ["  none"]
    lines.append("emails")
    lines += [f"  {m['step']}  {m['state']}  {m['messageId'] or ''}" for m in d["emails"]] or [
        "  none"
    ]
    return "\n".join(lines)


def _retry(args: argparse.Namespace) -> int:
    single = args.storefront_id is not None
    if single and args.order_id is None:
        return fail("orders retry: give STOREFRONT ORDER, or select orders with --status")
    if not single and not args.status:
        return fail("orders retry: give STOREFRONT ORDER, or --status (e.g. --status Failed)")
    try:
        connection = connect(args)
        retries = order_retries(connection)
        if single:
            keys = [OrderKey(args.storefront_id, args.order_id)]
        else:
            keys = [
                OrderKey(row.storefront_id, row.order_id)
                for row in list_orders(
                    order_table(connection),
                    statuses=args.status,
                    storefronts=args.storefront,
                    since=parse_since(args.since),
                    until=parse_since(args.older_than),
                )
            ]
    except OPERATION_ERRORS as exc:
        return fail(reason(exc))
    started, refused = 0, 0
    for index, key in enumerate(keys, 1):
        progress = f"[{index}/{len(keys)}] " if not single else ""
        try:
            result = retries.retry(key, from_step=args.from_step, force=args.force)
        except OPERATION_ERRORS as exc:
            refused += 1
            print(f"{progress}{key}: refused: {reason(exc)}", file=sys.stderr)
            continue
        started += 1
        if args.json:
            print(json.dumps(result.to_document()))
        else:
            reused = f" (reused: {', '.join(result.skipped)})" if result.skipped else ""
            print(
                f"{progress}{key}: retry {result.attempt} started at step "
                f"{result.from_step!r}{reused}: {result.execution_arn}"
            )
    if not single:
        print(f"{started} retried, {refused} refused, of {len(keys)} order(s)", file=sys.stderr)
    elif refused:
        return 2
    return 0 if refused == 0 else 1
