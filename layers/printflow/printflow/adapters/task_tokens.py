"""Completing the order flow's waiting ``generate-production-files`` task."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from printflow.observability import logger

# The step is already over (completed, timed out or its execution stopped): nothing to do.
_TASK_GONE = {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}
_CAUSE_LIMIT = 32_000  # Step Functions allows 32,768 characters of cause


class TaskTokens:
    def __init__(self, client: Any) -> None:
        self._client = client

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        """Complete the step; ``False`` when the task no longer waits for this token."""
        return self._send(
            "send_task_success",
            taskToken=token,
            output=json.dumps(output, separators=(",", ":"), default=str),
        )

    def fail(self, token: str, error: str, cause: str) -> None:
        self._send(
            "send_task_failure", taskToken=token, error=error[:256], cause=cause[:_CAUSE_LIMIT]
        )

    def _send(self, operation: str, **request: Any) -> bool:
        try:
            getattr(self._client, operation)(**request)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in _TASK_GONE:
                logger.info("task already over", extra={"reason": code})
                return False
            raise
        return True
