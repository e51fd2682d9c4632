"""DynamoDB's JSON-protocol answer to a read (``Query``, ``Scan``), encoded in one pass.

moto turns every answer into JSON with a generic serializer: for each member of each
structure of the operation's output shape it builds a picker context and tries up to six
alias spellings of the member's name, so every attribute of every item costs some forty
Python calls (a page of 100 orders took ~0.2 s). A read's result is already wire-shaped
(``{"Items": [{"name": {"S": "..."}}], "Count": ...}``), so the encoder here walks the output
shape once, at first use, into one small function per shape, and encodes a result with them.

It is exact or it steps aside: every rule of moto's JSON serializer that a read's answer can
meet is kept (members in the shape's order, ``None`` members left out, integers and doubles
converted, blobs base64-encoded, ``json.dumps`` with moto's own settings), and anything else
(a member name the shape does not have, a value of an unexpected type, a ``None`` in a list
or map, a timestamp or document shape) raises :class:`NotWireShaped`, and the caller hands
the result to moto's serializer instead. The test compares the two byte for byte.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

Encoder = Callable[[Any], Any]


class NotWireShaped(Exception):
    """The result holds something the fast encoder does not handle: use moto's serializer."""


def output_encoder(operation: OperationModel) -> Encoder | None:
    """The encoder of ``operation``'s output, or None when its shapes are not all handled."""
    shape = operation.output_shape
    if not isinstance(shape, StructureShape):
        return None
    try:
        return _compile(shape, {})
    except _Unsupported:
        return None


class _Unsupported(Exception):
    """A shape the encoder does not handle (timestamps, documents, serialized names)."""


def _compile(shape: Shape, done: dict[str, list[Encoder]]) -> Encoder:
    # Shapes are recursive (an AttributeValue's M and L hold AttributeValues): each named
    # shape is compiled once, and a shape met again while compiling gets a forwarder.
    if shape.serialization.get("name"):
        raise _Unsupported(shape.name)
    known = done.get(shape.name)
    if known is not None:
        return lambda value: known[0](value)
    cell: list[Encoder] = []
    done[shape.name] = cell
    encoder = _compile_new(shape, done)
    cell.append(encoder)
    return encoder


def _compile_new(shape: Shape, done: dict[str, list[Encoder]]) -> Encoder:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if shape.is_document_type:
            raise _Unsupported(shape.name)
        return _structure({name: _compile(m, done) for name, m in shape.members.items()})
    if kind == "list":
        assert isinstance(shape, ListShape)
        return _list(_compile(shape.member, done))
    if kind == "map":
        assert isinstance(shape, MapShape)
        if shape.key.type_name != "string":
            raise _Unsupported(shape.name)
        _compile(shape.key, done)  # its own checks
        return _map(_compile(shape.value, done))
    simple = _SIMPLE.get(kind)
    if simple is None:
        raise _Unsupported(f"{shape.name}: {kind}")
    return simple


def _structure(members: dict[str, Encoder]) -> Encoder:
    """Members in the shape's order; a member that is None is left out (as moto does)."""
    order = {name: i for i, name in enumerate(members)}

    def encode(value: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise NotWireShaped(type(value).__name__)
        if len(value) == 1:  # an AttributeValue: the common case, kept short
            ((name, member),) = value.items()
            member_encoder = members.get(name)
            if member_encoder is None:
                raise NotWireShaped(name)
            return {} if member is None else {name: member_encoder(member)}
        for name in value:
            if name not in members:
                # moto's serializer would drop it, or find it under an alias: step aside.
                raise NotWireShaped(name)
        names = sorted(value, key=order.__getitem__)
        return {n: members[n](value[n]) for n in names if value[n] is not None}

    return encode


def _list(member: Encoder) -> Encoder:
    def encode(value: Any) -> list[Any]:
        if type(value) is not list:
            raise NotWireShaped(type(value).__name__)
        if None in value:
            raise NotWireShaped("None in a list")
        return [member(v) for v in value]

    return encode


def _map(member: Encoder) -> Encoder:
    def encode(value: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise NotWireShaped(type(value).__name__)
        out = {}
        for key, item in value.items():
            if type(key) is not str or item is None:
                raise NotWireShaped("map key or value")
            out[key] = member(item)
        return out

    return encode


def _string(value: Any) -> str:
    if type(value) is not str:
        raise NotWireShaped(type(value).__name__)
    return value


def _integer(value: Any) -> int:
    if type(value) is not int:
        raise NotWireShaped(type(value).__name__)
    return value


def _double(value: Any) -> float:
    if type(value) not in (int, float):
        raise NotWireShaped(type(value).__name__)
    return float(value)


def _boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise NotWireShaped(type(value).__name__)
    return value


def _blob(value: Any) -> str:
    if type(value) is str:
        value = value.encode("utf-8")
    if type(value) is not bytes:
        raise NotWireShaped(type(value).__name__)
    return base64.b64encode(value).strip().decode("utf-8")


_SIMPLE: dict[str, Encoder] = {
    "string": _string,
    "integer": _integer,
    "long": _integer,
    "double": _double,
    "float": _double,
    "boolean": _boolean,
    "blob": _blob,
}
