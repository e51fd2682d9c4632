"""Webhook secrets in Secrets Manager, one secret per storefront.

The secret value is JSON ``{"current": "...", "previous": "..."}``; ``previous`` is optional
and lets a rotated secret keep verifying in-flight retries (Shopify signs with the old secret
for up to an hour after a rotation).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError


def webhook_secret_name(prefix: str, storefront_id: str) -> str:
    return f"{prefix}/storefronts/{storefront_id}/webhook"


def parse_secret_value(value: str) -> list[str]:
    """Accepted secrets, current first. A plain (non-JSON) value is the current secret."""
    try:
        doc = json.loads(value)
    except json.JSONDecodeError:
        return [value] if value else []
    if isinstance(doc, str):
        return [doc] if doc else []
    if not isinstance(doc, dict):
        return []
    return [s for s in (doc.get("current"), doc.get("previous")) if isinstance(s, str) and s]


class WebhookSecrets:
    """Reads (cached through Powertools Parameters) and writes storefront webhook secrets."""

    def __init__(self, client: Any, prefix: str, max_age_s: int = 60) -> None:
        self._client = client
        self.prefix = prefix
        self.max_age_s = max_age_s
        self._provider: Any = None

    @property
    def client(self) -> Any:
        """The Secrets Manager client, for checking a storefront's other secrets exist."""
        return self._client

    def accepted(self, storefront_id: str) -> list[str]:
        """Secrets that may sign this storefront's webhooks; empty when none is stored."""
        # Imported here: the Parameters utility costs ~0.15 s to import, and only the first
        # request of a cold function needs it.
        from aws_lambda_powertools.utilities.parameters import SecretsProvider
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        if self._provider is None:
            self._provider = SecretsProvider(boto3_client=self._client)
        try:
            value = self._provider.get(
                webhook_secret_name(self.prefix, storefront_id), max_age=self.max_age_s
            )
        except GetParameterError:
            return []
        return parse_secret_value(value if isinstance(value, str) else "")

    def put(self, storefront_id: str, secret: str) -> None:
        """Store a new current secret, keeping the old one as ``previous`` for rotation."""
        name = webhook_secret_name(self.prefix, storefront_id)
        previous: str | None = None
        try:
            current_value = self._client.get_secret_value(SecretId=name)["SecretString"]
            accepted = parse_secret_value(current_value)
            previous = accepted[0] if accepted and accepted[0] != secret else None
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            self._client.create_secret(
                Name=name,
                SecretString=json.dumps({"current": secret}),
                Description=f"PrintFlow webhook secret of storefront {storefront_id}",
            )
            return
        value = {"current": secret, **({"previous": previous} if previous else {})}
        self._client.put_secret_value(SecretId=name, SecretString=json.dumps(value))
