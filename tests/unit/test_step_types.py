"""Step types come from one registry table: a new type is one module and one entry.

The fake ``log-only`` type below is the whole of such a module (options, parser, function,
fit check); registering it is the only other step. It then validates, compiles and is
fit-checked with no edit to the validator, the compiler or the fit check.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from printflow.domain.storefront import Platform, Storefront
from printflow.errors import ValidationError, ValidationErrors
from printflow.flows import StepType, compile_flow, parse_flow, render_mermaid
from printflow.flows.model import Step
from printflow.flows.options import ErrorCollector, fail
from printflow.flows.retry_entry import compile_retry_flow
from printflow.flows.step_types.registry import STEP_TYPES, UnknownStepType, spec_for
from printflow.flows.step_types.spec import StepTypeSpec, TaskShape
from printflow.storefront_flows import check_flow_fits_storefront
from printflow.validators import UrlPolicy
from printflow_tools.localstack.template import load_template

ROOT = Path(__file__).parents[2]
SEED: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "seed_flow.json").read_text()
)

# -- the fake step type: everything a module of printflow.flows.step_types holds -------------

LEVELS = ("info", "warning")


@dataclass(frozen=True, slots=True)
class LogOnlyOptions:
    """Log one line about the order; ``onlyFor`` names the one platform it makes sense for."""

    message: str
    level: str = "info"
    only_for: str | None = None

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"message": self.message, "level": self.level}
        if self.only_for is not None:
            doc["onlyFor"] = self.only_for
        return doc


def _log_only_options(raw: dict[str, Any], where: str) -> LogOnlyOptions:
    errors = ErrorCollector()
    message = raw.get("message")
    if not isinstance(message, str) or not message.strip():
        errors.add(fail(f"{where}.message", "required (a non-empty string)"))
    level = raw.get("level", "info")
    if level not in LEVELS:
        errors.add(fail(f"{where}.level", f"one of {', '.join(LEVELS)}"))
    only_for = raw.get("onlyFor")
    if only_for is not None and only_for not in {p.value for p in Platform}:
        errors.add(fail(f"{where}.onlyFor", "a platform name"))
    errors.raise_if_any()
    assert isinstance(message, str)
    return LogOnlyOptions(message=message, level=level, only_for=only_for)


def _log_only_fits(step: Step, storefront: Storefront, policy: UrlPolicy) -> None:
    options = step.options
    assert isinstance(options, LogOnlyOptions)
    if options.only_for is not None and storefront.platform.value != options.only_for:
        raise ValidationError(
            f"step {step.id!r}: logs only for {options.only_for} storefronts, "
            f"not {storefront.platform.value}"
        )


LOG_ONLY = StepTypeSpec(
    name="log-only",
    option_keys=frozenset({"message", "level", "onlyFor"}),
    parse=_log_only_options,
    options_type=LogOnlyOptions,
    function="LogOnlyFunction",
    handler="functions/log_only/app.py",
    task=TaskShape.LAMBDA,
    fits=_log_only_fits,
)


@pytest.fixture
def log_only(monkeypatch: pytest.MonkeyPatch) -> StepTypeSpec[LogOnlyOptions]:
    """The one registry entry (removed again after the test)."""
    monkeypatch.setitem(STEP_TYPES, LOG_ONLY.name, LOG_ONLY)
    return LOG_ONLY


def flow_with_log(options: Any) -> list[dict[str, Any]]:
    """The seed flow with a ``log`` step between its render step and its REST step."""
    flow = copy.deepcopy(SEED)
    log = {
        "stepDefinitionId": "log",
        "type": "log-only",
        "successStatus": "Logged",
        "options": options,
        "onSuccess": flow[0]["onSuccess"],
        "onError": "error",
    }
    flow[0]["onSuccess"] = "log"
    return [flow[0], log, *flow[1:]]


# -- a new type through the registry ----------------------------------------------------------


def test_an_unregistered_type_is_refused_and_has_no_spec() -> None:
    with pytest.raises(ValidationError) as refused:
        parse_flow(flow_with_log({"message": "hi"}))
    assert "step 'log'.type: unknown type 'log-only' (expected consume-rest-api, " in str(
        refused.value
    )
    with pytest.raises(UnknownStepType, match="unknown step type 'log-only'"):
        spec_for("log-only")


def test_a_registered_type_validates_with_its_own_options(
    log_only: StepTypeSpec[LogOnlyOptions],
) -> None:
    flow = parse_flow(flow_with_log({"message": "made {{order.name}}", "onlyFor": "shopify"}))

    step = flow.step("log")
    assert step.type == "log-only"
    assert step.spec is log_only
    assert step.options == LogOnlyOptions("made {{order.name}}", "info", "shopify")
    assert step.to_document()["options"] == {
        "message": "made {{order.name}}",
        "level": "info",
        "onlyFor": "shopify",
    }
    assert not step.waits_for_callback
    assert step.effective_timeout is None
    assert "log<br/>log-only<br/>status: Logged" in render_mermaid(flow)


def test_a_registered_type_reports_every_option_problem_with_the_shared_checks(
    log_only: StepTypeSpec[LogOnlyOptions],
) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_flow(flow_with_log({"level": "loud", "colour": "red", "onlyFor": "${Stage}"}))

    assert isinstance(refused.value, ValidationErrors)
    messages = refused.value.messages
    assert "step 'log'.options.onlyFor: '${' is reserved for deployment substitutions" in messages
    unknown = "step 'log'.options.colour: unknown option (allowed: level, message, onlyFor)"
    assert unknown in messages
    assert "step 'log'.options.message: required (a non-empty string)" in messages
    assert "step 'log'.options.level: one of info, warning" in messages


def test_a_registered_type_compiles_to_a_task_of_its_own_function(
    log_only: StepTypeSpec[LogOnlyOptions],
) -> None:
    flow = parse_flow(flow_with_log({"message": "made", "level": "warning"}))
    definition = compile_flow(flow)
    task = definition["States"]["log"]

    assert task["Resource"] == "arn:aws:states:::lambda:invoke"
    assert task["Parameters"]["FunctionName"] == "${LogOnlyFunctionArn}"
    assert task["Parameters"]["Payload"]["step"] == {
        "id": "log",
        "type": "log-only",
        "successStatus": "Logged",
        "options": {"message": "made", "level": "warning"},
    }
    assert "taskToken.$" not in task["Parameters"]["Payload"]
    assert task["Retry"][0]["MaxAttempts"] == 3  # the default policy of a Lambda step
    assert task["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "error"}
    ]
    assert definition["States"]["generate"]["Next"] == "log"
    assert task["Next"] == SEED[0]["onSuccess"]
    # The retry state machine can start at it like at any step.
    choices = compile_retry_flow(flow)["States"]["Retry from step"]["Choices"]
    assert {"Variable": "$.retry.fromStep", "StringEquals": "log", "Next": "log"} in choices


def test_a_registered_type_without_on_error_fails_the_order_itself(
    log_only: StepTypeSpec[LogOnlyOptions],
) -> None:
    document = flow_with_log({"message": "made"})
    del document[1]["onError"]
    task = compile_flow(parse_flow(document))["States"]["log"]

    assert task["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert task["Parameters"]["Payload"]["step"]["failsOrder"] is True
    assert "Render.Failed" not in task["Catch"][0]["ErrorEquals"]  # not its errors
    assert task["Catch"][0]["Next"] == "log.failed"


def test_a_registered_type_is_fit_checked_against_the_storefront(
    log_only: StepTypeSpec[LogOnlyOptions],
) -> None:
    flow = parse_flow(flow_with_log({"message": "made", "onlyFor": "shopify"}))

    check_flow_fits_storefront(flow, Storefront("shop-1", Platform.SHOPIFY))
    with pytest.raises(ValidationError) as refused:
        check_flow_fits_storefront(flow, Storefront("woo-1", Platform.WOOCOMMERCE))
    assert str(refused.value) == (
        "storefront 'woo-1' with flow 'default': step 'log': logs only for shopify "
        "storefronts, not woocommerce"
    )


# -- the shipped types ------------------------------------------------------------------------


def test_every_shipped_step_type_has_exactly_one_spec() -> None:
    assert set(STEP_TYPES) == {step_type.value for step_type in StepType}
    for step_type in StepType:
        spec = spec_for(step_type)
        assert spec.name is step_type
        assert spec.option_keys  # every shipped type takes options
    callbacks = {name for name, spec in STEP_TYPES.items() if spec.waits_for_callback}
    assert callbacks == {StepType.GENERATE_PRODUCTION_FILES}


def test_every_registered_function_is_in_the_template_with_its_handler() -> None:
    resources = load_template()["Resources"]
    machines = [
        resource["Properties"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Serverless::StateMachine"
    ]
    assert machines
    for spec in STEP_TYPES.values():
        function = resources[spec.function]
        assert function["Type"] == "AWS::Serverless::Function"
        handler = Path(spec.handler)
        assert function["Properties"]["CodeUri"] == str(handler.parent)
        assert function["Properties"]["Handler"] == f"{handler.stem}.lambda_handler"
        assert (ROOT / handler).is_file()
        variable = spec.function_arn_substitution
        uses = [
            m for m in machines if "${" + variable + "}" in (ROOT / m["DefinitionUri"]).read_text()
        ]
        assert uses, f"no deployed flow has a {spec.name} step"
        for machine in uses:
            assert machine["DefinitionSubstitutions"][variable] == {
                "Fn::GetAtt": [spec.function, "Arn"]
            }, machine["DefinitionUri"]


def test_every_state_machine_can_run_every_registered_step_type() -> None:
    # Given the template's order-flow machines (a flow file recompiled with any step type, or
    # a retry entered at any step, must deploy and run without a template edit)
    resources = load_template()["Resources"]
    machines = {
        name: resource["Properties"]
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::StateMachine"
    }
    for name, machine in machines.items():
        invokable = {
            policy["LambdaInvokePolicy"]["FunctionName"]["Ref"]
            for policy in machine["Policies"]
            if isinstance(policy, dict) and "LambdaInvokePolicy" in policy
        }
        for spec in STEP_TYPES.values():
            # Then each has the type's function ARN substitution and may invoke that function
            assert machine["DefinitionSubstitutions"].get(spec.function_arn_substitution) == {
                "Fn::GetAtt": [spec.function, "Arn"]
            }, f"{name} lacks {spec.function_arn_substitution}"
            assert spec.function in invokable, f"{name} may not invoke {spec.function}"
