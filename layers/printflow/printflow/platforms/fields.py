"""The field parsers every platform's normaliser is built from.

Each raises :class:`MalformedPayload` naming the field (``line_items[2].quantity``) when the
value cannot be part of an order, so a 400 tells the shop what was wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from printflow.domain.order import LineItem, Property
from printflow.errors import MalformedPayload

MAX_ORDER_ID_LENGTH = 128
MAX_LINE_ITEMS = 1000
# No print order needs more; the bound keeps every quantity an exact number in DynamoDB,
# JSON and every provider's API.
MAX_QUANTITY = 1_000_000_000


def order_id(value: Any, field: str) -> str:
    """An order or line-item id: a string or integer of 1-128 printable characters."""
    if isinstance(value, bool) or value is None or value == "":
        raise MalformedPayload(f"order id missing: expected field '{field}'")
    if not isinstance(value, int | str):
        raise MalformedPayload(f"field '{field}' must be a string or an integer")
    text = str(value).strip()
    if not text or len(text) > MAX_ORDER_ID_LENGTH or not text.isprintable():
        raise MalformedPayload(
            f"field '{field}' must be 1-{MAX_ORDER_ID_LENGTH} printable characters"
        )
    return text


def opt_str(value: Any) -> str | None:
    """A text field, or None when absent or empty (objects become compact JSON)."""
    if value is None or value == "":
        return None
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def quantity(value: Any, field: str) -> int:
    """A quantity: an integer from 0 to :data:`MAX_QUANTITY`."""
    if isinstance(value, bool):
        raise MalformedPayload(f"field '{field}' must be an integer")
    if isinstance(value, str) and len(value.strip()) > len(str(MAX_QUANTITY)):
        raise MalformedPayload(f"field '{field}' must be at most {MAX_QUANTITY}")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise MalformedPayload(f"field '{field}' must be an integer") from None
    if number < 0:
        raise MalformedPayload(f"field '{field}' must not be negative")
    if number > MAX_QUANTITY:
        raise MalformedPayload(f"field '{field}' must be at most {MAX_QUANTITY}")
    return number


def line_items(
    value: Any, field: str, build: Callable[[dict[str, Any], str], LineItem]
) -> tuple[LineItem, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise MalformedPayload(f"field '{field}' must be a list")
    if len(value) > MAX_LINE_ITEMS:
        raise MalformedPayload(f"field '{field}' has more than {MAX_LINE_ITEMS} entries")
    items = []
    for index, raw in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(raw, dict):
            raise MalformedPayload(f"field '{where}' must be an object")
        items.append(build(raw, where))
    return tuple(items)


def named_properties(value: Any, where: str, name_key: str, value_key: str) -> tuple[Property, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise MalformedPayload(f"field '{where}' must be a list")
    props = []
    for entry in value:
        if not isinstance(entry, dict) or entry.get(name_key) in (None, ""):
            raise MalformedPayload(f"field '{where}' entries need a '{name_key}'")
        props.append(Property(str(entry[name_key]), opt_str(entry.get(value_key)) or ""))
    return tuple(props)
