"""What a step type is: the one record the validator, the compiler and the fit check read.

A :class:`StepTypeSpec` says, for one ``type`` of step definition:

- its options: the keys allowed, the parser that turns them into the type's options
  dataclass (:meth:`StepTypeSpec.parse_options` runs the checks every type shares first:
  an object, no unknown key, no ``${``);
- how it compiles: the Lambda that runs it (the template's function, whose ARN the compiled
  definition names as ``${<Function>Arn}``) and its task shape (:class:`TaskShape`), its
  default retry and timeout, and the error names its callback task can be failed with;
- its storefront fit check: what a storefront must offer for the step to run there.

Every step writes its own ``successStatus`` as part of its work (one state transition per
step): a :attr:`TaskShape.LAMBDA` step's Lambda does it before it returns, a
:attr:`TaskShape.CALLBACK` step's by whoever completes its task token.

Pure data and pure functions: building a spec touches nothing outside the process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from printflow.domain.storefront import Storefront
from printflow.flows.model import RetryPolicy, Step, StepOptions
from printflow.flows.options import ErrorCollector, fail, refuse_substitution_markers
from printflow.validators import UrlPolicy

OptionsT = TypeVar("OptionsT", bound=StepOptions)

StepFitCheck = Callable[[Step, Storefront, UrlPolicy], None]
OptionsParser = Callable[[dict[str, Any], str], OptionsT]


class TaskShape(Enum):
    """How the compiled Task state waits for the step."""

    # The Lambda does the step's work, writes its status and returns (``lambda:invoke``;
    # a callback token only where the step must end or fail the execution itself).
    LAMBDA = "lambda"
    # The Lambda starts work elsewhere and returns; the task waits for its token
    # (``lambda:invoke.waitForTaskToken``), and whoever completes the token writes the status.
    CALLBACK = "callback"


def fits_any_storefront(step: Step, storefront: Storefront, policy: UrlPolicy) -> None:
    """The step's options do not depend on the storefront."""


@dataclass(frozen=True, slots=True)
class StepTypeSpec(Generic[OptionsT]):
    """One step type. ``name`` is the flow's ``type`` (a :class:`~printflow.flows.model.
    StepType` member for the shipped types)."""

    name: str
    option_keys: frozenset[str]
    # The type's own checks, after the shared ones; raises ValidationError(s).
    parse: OptionsParser[OptionsT]
    options_type: type[OptionsT]
    # The template's function (logical id) that runs the step, and its handler module.
    function: str
    handler: str
    task: TaskShape = TaskShape.LAMBDA
    fits: StepFitCheck = fits_any_storefront
    default_retry: RetryPolicy = field(default_factory=RetryPolicy)
    default_timeout_s: int | None = None
    # A default retry that depends on the step's timeout (a render start retries until it).
    retry_spanning: Callable[[int], RetryPolicy] | None = None
    # Errors, beyond the step errors every task raises, that fail this type's callback task.
    task_errors: tuple[str, ...] = ()

    @property
    def waits_for_callback(self) -> bool:
        return self.task is TaskShape.CALLBACK

    def retry_for(self, timeout_s: int | None) -> RetryPolicy:
        """The retry a step of this type gets when its flow names none."""
        if self.retry_spanning is not None and timeout_s is not None:
            return self.retry_spanning(timeout_s)
        return self.default_retry

    @property
    def function_arn_substitution(self) -> str:
        """The ``DefinitionSubstitutions`` variable the template fills with the function's ARN."""
        return f"{self.function}Arn"

    def parse_options(self, raw: Any, where: str) -> OptionsT:
        """Validate ``raw`` as this type's options; ``where`` locates them in messages.

        Raises :class:`~printflow.errors.ValidationErrors` with every problem found (its
        message is the first).
        """
        if raw is None:
            raise fail(where, "required (an object)")
        if not isinstance(raw, dict):
            raise fail(where, "must be an object")
        known = self.option_keys
        errors = ErrorCollector()
        errors.check(lambda: refuse_substitution_markers(raw, where))
        for key in raw:
            if key not in known:
                errors.add(
                    fail(f"{where}.{key}", f"unknown option (allowed: {', '.join(sorted(known))})")
                )
        options = errors.check(lambda: self.parse(raw, where))
        errors.raise_if_any()
        assert options is not None  # no error was recorded, so the parser returned
        return options
