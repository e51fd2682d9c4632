"""Field parsers the providers' settings parsers share. Each raises
:class:`~printflow.errors.ValidationError` as ``<where>.<field>: <problem>``."""

from __future__ import annotations

import re
from typing import Any

from printflow.errors import ValidationError
from printflow.validators import bounded_int, is_secret_name

MAX_ID_LENGTH = 256
MAX_OUTPUT_FORMATS = 20
_FORMAT_NAME = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,31}$")


def refuse_unknown(doc: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ValidationError(f"{where}: unknown field(s) {', '.join(unknown)}")


def optional_identifier(doc: dict[str, Any], key: str, where: str) -> str | None:
    return None if doc.get(key) is None else identifier(doc, key, where)


def identifier(doc: dict[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
        raise ValidationError(f"{where}.{key}: required, a non-empty string")
    if not value.isprintable():
        raise ValidationError(f"{where}.{key}: must be printable text")
    return value


def secret_name(doc: dict[str, Any], where: str) -> str:
    value = doc.get("credentialsSecret")
    if not is_secret_name(value):
        raise ValidationError(
            f"{where}.credentialsSecret: required, a Secrets Manager secret name "
            "(letters, digits and /_+=.@-)"
        )
    return value


def integer(doc: dict[str, Any], key: str, where: str, *, minimum: int, maximum: int) -> int:
    return bounded_int(
        doc.get(key),
        f"{where}.{key}: must be an integer from {minimum} to {maximum}",
        minimum=minimum,
        maximum=maximum,
    )


def output_formats(value: Any, where: str) -> tuple[str, ...] | None:
    """Declared output formats: lower-case format names, duplicates dropped."""
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= MAX_OUTPUT_FORMATS
        or not all(isinstance(v, str) and _FORMAT_NAME.match(v) for v in value)
    ):
        raise ValidationError(
            f'{where}: a list of 1-{MAX_OUTPUT_FORMATS} lower-case format names (e.g. ["pdf"])'
        )
    return tuple(dict.fromkeys(value))
