"""Does a flow fit a storefront? Checks that need both, run before any order does.

A flow is validated on its own (:mod:`printflow.flows.validation`) and a storefront on its
own (:mod:`printflow.domain.storefront`); some mistakes only show in the pair: a render step
asking for a file format the storefront's provider cannot produce, a write-back step for a
storefront without a store API or with a status its platform does not have.
:func:`check_flow_fits_storefront` runs the check of each step type (one entry per type in
:data:`STEP_FIT_CHECKS`) and raises :class:`~printflow.errors.ValidationError` naming the
storefront and the step.

It runs when a storefront is registered against a flow (``printflow storefronts put``) and
when a flow is checked against the storefronts that run it (``printflow flow check``); the
step Lambdas check again at run time, as a last line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from printflow.domain.storefront import Storefront
from printflow.errors import ValidationError
from printflow.flows.model import (
    GenerateProductionFilesOptions,
    OrderFlow,
    Step,
    StepType,
    UpdateStorefrontOrderOptions,
)
from printflow.providers.base import UrlPolicy
from printflow.providers.registry import parse_provider_settings
from printflow.render.formats import check_file_format
from printflow.steps.write_back import check_write_back_fits

StepFitCheck = Callable[[Step, Storefront, UrlPolicy], None]


def _render_fits(step: Step, storefront: Storefront, policy: UrlPolicy) -> None:
    options = step.options
    assert isinstance(options, GenerateProductionFilesOptions)
    if storefront.provider is None or options.file_format is None:
        return  # no provider: the render step fails at run time, saying so
    config = parse_provider_settings(storefront.provider, policy)
    check_file_format(step.id, options.file_format, storefront.provider, config)


def _write_back_fits(step: Step, storefront: Storefront, policy: UrlPolicy) -> None:
    options = step.options
    assert isinstance(options, UpdateStorefrontOrderOptions)
    check_write_back_fits(storefront, options, policy, f"step {step.id!r}")


def _nothing_to_check(step: Step, storefront: Storefront, policy: UrlPolicy) -> None:
    """The step's options do not depend on the storefront."""


STEP_FIT_CHECKS: dict[StepType, StepFitCheck] = {
    StepType.GENERATE_PRODUCTION_FILES: _render_fits,
    StepType.CONSUME_REST_API: _nothing_to_check,
    StepType.SEND_EMAIL: _nothing_to_check,
    StepType.UPDATE_STOREFRONT_ORDER: _write_back_fits,
}


def check_flow_fits_storefront(
    flow: OrderFlow, storefront: Storefront, policy: UrlPolicy | None = None
) -> None:
    """Refuse the pair when a step cannot run for this storefront; the message says why."""
    for step in flow.steps:
        try:
            STEP_FIT_CHECKS[step.type](step, storefront, policy or UrlPolicy())
        except ValidationError as exc:
            raise ValidationError(
                f"storefront {storefront.storefront_id!r} with flow {storefront.flow!r}: {exc}"
            ) from None


def misfits(
    flow: OrderFlow, storefronts: Iterable[Storefront], policy: UrlPolicy | None = None
) -> list[str]:
    """Every refusal for the storefronts that run ``flow`` (empty: all fit)."""
    problems = []
    for storefront in storefronts:
        try:
            check_flow_fits_storefront(flow, storefront, policy)
        except ValidationError as exc:
            problems.append(str(exc))
    return problems


def flows_of(storefronts: Iterable[Storefront], name: str) -> list[Storefront]:
    """The storefronts whose ``flow`` is ``name``."""
    return [s for s in storefronts if s.flow == name]
