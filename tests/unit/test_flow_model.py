"""The typed flow model and the placeholder vocabulary shared with the email step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from printflow.flows import StepType, parse_flow, parse_flow_json
from printflow.flows.model import RetryPolicy
from printflow.flows.placeholders import (
    PLACEHOLDER_PATTERN,
    PLACEHOLDERS,
    has_unterminated_placeholder,
    placeholder_names,
    render_placeholders,
)
from printflow.flows.step_types.consume_rest_api import ConsumeRestApiOptions
from printflow.flows.step_types.generate_production_files import (
    DEFAULT_RENDER_TIMEOUT_SECONDS,
    GenerateProductionFilesOptions,
)
from printflow.flows.step_types.send_email import SendEmailOptions

SEED = Path(__file__).parent / "fixtures" / "seed_flow.json"


def test_seed_flow_is_accepted_exactly_as_written() -> None:
    flow = parse_flow_json(SEED.read_text())

    assert [s.id for s in flow.steps] == ["generate", "consume", "email", "error"]
    generate, consume, email, error = flow.steps
    assert generate.type is StepType.GENERATE_PRODUCTION_FILES
    assert generate.options == GenerateProductionFilesOptions(file_format="stl")
    assert consume.options == ConsumeRestApiOptions(uri="https://httpbin.org/anything")
    assert email.options == SendEmailOptions(
        recipients=("neil.benin@twikit.com",),
        subject="Success subject",
        message="Success message",
    )
    assert (generate.on_success, generate.on_error) == ("consume", "error")
    assert (email.on_success, email.on_error) == (None, "error")
    assert (error.success_status, error.on_success, error.on_error) == ("Failed", None, None)


def test_to_document_gives_the_seed_document_back() -> None:
    document = json.loads(SEED.read_text())

    assert parse_flow(document).to_document() == document


def test_extensions_round_trip() -> None:
    document = [
        {
            "stepDefinitionId": "consume",
            "type": "consume-rest-api",
            "successStatus": "Sent",
            "options": {
                "uri": "https://erp.example.com/orders",
                "headers": {"X-Api-Version": "2"},
                "signingSecret": "printflow/erp-signing",
            },
            "timeout": 30,
            "retry": {"maxAttempts": 5, "intervalSeconds": 1, "backoffRate": 1.5},
        }
    ]

    doc = parse_flow(document).to_document()[0]

    assert doc["options"] == document[0]["options"]
    assert doc["timeout"] == 30
    # Keys left out of an override are filled with the defaults.
    assert doc["retry"] == {
        "maxAttempts": 5,
        "intervalSeconds": 1,
        "backoffRate": 1.5,
        "maxDelaySeconds": RetryPolicy().max_delay_seconds,
    }


def test_render_steps_always_have_a_timeout_other_steps_only_when_set() -> None:
    flow = parse_flow_json(SEED.read_text())

    assert flow.step("generate").effective_timeout == DEFAULT_RENDER_TIMEOUT_SECONDS
    assert flow.step("consume").effective_timeout is None
    assert flow.step("generate").waits_for_callback
    assert not flow.step("email").waits_for_callback


def test_retry_policy_defaults_apply_when_the_step_has_none() -> None:
    step = parse_flow_json(SEED.read_text()).first

    assert step.retry is None
    # The seed's first step renders: its retries span its 3,600 s timeout (issue 15: ten
    # retries rode out only ~6 minutes of outage); the starter ends them at the timeout.
    assert step.retry_policy == RetryPolicy(125, 2, 2.0, 60)
    assert parse_flow_json(SEED.read_text()).step("error").retry_policy == RetryPolicy(
        3, 2, 2.0, 60
    )


def test_successors_list_on_success_before_on_error() -> None:
    flow = parse_flow_json(SEED.read_text())

    assert list(flow.step("generate").successors()) == ["consume", "error"]
    assert list(flow.step("error").successors()) == []


def test_unknown_step_lookup_raises_key_error() -> None:
    flow = parse_flow_json(SEED.read_text())

    with pytest.raises(KeyError):
        flow.step("nope")


# -- placeholders ---------------------------------------------------------------------------


def test_placeholder_vocabulary() -> None:
    assert "order.name" in PLACEHOLDERS
    assert "error.cause" in PLACEHOLDERS
    assert "config.operationsEmail" in PLACEHOLDERS
    assert "order.lineItems" not in PLACEHOLDERS


def test_placeholder_names_in_order_with_spaces_stripped() -> None:
    text = "Order {{order.name}} ({{ order.number }}) {{order.name}} {{oops}}"

    assert placeholder_names(text) == ["order.name", "order.number", "order.name", "oops"]
    assert PLACEHOLDER_PATTERN.search("no placeholders") is None


def test_unterminated_placeholders_are_detected() -> None:
    assert has_unterminated_placeholder("Order {{order.name")
    assert has_unterminated_placeholder("Order order.name}}")
    assert not has_unterminated_placeholder("Order {{order.name}} is {ready}")


def test_render_placeholders() -> None:
    text = "Order {{order.name}} for {{ order.email }}: {{error.cause}}"
    values = {"order.name": "#1001", "order.email": "a@example.com", "error.cause": None}

    assert render_placeholders(text, values) == "Order #1001 for a@example.com: "


def test_single_line_rendering_neutralises_header_injection() -> None:
    values = {"order.name": "#1\r\nBcc: victim@example.com"}

    rendered = render_placeholders("Order {{order.name}}", values, single_line=True)

    assert "\r" not in rendered
    assert "\n" not in rendered
    assert rendered == "Order #1  Bcc: victim@example.com"
    # Multi-line bodies keep the newlines of their values.
    assert "\n" in render_placeholders("{{order.name}}", values)
