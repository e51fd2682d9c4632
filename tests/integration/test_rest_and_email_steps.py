"""The consume-rest-api and send-email handlers in process, on moto, with a loopback sink.

The order table is created here directly (pk/sk strings, as in template.yaml); switch to the
template-built resources once the step functions are declared there.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from printflow.adapters import aws
from printflow.adapters.dynamo_types import serialize_item
from printflow.adapters.order_table import NewOrderRecord, OrderTable, order_key_attributes
from printflow.domain.order import LineItem, Order, OrderKey, Property, RawBodyRef
from printflow.errors import StepFailed, StepRetryable
from printflow.platforms.generic import verify_generic
from printflow.steps.context import parse_step_event
from printflow_tools.localstack.resources import create_table_from_template
from printflow_tools.localstack.rest_sink import RestSink

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
TABLE = "printflow-test-orders"
SENDER = "noreply@printflow.example"
OPERATIONS = "ops@printflow.example"
SECRET_NAME = "printflow/flows/erp-signing"
SIGNING_KEY = "erp-signing-key-0123456789abcdef"
KEY = OrderKey("demo-shopify", "5678901234567")
EXECUTION = (
    f"arn:aws:states:{REGION}:{DEFAULT_ACCOUNT_ID}:execution:OrderFlow:"
    "demo-shopify-5678901234567-3f2a9c1d0b7e"
)

Handler = Callable[[dict[str, Any], Any], Any]


class Context:
    function_name = "StepFunction"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:Step"
    aws_request_id = "test-request"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


# -- the loopback sink -------------------------------------------------------------------------


@pytest.fixture
def sink() -> Iterator[RestSink]:
    with RestSink() as receiver:
        yield receiver


def sink_url(sink: RestSink, path: str = "/hooks/printflow") -> str:
    return f"{sink.base_url}{path}"


# -- AWS on moto -------------------------------------------------------------------------------


def order_record() -> NewOrderRecord:
    order = Order(
        key=KEY,
        platform="shopify",
        number="1001",
        name="#1001",
        email="jane@example.org",
        currency="EUR",
        created_at="2024-05-01T10:00:00Z",
        line_items=(LineItem("11", "Mug", 2, sku="MUG-1", properties=(Property("text", "Hi"),)),),
    )
    return NewOrderRecord(
        order=order,
        raw_body=RawBodyRef("artifacts", f"webhooks/demo-shopify/{KEY.order_id}/x.body"),
        flow="default",
        received_at="2024-05-01T10:00:01Z",
        sweep_due_at=int(time.time()) + 180,
        due_shards=4,
    )


@pytest.fixture
def moto_aws() -> Iterator[OrderTable]:
    with mock_aws():
        aws.client.cache_clear()
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_table_from_template(dynamodb, TABLE)
        table = OrderTable(dynamodb, TABLE)
        table.record_new_order(order_record())
        boto3.client("sesv2", region_name=REGION).create_email_identity(EmailIdentity=SENDER)
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=SECRET_NAME, SecretString=json.dumps({"current": SIGNING_KEY})
        )
        yield table
    aws.client.cache_clear()


def sent_messages() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def load_handler(function: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> Handler:
    """Import ``functions/<function>/app.py`` as a fresh cold start with ``env``."""
    base = {"ORDER_TABLE": TABLE, "SECRETS_PREFIX": "printflow"}
    for name, value in {**base, **env}.items():
        monkeypatch.setenv(name, value)
    module_name = f"printflow_test_{function}_{id(object())}"
    spec = importlib.util.spec_from_file_location(
        module_name, ROOT / "functions" / function / "app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    handler: Handler = module.lambda_handler
    return handler


def step_event(step_type: str, options: dict[str, Any], **input_extra: Any) -> dict[str, Any]:
    return {
        "input": {
            "order": {
                **order_key_attributes(KEY),
                "storefrontId": KEY.storefront_id,
                "orderId": KEY.order_id,
            },
            **input_extra,
        },
        "step": {
            "id": "consume" if step_type == "consume-rest-api" else "email",
            "type": step_type,
            "successStatus": "In progress",
            "options": options,
        },
        "execution": EXECUTION,
    }


def sample_event(name: str) -> dict[str, Any]:
    """A sample event from ``events/`` (the ones ``sam local invoke -e`` uses)."""
    event: dict[str, Any] = json.loads((ROOT / "events" / name).read_text())
    return event


def record_flow_error(table: OrderTable, step: str, error: str, cause: str) -> None:
    """What the compiled flow's ``<step>.error`` state writes before the onError step."""
    table._client.update_item(
        TableName=TABLE,
        Key=serialize_item(order_key_attributes(KEY)),
        UpdateExpression="SET #error = :error",
        ExpressionAttributeNames={"#error": "error"},
        ExpressionAttributeValues=serialize_item(
            {":error": {"step": step, "error": error, "cause": cause, "at": "2024-05-01T10:05Z"}}
        ),
    )


LAMBDA_CAUSE = json.dumps(
    {
        "errorMessage": "render task 42 failed: font missing",
        "errorType": "StepFailed",
        "requestId": "r-1",
        "stackTrace": ['  File "/var/task/app.py", line 9, in lambda_handler\n'],
    }
)


# -- consume-rest-api ----------------------------------------------------------------------------


@pytest.fixture
def rest_handler(moto_aws: OrderTable, sink: RestSink, monkeypatch: pytest.MonkeyPatch) -> Handler:
    return load_handler("consume_rest_api", monkeypatch, EGRESS_ALLOWLIST=f"127.0.0.1:{sink.port}")


def test_the_order_document_reaches_the_sink_signed(rest_handler: Handler, sink: RestSink) -> None:
    event = sample_event("step-consume-rest-api.json")
    event["step"]["options"] = {
        "uri": sink_url(sink),
        "headers": {"X-Tenant": "acme"},
        "signingSecret": SECRET_NAME,
    }

    result = rest_handler(event, Context())

    (received,) = sink.received()
    assert result == {"status": 200, "delivery": received.headers["x-printflow-delivery"]}
    assert received.path == "/hooks/printflow"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["x-tenant"] == "acme"
    assert received.headers["host"] == f"127.0.0.1:{sink.port}"
    # The receiver checks the signature independently...
    timestamp = received.headers["x-printflow-timestamp"]
    expected = hmac.new(
        SIGNING_KEY.encode(), f"{timestamp}.".encode() + received.body, hashlib.sha256
    ).hexdigest()
    assert received.headers["x-printflow-signature"] == f"v1={expected}"
    # ...and PrintFlow's own generic-webhook verifier accepts it too.
    verify_generic(
        received.headers, received.body, [SIGNING_KEY], now=time.time(), replay_window_s=300
    )
    document = json.loads(received.body)
    assert document["schema"] == "printflow.order/v1"
    assert document["order"]["orderId"] == KEY.order_id
    assert document["order"]["lineItems"][0]["sku"] == "MUG-1"
    assert document["status"] == "Received"
    assert document["statusHistory"][0]["status"] == "Received"
    assert document["artifacts"] == []
    assert document["flow"] == {"step": "consume", "execution": EXECUTION}
    assert "error" not in document


def test_a_retry_carries_the_same_delivery_id(rest_handler: Handler, sink: RestSink) -> None:
    event = step_event("consume-rest-api", {"uri": sink_url(sink)})

    rest_handler(event, Context())
    rest_handler(event, Context())

    first, second = sink.received()
    assert first.headers["x-printflow-delivery"] == second.headers["x-printflow-delivery"]


def test_an_order_retry_keeps_the_delivery_id(rest_handler: Handler, sink: RestSink) -> None:
    # Given the order's first execution delivered the document
    rest_handler(step_event("consume-rest-api", {"uri": sink_url(sink)}), Context())
    # When `printflow orders retry` runs the step again in a new execution
    retried = step_event(
        "consume-rest-api",
        {"uri": sink_url(sink)},
        retry={"fromStep": "consume", "attempt": 1, "firstExecution": EXECUTION},
    )
    retried["execution"] = EXECUTION + "-r1"
    rest_handler(retried, Context())

    # Then the receiver sees the same delivery id and can drop the repeat
    first, second = sink.received()
    assert first.headers["x-printflow-delivery"] == second.headers["x-printflow-delivery"]


def test_an_error_path_document_names_the_failed_step(
    rest_handler: Handler, sink: RestSink, moto_aws: OrderTable
) -> None:
    record_flow_error(moto_aws, "generate", "StepFailed", LAMBDA_CAUSE)
    event = step_event(
        "consume-rest-api",
        {"uri": sink_url(sink)},
        error={"Error": "StepFailed", "Cause": LAMBDA_CAUSE},
    )

    rest_handler(event, Context())

    document = sink.received()[0].json()
    assert document["error"] == {
        "step": "generate",
        "error": "StepFailed",
        "cause": "render task 42 failed: font missing",
    }


@pytest.mark.parametrize(("status", "error"), [(503, StepRetryable), (404, StepFailed)])
def test_sink_failures_surface_as_step_errors(
    rest_handler: Handler, sink: RestSink, status: int, error: type[Exception]
) -> None:
    sink.default_status = status

    with pytest.raises(error) as caught:
        rest_handler(step_event("consume-rest-api", {"uri": sink_url(sink)}), Context())

    # Lambda reports the class name as errorType: that is what Retry/Catch match.
    assert type(caught.value).__name__ == error.__name__
    assert f"answered {status}" in str(caught.value)


def test_a_loopback_target_outside_the_allowlist_is_blocked(
    rest_handler: Handler, sink: RestSink
) -> None:
    # Same server, but named "localhost" (and over https, so only the address rule can
    # refuse it): only 127.0.0.1:<port> is allowlisted.
    uri = f"https://localhost:{sink.port}/hooks/printflow"
    event = step_event("consume-rest-api", {"uri": uri})

    with pytest.raises(StepFailed, match="loopback address"):
        rest_handler(event, Context())
    assert sink.received() == []


def test_without_the_allowlist_the_local_sink_is_unreachable(
    moto_aws: OrderTable, sink: RestSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EGRESS_ALLOWLIST", raising=False)
    handler = load_handler("consume_rest_api", monkeypatch)

    with pytest.raises(StepFailed, match="use https"):
        handler(step_event("consume-rest-api", {"uri": sink_url(sink)}), Context())
    assert sink.received() == []


def test_a_missing_order_fails_the_rest_step(
    rest_handler: Handler, sink: RestSink, moto_aws: OrderTable
) -> None:
    moto_aws._client.delete_item(TableName=TABLE, Key=serialize_item(order_key_attributes(KEY)))

    with pytest.raises(StepFailed, match="not found"):
        rest_handler(step_event("consume-rest-api", {"uri": sink_url(sink)}), Context())
    assert sink.received() == []


# -- send-email --------------------------------------------------------------------------------


@pytest.fixture
def email_handler(moto_aws: OrderTable, monkeypatch: pytest.MonkeyPatch) -> Handler:
    return load_handler("send_email", monkeypatch, SENDER_EMAIL=SENDER, OPERATIONS_EMAIL=OPERATIONS)


EMAIL_OPTIONS = {
    "recipients": ["{{order.email}}", "{{config.operationsEmail}}", "OPS@printflow.example"],
    "subject": "Order {{order.number}} is {{order.status}}",
    "message": "Hello {{order.name}},\nyour order {{order.orderId}} is on its way.",
}


def test_the_email_is_sent_through_ses(email_handler: Handler) -> None:
    result = email_handler(step_event("send-email", EMAIL_OPTIONS), Context())

    (message,) = sent_messages()
    assert result == {"messageId": message.id, "recipients": 2, "outcome": "sent"}
    assert message.source == SENDER
    assert message.destinations == {"ToAddresses": ["jane@example.org", OPERATIONS]}
    assert message.subject == "Order 1001 is Received"
    # moto keeps the HTML part when there is one: the text, escaped, with its line break.
    assert f"Hello #1001,\nyour order {KEY.order_id} is on its way." in message.body


def test_a_retried_email_step_sends_one_email(email_handler: Handler) -> None:
    event = step_event("send-email", EMAIL_OPTIONS)

    first = email_handler(event, Context())
    second = email_handler(event, Context())  # the step's retry (same execution and step)

    (message,) = sent_messages()
    assert first["outcome"] == "sent"
    assert second == {"messageId": message.id, "recipients": 2, "outcome": "already sent"}


def test_an_order_retry_sends_the_email_once(email_handler: Handler) -> None:
    email_handler(step_event("send-email", EMAIL_OPTIONS), Context())
    retried = step_event(
        "send-email",
        EMAIL_OPTIONS,
        retry={"fromStep": "email", "attempt": 1, "firstExecution": EXECUTION},
    )
    retried["execution"] = EXECUTION + "-r1"

    assert email_handler(retried, Context())["outcome"] == "already sent"
    assert len(sent_messages()) == 1


def test_a_crash_between_claim_and_record_is_reported_not_resent(
    email_handler: Handler, moto_aws: OrderTable, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an attempt that claimed the email and died before recording the outcome
    event = step_event("send-email", EMAIL_OPTIONS)
    delivery = parse_step_event(event, expected_type="send-email").delivery_id
    assert moto_aws.claim_email(KEY, "email", delivery, "2026-01-01T00:00:00Z").claimed

    # When the step is retried
    result = email_handler(event, Context())

    # Then nothing is sent again and the outcome says so
    assert result["outcome"] == "may have been sent"
    assert sent_messages() == []
    (record,) = moto_aws.email_records(KEY)
    assert record["state"] == "sending"


def test_an_email_ses_refused_is_sent_by_the_retry(
    email_handler: Handler, moto_aws: OrderTable
) -> None:
    event = step_event("send-email", EMAIL_OPTIONS)
    delivery = parse_step_event(event, expected_type="send-email").delivery_id
    assert moto_aws.claim_email(KEY, "email", delivery, "2026-01-01T00:00:00Z").claimed
    moto_aws.finish_email(KEY, "email", delivery, "unsent", "2026-01-01T00:00:01Z")

    assert email_handler(event, Context())["outcome"] == "sent"
    assert len(sent_messages()) == 1
    (record,) = moto_aws.email_records(KEY)
    assert record["state"] == "sent"


def test_an_error_email_reports_the_cause_without_the_stack_trace(
    email_handler: Handler, moto_aws: OrderTable
) -> None:
    record_flow_error(moto_aws, "generate", "StepFailed", LAMBDA_CAUSE)

    email_handler(sample_event("step-send-email-error.json"), Context())

    (message,) = sent_messages()
    assert message.destinations == {"ToAddresses": [OPERATIONS]}
    assert message.subject == "PrintFlow: order #1001 failed"
    assert f"Order {KEY.order_id} of storefront demo-shopify failed." in message.body
    assert "Error: StepFailed\nCause: render task 42 failed: font missing" in message.body
    assert "/var/task" not in message.body


def test_an_unverified_sender_fails_the_step(
    moto_aws: OrderTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_handler(
        "send_email",
        monkeypatch,
        SENDER_EMAIL="nobody@unverified.example",
        OPERATIONS_EMAIL=OPERATIONS,
    )

    with pytest.raises(StepFailed, match=r"ses refused the email \(MessageRejected\)"):
        handler(step_event("send-email", EMAIL_OPTIONS), Context())
    assert sent_messages() == []


def test_a_recipient_that_renders_empty_fails_before_sending(
    moto_aws: OrderTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPERATIONS_EMAIL", raising=False)
    handler = load_handler("send_email", monkeypatch, SENDER_EMAIL=SENDER)

    with pytest.raises(StepFailed, match=r"\{\{config.operationsEmail\}\}\) rendered to an empty"):
        handler(step_event("send-email", EMAIL_OPTIONS), Context())
    assert sent_messages() == []


def test_the_email_function_needs_a_sender(monkeypatch: pytest.MonkeyPatch) -> None:
    from printflow.errors import ConfigurationError

    monkeypatch.delenv("SENDER_EMAIL", raising=False)
    with pytest.raises(ConfigurationError, match="SENDER_EMAIL"):
        load_handler("send_email", monkeypatch)
