"""API Gateway HTTP API (payload v2) at the edge: events in, responses out.

Typed errors become HTTP statuses here and nowhere else. A 4xx says what was wrong; a 5xx
says only that the service failed (no internals, no secrets).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from printflow.errors import ClientInputError, MalformedPayload, MethodNotAllowed

JSON_HEADERS = {"content-type": "application/json"}


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    path_parameters: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes


def parse_http_event(event: dict[str, Any]) -> HttpRequest:
    """Read an HTTP API v2 event. Base64 bodies (binary or form posts) are decoded here."""
    context = event.get("requestContext") or {}
    http = context.get("http") or {}
    raw_body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw_body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedPayload("body is marked base64 but is not valid base64") from None
    else:
        body = raw_body.encode("utf-8", "surrogatepass") if isinstance(raw_body, str) else b""
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    return HttpRequest(
        # As sent: methods are case-sensitive, and "post" is not POST (RFC 9110).
        method=str(http.get("method") or "GET"),
        path=str(event.get("rawPath") or http.get("path") or "/"),
        path_parameters={str(k): str(v) for k, v in (event.get("pathParameters") or {}).items()},
        headers=headers,
        body=body,
    )


def json_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {**JSON_HEADERS, **(headers or {})},
        "body": json.dumps(body, separators=(",", ":"), default=str),
    }


def error_response(exc: ClientInputError) -> dict[str, Any]:
    headers = {"allow": exc.allow} if isinstance(exc, MethodNotAllowed) else None
    return json_response(exc.status, {"error": exc.code, "message": exc.message}, headers)


def server_error_response(status: int = 500, message: str = "internal error") -> dict[str, Any]:
    return json_response(status, {"error": "server_error", "message": message})
