"""Rendering a send-email step's recipients, subject and message for one order.

Syntax and vocabulary are :mod:`printflow.flows.placeholders`, shared with flow validation
(``{{order.name}}``, ``{{order.number}}``, ``{{order.orderId}}``, ``{{order.storefrontId}}``,
``{{order.email}}``, ``{{order.status}}``, ``{{error.error}}``, ``{{error.cause}}``,
``{{config.operationsEmail}}``).

Choices:

- a missing value (no error on a success path, an order without an email) renders as the
  empty string: "(none)" would read as data in a subject and would be a wrong address;
- ``error.cause`` is cut to :data:`MAX_CAUSE_CHARS`;
- customer data can never add a header line: in the subject, control characters in values
  become spaces, and the rendered subject must still be free of them; a recipient must be
  one valid address after rendering, with no control characters at all (``a@x\\r\\nBcc: ...``
  is refused, not repaired). Violations raise :class:`StepFailed`, naming the recipient
  template, never the rendered (customer) address.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

from printflow.errors import StepFailed
from printflow.flows.placeholders import render_placeholders
from printflow.steps.context import FlowError

MAX_CAUSE_CHARS = 500
MAX_RECIPIENTS = 50
MAX_SUBJECT_CHARS = 998  # RFC 5322 line length

# Any C0/C1 control character or Unicode line/paragraph separator.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# In a message body, tab and newlines are text; other controls are dropped.
_BODY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`|~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`|~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])$"
)


def template_values(
    item: Mapping[str, Any], error: FlowError | None, *, operations_email: str | None
) -> dict[str, str | None]:
    """Placeholder name -> value for a stored order item (``None`` renders as "")."""
    order = item.get("order")
    order = order if isinstance(order, dict) else {}
    cause = error.cause if error else None
    if cause is not None and len(cause) > MAX_CAUSE_CHARS:
        cause = cause[: MAX_CAUSE_CHARS - 1] + "…"
    return {
        "order.name": _text(order.get("name")),
        "order.number": _text(order.get("number")),
        "order.orderId": _text(item.get("orderId") or order.get("orderId")),
        "order.storefrontId": _text(item.get("storefrontId") or order.get("storefrontId")),
        "order.email": _text(order.get("email")),
        "order.status": _text(item.get("status")),
        "error.error": error.error if error else None,
        "error.cause": cause,
        "config.operationsEmail": operations_email,
    }


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def render_subject(template: str, values: Mapping[str, str | None]) -> str:
    subject = render_placeholders(template, values, single_line=True).strip()
    if _CONTROL.search(subject):
        raise StepFailed("subject contains CR, LF or other control characters after rendering")
    if not subject:
        raise StepFailed("subject is empty after rendering")
    if len(subject) > MAX_SUBJECT_CHARS:
        subject = subject[: MAX_SUBJECT_CHARS - 1] + "…"
    return subject


def render_message(template: str, values: Mapping[str, str | None]) -> str:
    text = render_placeholders(template, values)
    return _BODY_CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def render_recipients(
    templates: Sequence[str], values: Mapping[str, str | None]
) -> tuple[str, ...]:
    """Rendered, validated, de-duplicated (case-insensitively) recipient addresses."""
    recipients: dict[str, str] = {}
    for index, template in enumerate(templates):
        where = f"recipients[{index}] ({template})"
        rendered = render_placeholders(template, values)
        if _CONTROL.search(rendered):
            raise StepFailed(f"{where} contains CR, LF or other control characters")
        address = rendered.strip()
        if not address:
            raise StepFailed(f"{where} rendered to an empty address")
        if len(address) > 254 or len(address.partition("@")[0]) > 64:
            raise StepFailed(f"{where} is not a valid email address")
        if not _EMAIL.match(address):
            raise StepFailed(f"{where} is not a valid email address")
        recipients.setdefault(address.casefold(), address)
    if not recipients:
        raise StepFailed("the email has no recipients")
    if len(recipients) > MAX_RECIPIENTS:
        raise StepFailed(f"the email has {len(recipients)} recipients; at most {MAX_RECIPIENTS}")
    return tuple(recipients.values())


def html_body(text: str) -> str:
    """The plain-text message as minimal, fully escaped HTML (line breaks kept)."""
    return (
        '<!doctype html><html><body><div style="font-family:sans-serif;white-space:pre-wrap">'
        f"{html.escape(text)}</div></body></html>"
    )
