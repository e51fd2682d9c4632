"""Conversion between Python values and DynamoDB attribute values (low-level client)."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Any


@cache
def _codecs() -> tuple[Any, Any]:
    # boto3.dynamodb imports all of boto3 (~0.15 s): load it on first use, not at import.
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def _to_dynamo_safe(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_dynamo_safe(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def serialize_item(item: dict[str, Any]) -> dict[str, Any]:
    """Plain dict -> attribute-value map. ``None`` values are dropped (absent attributes)."""
    serializer, _ = _codecs()
    return {k: serializer.serialize(_to_dynamo_safe(v)) for k, v in item.items() if v is not None}


def serialize_value(value: Any) -> dict[str, Any]:
    serializer, _ = _codecs()
    return serializer.serialize(_to_dynamo_safe(value))  # type: ignore[no-any-return]


def deserialize_item(item: dict[str, Any]) -> dict[str, Any]:
    _, deserializer = _codecs()
    return {k: _from_dynamo(deserializer.deserialize(v)) for k, v in item.items()}
