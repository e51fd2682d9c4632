"""Compiling an :class:`OrderFlow` into an Amazon States Language (JSONPath) definition.

Shape per step ``s`` (state names are built from step ids, which validation restricts to
``[A-Za-z0-9_-]{1,40}``; the suffix below contains a ``.`` and the shared Fail state a space,
so no two steps can ever produce the same state name):

- ``s``         Task invoking the step type's Lambda (``.waitForTaskToken`` for a callback
                type such as generate-production-files, always with ``TimeoutSeconds``; the
                type's spec in :mod:`printflow.flows.step_types` says which); transient errors
                retried with backoff and full jitter. The step writes its own successStatus
                (status, ``currentStep``, ``updatedAt``, a ``statusHistory`` entry) as part of
                its work, or whoever completes its task token does (:mod:`printflow.steps.
                completion`), so no status state follows it. Its output is replaced by
                ``{"step": <onSuccess>}`` at ``$.running``: the state data stays the tiny
                execution input plus the name of the step now running, which an ``onError``
                step reads to record which step failed (a retry entry that starts at another
                step sets ``running.step`` in its input the same way).
                ``Next`` = onSuccess, else the end: ``End`` on the success path; a step only
                reachable after an ``onError`` edge (an order that took its error path is a
                failed order) instead fails the execution itself (``endsFlowFailed``): it
                runs as a callback task whose token is failed with ``OrderFailed`` and the
                original cause once its work is done, by its Lambda (a Lambda step) or by
                the download function with the step's files (a render step).
- ``onError``   a ``Catch`` on ``States.ALL`` (``ResultPath: $.error``) going straight to the
                onError step, which records ``{step, error, cause, at}`` with its own status.
- no onError    a Lambda step runs as a callback task (``failsOrder``): when its own work
                fails for good, its Lambda marks the order ``Failed`` (status, error, history
                entry: one write) and fails the task with ``OrderFailed`` and
                ``<Error>: <Cause>``, which ends the execution; no state follows it.
- ``s.failed``  (without onError) the failure no step Lambda recorded: a render step's
                failure reported by the poller or the download function, a timeout, a
                crashed Lambda, retries spent. It sets status ``Failed`` and records the
                error and a history entry in one write, then goes to the shared ``Order
                failed`` Fail state, which fails the execution with the step's own error
                and cause.

An order therefore costs one state transition per step on the success path, on an
``onError`` path and when a Lambda step without onError fails; only a failure no step
Lambda could record (a render step without onError, a timeout, a crash, retries spent)
costs the two transitions of ``s.failed`` and the Fail state. Output is deterministic
(states in step order, keys in a fixed order), so the checked-in definition can be compared
byte for byte with a fresh compile.

Resource names are ``DefinitionSubstitutions`` variables filled in by the template:
``${OrderTable}`` and one ``${...FunctionArn}`` per registered step type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import Enum
from typing import Any

from printflow.domain.order import OrderStatus
from printflow.flows.model import OrderFlow, Step
from printflow.flows.status_index import STATUS_INDEX_EXPRESSION, status_key_value
from printflow.flows.step_types.registry import STEP_TYPES, spec_for

ORDER_TABLE_SUBSTITUTION = "OrderTable"
# The template's variables, one per registered step type (its function's ARN).
FUNCTION_ARN_SUBSTITUTIONS: Mapping[str, str] = {
    name: spec.function_arn_substitution for name, spec in STEP_TYPES.items()
}
DEFINITION_SUBSTITUTIONS: tuple[str, ...] = (
    ORDER_TABLE_SUBSTITUTION,
    *FUNCTION_ARN_SUBSTITUTIONS.values(),
)

FAILED_STATUS = OrderStatus.FAILED.value
FAIL_STATE = "Order failed"
# The execution's error when an order took its error path (a step that ends the flow fails
# its own task with it: printflow.steps.completion).
FAILED_EXECUTION_ERROR = "OrderFailed"
# TimeoutSeconds of a step that fails its own task (its Lambda's own limit is far lower).
ENDING_STEP_TIMEOUT_S = 900
FAILED_SUFFIX = ".failed"
RUNNING_PATH = "$.running"

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
LAMBDA_INVOKE_WAIT = "arn:aws:states:::lambda:invoke.waitForTaskToken"
DYNAMODB_UPDATE_ITEM = "arn:aws:states:::dynamodb:updateItem"

# Errors worth another attempt: the step's own "try again" and Lambda service hiccups.
# Never States.Timeout (a render that timed out would only time out again) or StepFailed.
RETRYABLE_STEP_ERRORS = (
    "StepRetryable",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
# Errors a callback step that may fail its own task hands to its Catch: everything but the
# ``OrderFailed`` its Lambda (or the download function) sends when its work is done (a Catch
# cannot say "all but"; these are every error a step task raises, see printflow.errors; a
# step type adds the errors its own callback task is failed with, StepTypeSpec.task_errors).
STEP_FAILURE_ERRORS = (
    "StepFailed",
    "StepRetryable",
    "States.Timeout",
    "States.HeartbeatTimeout",
    "States.Permissions",
    "Lambda.Unknown",
    *RETRYABLE_STEP_ERRORS[1:],  # the Lambda service's own, once retries are spent
    # Lambda runtime failures (function timeout, crash, broken deployment)
    "Sandbox.Timedout",
    "Runtime.ExitError",
    "Runtime.ImportModuleError",
)
RETRYABLE_DYNAMODB_ERRORS = (
    "DynamoDB.ProvisionedThroughputExceededException",
    "DynamoDB.RequestLimitExceeded",
    "DynamoDB.ThrottlingException",
    "DynamoDB.InternalServerErrorException",
)

# When the state was entered: ISO 8601, available on AWS and on the local engine.
_NOW = "$$.State.EnteredTime"
_COMMENT = (
    "PrintFlow order flow. Generated by `printflow flow compile` from a flow file; "
    "do not edit by hand."
)
_SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def compile_flow(flow: OrderFlow) -> dict[str, Any]:
    """The ASL definition (a JSON-ready dict) of ``flow``."""
    states: dict[str, Any] = {}
    success_path = flow.success_path()
    error_targets = {step.on_error for step in flow.steps if step.on_error is not None}
    for step in flow.steps:
        ending = _ending(step, step.id in success_path)
        states[step.id] = _task_state(step, ending, flow.first.id, step.id in error_targets)
        if step.on_error is None:
            states[step.id + FAILED_SUFFIX] = _mark_failed_state(step)
    if any(step.on_error is None for step in flow.steps):
        states[FAIL_STATE] = {
            "Type": "Fail",
            # A Fail state may not raise "States.*" names (a re-raised States.Timeout becomes
            # States.Runtime), so the execution fails with one fixed name and the step's own
            # error name leads the cause; the order item keeps both fields separately.
            "Comment": "The order is marked Failed; the cause names the step's error.",
            "Error": FAILED_EXECUTION_ERROR,
            "CausePath": "States.Format('{}: {}', $.error.Error, $.error.Cause)",
        }
    return {
        "Comment": _COMMENT,
        "QueryLanguage": "JSONPath",
        "StartAt": flow.first.id,
        "States": states,
    }


def render_definition(definition: Mapping[str, Any]) -> str:
    """Pretty-printed JSON with a trailing newline: the checked-in file's exact bytes."""
    return json.dumps(definition, indent=2, ensure_ascii=False) + "\n"


def compile_flow_text(flow: OrderFlow) -> str:
    return render_definition(compile_flow(flow))


def apply_substitutions(definition_text: str, values: Mapping[str, str]) -> str:
    """Replace ``${Name}`` variables as CloudFormation's ``DefinitionSubstitutions`` does.

    For running a compiled definition outside CloudFormation (local stack, tests). Every
    variable must have a value: a leftover ``${...}`` would otherwise surface later as an
    obscure runtime error.
    """
    missing = sorted({m.group(1) for m in _SUBSTITUTION.finditer(definition_text)} - set(values))
    if missing:
        raise KeyError(f"no value for definition substitution(s): {', '.join(missing)}")
    return _SUBSTITUTION.sub(lambda m: values[m.group(1)], definition_text)


# -- states -----------------------------------------------------------------------------------


class _Ending(Enum):
    """How a step without ``onSuccess`` ends the execution."""

    NEXT = "next"  # it has an onSuccess: no ending
    SUCCEED = "succeed"  # on the success path
    STEP_FAILS_IT = "step"  # after an error: whoever completes its token fails it


def _ending(step: Step, on_success_path: bool) -> _Ending:
    if step.on_success is not None:
        return _Ending.NEXT
    return _Ending.SUCCEED if on_success_path else _Ending.STEP_FAILS_IT


def _fails_order(step: Step) -> bool:
    """A Lambda step without onError marks the order Failed itself when its work fails."""
    return step.on_error is None and not step.waits_for_callback


def _task_state(
    step: Step, ending: _Ending, first_step: str, is_error_target: bool
) -> dict[str, Any]:
    spec = spec_for(step.type)
    fails_order = _fails_order(step)
    callback = step.waits_for_callback or ending is _Ending.STEP_FAILS_IT or fails_order
    payload: dict[str, Any] = {
        "input.$": "$",
        "step": {
            "id": step.id,
            "type": str(step.type),
            "successStatus": step.success_status,
            "options": step.options.to_document(),
        },
        "execution.$": "$$.Execution.Id",
    }
    if is_error_target:
        # Who failed when no step ran before: the execution starts with no "running".
        payload["step"]["flowStart"] = first_step
    if ending is _Ending.STEP_FAILS_IT:
        payload["step"]["endsFlowFailed"] = True
    if fails_order:
        payload["step"]["failsOrder"] = True
    if step.waits_for_callback:
        # The step's Lambda gives its render jobs the same deadline, so nothing keeps
        # polling a provider for a step that Step Functions has already timed out.
        payload["step"]["timeoutSeconds"] = step.effective_timeout
    if callback:
        payload["taskToken.$"] = "$$.Task.Token"
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": LAMBDA_INVOKE_WAIT if callback else LAMBDA_INVOKE,
        "Parameters": {
            "FunctionName": "${" + spec.function_arn_substitution + "}",
            "Payload": payload,
        },
    }
    if step.effective_timeout is not None:
        state["TimeoutSeconds"] = step.effective_timeout
    elif callback:
        # A callback whose Lambda died before it failed the task must not wait a year.
        state["TimeoutSeconds"] = ENDING_STEP_TIMEOUT_S
    if step.on_success is not None:
        state["ResultSelector"] = {"step": step.on_success}
        state["ResultPath"] = RUNNING_PATH
    else:
        state["ResultPath"] = None
    policy = step.retry_policy
    if policy.max_attempts > 0:
        state["Retry"] = [
            {
                "ErrorEquals": list(RETRYABLE_STEP_ERRORS),
                "IntervalSeconds": policy.interval_seconds,
                "MaxAttempts": policy.max_attempts,
                "BackoffRate": float(policy.backoff_rate),
                "MaxDelaySeconds": policy.max_delay_seconds,
                "JitterStrategy": "FULL",
            }
        ]
    handler = step.on_error if step.on_error is not None else step.id + FAILED_SUFFIX
    # The step's own OrderFailed must end the execution, so it is not caught.
    caught: tuple[str, ...] = ("States.ALL",)
    if ending is _Ending.STEP_FAILS_IT or fails_order:
        caught = STEP_FAILURE_ERRORS + spec.task_errors
    state["Catch"] = [{"ErrorEquals": list(caught), "ResultPath": "$.error", "Next": handler}]
    if ending is _Ending.NEXT:
        state["Next"] = step.on_success
    else:
        state["End"] = True
    return state


def _mark_failed_state(step: Step) -> dict[str, Any]:
    state = _update_order(
        "SET #status = :status, #currentStep = :step, #error = :error, #updatedAt = :at, "
        "#statusHistory = list_append(if_not_exists(#statusHistory, :empty), :entry), "
        + STATUS_INDEX_EXPRESSION,
        {
            ":status": {"S": FAILED_STATUS},
            ":statusKey": status_key_value(FAILED_STATUS),
            ":step": {"S": step.id},
            ":error": _error_record(step.id),
            ":at": {"S.$": _NOW},
            ":empty": {"L": []},
            ":entry": {"L": [_history_entry(FAILED_STATUS, step.id)]},
        },
    )
    state["Next"] = FAIL_STATE
    return state


def _update_order(expression: str, values: dict[str, Any]) -> dict[str, Any]:
    """An ``updateItem`` on the order; the condition stops it creating a phantom item."""
    names = sorted(set(re.findall(r"#[A-Za-z]+", expression)))
    return {
        "Type": "Task",
        "Resource": DYNAMODB_UPDATE_ITEM,
        "Parameters": {
            "TableName": "${" + ORDER_TABLE_SUBSTITUTION + "}",
            "Key": {"pk": {"S.$": "$.order.pk"}, "sk": {"S.$": "$.order.sk"}},
            "ConditionExpression": "attribute_exists(pk)",
            "UpdateExpression": expression,
            "ExpressionAttributeNames": {name: name[1:] for name in names},
            "ExpressionAttributeValues": values,
        },
        "ResultPath": None,
        "Retry": [
            {
                "ErrorEquals": list(RETRYABLE_DYNAMODB_ERRORS),
                "IntervalSeconds": 1,
                "MaxAttempts": 3,
                "BackoffRate": 2.0,
                "MaxDelaySeconds": 10,
                "JitterStrategy": "FULL",
            }
        ],
    }


def _history_entry(status: str, step_id: str) -> dict[str, Any]:
    return {"M": {"status": {"S": status}, "at": {"S.$": _NOW}, "step": {"S": step_id}}}


def _error_record(step_id: str) -> dict[str, Any]:
    """``Error`` and ``Cause`` are always present in a Catch result (empty when unknown)."""
    return {
        "M": {
            "step": {"S": step_id},
            "error": {"S.$": "$.error.Error"},
            "cause": {"S.$": "$.error.Cause"},
            "at": {"S.$": _NOW},
        }
    }
