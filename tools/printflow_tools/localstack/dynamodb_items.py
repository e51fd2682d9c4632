"""moto's per-item work in a DynamoDB read, with the same results at a fraction of the cost.

A ``Query`` page makes moto, for every item it reads: measure the item twice (its 1 MB page
rule), deep-copy it, and, on an index with a ``KEYS_ONLY`` or ``INCLUDE`` projection, project
it. Each is written generically: the size rebuilds every nested value (``DynamoType(v)`` of
each map entry) before measuring it, the copy goes through ``copy.deepcopy``'s dispatch for
every attribute, and the projection turns the whole item into plain Python and back
(``TypeDeserializer`` / ``TypeSerializer``) and builds the new item one attribute at a time,
re-measuring the whole item at each (quadratic). The functions here compute the same values
directly:

- :func:`item_size` / :func:`value_size`: moto's ``Item.size`` / ``DynamoType.size``, rule for
  rule (numbers by their digits, sets by their members, maps by key bytes plus values,
  booleans and NULL as 1, the rest by UTF-8 bytes), without rebuilding anything;
- :func:`cast_value`: moto's ``DynamoType.cast_value`` (what every comparison of a sort or a
  key condition reads) for strings, binaries, booleans, numbers and NULL, without the five
  type tests before it; containers and sets go to moto's own;
- :func:`copy_value`: moto's ``DynamoType.__deepcopy__`` (lists and maps copied, sets as new
  lists, scalars shared; the memo kept), without the dispatch;
- :func:`project_on_index`: moto's ``SecondaryIndex.project`` picking the projected top-level
  attributes, in moto's order (first mention in the projection list), as copies. Only when
  the plain-Python round trip would give the value back unchanged (strings, booleans, NULL,
  numbers already in the form ``Decimal`` prints, and maps and lists of those); otherwise (a
  set, whose round trip reorders it, a binary, a number such as ``1e3``) moto's own
  projection runs.

The integration test answers every query of its table with these and with moto's originals,
page by page, and requires the same answers.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import DYNAMODB_CONTEXT
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import SecondaryIndex
from moto.dynamodb.models.utilities import bytesize

_SETS = frozenset({"SS", "NS", "BS"})


def value_size(value: DynamoType) -> int:
    """``DynamoType.size``, computed in place (its rules in its order; strings first, as the
    commonest: they fall through all of moto's tests to its last rule, their UTF-8 bytes)."""
    kind, inner = value.type, value.value
    if kind == "S" and type(inner) is str:
        return len(inner.encode("utf-8"))
    if kind == "N":
        return len(str(inner))
    if kind in _SETS:
        if kind == "NS":
            return sum(len(str(v)) for v in inner)
        return sum(1 if isinstance(v, bool) else bytesize(v) for v in inner)
    if kind == "L":
        return sum(_size_of(v) for v in inner)
    if kind == "M":
        # moto measures DynamoType(v), a rebuilt copy of v: the same type and value.
        return sum(_key_size(k) + _size_of(v if type(v) is DynamoType else DynamoType(v))
                   for k, v in inner.items())  # fmt: skip
    if isinstance(inner, bool):
        return 1
    return bytesize(inner)


def _key_size(key: Any) -> int:
    return len(key.encode("utf-8")) if type(key) is str else bytesize(key)


def _size_of(value: Any) -> int:
    if type(value) is not DynamoType:
        return int(value.size())
    if value.type == "S" and type(value.value) is str:
        return len(value.value.encode("utf-8"))
    return value_size(value)


def item_size(item: Item) -> int:
    """``Item.size``: attribute name bytes plus value sizes."""
    return sum(_key_size(key) + _size_of(value) for key, value in item.attrs.items())


_AS_STORED = frozenset({"S", "B", "BOOL"})


def cast_value(original: Callable[[DynamoType], Any]) -> Callable[[DynamoType], Any]:
    """``DynamoType.cast_value``: scalars directly, the rest by moto's ``original``."""

    def cast(value: DynamoType) -> Any:
        kind = value.type
        if kind in _AS_STORED:
            return value.value
        if kind == "N":
            return Decimal(value.value)
        if kind == "NULL":
            return None
        return original(value)

    return cast


def copy_value(value: DynamoType, memo: dict[int, Any]) -> DynamoType:
    """``DynamoType.__deepcopy__``: the same copy, built without ``copy.deepcopy``'s dispatch."""
    import copy

    found = memo.get(id(value))
    if found is not None:
        return found  # type: ignore[no-any-return]
    result = value.__class__.__new__(value.__class__)
    memo[id(value)] = result
    result.type = kind = value.type
    inner = value.value
    if kind == "L":
        result.value = [
            copy_value(v, memo) if type(v) is DynamoType else copy.deepcopy(v, memo) for v in inner
        ]
    elif kind == "M":
        result.value = {
            k: copy_value(v, memo) if type(v) is DynamoType else copy.deepcopy(v, memo)
            for k, v in inner.items()
        }
    elif kind in _SETS:
        result.value = list(inner)
    else:
        result.value = inner
    return result


def _survives_round_trip(value: Any) -> bool:
    """True when moto's projection (to plain Python and back) returns ``value`` unchanged."""
    if type(value) is not DynamoType:
        return False
    kind, inner = value.type, value.value
    if kind == "S":
        return type(inner) is str
    if kind == "BOOL":
        return type(inner) is bool
    if kind == "NULL":
        return inner is True
    if kind == "N":
        try:
            return type(inner) is str and str(DYNAMODB_CONTEXT.create_decimal(inner)) == inner
        except ArithmeticError:
            return False
    if kind == "L":
        return type(inner) is list and all(_survives_round_trip(v) for v in inner)
    if kind == "M":
        return type(inner) is dict and all(
            type(k) is str and _survives_round_trip(v) for k, v in inner.items()
        )
    return False  # sets come back reordered, binaries as bytes: moto's projection decides


def project_on_index(original: Callable[[SecondaryIndex, Item], Item]) -> Any:
    """``SecondaryIndex.project`` picking the projected attributes (see the module doc)."""

    def project(self: SecondaryIndex, item: Item) -> Item:
        projection = self.projection or {}
        kind = projection.get("ProjectionType")
        if kind not in ("KEYS_ONLY", "INCLUDE"):
            return original(self, item)
        names = self.table_key_attrs + [key["AttributeName"] for key in self.schema]
        if kind == "INCLUDE":
            names = names + list(projection.get("NonKeyAttributes", []))
        picked: dict[str, DynamoType] = {}
        memo: dict[int, Any] = {}
        for name in names:
            if name in picked or name not in item.attrs:
                continue
            value = item.attrs[name]
            if not _survives_round_trip(value):
                return original(self, item)
            picked[name] = copy_value(value, memo)
        # An item built as moto's deepcopy builds one: its size was checked when written,
        # and a projection of it is smaller. (object.__new__: moto's BaseModel.__new__ would
        # also keep every projected item alive in its instance tracker.)
        projected: Item = object.__new__(Item)
        projected.hash_key = item.hash_key
        projected.range_key = item.range_key
        attrs = LimitedSizeDict.__new__(LimitedSizeDict)
        dict.__init__(attrs, picked)
        projected.attrs = attrs
        return projected

    project.__wrapped__ = original  # type: ignore[attr-defined]
    return project
