"""HMAC keys that sign outgoing REST calls, read from Secrets Manager with a cache.

A flow names its key (``signingSecret``); the key itself never appears in the flow, the
execution history or the logs. The name must sit under the deployment's secrets prefix
(``{SECRETS_PREFIX}/...``) so the function's IAM policy can stay scoped to that prefix.
The value is the key itself, or the JSON ``{"current": "...", "previous": "..."}`` shape of
webhook secrets (only ``current`` signs).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from printflow.adapters.webhook_secrets import parse_secret_value
from printflow.errors import StepFailed, StepRetryable

# Secrets Manager errors that no retry can fix.
_PERMANENT_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "AccessDeniedException",
        "DecryptionFailure",
        "InvalidRequestException",
        "InvalidParameterException",
    }
)


class SigningSecrets:
    def __init__(self, client: Any, prefix: str, max_age_s: int = 300) -> None:
        self._client = client
        self.prefix = prefix.rstrip("/")
        self.max_age_s = max_age_s
        self._provider: Any = None

    def key(self, name: str) -> str:
        """The current HMAC key stored under ``name``.

        :class:`StepFailed` when the name is outside the prefix, the secret does not exist or
        is empty; :class:`StepRetryable` when Secrets Manager is throttling or unavailable.
        """
        if not name.startswith(f"{self.prefix}/"):
            raise StepFailed(f"signing secret {name!r} must be named {self.prefix}/...")
        # Imported here: the Parameters utility costs ~0.15 s to import (see webhook_secrets).
        from aws_lambda_powertools.utilities.parameters import SecretsProvider
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        if self._provider is None:
            self._provider = SecretsProvider(boto3_client=self._client)
        try:
            value = self._provider.get(name, max_age=self.max_age_s)
        except GetParameterError as exc:
            # Powertools wraps every failure; the SDK error is the implicit context.
            raise _secret_error(name, exc.__context__) from exc
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise StepFailed(f"signing secret {name!r} is not UTF-8 text") from None
        accepted = parse_secret_value(value if isinstance(value, str) else "")
        if not accepted:
            raise StepFailed(f"signing secret {name!r} is empty")
        return accepted[0]


def _secret_error(name: str, cause: BaseException | None) -> StepFailed | StepRetryable:
    if isinstance(cause, ClientError):
        code = cause.response.get("Error", {}).get("Code", "")
        if code in _PERMANENT_CODES:
            return StepFailed(f"signing secret {name!r} cannot be read ({code})")
        return StepRetryable(f"signing secret {name!r} is unavailable ({code or 'error'})")
    if isinstance(cause, BotoCoreError):
        return StepRetryable(f"signing secret {name!r} is unreachable ({type(cause).__name__})")
    return StepRetryable(f"signing secret {name!r} could not be read")
