"""The placeholder vocabulary of send-email templates, shared by validation and rendering.

A flow is checked against this set when it is validated, so a typo such as
``{{order.nmae}}`` fails at compile time instead of reaching a customer's inbox. The email
step imports the same names and pattern to render templates, so both sides always agree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDERS: frozenset[str] = frozenset(
    {
        "order.name",
        "order.number",
        "order.orderId",
        "order.storefrontId",
        "order.email",
        "order.status",
        "error.error",
        "error.cause",
        "config.operationsEmail",
    }
)

# A write-back note may also list the order's files: one "name: link" line per artifact.
ARTIFACT_LINKS = "artifacts.links"
NOTE_PLACEHOLDERS: frozenset[str] = PLACEHOLDERS | {ARTIFACT_LINKS}

# Placeholders that may stand alone as an email recipient.
RECIPIENT_PLACEHOLDERS: frozenset[str] = frozenset({"order.email", "config.operationsEmail"})

# ``{{ name }}``: whatever sits between the braces is the (stripped) name, so a malformed
# name is reported as unknown rather than silently left in the text.
PLACEHOLDER_PATTERN = re.compile(r"\{\{([^{}]*)\}\}")

# Characters replaced by a space when a value is rendered into a single-line field
# (a subject or a header): customer data must never be able to inject a header line.
_LINE_BREAKING = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def placeholder_names(text: str) -> list[str]:
    """Names of the placeholders in ``text``, in order of appearance (duplicates kept)."""
    return [match.group(1).strip() for match in PLACEHOLDER_PATTERN.finditer(text)]


def has_unterminated_placeholder(text: str) -> bool:
    """True when ``{{`` or ``}}`` remains after removing every well-formed placeholder."""
    rest = PLACEHOLDER_PATTERN.sub("", text)
    return "{{" in rest or "}}" in rest


def render_placeholders(
    text: str, values: Mapping[str, str | None], *, single_line: bool = False
) -> str:
    """Replace each placeholder with its value (missing or ``None`` values become "").

    ``single_line`` turns control characters in the *values* into spaces, for subjects and
    headers. The template itself was validated when the flow was compiled.
    """

    def replace(match: re.Match[str]) -> str:
        value = values.get(match.group(1).strip()) or ""
        return _LINE_BREAKING.sub(" ", value) if single_line else value

    return PLACEHOLDER_PATTERN.sub(replace, text)
