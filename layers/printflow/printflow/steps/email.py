"""The send-email step: render the flow's templates for the order and send them through SES.

The options are validated again with the flow's own rules
(:func:`printflow.flows.options.parse_options`): the event may not come from a validated
flow, and a bad option must fail the step with the same message the validator would give.
Rendering rules are in :mod:`printflow.steps.templating`.
"""

from __future__ import annotations

from dataclasses import dataclass

from printflow.adapters.order_table import OrderTable
from printflow.adapters.ses_email import OutgoingEmail, SesMailer
from printflow.errors import StepFailed, ValidationError
from printflow.flows.model import SendEmailOptions, StepType
from printflow.flows.options import parse_options
from printflow.steps.context import StepInvocation, load_order
from printflow.steps.templating import (
    html_body,
    render_message,
    render_recipients,
    render_subject,
    template_values,
)


@dataclass(frozen=True, slots=True)
class SentEmail:
    message_id: str
    recipient_count: int


def parse_email_options(invocation: StepInvocation) -> SendEmailOptions:
    try:
        options = parse_options(StepType.SEND_EMAIL, dict(invocation.options), "options")
    except ValidationError as exc:
        raise StepFailed(f"step {invocation.step_id!r}: {exc}") from exc
    assert isinstance(options, SendEmailOptions)
    return options


class EmailStep:
    def __init__(
        self, table: OrderTable, mailer: SesMailer, *, operations_email: str | None = None
    ) -> None:
        self._table = table
        self._mailer = mailer
        self._operations_email = operations_email

    def compose(self, invocation: StepInvocation) -> OutgoingEmail:
        """The email this invocation sends (rendered and checked, not sent)."""
        options = parse_email_options(invocation)
        item = load_order(self._table, invocation.order)
        invocation = invocation.with_recorded_error(item)
        values = template_values(item, invocation.error, operations_email=self._operations_email)
        text = render_message(options.message, values)
        return OutgoingEmail(
            recipients=render_recipients(options.recipients, values),
            subject=render_subject(options.subject, values),
            text=text,
            html=html_body(text),
        )

    def run(self, invocation: StepInvocation) -> SentEmail:
        email = self.compose(invocation)
        message_id = self._mailer.send(email)
        return SentEmail(message_id=message_id, recipient_count=len(email.recipients))
