"""Does a flow fit a storefront? Checks that need both, run before any order does.

A flow is validated on its own (:mod:`printflow.flows.validation`) and a storefront on its
own (:mod:`printflow.domain.storefront`); some mistakes only show in the pair: a render step
asking for a file format the storefront's provider cannot produce, a write-back step for a
storefront without a store API or with a status its platform does not have.
:func:`check_flow_fits_storefront` runs each step's fit check (the ``fits`` of its type's
spec, :mod:`printflow.flows.step_types`) and raises :class:`~printflow.errors.ValidationError`
naming the storefront and the step.

It runs when a storefront is registered against a flow (``printflow storefronts put``) and
when a flow is checked against the storefronts that run it (``printflow flow check``); the
step Lambdas check again at run time, as a last line.
"""

from __future__ import annotations

from collections.abc import Iterable

from printflow.domain.storefront import Storefront
from printflow.errors import ValidationError
from printflow.flows.model import OrderFlow
from printflow.flows.step_types.registry import spec_for
from printflow.validators import UrlPolicy


def check_flow_fits_storefront(
    flow: OrderFlow, storefront: Storefront, policy: UrlPolicy | None = None
) -> None:
    """Refuse the pair when a step cannot run for this storefront; the message says why."""
    for step in flow.steps:
        try:
            spec_for(step.type).fits(step, storefront, policy or UrlPolicy())
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
