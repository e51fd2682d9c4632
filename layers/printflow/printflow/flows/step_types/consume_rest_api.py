"""The consume-rest-api step type: POST the order document to the URL the flow names.

Options: ``uri`` (an https URL), ``headers`` (static headers, none PrintFlow sets itself) and
``signingSecret`` (the *name* of a Secrets Manager secret whose key signs the body, never
the secret itself).

Compiled as a plain Lambda task (``functions/consume_rest_api``, :mod:`printflow.steps.rest`):
the Lambda sends the document and writes the step's status before it returns. Its options do
not depend on the storefront.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from printflow.flows.model import StepType
from printflow.flows.options import (
    CONTROL_CHARS,
    FORBIDDEN_HEADERS,
    ErrorCollector,
    fail,
)
from printflow.flows.step_types.spec import StepTypeSpec
from printflow.validators import check_https_uri, is_secret_name

MAX_HEADERS = 50
MAX_HEADER_VALUE_LENGTH = 4096
# RFC 9110 token characters.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")


@dataclass(frozen=True, slots=True)
class ConsumeRestApiOptions:
    """POST the order document to ``uri``; optional static headers and HMAC signing."""

    uri: str
    headers: tuple[tuple[str, str], ...] = ()
    signing_secret: str | None = None

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"uri": self.uri}
        if self.headers:
            doc["headers"] = dict(self.headers)
        if self.signing_secret is not None:
            doc["signingSecret"] = self.signing_secret
        return doc


def _consume_options(raw: dict[str, Any], where: str) -> ConsumeRestApiOptions:
    errors = ErrorCollector()
    uri = raw.get("uri")
    if uri is None:
        errors.add(fail(f"{where}.uri", "required (an https URL)"))
    else:
        errors.check(lambda: check_https_uri(uri, f"{where}.uri"))
    headers = errors.check(lambda: _headers(raw.get("headers"), f"{where}.headers"))
    secret = raw.get("signingSecret")
    if secret is not None and not is_secret_name(secret):
        errors.add(
            fail(
                f"{where}.signingSecret",
                "must be the name of a Secrets Manager secret ([A-Za-z0-9/_+=.@-], <= 512 chars)",
            )
        )
    errors.raise_if_any()
    assert isinstance(uri, str)
    return ConsumeRestApiOptions(uri=uri, headers=headers or (), signing_secret=secret)


def _headers(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise fail(where, "must be an object of header name to string value")
    if len(raw) > MAX_HEADERS:
        raise fail(where, f"at most {MAX_HEADERS} headers")
    seen: set[str] = set()
    headers: list[tuple[str, str]] = []
    for name, value in raw.items():
        at = f"{where}.{name}"
        if not _HEADER_NAME.fullmatch(name):
            raise fail(at, "header name must be 1-128 token characters")
        if name.endswith(".$"):
            raise fail(at, "header names ending in '.$' are reserved by Step Functions")
        lowered = name.lower()
        if lowered in FORBIDDEN_HEADERS:
            raise fail(at, "this header is set by PrintFlow and cannot be overridden")
        if lowered in seen:
            raise fail(at, "duplicate header (names are case-insensitive)")
        seen.add(lowered)
        if not isinstance(value, str):
            raise fail(at, "header value must be a string")
        if CONTROL_CHARS.search(value.replace("\t", " ")):
            raise fail(at, "header value must not contain CR, LF or other control characters")
        if len(value) > MAX_HEADER_VALUE_LENGTH:
            raise fail(at, f"header value must be at most {MAX_HEADER_VALUE_LENGTH} characters")
        headers.append((name, value))
    return tuple(headers)


SPEC: StepTypeSpec[ConsumeRestApiOptions] = StepTypeSpec(
    name=StepType.CONSUME_REST_API,
    option_keys=frozenset({"uri", "headers", "signingSecret"}),
    parse=_consume_options,
    options_type=ConsumeRestApiOptions,
    function="ConsumeRestApiFunction",
    handler="functions/consume_rest_api/app.py",
)
