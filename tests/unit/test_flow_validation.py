"""Every validation rule, each checked by the message it gives (step and field named)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from printflow.errors import ValidationError, ValidationErrors
from printflow.flows import parse_flow, parse_flow_json

SEED: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "seed_flow.json").read_text()
)
DEFAULT_FLOW = Path(__file__).parents[2] / "flows" / "default.json"

Flow = list[dict[str, Any]]


def seed() -> Flow:
    return copy.deepcopy(SEED)


def step(flow: Flow, step_id: str) -> dict[str, Any]:
    return next(s for s in flow if s["stepDefinitionId"] == step_id)


def error_of(document: Any) -> str:
    with pytest.raises(ValidationError) as excinfo:
        parse_flow(document)
    return str(excinfo.value)


def mutated(change: Callable[[Flow], None]) -> Flow:
    flow = seed()
    change(flow)
    return flow


def set_option(step_id: str, key: str, value: Any) -> Callable[[Flow], None]:
    def change(flow: Flow) -> None:
        step(flow, step_id)["options"][key] = value

    return change


def set_field(step_id: str, key: str, value: Any) -> Callable[[Flow], None]:
    def change(flow: Flow) -> None:
        step(flow, step_id)[key] = value

    return change


def test_the_seed_and_the_default_flow_are_valid() -> None:
    assert len(parse_flow(seed()).steps) == 4
    assert parse_flow_json(DEFAULT_FLOW.read_text()).first.id == "generate"


# -- the document ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"steps": []}, "flow: must be a JSON list of step definitions"),
        ("generate", "flow: must be a JSON list of step definitions"),
        ([], "flow: must contain at least one step"),
        ([SEED[0], "consume"], "step #2: must be an object"),
        ([SEED[0], None], "step #2: must be an object"),
    ],
)
def test_document_shape(document: Any, message: str) -> None:
    assert error_of(document) == message


def test_too_many_steps() -> None:
    chain = [
        {
            "stepDefinitionId": f"s{i}",
            "type": "consume-rest-api",
            "successStatus": "x",
            "options": {"uri": "https://example.com"},
            "onSuccess": f"s{i + 1}" if i < 100 else None,
        }
        for i in range(101)
    ]
    assert error_of(chain) == "flow: at most 100 steps"


def test_invalid_json_text() -> None:
    with pytest.raises(ValidationError, match=r"^flow: not valid JSON \(.* at line 1"):
        parse_flow_json("[{")


def test_duplicate_json_keys_are_refused() -> None:
    text = '[{"stepDefinitionId": "a", "stepDefinitionId": "b"}]'
    with pytest.raises(ValidationError, match=r"^flow: duplicate key 'stepDefinitionId'"):
        parse_flow_json(text)


def test_non_standard_json_constants_are_refused() -> None:
    text = json.dumps(SEED).replace('"In progress"', "NaN", 1)
    with pytest.raises(ValidationError, match=r"^flow: NaN is not valid JSON"):
        parse_flow_json(text)


# -- step fields ----------------------------------------------------------------------------


def test_step_id_required() -> None:
    flow = mutated(lambda f: f[1].pop("stepDefinitionId"))
    assert error_of(flow) == "step #2.stepDefinitionId: required"


@pytest.mark.parametrize("bad_id", ["gen.erate", "gen erate", "", "x" * 41, "génère", 7, "a$"])
def test_step_id_charset_and_length(bad_id: Any) -> None:
    flow = mutated(set_field("consume", "stepDefinitionId", bad_id))
    assert error_of(flow).startswith(
        f"step #2.stepDefinitionId: {bad_id!r} must be 1-40 letters, digits, '-' or '_'"
    )


def test_step_id_of_40_characters_is_fine() -> None:
    long_id = "a" * 20 + "-" + "B_9" * 6 + "x"
    assert len(long_id) == 40
    flow = seed()
    flow[0]["stepDefinitionId"] = long_id
    assert parse_flow(flow).first.id == long_id


def test_unknown_fields_are_refused() -> None:
    flow = mutated(set_field("consume", "onSucess", "email"))
    assert error_of(flow).startswith("step 'consume'.onSucess: unknown field (allowed: ")


def test_duplicate_ids() -> None:
    flow = mutated(set_field("email", "stepDefinitionId", "consume"))
    assert error_of(flow) == "step 'consume'.stepDefinitionId: duplicate id (step #2 has it too)"


@pytest.mark.parametrize("field", ["onSuccess", "onError"])
def test_references_to_unknown_steps(field: str) -> None:
    flow = mutated(set_field("consume", field, "shipping"))
    assert error_of(flow) == f"step 'consume'.{field}: unknown step 'shipping'"


@pytest.mark.parametrize("value", ["", 3, ["email"]])
def test_malformed_references(value: Any) -> None:
    flow = mutated(set_field("consume", "onSuccess", value))
    assert error_of(flow) == "step 'consume'.onSuccess: must be a stepDefinitionId or null"


def test_null_references_mean_none() -> None:
    flow = mutated(set_field("email", "onSuccess", None))
    assert parse_flow(flow).step("email").on_success is None


def test_unreachable_steps() -> None:
    orphan = copy.deepcopy(SEED[3]) | {"stepDefinitionId": "orphan"}
    flow = [*seed(), orphan]
    assert error_of(flow) == (
        "step 'orphan': unreachable from the first step 'generate' "
        "(no onSuccess/onError leads to it)"
    )


def test_a_step_reached_only_through_on_error_is_reachable() -> None:
    flow = parse_flow(seed())
    assert flow.step("error").id == "error"


def test_cycle_through_on_success() -> None:
    flow = mutated(set_field("email", "onSuccess", "generate"))
    assert error_of(flow) == (
        "step 'email'.onSuccess: creates a cycle (generate -> consume -> email -> generate)"
    )


def test_cycle_through_on_error() -> None:
    flow = mutated(set_field("error", "onError", "consume"))
    assert error_of(flow) == (
        "step 'error'.onError: creates a cycle (consume -> email -> error -> consume)"
    )


def test_step_pointing_at_itself() -> None:
    flow = mutated(set_field("consume", "onError", "consume"))
    assert error_of(flow) == "step 'consume'.onError: creates a cycle (consume -> consume)"


@pytest.mark.parametrize("step_type", ["send-sms", None, 3, "Send-Email"])
def test_unknown_types(step_type: Any) -> None:
    flow = mutated(set_field("consume", "type", step_type))
    assert error_of(flow) == (
        f"step 'consume'.type: unknown type {step_type!r} "
        "(expected consume-rest-api, generate-production-files, send-email, "
        "update-storefront-order)"
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "required (a non-empty string)"),
        ("", "required (a non-empty string)"),
        ("   ", "required (a non-empty string)"),
        (42, "required (a non-empty string)"),
        ("x" * 65, "must be at most 64 characters"),
        ("Done\nBcc: x", "must not contain control characters"),
        ("Done\x00", "must not contain control characters"),
    ],
)
def test_success_status(value: Any, problem: str) -> None:
    flow = mutated(set_field("email", "successStatus", value))
    assert error_of(flow) == f"step 'email'.successStatus: {problem}"


@pytest.mark.parametrize("timeout", [-1, 0, 1.5, 30.0, "60", True, 604_801, 10**12])
def test_bad_timeouts(timeout: Any) -> None:
    flow = mutated(set_field("generate", "timeout", timeout))
    assert error_of(flow) == (
        "step 'generate'.timeout: must be a whole number of seconds from 1 to 604800, "
        f"got {timeout!r}"
    )


@pytest.mark.parametrize("timeout", [1, 900, 604_800, None])
def test_good_timeouts(timeout: int | None) -> None:
    flow = mutated(set_field("generate", "timeout", timeout))
    assert parse_flow(flow).first.timeout == timeout


# -- options --------------------------------------------------------------------------------


def test_options_required() -> None:
    flow = mutated(lambda f: f[1].pop("options"))
    assert error_of(flow) == "step 'consume'.options: required (an object)"


def test_options_must_be_an_object() -> None:
    flow = mutated(set_field("consume", "options", ["https://example.com"]))
    assert error_of(flow) == "step 'consume'.options: must be an object"


@pytest.mark.parametrize(
    ("step_id", "key"),
    [("generate", "uri"), ("consume", "url"), ("email", "cc")],
)
def test_unknown_option_keys(step_id: str, key: str) -> None:
    flow = mutated(set_option(step_id, key, "x"))
    assert error_of(flow).startswith(f"step '{step_id}'.options.{key}: unknown option (allowed: ")


def test_generate_accepts_empty_options() -> None:
    flow = mutated(set_field("generate", "options", {}))
    assert parse_flow(flow).first.options.to_document() == {}


@pytest.mark.parametrize("file_format", ["", "pdf x", ".pdf", 3, "p" * 33])
def test_bad_file_format(file_format: Any) -> None:
    flow = mutated(set_option("generate", "fileFormat", file_format))
    assert error_of(flow).startswith("step 'generate'.options.fileFormat: must be a short format")


def test_provider_options_are_opaque_but_bounded() -> None:
    provider = {"templateId": "t-1", "variables": [{"name": "size", "value": 3}]}
    flow = mutated(set_option("generate", "provider", provider))
    assert parse_flow(flow).first.options.to_document()["provider"] == provider

    assert error_of(mutated(set_option("generate", "provider", "t-1"))) == (
        "step 'generate'.options.provider: must be an object"
    )
    big = {"blob": "x" * 4096}
    assert error_of(mutated(set_option("generate", "provider", big))) == (
        "step 'generate'.options.provider: must be at most 4096 bytes"
    )


def test_provider_options_must_be_json_serialisable() -> None:
    flow = mutated(set_option("generate", "provider", {"when": {1, 2}}))
    assert error_of(flow) == "step 'generate'.options.provider: must be JSON-serialisable"


def test_keys_that_step_functions_would_evaluate_are_refused() -> None:
    provider = {"variables": [{"value.$": "$$.Task.Token"}]}
    flow = mutated(set_option("generate", "provider", provider))
    assert error_of(flow) == (
        "step 'generate'.options.provider.variables[0].value.$: "
        "keys ending in '.$' are reserved by Step Functions"
    )


def test_substitution_markers_are_refused() -> None:
    flow = mutated(set_option("email", "message", "Total: ${OrderTable}"))
    assert error_of(flow) == (
        "step 'email'.options.message: '${' is reserved for deployment substitutions"
    )


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        (None, "required (an https URL)"),
        (42, "must be an https URL"),
        ("", "must be an https URL"),
        ("http://erp.example.com/orders", "must be an https URL"),
        ("ftp://erp.example.com/orders", "must be an https URL"),
        ("erp.example.com/orders", "must be an https URL"),
        ("https://", "must be an https URL with a valid host"),
        ("https:///orders", "must be an https URL with a valid host"),
        ("https://exa_mple.com/", "must be an https URL with a valid host"),
        ("https://user:pw@erp.example.com/", "must not contain user info"),
        ("https://erp.example.com@evil.example/", "must not contain user info"),
        ("https://erp.example.com:99999/", "has an invalid port"),
        ("https://erp.example.com/a b", "must not contain whitespace or control characters"),
        ("https://erp.example.com/\r\nX: y", "must not contain whitespace or control"),
        ("https://erp.example.com/" + "a" * 2048, "must be at most 2048 characters"),
    ],
)
def test_bad_uris(uri: Any, problem: str) -> None:
    flow = mutated(set_option("consume", "uri", uri))
    assert error_of(flow).startswith(f"step 'consume'.options.uri: {problem}")


@pytest.mark.parametrize(
    "uri",
    [
        "https://httpbin.org/anything",
        "HTTPS://erp.example.com:8443/orders?src=printflow#frag",
        "https://[2001:db8::1]/hook",
        "https://203.0.113.7/hook",
    ],
)
def test_good_uris(uri: str) -> None:
    assert parse_flow(mutated(set_option("consume", "uri", uri))).steps[1].id == "consume"


@pytest.mark.parametrize(
    ("headers", "where", "problem"),
    [
        (["X-A: b"], "headers", "must be an object of header name to string value"),
        ({"X Api": "1"}, "headers.X Api", "header name must be 1-128 token characters"),
        ({"X:Api": "1"}, "headers.X:Api", "header name must be 1-128 token characters"),
        ({"X-Token.$": "$$.Task.Token"}, "headers.X-Token.$", "header names ending in '.$'"),
        ({"Host": "evil.example"}, "headers.Host", "this header is set by PrintFlow"),
        ({"content-type": "text/plain"}, "headers.content-type", "this header is set by"),
        ({"Transfer-Encoding": "chunked"}, "headers.Transfer-Encoding", "this header is set"),
        ({"X-A": "1", "x-a": "2"}, "headers.x-a", "duplicate header"),
        ({"X-A": 1}, "headers.X-A", "header value must be a string"),
        ({"X-A": "1\r\nX-Injected: 1"}, "headers.X-A", "header value must not contain CR, LF"),
        ({"X-A": "1\n"}, "headers.X-A", "header value must not contain CR, LF"),
        ({"X-A": "x" * 4097}, "headers.X-A", "header value must be at most 4096 characters"),
        ({f"X-{i}": "1" for i in range(51)}, "headers", "at most 50 headers"),
    ],
)
def test_bad_headers(headers: Any, where: str, problem: str) -> None:
    flow = mutated(set_option("consume", "headers", headers))
    assert error_of(flow).startswith(f"step 'consume'.options.{where}: {problem}")


def test_good_headers_keep_their_order() -> None:
    headers = {"X-Api-Version": "2", "Authorization-Scope": "orders\twrite"}
    flow = parse_flow(mutated(set_option("consume", "headers", headers)))
    assert flow.step("consume").options.to_document()["headers"] == headers


@pytest.mark.parametrize("secret", ["", "my secret", "a" * 513, 5, "name;rm"])
def test_bad_signing_secret_names(secret: Any) -> None:
    flow = mutated(set_option("consume", "signingSecret", secret))
    assert error_of(flow).startswith(
        "step 'consume'.options.signingSecret: must be the name of a Secrets Manager secret"
    )


def test_good_signing_secret_name() -> None:
    name = "printflow/erp+signing=v2.key@prod_1-a"
    flow = parse_flow(mutated(set_option("consume", "signingSecret", name)))
    assert flow.step("consume").options.to_document()["signingSecret"] == name


@pytest.mark.parametrize(
    ("recipients", "where", "problem"),
    [
        (None, "recipients", "required (a list of email addresses)"),
        ([], "recipients", "must be a non-empty list of email addresses"),
        ("ops@example.com", "recipients", "must be a non-empty list of email addresses"),
        (["ops@example.com"] * 51, "recipients", "at most 50 recipients"),
        ([7], "recipients[0]", "must be a string"),
        (["ops@example.com", "not-an-address"], "recipients[1]", "invalid email address"),
        (["ops@localhost"], "recipients[0]", "invalid email address"),
        (["ops@@example.com"], "recipients[0]", "invalid email address"),
        (["Ops <ops@example.com>"], "recipients[0]", "invalid email address"),
        (["ops.@example.com"], "recipients[0]", "invalid email address"),
        (["ops@-example.com"], "recipients[0]", "invalid email address"),
        (["x" * 65 + "@example.com"], "recipients[0]", "invalid email address"),
        (["ops@example.com\r\nBcc: x@example.com"], "recipients[0]", "must not contain CR, LF"),
        (["ops@example.com\n"], "recipients[0]", "must not contain CR, LF"),
        (["{{order.name}}"], "recipients[0]", "a placeholder recipient must be exactly"),
        (["cc {{order.email}}"], "recipients[0]", "a placeholder recipient must be exactly"),
        (["{{order.email}}{{order.email}}"], "recipients[0]", "a placeholder recipient must"),
    ],
)
def test_bad_recipients(recipients: Any, where: str, problem: str) -> None:
    flow = mutated(set_option("email", "recipients", recipients))
    assert error_of(flow).startswith(f"step 'email'.options.{where}: {problem}")


def test_good_recipients() -> None:
    recipients = [
        "neil.benin@twikit.com",
        "ops+printflow@print-shop.example.co.uk",
        "{{order.email}}",
        "{{ config.operationsEmail }}",
        "o'brien@xn--bcher-kva.example",
    ] + [f"r{i}@example.com" for i in range(45)]
    assert len(recipients) == 50
    flow = parse_flow(mutated(set_option("email", "recipients", recipients)))
    assert flow.step("email").options.to_document()["recipients"] == recipients


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("subject", None, "required (a non-empty string)"),
        ("subject", " ", "required (a non-empty string)"),
        ("subject", "Hi\r\nBcc: x@example.com", "must not contain CR, LF"),
        ("subject", "Hi\tthere", "must not contain CR, LF"),
        ("subject", "x" * 999, "must be at most 998 characters"),
        ("subject", "Order {{order.nmae}}", "unknown placeholder '{{order.nmae}}' (known: "),
        ("subject", "Order {{order.name}", "unbalanced '{{' or '}}'"),
        ("message", None, "required (a non-empty string)"),
        ("message", 3, "required (a non-empty string)"),
        ("message", "Hi\x07", "must not contain control characters (except newlines)"),
        ("message", "x" * 100_001, "must be at most 100000 characters"),
        ("message", "Cause: {{error.reason}}", "unknown placeholder '{{error.reason}}'"),
        ("message", "Cause: {{ }}", "unknown placeholder '{{}}'"),
    ],
)
def test_bad_subject_and_message(key: str, value: Any, problem: str) -> None:
    flow = mutated(set_option("email", key, value))
    assert error_of(flow).startswith(f"step 'email'.options.{key}: {problem}")


def test_templates_with_known_placeholders_and_newlines_in_the_message() -> None:
    message = "Order {{order.name}} ({{order.number}})\r\n\tfailed: {{error.cause}}"
    change = set_option("email", "message", message)
    flow = parse_flow(mutated(change))
    assert flow.step("email").options.to_document()["message"] == message


# -- retry ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry", "where", "problem"),
    [
        ([3], "retry", "must be an object"),
        ({"attempts": 3}, "retry.attempts", "unknown retry setting (allowed: "),
        ({"maxAttempts": 11}, "retry.maxAttempts", "must be an integer from 0 to 10"),
        ({"maxAttempts": -1}, "retry.maxAttempts", "must be an integer from 0 to 10"),
        ({"maxAttempts": True}, "retry.maxAttempts", "must be an integer from 0 to 10"),
        ({"intervalSeconds": 0}, "retry.intervalSeconds", "must be an integer from 1 to 300"),
        ({"intervalSeconds": 1.5}, "retry.intervalSeconds", "must be an integer from 1 to 300"),
        ({"maxDelaySeconds": 3601}, "retry.maxDelaySeconds", "must be an integer from 1 to 3600"),
        ({"backoffRate": 0.5}, "retry.backoffRate", "must be a number from 1 to 10"),
        ({"backoffRate": 11}, "retry.backoffRate", "must be a number from 1 to 10"),
        ({"backoffRate": "2"}, "retry.backoffRate", "must be a number from 1 to 10"),
    ],
)
def test_bad_retry_settings(retry: Any, where: str, problem: str) -> None:
    flow = mutated(set_field("consume", "retry", retry))
    assert error_of(flow).startswith(f"step 'consume'.{where}: {problem}")


def test_retry_override_keeps_defaults_for_missing_keys() -> None:
    flow = parse_flow(mutated(set_field("consume", "retry", {"maxAttempts": 0})))
    policy = flow.step("consume").retry_policy
    assert (policy.max_attempts, policy.interval_seconds, policy.backoff_rate) == (0, 2, 2.0)


# -- every error at once --------------------------------------------------------------------


def errors_of(flow: Any) -> list[str]:
    with pytest.raises(ValidationErrors) as caught:
        parse_flow(flow)
    assert str(caught.value) == caught.value.messages[0]
    return caught.value.messages


def test_every_field_error_of_every_step_is_reported() -> None:
    flow = seed()
    step(flow, "generate")["colour"] = "blue"
    step(flow, "generate")["options"]["fileFormat"] = "not a format!"
    step(flow, "consume")["options"] = {"uri": "https://x.example", "headers": {"Host": "h"}}
    step(flow, "consume")["retry"] = {"maxAttempts": 99}
    step(flow, "email")["type"] = "send-fax"
    step(flow, "email")["onError"] = ""

    messages = errors_of(flow)

    assert [m.split(":")[0] for m in messages] == [
        "step 'generate'.colour",
        "step 'generate'.options.fileFormat",
        "step 'consume'.options.headers.Host",
        "step 'consume'.retry.maxAttempts",
        "step 'email'.type",
        "step 'email'.onError",
    ]


def test_every_unknown_reference_is_reported() -> None:
    flow = seed()
    step(flow, "generate")["onError"] = "oops"
    step(flow, "email")["onError"] = "gone"

    assert errors_of(flow) == [
        "step 'generate'.onError: unknown step 'oops'",
        "step 'email'.onError: unknown step 'gone'",
    ]


def test_unreachable_steps_and_cycles_are_reported_together() -> None:
    flow = seed()
    flow.append({**copy.deepcopy(step(flow, "error")), "stepDefinitionId": "orphan"})
    step(flow, "email")["onSuccess"] = "consume"

    messages = errors_of(flow)

    assert messages[0].startswith("step 'orphan': unreachable from the first step")
    assert any("creates a cycle (consume -> email -> consume)" in m for m in messages[1:])


def test_duplicate_ids_are_reported_with_the_other_steps_errors() -> None:
    flow = seed()
    flow.append(copy.deepcopy(step(flow, "email")))
    step(flow, "error")["timeout"] = -1

    messages = errors_of(flow)

    assert [m.split(":")[0] for m in messages] == [
        "step 'error'.timeout",
        "step 'email'.stepDefinitionId",
    ]
