"""Step Functions, as operations see it: executions of an order, retries, definitions."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError


class OrderExecutions:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._definitions: dict[str, dict[str, Any]] = {}

    def status(self, execution_arn: str) -> str | None:
        """``RUNNING``, ``SUCCEEDED``, ``FAILED``, ``TIMED_OUT``, ``ABORTED``; None: never run."""
        try:
            response = self._client.describe_execution(executionArn=execution_arn)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return None
            raise
        return str(response["status"])

    def start(self, state_machine_arn: str, name: str, execution_input: dict[str, Any]) -> str:
        """Start an execution; a repeated start of the same name answers the same ARN."""
        try:
            response = self._client.start_execution(
                stateMachineArn=state_machine_arn,
                name=name,
                input=json.dumps(execution_input, separators=(",", ":")),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
            return execution_arn_of(state_machine_arn, name)
        return str(response["executionArn"])

    def stop(self, execution_arn: str, cause: str) -> None:
        self._client.stop_execution(
            executionArn=execution_arn, error="OrderRetried", cause=cause[:1000]
        )

    def definition(self, state_machine_arn: str) -> dict[str, Any]:
        """The state machine's ASL (cached: definitions change only with a deploy)."""
        if state_machine_arn not in self._definitions:
            response = self._client.describe_state_machine(stateMachineArn=state_machine_arn)
            self._definitions[state_machine_arn] = json.loads(response["definition"])
        return self._definitions[state_machine_arn]


def execution_arn_of(state_machine_arn: str, name: str) -> str:
    """``arn:aws:states:r:a:stateMachine:N`` + name -> ``arn:aws:states:r:a:execution:N:name``."""
    prefix, _, machine = state_machine_arn.rpartition(":stateMachine:")
    return f"{prefix}:execution:{machine}:{name}"


def console_link(execution_arn: str) -> str | None:
    """The AWS console page of an execution (None when the ARN has no region)."""
    parts = execution_arn.split(":")
    if len(parts) < 4 or not parts[3]:
        return None
    region = parts[3]
    return (
        f"https://{region}.console.aws.amazon.com/states/home?region={region}"
        f"#/v2/executions/details/{execution_arn}"
    )
