"""``printflow storefronts put FILE.json | list | show ID`` against a deployed stack.

Where the table is: see :mod:`printflow_tools.connection` (``--stack``, ``--table``, or the
running ``printflow local`` with no flags).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from printflow.adapters.order_table import OrderTable
from printflow.adapters.webhook_secrets import WebhookSecrets
from printflow.errors import ValidationError
from printflow.storefronts import register_storefront
from printflow.validators import UrlPolicy
from printflow_tools.connection import add_connection_options, connect
from printflow_tools.flow_files import load_flows


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("storefronts", help="register and inspect storefronts")
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)

    put = commands.add_parser("put", help="validate and register (or update) a storefront")
    put.add_argument("file", type=Path, help="storefront JSON document")
    _connection_options(put)
    put.add_argument(
        "--known-flows",
        default="default",
        help="comma-separated flows deployed in the stack (default: %(default)s)",
    )
    put.add_argument(
        "--flows-dir",
        type=Path,
        default=Path("flows"),
        help="flow files ({name}.json) the storefront's flow is checked against, when there "
        "(default: %(default)s)",
    )
    put.add_argument(
        "--allow-http-host",
        action="append",
        default=[],
        metavar="HOST",
        help="let provider URLs on HOST use plain http (local sandboxes only; repeatable)",
    )
    put.set_defaults(handler=_put)

    listing = commands.add_parser("list", help="list registered storefronts")
    listing.add_argument("--json", action="store_true", help="one JSON document per line")
    _connection_options(listing)
    listing.set_defaults(handler=_list)

    show = commands.add_parser("show", help="show one storefront's configuration")
    show.add_argument("storefront_id", help="storefront id")
    show.add_argument(
        "--json", action="store_true", help="the document on one line (default: indented)"
    )
    _connection_options(show)
    show.set_defaults(handler=_show)


def _connection_options(parser: argparse.ArgumentParser) -> None:
    add_connection_options(parser)


def _clients(args: argparse.Namespace) -> tuple[OrderTable, WebhookSecrets]:
    connection = connect(args)
    return (
        OrderTable(connection.client("dynamodb"), connection.output("OrderTableName")),
        WebhookSecrets(connection.client("secretsmanager"), connection.secrets_prefix),
    )


def _fail(message: str) -> int:
    print(f"printflow: {message}", file=sys.stderr)
    return 2


def _put(args: argparse.Namespace) -> int:
    try:
        doc = json.loads(args.file.read_text())
    except OSError as exc:
        return _fail(f"cannot read {args.file}: {exc.strerror}")
    except json.JSONDecodeError as exc:
        return _fail(f"{args.file} is not valid JSON: {exc}")
    known_flows = {f.strip() for f in args.known_flows.split(",") if f.strip()}
    try:
        flows = load_flows(args.flows_dir) if args.flows_dir.is_dir() else None
        table, secrets = _clients(args)
        storefront = register_storefront(
            doc,
            table,
            secrets,
            known_flows=known_flows,
            provider_urls=UrlPolicy(allow_insecure_hosts=frozenset(args.allow_http_host)),
            flows=flows,
        )
    except ValidationError as exc:
        return _fail(str(exc))
    except (ClientError, BotoCoreError) as exc:
        return _fail(f"AWS error: {exc}")
    print(json.dumps(storefront.to_document(), indent=2))
    return 0


def _list(args: argparse.Namespace) -> int:
    try:
        table, _ = _clients(args)
        storefronts = table.list_storefronts()
    except ValidationError as exc:
        return _fail(str(exc))
    except (ClientError, BotoCoreError) as exc:
        return _fail(f"AWS error: {exc}")
    if args.json:
        for storefront in storefronts:
            print(json.dumps(storefront.to_document()))
        return 0
    for storefront in storefronts:
        provider = storefront.provider.name.value if storefront.provider else "-"
        print(
            f"{storefront.storefront_id:<24} {storefront.platform.value:<12} "
            f"flow={storefront.flow:<12} provider={provider}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    try:
        table, _ = _clients(args)
        storefront = table.get_storefront(args.storefront_id)
    except ValidationError as exc:
        return _fail(str(exc))
    except (ClientError, BotoCoreError) as exc:
        return _fail(f"AWS error: {exc}")
    if storefront is None:
        return _fail(f"storefront {args.storefront_id!r} is not registered")
    print(json.dumps(storefront.to_document(), indent=None if args.json else 2))
    return 0
