"""Hypothesis strategies for the Voxta catalog, derived from the Struct types themselves.

Every message and shape is built field by field from ``msgspec.inspect`` type info, so a
field added to the catalog is generated without touching this module. Ids get lowercase
GUIDs, timestamps .NET-style strings, enum fields a member or (for ``Lenient`` fields) the
member's number, ``msgspec.Raw`` any JSON value. Optional fields are left out half the time.
"""

from __future__ import annotations

import enum
import functools
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st

from strategies import json_values, raw_values
from voxta_proto.voxta import (
    CLIENT_MESSAGE_TYPES,
    SERVER_MESSAGE_TYPES,
    AnyClientMessage,
    AnyServerMessage,
    VoxtaEnum,
)

__all__ = [
    "guids",
    "invalid_server_message_json",
    "message_json",
    "messages_of",
    "random_message_json",
    "timestamps",
    "any_client_message",
    "any_server_message",
]

S = TypeVar("S", bound=msgspec.Struct)

JSON_INTS = st.integers(min_value=-(2**53), max_value=2**53)
"""Integers every JSON reader (the .NET server's too) keeps exactly."""
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
TEXT = st.text(max_size=20)

guids = st.uuids().map(str)
"""Lowercase hyphenated GUID strings, as the server writes them."""

timestamps = st.builds(
    lambda dt, ticks, offset: f"{dt:%Y-%m-%dT%H:%M:%S}.{ticks:07d}{offset}",
    st.datetimes(),
    st.integers(min_value=0, max_value=9_999_999),
    st.sampled_from(["+00:00", "-05:00", "+09:30"]),
)
"""``DateTimeOffset`` strings with seven fractional digits."""

_TIMESTAMP_FIELDS = frozenset({"timestamp", "created_at", "date_created", "date_modified"})


def _is_id_field(name: str) -> bool:
    return name == "id" or name.endswith(("_id", "_ids"))


def _strings_for(field: str) -> st.SearchStrategy[str]:
    if _is_id_field(field):
        return guids
    if field in _TIMESTAMP_FIELDS:
        return timestamps
    return TEXT


def _enum_values(enum_type: type[enum.Enum], *, numbers: bool) -> st.SearchStrategy[Any]:
    members = list(enum_type)
    strategy: st.SearchStrategy[Any] = st.sampled_from(members)
    if numbers and issubclass(enum_type, VoxtaEnum):
        strategy |= st.integers(min_value=0, max_value=len(members) - 1)
    return strategy


def _for_type(info: mi.Type, field: str) -> st.SearchStrategy[Any]:
    if isinstance(info, mi.StructType):
        return _for_struct(info.cls)
    if isinstance(info, mi.UnionType):
        options = [t for t in info.types if not isinstance(t, mi.NoneType)]
        enums = [t for t in options if isinstance(t, mi.EnumType)]
        if enums and len(options) == 2:  # Lenient[SomeEnum]: a member or its number
            return _enum_values(enums[0].cls, numbers=True)
        return st.one_of([_for_type(t, field) for t in options])
    if isinstance(info, mi.EnumType):
        return _enum_values(info.cls, numbers=False)
    if isinstance(info, mi.BoolType):
        return st.booleans()
    if isinstance(info, mi.IntType):
        return JSON_INTS
    if isinstance(info, mi.FloatType):
        return FLOATS
    if isinstance(info, mi.StrType):
        return _strings_for(field)
    if isinstance(info, (mi.VarTupleType, mi.ListType)):
        item_field = field[:-1] if field.endswith("_ids") else field
        return st.lists(_for_type(info.item_type, item_field), max_size=3).map(tuple)
    if isinstance(info, mi.DictType):
        return st.dictionaries(_for_type(info.key_type, ""), _for_type(info.value_type, field),
                               max_size=3)
    if isinstance(info, mi.RawType):
        return raw_values()
    raise TypeError(f"no strategy for {info!r} (field {field!r})")


@functools.cache
def _for_struct(cls: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    kwargs: dict[str, st.SearchStrategy[Any]] = {}
    for field in info.fields:
        value = _for_type(field.type, field.name)
        if field.required:
            kwargs[field.name] = value
        elif isinstance(field.type, mi.RawType):  # Raw cannot be None; absent is UNSET
            kwargs[field.name] = st.just(msgspec.UNSET) | value
        elif field.default is not None:  # a non-None default (``retry: bool = True``)
            kwargs[field.name] = value
        else:
            kwargs[field.name] = st.none() | value
    return st.builds(cls, **kwargs)


def messages_of(cls: type[S]) -> st.SearchStrategy[S]:
    """Instances of one catalog Struct (message or shape), every field exercised."""
    return _for_struct(cls)


def any_client_message() -> st.SearchStrategy[AnyClientMessage]:
    """Any of the 39 client messages."""
    options: list[st.SearchStrategy[Any]] = [_for_struct(c) for c in CLIENT_MESSAGE_TYPES.values()]
    return st.one_of(options)


def any_server_message() -> st.SearchStrategy[AnyServerMessage]:
    """Any server message."""
    options: list[st.SearchStrategy[Any]] = [_for_struct(c) for c in SERVER_MESSAGE_TYPES.values()]
    return st.one_of(options)


def message_json(strategy: st.SearchStrategy[msgspec.Struct]) -> st.SearchStrategy[bytes]:
    """The wire JSON of the messages ``strategy`` draws."""
    return strategy.map(msgspec.json.encode)


_ALL_WIRE_FIELDS = sorted(
    {
        f.encode_name
        for cls in [*CLIENT_MESSAGE_TYPES.values(), *SERVER_MESSAGE_TYPES.values()]
        for f in msgspec.structs.fields(cls)
    }
)

type_names = st.one_of(
    st.sampled_from(sorted(SERVER_MESSAGE_TYPES)),
    st.sampled_from(sorted(CLIENT_MESSAGE_TYPES)),
    st.text(max_size=12),
)
"""``$type`` values: known in either direction, or anything."""


_SMALL_JSON = json_values(4)
_NON_OBJECTS = json_values(4).filter(lambda v: not isinstance(v, dict))
_NON_STRINGS = json_values(4).filter(lambda v: not isinstance(v, str))
_SHAPES = st.sampled_from(["typed", "typed", "typed", "untyped", "odd-type", "not-object"])
_RANDOM_FIELDS = st.dictionaries(st.sampled_from(_ALL_WIRE_FIELDS), _SMALL_JSON, max_size=5)


@st.composite
def random_message_json(draw: st.DrawFn) -> bytes:
    """A JSON object with a random (often known) ``$type`` and fields of real messages
    holding random values; sometimes no ``$type``, a non-string one, or not an object."""
    fields = draw(_RANDOM_FIELDS)
    shape = draw(_SHAPES)
    if shape == "not-object":
        return msgspec.json.encode(draw(_NON_OBJECTS))
    obj: dict[str, Any] = {}
    if shape == "typed":
        obj["$type"] = draw(type_names)
    elif shape == "odd-type":
        obj["$type"] = draw(_NON_STRINGS)
    obj.update(fields)
    return msgspec.json.encode(obj)


_CLASSES_WITH_REQUIRED_FIELDS = st.sampled_from([
    cls for cls in SERVER_MESSAGE_TYPES.values()
    if any(f.required for f in msgspec.structs.fields(cls))
])


@st.composite
def invalid_server_message_json(draw: st.DrawFn) -> tuple[str, bytes]:
    """A real server message with one required field removed: (``$type``, JSON)."""
    cls = draw(_CLASSES_WITH_REQUIRED_FIELDS)
    obj = msgspec.json.decode(msgspec.json.encode(draw(messages_of(cls))))
    required = [f.encode_name for f in msgspec.structs.fields(cls) if f.required]
    del obj[draw(st.sampled_from(required))]
    return obj["$type"], msgspec.json.encode(obj)
