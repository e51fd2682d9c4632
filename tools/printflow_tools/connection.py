"""Where the CLI's AWS calls go: one place that finds the stack, for every command.

In order, the first that applies wins:

1. ``--stack NAME``: the CloudFormation stack's outputs (``OrderTableName``, ...), read
   with the usual AWS credentials, region and ``--endpoint-url``;
2. ``--table NAME`` (or ``PRINTFLOW_TABLE``): that table, the usual AWS settings;
3. a running ``printflow local``: it writes its endpoint, region, credentials and the
   template's outputs to :data:`LOCAL_STACK_FILE` (``~/.printflow/local-stack.json``, or
   ``PRINTFLOW_LOCAL_STACK_FILE``) when it starts, and removes the file when it stops.

So against the local stack every command works with no flags.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from printflow.errors import ValidationError

LOCAL_STACK_FILE_VARIABLE = "PRINTFLOW_LOCAL_STACK_FILE"
LOCAL_STACK_FILE = Path.home() / ".printflow" / "local-stack.json"


def local_stack_file() -> Path:
    """The file a running ``printflow local`` describes itself in."""
    override = os.environ.get(LOCAL_STACK_FILE_VARIABLE)
    return Path(override) if override else LOCAL_STACK_FILE


def write_local_stack_file(
    endpoint_url: str, region: str, credentials: tuple[str, str], outputs: dict[str, str]
) -> Path:
    """Describe a running local stack for the CLI (called by ``printflow local``)."""
    path = local_stack_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "endpointUrl": endpoint_url,
        "region": region,
        "accessKeyId": credentials[0],
        "secretAccessKey": credentials[1],
        "outputs": outputs,
        "pid": os.getpid(),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def remove_local_stack_file() -> None:
    local_stack_file().unlink(missing_ok=True)


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """The options every command that talks to a deployed stack takes."""
    where = parser.add_argument_group(
        "where the stack is",
        "default: the running `printflow local` (see ~/.printflow/local-stack.json)",
    )
    where.add_argument("--stack", help="CloudFormation stack to read the resource names from")
    where.add_argument(
        "--table",
        default=os.environ.get("PRINTFLOW_TABLE"),
        help="order table name (env PRINTFLOW_TABLE) instead of a stack",
    )
    where.add_argument(
        "--secrets-prefix",
        default=os.environ.get("PRINTFLOW_SECRETS_PREFIX", "printflow"),
        help="prefix of PrintFlow's secrets (default: %(default)s)",
    )
    where.add_argument(
        "--endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL"),
        help="AWS API endpoint (env AWS_ENDPOINT_URL), e.g. an emulator's",
    )
    where.add_argument("--region", default=os.environ.get("AWS_REGION") or None, help="AWS region")


@dataclass
class StackConnection:
    """A boto3 session and endpoint, plus the stack's outputs (resource names)."""

    session: boto3.Session
    endpoint_url: str | None
    outputs: dict[str, str] = field(default_factory=dict)
    secrets_prefix: str = "printflow"
    local: bool = False

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]

    def output(self, name: str) -> str:
        """A stack output; a clear error when the stack does not have it."""
        value = self.outputs.get(name)
        if not value:
            raise ValidationError(
                f"the stack has no {name} output: pass --stack NAME (a stack deployed from "
                "this template) or start `printflow local`"
            )
        return value

    @property
    def region(self) -> str | None:
        return self.session.region_name


def connect(args: argparse.Namespace) -> StackConnection:
    """The stack the command's options (or the running local stack) point at."""
    stack = getattr(args, "stack", None)
    table = getattr(args, "table", None)
    endpoint = getattr(args, "endpoint_url", None)
    region = getattr(args, "region", None)
    prefix = getattr(args, "secrets_prefix", None) or "printflow"
    if stack:
        connection = StackConnection(boto3.Session(region_name=region), endpoint, {}, prefix)
        described = connection.client("cloudformation").describe_stacks(StackName=stack)
        outputs = described["Stacks"][0].get("Outputs", [])
        connection.outputs = {o["OutputKey"]: o["OutputValue"] for o in outputs}
        connection.secrets_prefix = connection.outputs.get("SecretsPrefix", prefix)
        return connection
    if table:
        return StackConnection(
            boto3.Session(region_name=region), endpoint, {"OrderTableName": table}, prefix
        )
    path = local_stack_file()
    if path.exists():
        doc = json.loads(path.read_text())
        session = boto3.Session(
            aws_access_key_id=doc["accessKeyId"],
            aws_secret_access_key=doc["secretAccessKey"],
            region_name=doc["region"],
        )
        outputs = {str(k): str(v) for k, v in doc.get("outputs", {}).items()}
        return StackConnection(
            session,
            doc["endpointUrl"],
            outputs,
            outputs.get("SecretsPrefix", prefix),
            local=True,
        )
    raise ValidationError(
        "no table: pass --stack NAME (or --table NAME), or start `printflow local` "
        f"(it describes itself in {path})"
    )
