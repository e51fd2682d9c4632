"""Parsing a storefront's JSON defensively: the one parser every platform's payload goes through.

A body can be validly signed and still hostile (or just broken): nested 100,000 levels deep,
an integer of 5,000 digits (CPython refuses to convert those at all), ``Infinity`` or
``1e400``. Each of these is refused here with :class:`MalformedPayload` naming the problem,
before any normaliser sees the value, so no later step (``str()`` of an int, DynamoDB's
38-digit numbers, ``int(float('inf'))``) can raise something that becomes a 500.
"""

from __future__ import annotations

import json
import math
from typing import Any

from printflow.errors import MalformedPayload

# Deep enough for any real order (Shopify's payload nests about 6 levels), far below the
# interpreter's recursion limit.
MAX_JSON_DEPTH = 64
# DynamoDB numbers hold 38 significant digits; nothing in an order needs more.
MAX_NUMBER_DIGITS = 38


def _digits(text: str) -> int:
    mantissa = text.lower().split("e", 1)[0]
    return sum(1 for c in mantissa if c.isdigit())


def _check_digits(text: str) -> None:
    digits = _digits(text)
    if digits > MAX_NUMBER_DIGITS:
        raise MalformedPayload(
            f"body holds a number of {digits} digits; at most {MAX_NUMBER_DIGITS} are allowed"
        )


def _parse_int(text: str) -> int:
    _check_digits(text)
    return int(text)


def _parse_float(text: str) -> float:
    _check_digits(text)
    value = float(text)
    if not math.isfinite(value):
        raise MalformedPayload(f"body holds the number {text[:40]}, which is out of range")
    return value


def _refuse_constant(name: str) -> Any:
    raise MalformedPayload(f"body holds {name}, which is not a JSON number")


def _check_depth(value: Any) -> None:
    # Iterative: a recursive walk is what a deep document would break.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise MalformedPayload(f"body nests deeper than {MAX_JSON_DEPTH} levels")
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or :class:`MalformedPayload` saying what is wrong with it."""
    try:
        value = json.loads(
            body,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_refuse_constant,
        )
    except RecursionError:
        # The C scanner stops at the interpreter's recursion limit (~1,000 levels) cleanly.
        raise MalformedPayload(f"body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedPayload(f"body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise MalformedPayload("body must be a JSON object")
    _check_depth(value)
    return value
