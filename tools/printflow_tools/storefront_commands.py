"""``printflow storefronts put FILE.json | list | show ID`` against a deployed stack.

The table name comes from ``--table`` (or ``PRINTFLOW_TABLE``), or from the outputs of the
CloudFormation stack named by ``--stack``. ``--endpoint-url`` (or ``AWS_ENDPOINT_URL``)
points at any AWS API, such as the local stack's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from printflow.adapters.order_table import OrderTable
from printflow.adapters.webhook_secrets import WebhookSecrets
from printflow.errors import ValidationError
from printflow.providers.base import UrlPolicy
from printflow.storefronts import register_storefront
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
    _connection_options(listing)
    listing.set_defaults(handler=_list)

    show = commands.add_parser("show", help="show one storefront's configuration")
    show.add_argument("storefront_id")
    _connection_options(show)
    show.set_defaults(handler=_show)


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", help="CloudFormation stack to read the table name from")
    parser.add_argument("--table", default=os.environ.get("PRINTFLOW_TABLE"))
    parser.add_argument(
        "--secrets-prefix", default=os.environ.get("PRINTFLOW_SECRETS_PREFIX", "printflow")
    )
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or None)


def _clients(args: argparse.Namespace) -> tuple[OrderTable, WebhookSecrets]:
    session = boto3.Session(region_name=args.region)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=args.endpoint_url)  # type: ignore[call-overload]

    table_name = args.table
    if not table_name and args.stack:
        stack = client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        table_name = outputs.get("OrderTableName")
        args.secrets_prefix = outputs.get("SecretsPrefix", args.secrets_prefix)
    if not table_name:
        raise ValidationError("no table: pass --table, set PRINTFLOW_TABLE, or pass --stack")
    return (
        OrderTable(client("dynamodb"), table_name),
        WebhookSecrets(client("secretsmanager"), args.secrets_prefix),
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
    print(json.dumps(storefront.to_document(), indent=2))
    return 0
