"""Starting order-flow executions on Step Functions."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from printflow.adapters.order_table import order_key_attributes
from printflow.domain.order import OrderKey


def execution_input(key: OrderKey) -> dict[str, Any]:
    """The whole execution input: the order's key only.

    Steps read the order from the table, so the input stays tiny (256 KiB state limit) and
    never copies customer data into the execution history.
    """
    return {
        "order": {
            **order_key_attributes(key),
            "storefrontId": key.storefront_id,
            "orderId": key.order_id,
        }
    }


class OrderFlowStarter:
    def __init__(self, client: Any, state_machines: dict[str, str]) -> None:
        self._client = client
        self.state_machines = state_machines

    def state_machine_for(self, flow: str) -> str | None:
        return self.state_machines.get(flow)

    def start(self, flow: str, key: OrderKey) -> str:
        """Start the order's execution under its deterministic name; return the ARN.

        A second start with the same name and input is answered with the running execution
        (Standard workflows deduplicate by name), so retries never run an order twice.
        ``KeyError`` when the flow has no state machine.
        """
        arn = self.state_machines[flow]
        try:
            response = self._client.start_execution(
                stateMachineArn=arn,
                name=key.execution_name,
                input=json.dumps(execution_input(key), separators=(",", ":")),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
            return execution_arn(arn, key)
        return str(response["executionArn"])

    def execution_exists(self, flow: str, key: OrderKey) -> bool:
        """Whether the order's execution was ever started (any status)."""
        try:
            self._client.describe_execution(
                executionArn=execution_arn(self.state_machines[flow], key)
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return False
            raise
        return True


def execution_arn(state_machine_arn: str, key: OrderKey) -> str:
    """``arn:aws:states:r:a:stateMachine:N`` -> ``arn:aws:states:r:a:execution:N:{name}``."""
    prefix, _, name = state_machine_arn.rpartition(":stateMachine:")
    return f"{prefix}:execution:{name}:{key.execution_name}"
