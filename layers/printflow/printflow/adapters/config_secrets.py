"""Configuration secrets: JSON objects an operator puts in Secrets Manager for a storefront
(a provider's OAuth client, a store's API token), named by the storefront's config.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from printflow.errors import ValidationError


def read_json_secret(secrets_client: Any, secret_name: str, field_name: str) -> dict[str, Any]:
    """The secret's JSON object; {} when it is not one (the caller names what it needs).

    A missing secret is a storefront configuration error (:class:`ValidationError` naming
    ``field_name``); other AWS errors propagate. The value never appears in a message.
    """
    try:
        value = secrets_client.get_secret_value(SecretId=secret_name).get("SecretString")
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            raise ValidationError(f"{field_name}: secret {secret_name!r} not found") from None
        raise
    try:
        doc = json.loads(value) if isinstance(value, str) else None
    except json.JSONDecodeError:
        doc = None
    return doc if isinstance(doc, dict) else {}
