"""Turning a flow document (seed format + extensions) into a checked :class:`OrderFlow`.

Each rule fails with a :class:`~printflow.errors.ValidationError` whose message names the
step and the field, e.g. ``step 'consume'.options.uri: must be an https URL``; a step whose
id itself is unusable is named by its 1-based position (``step #2.stepDefinitionId``).
:func:`parse_flow` reports every problem it finds at once
(:class:`~printflow.errors.ValidationErrors`, whose message is the first): the checks of the
flow's graph (references, reachability, cycles) run once every step is valid.

Step ids become part of Step Functions state names, so they are restricted to letters,
digits, ``-`` and ``_`` (at most 40 characters): the compiler can then add suffixes such as
``.status`` without ever colliding with another step's states.
"""

from __future__ import annotations

import json
import re
from typing import Any

from printflow.errors import ValidationError
from printflow.flows.model import OrderFlow, Step
from printflow.flows.options import (
    CONTROL_CHARS,
    ErrorCollector,
    fail,
    is_int,
    parse_retry,
    refuse_substitution_markers,
)
from printflow.flows.step_types.registry import STEP_TYPES, step_type_names
from printflow.flows.step_types.spec import StepTypeSpec

STEP_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
MAX_STEPS = 100  # keeps the compiled definition far below the 1 MB state machine limit
MAX_SUCCESS_STATUS_LENGTH = 64
MIN_TIMEOUT_SECONDS = 1
MAX_TIMEOUT_SECONDS = 604_800  # one week

_STEP_FIELDS = frozenset(
    {
        "stepDefinitionId",
        "type",
        "successStatus",
        "options",
        "timeout",
        "onSuccess",
        "onError",
        "retry",
    }
)


def parse_flow_json(text: str) -> OrderFlow:
    """Parse and validate a flow file's text.

    Duplicate keys in a JSON object are refused: the last one would silently win, and a
    doubled ``onSuccess`` is almost always a mistake.
    """
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"flow: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    return parse_flow(document)


def parse_flow(document: Any) -> OrderFlow:
    """Validate a decoded flow document; return the typed flow.

    Checks, in order: the list itself, each step's fields and options, duplicate ids,
    references to unknown steps, reachability from the first step, and cycles.
    """
    if not isinstance(document, list):
        raise ValidationError("flow: must be a JSON list of step definitions")
    if not document:
        raise ValidationError("flow: must contain at least one step")
    if len(document) > MAX_STEPS:
        raise ValidationError(f"flow: at most {MAX_STEPS} steps")

    errors = ErrorCollector()
    steps: list[Step] = []
    positions: dict[str, int] = {}
    for position, raw in enumerate(document, start=1):
        step_id, step = _parse_step(raw, position, errors)
        if step_id is None:
            continue
        if step_id in positions:
            errors.add(
                fail(
                    f"step '{step_id}'.stepDefinitionId",
                    f"duplicate id (step #{positions[step_id]} has it too)",
                )
            )
            continue
        positions[step_id] = position
        if step is not None:
            steps.append(step)
    errors.raise_if_any()

    flow = OrderFlow(tuple(steps))
    errors.check(lambda: _check_references(flow, positions))
    errors.raise_if_any()
    errors.check(lambda: _check_reachable(flow))
    errors.check(lambda: _check_acyclic(flow))
    errors.raise_if_any()
    return flow


def _parse_step(raw: Any, position: int, errors: ErrorCollector) -> tuple[str | None, Step | None]:
    """The step's id (None when unusable) and the step (None when any field is invalid);
    every problem found goes to ``errors``."""
    if not isinstance(raw, dict):
        errors.add(ValidationError(f"step #{position}: must be an object"))
        return None, None
    step_id = raw.get("stepDefinitionId")
    if step_id is None:
        errors.add(fail(f"step #{position}.stepDefinitionId", "required"))
        return None, None
    if not isinstance(step_id, str) or not STEP_ID.fullmatch(step_id):
        errors.add(
            fail(
                f"step #{position}.stepDefinitionId",
                f"{step_id!r} must be 1-40 letters, digits, '-' or '_'",
            )
        )
        return None, None
    where = f"step '{step_id}'"
    found = len(errors.messages)
    for key in raw:
        if key not in _STEP_FIELDS:
            allowed = ", ".join(sorted(_STEP_FIELDS))
            errors.add(fail(f"{where}.{key}", f"unknown field (allowed: {allowed})"))

    raw_type = raw.get("type")
    spec: StepTypeSpec[Any] | None = None
    if isinstance(raw_type, str) and raw_type in STEP_TYPES:
        spec = STEP_TYPES[raw_type]
    else:
        expected = ", ".join(step_type_names())
        errors.add(fail(f"{where}.type", f"unknown type {raw_type!r} (expected {expected})"))

    success_status = errors.check(
        lambda: _success_status(raw.get("successStatus"), f"{where}.successStatus")
    )
    # A step of an unknown type has no options to judge.
    options = (
        None
        if spec is None
        else errors.check(lambda: spec.parse_options(raw.get("options"), f"{where}.options"))
    )
    timeout = errors.check(lambda: _timeout(raw.get("timeout"), f"{where}.timeout"))
    on_success = errors.check(lambda: _reference(raw.get("onSuccess"), f"{where}.onSuccess"))
    on_error = errors.check(lambda: _reference(raw.get("onError"), f"{where}.onError"))
    retry = errors.check(lambda: parse_retry(raw.get("retry"), f"{where}.retry"))
    if len(errors.messages) > found:
        return step_id, None
    assert spec is not None and success_status is not None and options is not None
    return step_id, Step(
        id=step_id,
        type=spec.name,
        success_status=success_status,
        options=options,
        spec=spec,
        timeout=timeout,
        on_success=on_success,
        on_error=on_error,
        retry=retry,
    )


def _success_status(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise fail(where, "required (a non-empty string)")
    if len(value) > MAX_SUCCESS_STATUS_LENGTH:
        raise fail(where, f"must be at most {MAX_SUCCESS_STATUS_LENGTH} characters")
    if CONTROL_CHARS.search(value):
        raise fail(where, "must not contain control characters")
    refuse_substitution_markers(value, where)
    return value


def _timeout(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if not is_int(value) or not MIN_TIMEOUT_SECONDS <= value <= MAX_TIMEOUT_SECONDS:
        raise fail(
            where,
            f"must be a whole number of seconds from {MIN_TIMEOUT_SECONDS} "
            f"to {MAX_TIMEOUT_SECONDS}, got {value!r}",
        )
    return int(value)


def _reference(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise fail(where, "must be a stepDefinitionId or null")
    return value


def _check_references(flow: OrderFlow, positions: dict[str, int]) -> None:
    errors = ErrorCollector()
    for step in flow.steps:
        for field, target in _edges(step):
            if target not in positions:
                errors.add(fail(f"step '{step.id}'.{field}", f"unknown step {target!r}"))
    errors.raise_if_any()


def _check_reachable(flow: OrderFlow) -> None:
    reached = {flow.first.id}
    pending = [flow.first]
    while pending:
        for target in pending.pop().successors():
            if target not in reached:
                reached.add(target)
                pending.append(flow.step(target))
    errors = ErrorCollector()
    for step in flow.steps:
        if step.id not in reached:
            errors.add(
                ValidationError(
                    f"step '{step.id}': unreachable from the first step '{flow.first.id}' "
                    "(no onSuccess/onError leads to it)"
                )
            )
    errors.raise_if_any()


def _check_acyclic(flow: OrderFlow) -> None:
    """Depth-first search; a back edge closes a cycle, reported with its path."""
    done: set[str] = set()
    path: list[str] = []
    errors = ErrorCollector()

    def visit(step: Step) -> None:
        path.append(step.id)
        for field, target in _edges(step):
            if target in path:
                cycle = " -> ".join([*path[path.index(target) :], target])
                errors.add(fail(f"step '{step.id}'.{field}", f"creates a cycle ({cycle})"))
            elif target not in done:
                visit(flow.step(target))
        path.pop()
        done.add(step.id)

    for step in flow.steps:
        if step.id not in done:
            visit(step)
    errors.raise_if_any()


def _edges(step: Step) -> list[tuple[str, str]]:
    edges = [("onSuccess", step.on_success), ("onError", step.on_error)]
    return [(field, target) for field, target in edges if target is not None]


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValidationError(f"flow: duplicate key {key!r} in a JSON object")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise ValidationError(f"flow: {name} is not valid JSON")
