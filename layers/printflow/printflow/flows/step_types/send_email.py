"""The send-email step type: an email to the customer or the operations team.

Options: ``recipients`` (addresses, or ``{{order.email}}`` / ``{{config.operationsEmail}}``),
``subject`` and ``message`` (templates with the placeholders of
:mod:`printflow.flows.placeholders`).

Compiled as a plain Lambda task (``functions/send_email``, :mod:`printflow.steps.email`): the
Lambda sends the email once per execution and step and writes the step's status before it
returns. Its options do not depend on the storefront.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from printflow.flows.model import StepType
from printflow.flows.options import (
    BODY_CONTROL_CHARS,
    CONTROL_CHARS,
    ErrorCollector,
    check_placeholders,
    fail,
)
from printflow.flows.placeholders import PLACEHOLDER_PATTERN, RECIPIENT_PLACEHOLDERS
from printflow.flows.step_types.spec import StepTypeSpec

MAX_RECIPIENTS = 50
MAX_SUBJECT_LENGTH = 998  # RFC 5322 line length
MAX_MESSAGE_LENGTH = 100_000

_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`|~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`|~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])$"
)


@dataclass(frozen=True, slots=True)
class SendEmailOptions:
    """Recipients are addresses or recipient placeholders; subject/message are templates."""

    recipients: tuple[str, ...]
    subject: str
    message: str

    def to_document(self) -> dict[str, Any]:
        return {
            "recipients": list(self.recipients),
            "subject": self.subject,
            "message": self.message,
        }


def _email_options(raw: dict[str, Any], where: str) -> SendEmailOptions:
    errors = ErrorCollector()
    recipients = raw.get("recipients")
    errors.check(lambda: _check_recipients(recipients, where))
    subject = errors.check(lambda: _check_subject(raw.get("subject"), where))
    message = errors.check(lambda: _check_message(raw.get("message"), where))
    errors.raise_if_any()
    assert isinstance(recipients, list) and subject is not None and message is not None
    return SendEmailOptions(recipients=tuple(recipients), subject=subject, message=message)


def _check_recipients(recipients: Any, where: str) -> None:
    if recipients is None:
        raise fail(f"{where}.recipients", "required (a list of email addresses)")
    if not isinstance(recipients, list) or not recipients:
        raise fail(f"{where}.recipients", "must be a non-empty list of email addresses")
    if len(recipients) > MAX_RECIPIENTS:
        raise fail(f"{where}.recipients", f"at most {MAX_RECIPIENTS} recipients")
    errors = ErrorCollector()
    for index, recipient in enumerate(recipients):
        errors.check(_check_recipient, recipient, f"{where}.recipients[{index}]")
    errors.raise_if_any()


def _check_subject(subject: Any, where: str) -> str:
    if not isinstance(subject, str) or not subject.strip():
        raise fail(f"{where}.subject", "required (a non-empty string)")
    if CONTROL_CHARS.search(subject):
        raise fail(f"{where}.subject", "must not contain CR, LF or other control characters")
    if len(subject) > MAX_SUBJECT_LENGTH:
        raise fail(f"{where}.subject", f"must be at most {MAX_SUBJECT_LENGTH} characters")
    check_placeholders(subject, f"{where}.subject")
    return subject


def _check_message(message: Any, where: str) -> str:
    if not isinstance(message, str) or not message.strip():
        raise fail(f"{where}.message", "required (a non-empty string)")
    if BODY_CONTROL_CHARS.search(message):
        raise fail(f"{where}.message", "must not contain control characters (except newlines)")
    if len(message) > MAX_MESSAGE_LENGTH:
        raise fail(f"{where}.message", f"must be at most {MAX_MESSAGE_LENGTH} characters")
    check_placeholders(message, f"{where}.message")
    return message


def _check_recipient(recipient: Any, where: str) -> None:
    if not isinstance(recipient, str):
        raise fail(where, "must be a string")
    if CONTROL_CHARS.search(recipient):
        raise fail(where, "must not contain CR, LF or other control characters")
    if "{{" in recipient or "}}" in recipient:
        match = PLACEHOLDER_PATTERN.fullmatch(recipient)
        if match is None or match.group(1).strip() not in RECIPIENT_PLACEHOLDERS:
            allowed = " or ".join(f"{{{{{name}}}}}" for name in sorted(RECIPIENT_PLACEHOLDERS))
            raise fail(where, f"a placeholder recipient must be exactly {allowed}")
        return
    if len(recipient) > 254 or len(recipient.partition("@")[0]) > 64:
        raise fail(where, f"invalid email address {recipient!r}")
    if not _EMAIL.fullmatch(recipient):
        raise fail(where, f"invalid email address {recipient!r}")


SPEC: StepTypeSpec[SendEmailOptions] = StepTypeSpec(
    name=StepType.SEND_EMAIL,
    option_keys=frozenset({"recipients", "subject", "message"}),
    parse=_email_options,
    options_type=SendEmailOptions,
    function="SendEmailFunction",
    handler="functions/send_email/app.py",
)
