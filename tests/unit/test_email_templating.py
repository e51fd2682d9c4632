"""send-email: rendering templates for an order, refusing injection, SES outcomes."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from printflow.adapters.order_table import EmailClaim
from printflow.adapters.ses_email import OutgoingEmail, SesMailer, redact_addresses
from printflow.domain.order import OrderKey
from printflow.errors import StepFailed, StepRetryable
from printflow.steps.context import FlowError, StepInvocation
from printflow.steps.email import EmailStep
from printflow.steps.templating import (
    MAX_CAUSE_CHARS,
    html_body,
    render_message,
    render_recipients,
    render_subject,
    template_values,
)

KEY = OrderKey("demo-shopify", "5001")
OPS = "ops@printflow.example"


def item(**order: Any) -> dict[str, Any]:
    doc = {"name": "#1001", "number": "1001", "email": "jane@example.org", **order}
    return {
        "storefrontId": KEY.storefront_id,
        "orderId": KEY.order_id,
        "status": "In progress",
        "order": {k: v for k, v in doc.items() if v is not None},
    }


def values(error: FlowError | None = None, **order: Any) -> dict[str, str | None]:
    return template_values(item(**order), error, operations_email=OPS)


# -- rendering ----------------------------------------------------------------------------------


def test_every_placeholder_renders_from_the_order_item() -> None:
    error = FlowError("StepFailed", "render failed", step="generate")
    template = (
        "{{order.name}}|{{order.number}}|{{order.orderId}}|{{order.storefrontId}}|"
        "{{order.email}}|{{order.status}}|{{error.error}}|{{error.cause}}|"
        "{{config.operationsEmail}}"
    )

    text = render_message(template, values(error))

    assert text == (
        "#1001|1001|5001|demo-shopify|jane@example.org|In progress|StepFailed|render failed|"
        "ops@printflow.example"
    )


def test_whitespace_inside_the_braces_is_allowed() -> None:
    assert render_subject("Order {{ order.number }} shipped", values()) == "Order 1001 shipped"


def test_missing_values_render_empty() -> None:
    rendered = render_message("[{{error.cause}}][{{order.email}}]", values(email=None))
    assert rendered == "[][]"


def test_the_error_cause_is_truncated() -> None:
    error = FlowError("StepFailed", "x" * 5000)

    cause = values(error)["error.cause"]

    assert cause is not None
    assert len(cause) == MAX_CAUSE_CHARS
    assert cause.endswith("…")


def test_the_message_keeps_lines_and_drops_other_control_characters() -> None:
    rendered = render_message("Hello\r\n{{order.name}}\tdone", values(name="A\x00B\x1b"))
    assert rendered == "Hello\nAB\tdone"


def test_the_html_part_is_escaped() -> None:
    text = render_message("Name: {{order.name}}", values(name='<script>alert("x")</script>'))

    body = html_body(text)

    assert "<script>" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body


# -- header injection -------------------------------------------------------------------------


def test_a_value_cannot_break_the_subject_line() -> None:
    subject = render_subject("Order {{order.name}}", values(name="#1\r\nBcc: evil@example.com"))

    assert "\r" not in subject
    assert "\n" not in subject
    assert subject == "Order #1  Bcc: evil@example.com"


@pytest.mark.parametrize("template", ["Order\r\nBcc: evil@example.com", "Order\x00", "A\u2028B"])
def test_a_subject_with_control_characters_is_refused(template: str) -> None:
    with pytest.raises(StepFailed, match="control characters"):
        render_subject(template, values())


def test_an_empty_subject_is_refused() -> None:
    with pytest.raises(StepFailed, match="subject is empty"):
        render_subject("{{error.cause}}", values())


@pytest.mark.parametrize(
    "email",
    [
        "jane@example.org\r\nBcc: evil@example.com",
        "jane@example.org\nBcc: evil@example.com",
        "jane@example.org\x00",
    ],
)
def test_a_recipient_with_injected_lines_is_refused(email: str) -> None:
    with pytest.raises(StepFailed) as caught:
        render_recipients(["{{order.email}}"], values(email=email))

    message = str(caught.value)
    assert "recipients[0] ({{order.email}}) contains CR, LF or other control" in message
    assert "jane@" not in message  # the customer's address is never echoed


# -- recipients ---------------------------------------------------------------------------------


def test_recipients_render_and_dedupe_case_insensitively() -> None:
    recipients = render_recipients(
        ["{{order.email}}", "OPS@printflow.example", "{{config.operationsEmail}}", "a@b.example"],
        values(),
    )
    assert recipients == ("jane@example.org", "OPS@printflow.example", "a@b.example")


def test_an_empty_rendered_recipient_is_refused_by_name() -> None:
    with pytest.raises(StepFailed, match=r"recipients\[1\] \(\{\{order.email\}\}\) rendered to an"):
        render_recipients(["ops@printflow.example", "{{order.email}}"], values(email=None))


@pytest.mark.parametrize(
    "email",
    [
        "not-an-address",
        "jane@",
        "@example.org",
        "jane@example",
        "jane doe@example.org",
        "a@b.example, evil@example.com",
        "Jane <jane@example.org>",
        "x" * 65 + "@example.org",
    ],
)
def test_an_invalid_rendered_recipient_is_refused(email: str) -> None:
    with pytest.raises(StepFailed, match=r"\(\{\{order.email\}\}\) is not a valid email address"):
        render_recipients(["{{order.email}}"], values(email=email))


def test_at_most_50_recipients() -> None:
    many = [f"r{i}@printflow.example" for i in range(51)]

    assert len(render_recipients(many[:50], values())) == 50
    with pytest.raises(StepFailed, match="51 recipients; at most 50"):
        render_recipients(many, values())


# -- the step ---------------------------------------------------------------------------------


class FakeTable:
    """The order item and the email records (the real conditional writes are tested on moto)."""

    def __init__(self, stored: dict[str, Any] | None) -> None:
        self.stored = stored
        self.emails: dict[tuple[str, str], str] = {}

    def get_order(self, key: OrderKey) -> dict[str, Any] | None:
        return self.stored

    def claim_email(self, key: OrderKey, step: str, delivery: str, at: str) -> EmailClaim:
        state = self.emails.get((step, delivery))
        if state in (None, "unsent"):
            self.emails[(step, delivery)] = "sending"
            return EmailClaim(True, "sending", {})
        return EmailClaim(False, state or "sending", {"state": state})

    def finish_email(
        self, key: OrderKey, step: str, delivery: str, state: str, at: str, message_id: Any = None
    ) -> None:
        self.emails[(step, delivery)] = state


class FakeSes:
    def __init__(self, error: dict[str, Any] | Exception | None = None) -> None:
        self.error = error
        self.sent: list[dict[str, Any]] = []

    def send_email(self, **request: Any) -> dict[str, Any]:
        if isinstance(self.error, Exception):
            raise self.error
        if self.error is not None:
            raise ClientError(self.error, "SendEmail")
        self.sent.append(request)
        return {"MessageId": "m-1"}


def email_invocation(options: dict[str, Any], error: FlowError | None = None) -> StepInvocation:
    return StepInvocation(
        order=KEY,
        step_id="email",
        step_type="send-email",
        success_status="Done",
        execution="arn:aws:states:us-east-1:1:execution:f:e",
        options=options,
        error=error,
    )


OPTIONS = {
    "recipients": ["{{order.email}}", "{{config.operationsEmail}}"],
    "subject": "Order {{order.number}}: {{error.error}}",
    "message": "Hello {{order.name}}\n{{error.cause}}",
}


def test_the_step_sends_one_rendered_email() -> None:
    stored = {**item(), "error": {"step": "generate", "error": "StepFailed"}}
    ses = FakeSes()
    step = EmailStep(
        FakeTable(stored),  # type: ignore[arg-type]
        SesMailer(ses, "PrintFlow <noreply@printflow.example>"),
        operations_email=OPS,
    )

    sent = step.run(email_invocation(OPTIONS, FlowError("StepFailed", "render failed")))

    assert sent.message_id == "m-1"
    assert sent.recipient_count == 2
    (request,) = ses.sent
    assert request["FromEmailAddress"] == "PrintFlow <noreply@printflow.example>"
    assert request["Destination"] == {"ToAddresses": ["jane@example.org", OPS]}
    simple = request["Content"]["Simple"]
    assert simple["Subject"]["Data"] == "Order 1001: StepFailed"
    assert simple["Body"]["Text"]["Data"] == "Hello #1001\nrender failed"
    assert "Hello #1001" in simple["Body"]["Html"]["Data"]


def test_options_are_checked_with_the_flow_rules() -> None:
    step = EmailStep(FakeTable(item()), SesMailer(FakeSes(), OPS))  # type: ignore[arg-type]
    options = {**OPTIONS, "subject": "Order {{order.nmae}}"}

    with pytest.raises(StepFailed, match=r"unknown placeholder '\{\{order.nmae\}\}'"):
        step.run(email_invocation(options))


def test_a_missing_order_fails_the_email_step() -> None:
    step = EmailStep(FakeTable(None), SesMailer(FakeSes(), OPS))  # type: ignore[arg-type]

    with pytest.raises(StepFailed, match="not found"):
        step.run(email_invocation(OPTIONS))


# -- SES outcomes -------------------------------------------------------------------------------

EMAIL = OutgoingEmail(recipients=("jane@example.org",), subject="s", text="t")


def ses_error(code: str, status: int = 400, message: str = "no") -> dict[str, Any]:
    return {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ses_error("TooManyRequestsException", 429), StepRetryable),
        (ses_error("ThrottlingException", 400), StepRetryable),
        (ses_error("InternalFailure", 500), StepRetryable),
        (ses_error("SomethingNew", 503), StepRetryable),
        (ses_error("MessageRejected"), StepFailed),
        (ses_error("MailFromDomainNotVerifiedException"), StepFailed),
        (ses_error("AccountSuspendedException"), StepFailed),
        (ses_error("SendingPausedException"), StepFailed),
        (ses_error("BadRequestException"), StepFailed),
        (
            EndpointConnectionError(endpoint_url="https://email.us-east-1.amazonaws.com"),
            StepRetryable,
        ),
    ],
)
def test_ses_errors_map_to_step_outcomes(
    error: dict[str, Any] | Exception, expected: type[Exception]
) -> None:
    with pytest.raises(expected):
        SesMailer(FakeSes(error), OPS).send(EMAIL)


def test_an_unverified_sender_says_so_without_leaking_recipients() -> None:
    error = ses_error(
        "MessageRejected",
        message="Email address is not verified. Failed identities: noreply@printflow.example, "
        "jane@example.org",
    )

    with pytest.raises(StepFailed) as caught:
        SesMailer(FakeSes(error), "PrintFlow <noreply@printflow.example>").send(EMAIL)

    message = str(caught.value)
    assert message.startswith("ses refused the email (MessageRejected)")
    assert "noreply@printflow.example" in message
    assert "jane@example.org" not in message
    assert "<address>" in message


def test_redaction_keeps_only_the_sender() -> None:
    assert redact_addresses("a@b.example and c@d.example.", keep="c@d.example") == (
        "<address> and c@d.example."
    )
