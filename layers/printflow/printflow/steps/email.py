"""The send-email step: render the flow's templates for the order and send them through SES.

The options are validated again with the flow's own rules
(:mod:`printflow.flows.step_types.send_email`): the event may not come from a validated
flow, and a bad option must fail the step with the same message the validator would give.
Rendering rules are in :mod:`printflow.steps.templating`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

from printflow.adapters.order_table import EMAIL_SENT, EMAIL_UNSENT, OrderTable
from printflow.adapters.ses_email import OutgoingEmail, SesMailer
from printflow.errors import StepFailed, StepRetryable, ValidationError
from printflow.flows.step_types import send_email
from printflow.flows.step_types.send_email import SendEmailOptions
from printflow.steps.context import StepInvocation, load_order
from printflow.steps.templating import (
    html_body,
    render_message,
    render_recipients,
    render_subject,
    template_values,
)

# Errors after which SES certainly sent nothing: it answered with a refusal, or the
# connection was never made.
_NOTHING_SENT = (ClientError, ConnectTimeoutError, EndpointConnectionError)


@dataclass(frozen=True, slots=True)
class SentEmail:
    message_id: str
    recipient_count: int
    # "sent" now; "already sent" (an earlier attempt sent it); "may have been sent" (an
    # earlier attempt claimed it and stopped before recording the outcome: not sent again).
    outcome: str = "sent"


def parse_email_options(invocation: StepInvocation) -> SendEmailOptions:
    try:
        return send_email.SPEC.parse_options(dict(invocation.options), "options")
    except ValidationError as exc:
        raise StepFailed(f"step {invocation.step_id!r}: {exc}") from exc


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
        """Send the step's email once per order step (retries and order retries included).

        A record is claimed before SES is called and marked sent after; a record left
        ``sending`` (a crash or timeout in between) means the email may have gone out, so
        it is reported, never sent again silently.
        """
        email = self.compose(invocation)
        key, step, delivery = invocation.order, invocation.step_id, invocation.delivery_id
        claim = self._table.claim_email(key, step, delivery, _now())
        if not claim.claimed:
            message_id = str(claim.record.get("messageId") or "")
            outcome = "already sent" if claim.state == EMAIL_SENT else "may have been sent"
            return SentEmail(message_id, len(email.recipients), outcome)
        try:
            message_id = self._mailer.send(email)
        except StepFailed:
            self._table.finish_email(key, step, delivery, EMAIL_UNSENT, _now())
            raise
        except StepRetryable as exc:
            # SES answered (throttled, 5xx) or was never reached: nothing went out and the
            # step's retry may send. No answer at all (a timeout after the request left)
            # keeps the record "sending": the email may have gone out, and it is never
            # resent silently.
            if isinstance(exc.__cause__, _NOTHING_SENT):
                self._table.finish_email(key, step, delivery, EMAIL_UNSENT, _now())
            raise
        self._table.finish_email(key, step, delivery, EMAIL_SENT, _now(), message_id)
        return SentEmail(message_id=message_id, recipient_count=len(email.recipients))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
