"""Option helpers every step type shares; each type's own options live in its module.

The per-type parsers are in :mod:`printflow.flows.step_types` (one module per type, found
through :mod:`printflow.flows.step_types.registry`). What is here: the message shape
(:func:`fail`), :class:`ErrorCollector` (every problem of a document reported at once,
:class:`~printflow.errors.ValidationErrors`, whose message is the first), the refusal of
``${`` (deployment substitutions), the per-step ``retry`` extension, the placeholder
checks of the templates, and the character and URL rules several types (and the step
Lambdas at run time) apply alike.

Keys ending in ``.$`` are refused anywhere inside options: the options are embedded in the
state machine's ``Parameters``, where such a key would be evaluated as a JSONPath (reading
the execution's data) instead of being passed through as text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

from printflow.errors import ValidationError, ValidationErrors
from printflow.flows.model import RetryPolicy
from printflow.flows.placeholders import (
    PLACEHOLDERS,
    has_unterminated_placeholder,
    placeholder_names,
)
from printflow.validators import CONTROL_CHARS as CONTROL_CHARS  # also used by steps, validation

# A message body may be multi-line: tab, LF and CR are allowed there, nothing else.
BODY_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

# Headers the HTTP client sets itself; letting a flow override them breaks framing or routing.
FORBIDDEN_HEADERS = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection"}
)

_RETRY_LIMITS: dict[str, tuple[int, int]] = {
    "maxAttempts": (0, 10),
    "intervalSeconds": (1, 300),
    "backoffRate": (1, 10),
    "maxDelaySeconds": (1, 3600),
}


def fail(where: str, problem: str) -> ValidationError:
    """The one message shape: ``<location>: <problem>``."""
    return ValidationError(f"{where}: {problem}")


def is_int(value: Any) -> bool:
    """JSON integers only: ``True`` is an int to Python but not a number of seconds."""
    return isinstance(value, int) and not isinstance(value, bool)


T = TypeVar("T")


class ErrorCollector:
    """Runs independent checks and keeps every validation error they raise, in order."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def check(self, check: Callable[..., T], *args: Any) -> T | None:
        """``check(*args)``'s result, or None after recording its error(s)."""
        try:
            return check(*args)
        except ValidationErrors as exc:
            self.messages.extend(exc.messages)
        except ValidationError as exc:
            self.messages.append(str(exc))
        return None

    def add(self, error: ValidationError) -> None:
        self.messages.append(str(error))

    def raise_if_any(self) -> None:
        if self.messages:
            raise ValidationErrors(self.messages)


def refuse_substitution_markers(value: Any, where: str) -> None:
    """Refuse ``${`` anywhere in ``value`` (keys included).

    The compiled definition is deployed with ``DefinitionSubstitutions``, which would treat
    ``${Name}`` in a flow's text as a deployment variable.
    """
    if isinstance(value, str):
        if "${" in value:
            raise fail(where, "'${' is reserved for deployment substitutions")
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_substitution_markers(key, f"{where}.{key}")
            refuse_substitution_markers(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            refuse_substitution_markers(item, f"{where}[{index}]")


def parse_retry(raw: Any, where: str) -> RetryPolicy | None:
    """Per-step retry overrides; keys left out keep the defaults."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise fail(where, "must be an object")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _RETRY_LIMITS:
            allowed = ", ".join(sorted(_RETRY_LIMITS))
            raise fail(f"{where}.{key}", f"unknown retry setting (allowed: {allowed})")
        low, high = _RETRY_LIMITS[key]
        if key == "backoffRate":
            numeric = is_int(value) or (isinstance(value, float) and math.isfinite(value))
            if not numeric or not low <= value <= high:
                raise fail(f"{where}.{key}", f"must be a number from {low} to {high}")
            values[key] = float(value)
        elif not is_int(value) or not low <= value <= high:
            raise fail(f"{where}.{key}", f"must be an integer from {low} to {high}")
        else:
            values[key] = value
    defaults = RetryPolicy()
    return RetryPolicy(
        max_attempts=values.get("maxAttempts", defaults.max_attempts),
        interval_seconds=values.get("intervalSeconds", defaults.interval_seconds),
        backoff_rate=values.get("backoffRate", defaults.backoff_rate),
        max_delay_seconds=values.get("maxDelaySeconds", defaults.max_delay_seconds),
    )


# -- shared checks -------------------------------------------------------------------------


def check_placeholders(text: str, where: str, allowed: frozenset[str] = PLACEHOLDERS) -> None:
    for name in placeholder_names(text):
        if name not in allowed:
            known = ", ".join(sorted(allowed))
            raise fail(where, f"unknown placeholder '{{{{{name}}}}}' (known: {known})")
    if has_unterminated_placeholder(text):
        raise fail(where, "unbalanced '{{' or '}}' (placeholders look like {{order.name}})")
