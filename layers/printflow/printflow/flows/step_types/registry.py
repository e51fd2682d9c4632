"""The step-type table: every ``type`` a flow may use, each mapped to its module's spec.

Adding a step type is one module in this package and one entry in :data:`STEP_TYPES`; the
validator (:mod:`printflow.flows.validation`), the compiler (:mod:`printflow.flows.compiler`)
and the storefront fit check (:mod:`printflow.storefront_flows`) find it here. A type not in
the table is an error (:class:`UnknownStepType`), never a fall-through to another type.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from printflow.errors import ValidationError
from printflow.flows.step_types import (
    consume_rest_api,
    generate_production_files,
    send_email,
    update_storefront_order,
)
from printflow.flows.step_types.spec import StepTypeSpec


class UnknownStepType(ValidationError):
    """A step type no module registers."""


def _table(specs: Iterable[StepTypeSpec[Any]]) -> dict[str, StepTypeSpec[Any]]:
    table: dict[str, StepTypeSpec[Any]] = {}
    for spec in specs:
        if spec.name in table:
            raise ValueError(f"step type {spec.name!r} registered twice")
        table[spec.name] = spec
    return table


# Keyed by the flow's ``type`` (StepType members for the shipped types).
STEP_TYPES: dict[str, StepTypeSpec[Any]] = _table(
    (
        generate_production_files.SPEC,
        consume_rest_api.SPEC,
        send_email.SPEC,
        update_storefront_order.SPEC,
    )
)


def step_type_names() -> list[str]:
    """The registered types, sorted (for messages)."""
    return sorted(STEP_TYPES)


def spec_for(step_type: str) -> StepTypeSpec[Any]:
    """The spec of ``step_type``; :class:`UnknownStepType` when no module registers it."""
    spec = STEP_TYPES.get(step_type)
    if spec is None:
        expected = ", ".join(step_type_names())
        raise UnknownStepType(f"unknown step type {step_type!r} (expected {expected})")
    return spec
