"""Property tests of the catalog: round trips of every message, ``$type`` first, nulls left
out, enums from any case or number, and garbage that only ever gives the documented
outcomes (never another exception), alone and inside hub frames."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import voxta_strategies as vs
from voxta_proto.errors import MessageValidationError
from voxta_proto.hub import Invocation
from voxta_proto.voxta import (
    CLIENT_MESSAGE_TYPES,
    SERVER_MESSAGE_TYPES,
    InvalidServerMessage,
    ServerEvent,
    ServerMessage,
    UnknownServerMessage,
    VoxtaEnum,
    decode_client_message,
    decode_server_message,
    encode_message,
    server_codec,
    wrap_server_message,
)
from voxta_proto.voxta.base import VoxtaMessage

PER_CLASS = settings(
    max_examples=max(5, settings().max_examples // 10),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""Every class gets its own test (about 100 of them), so each runs a tenth of the
profile's examples; ``HYPOTHESIS_PROFILE=fuzz`` scales them up with the rest."""

HALF = settings(max_examples=max(10, settings().max_examples // 2))
"""For the garbage tests, whose inputs are slow to generate."""

CLIENT_CLASSES = list(CLIENT_MESSAGE_TYPES.values())
SERVER_CLASSES = list(SERVER_MESSAGE_TYPES.values())


def class_id(cls: type) -> str:
    return cls.__name__


def assert_no_null_members(message: msgspec.Struct, encoded: Any) -> None:
    """Every None field is absent from the JSON, every other field present, recursively
    (``Raw`` contents are the sender's business and are not inspected)."""
    assert isinstance(encoded, dict)
    expected_keys = set()
    if isinstance(message, VoxtaMessage) or message.__struct_config__.tag_field:
        expected_keys.add("$type")
    for field in msgspec.structs.fields(message):
        value = getattr(message, field.name)
        if value is None or value is msgspec.UNSET or value is field.default is True:
            continue  # left out: absent, or the default true (omit_defaults)
        expected_keys.add(field.encode_name)
        inner = encoded[field.encode_name]
        if isinstance(value, msgspec.Struct):
            assert_no_null_members(value, inner)
        elif isinstance(value, tuple):
            for item, json_item in zip(value, inner, strict=True):
                if isinstance(item, msgspec.Struct):
                    assert_no_null_members(item, json_item)
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, msgspec.Struct):
                    assert_no_null_members(item, inner[key])
    assert set(encoded) == expected_keys


def check_encoding(message: VoxtaMessage) -> bytes:
    encoded = encode_message(message)
    tag = message.__struct_config__.tag
    assert isinstance(tag, str)
    assert encoded.startswith(b'{"$type":' + msgspec.json.encode(tag) + b",") or encoded == (
        b'{"$type":' + msgspec.json.encode(tag) + b"}"
    )
    assert_no_null_members(message, json.loads(encoded))
    return encoded


@pytest.mark.parametrize("cls", CLIENT_CLASSES, ids=class_id)
@PER_CLASS
@given(data=st.data())
def test_client_message_round_trip(cls: type[VoxtaMessage], data: st.DataObject) -> None:
    message = data.draw(vs.messages_of(cls))
    encoded = check_encoding(message)
    assert decode_client_message(encoded) == message


@pytest.mark.parametrize("cls", SERVER_CLASSES, ids=class_id)
@PER_CLASS
@given(data=st.data())
def test_server_message_round_trip(cls: type[VoxtaMessage], data: st.DataObject) -> None:
    message = data.draw(vs.messages_of(cls))
    encoded = check_encoding(message)
    assert decode_server_message(encoded) == message


@HALF
@given(data=vs.random_message_json())
def test_random_json_gives_only_documented_outcomes(data: bytes) -> None:
    obj = json.loads(data)
    type_name = obj.get("$type") if isinstance(obj, dict) else None
    known = isinstance(type_name, str) and type_name in SERVER_MESSAGE_TYPES
    try:
        message = decode_server_message(data)
    except MessageValidationError as exc:
        error: MessageValidationError | None = exc
    else:
        error = None
    if error is not None:
        assert error.type_name == (type_name if known else None)
        return
    if isinstance(message, UnknownServerMessage):
        assert message.type_name not in SERVER_MESSAGE_TYPES
        assert bytes(message.raw) == data
    else:
        assert isinstance(message, ServerMessage)


@HALF
@given(data=vs.random_message_json())
def test_random_json_never_breaks_the_client_decoder(data: bytes) -> None:
    with contextlib.suppress(MessageValidationError):
        decode_client_message(data)


@given(st.binary(max_size=64))
def test_random_bytes_give_only_validation_errors(data: bytes) -> None:
    try:
        message = decode_server_message(data)
    except MessageValidationError:
        return
    assert isinstance(message, (ServerMessage, UnknownServerMessage))


@settings(HALF, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    items=st.lists(
        st.one_of(
            vs.any_server_message().map(lambda m: ("good", m)),
            vs.random_message_json().map(lambda b: ("random", b)),
            vs.invalid_server_message_json().map(lambda t: ("invalid", t)),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_frames_keep_good_messages_around_bad_ones(items: list[tuple[str, Any]]) -> None:
    frame = b""
    for kind, item in items:
        argument = encode_message(item) if kind == "good" else (
            item if kind == "random" else item[1]
        )
        frame += b'{"type":1,"target":"ReceiveMessage","arguments":[' + argument + b"]}\x1e"
    decoded = server_codec().decode_records(frame)
    assert len(decoded) == len(items)
    for (kind, item), record in zip(items, decoded, strict=True):
        assert isinstance(record, Invocation)
        [event] = record.arguments
        if kind == "good":
            assert record == wrap_server_message(item)
        elif kind == "invalid":
            assert isinstance(event, InvalidServerMessage)
            assert event.type_name == item[0]
            assert bytes(event.raw) == item[1]
        else:
            assert event == _expected_event(item)


def _expected_event(data: bytes) -> ServerEvent:
    """What the codec must make of one argument: what decode_server_message says."""
    try:
        return decode_server_message(data)
    except MessageValidationError as exc:
        return InvalidServerMessage(exc.type_name, msgspec.Raw(data), str(exc))


# --- enums ------------------------------------------------------------------------------------


def _enum_fields(cls: type[msgspec.Struct]) -> list[tuple[str, str, type[VoxtaEnum]]]:
    """(attribute, wire name, enum) of the top-level ``Lenient`` enum fields of ``cls``."""
    found = []
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        options = field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else ()
        for option in options:
            if isinstance(option, msgspec.inspect.EnumType) and issubclass(option.cls, VoxtaEnum):
                found.append((field.name, field.encode_name, option.cls))
    return found


ENUM_CLASSES = [cls for cls in [*CLIENT_CLASSES, *SERVER_CLASSES] if _enum_fields(cls)]


@pytest.mark.parametrize("cls", ENUM_CLASSES, ids=class_id)
@PER_CLASS
@given(data=st.data())
def test_enum_fields_decode_from_any_case_and_numbers(
    cls: type[VoxtaMessage], data: st.DataObject
) -> None:
    message = data.draw(vs.messages_of(cls))
    decode = decode_client_message if cls in CLIENT_CLASSES else decode_server_message
    obj = json.loads(encode_message(message))
    # Raw fields are compared byte for byte, so both sides go through json.dumps.
    baseline = decode(json.dumps(obj).encode())
    for name, wire_name, enum_type in _enum_fields(cls):
        member = getattr(message, name)
        if member is None:
            continue
        assert isinstance(member, enum_type)
        assert obj[wire_name] == member.value  # encoded as the name
        assert getattr(baseline, name) is member
        spelling = data.draw(st.sampled_from(["lower", "upper", "number", "same"]))
        obj[wire_name] = {
            "lower": member.value.lower(),
            "upper": member.value.upper(),
            "number": member.number,
            "same": member.value,
        }[spelling]
    assert decode(json.dumps(obj).encode()) == baseline
