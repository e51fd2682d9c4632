"""What the ``orders`` and ``dlq`` commands build from a stack, and how they report failure.

Both command groups repair orders with the same library objects (:class:`OrderRetries` over
the order table, the render jobs, the executions and the stored artifacts), so they are put
together here once, from the stack's outputs.
"""

from __future__ import annotations

import json
import sys

from botocore.exceptions import BotoCoreError, ClientError

from printflow.adapters.order_executions import OrderExecutions
from printflow.adapters.order_table import OrderTable
from printflow.adapters.render_job_table import RenderJobTable
from printflow.adapters.stored_artifacts import StoredArtifacts
from printflow.errors import PrintFlowError, ValidationError
from printflow.operations.orders import StateMachines
from printflow.operations.retry import OrderRetries
from printflow_tools.connection import StackConnection

# What a command reports as a one-line error instead of a traceback.
OPERATION_ERRORS = (PrintFlowError, ClientError, BotoCoreError)

# The table's DueIndex shard count does not matter to these commands (no job is created).
_DUE_SHARDS = 1


def fail(message: str) -> int:
    """Print ``printflow: message`` on stderr; the exit status of a refused command."""
    print(f"printflow: {message}", file=sys.stderr)
    return 2


def reason(exc: Exception) -> str:
    """One line for an operator: the domain's own message, or the AWS error."""
    return str(exc) if isinstance(exc, PrintFlowError) else f"AWS error: {exc}"


def order_table(connection: StackConnection) -> OrderTable:
    return OrderTable(connection.client("dynamodb"), connection.output("OrderTableName"))


def render_jobs(connection: StackConnection) -> RenderJobTable:
    return RenderJobTable(
        connection.client("dynamodb"), connection.output("OrderTableName"), _DUE_SHARDS
    )


def state_machines(connection: StackConnection) -> StateMachines:
    """Each flow's state machine and retry state machine, by flow name.

    From the ``OrderFlows`` and ``RetryFlows`` outputs (JSON); a stack deployed before they
    existed has only the default flow's ``OrderFlowStateMachineArn`` and
    ``OrderFlowRetryStateMachineArn``.
    """
    outputs = connection.outputs
    normal = _flow_map(outputs, "OrderFlows", "OrderFlowStateMachineArn")
    retry = _flow_map(outputs, "RetryFlows", "OrderFlowRetryStateMachineArn")
    return StateMachines(normal=normal, retry=retry)


def _flow_map(outputs: dict[str, str], name: str, default_flow_output: str) -> dict[str, str]:
    if name in outputs:
        try:
            document = json.loads(outputs[name])
        except json.JSONDecodeError as exc:
            raise ValidationError(f"the stack's {name} output is not JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise ValidationError(f"the stack's {name} output is not a JSON object")
        return {str(flow): str(arn) for flow, arn in document.items()}
    arn = outputs.get(default_flow_output)
    return {"default": arn} if arn else {}


def stored_artifacts(connection: StackConnection) -> StoredArtifacts | None:
    bucket = connection.outputs.get("ArtifactBucketName")
    return StoredArtifacts(connection.client("s3"), bucket) if bucket else None


def order_retries(connection: StackConnection) -> OrderRetries:
    """The library behind ``orders retry`` and ``dlq replay``, wired to this stack."""
    return OrderRetries(
        order_table(connection),
        render_jobs(connection),
        OrderExecutions(connection.client("stepfunctions")),
        state_machines(connection),
        stored_artifacts(connection),
    )
