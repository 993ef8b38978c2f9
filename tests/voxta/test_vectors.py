"""Golden vectors: every example of the protocol reference plus our own, per direction.

``tests/vectors/{client,server}_messages.jsonl`` hold one message per line; each must decode
to the class its ``$type`` names and encode back to the same JSON (absent == null). The
``*_quirks.jsonl`` files hold what real peers send that is odd but legal (extra fields,
enum numbers, lowercase names) or illegal (what the real server refuses), each with the
expected outcome.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from voxta_proto.errors import MessageValidationError
from voxta_proto.hub import Invocation
from voxta_proto.voxta import (
    CLIENT_MESSAGE_TYPES,
    SERVER_MESSAGE_TYPES,
    InvalidClientMessage,
    InvalidServerMessage,
    UnknownServerMessage,
    client_codec,
    decode_client_message,
    decode_server_message,
    encode_message,
    server_codec,
    wrap_client_message,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def load_lines(name: str) -> list[bytes]:
    lines = (VECTORS / name).read_bytes().splitlines()
    return [line for line in lines if line.strip()]


SERVER_VECTORS = load_lines("server_messages.jsonl")
CLIENT_VECTORS = load_lines("client_messages.jsonl")
SERVER_QUIRKS = [json.loads(line) for line in load_lines("server_quirks.jsonl")]
CLIENT_QUIRKS = [json.loads(line) for line in load_lines("client_quirks.jsonl")]


def without_nulls(value: Any) -> Any:
    """JSON with every ``null`` member dropped, recursively (absent and null are equal)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


DEFAULT_TRUE = {("chatSessionError", "retry"), ("error", "retry")}
"""Fields whose default is ``true`` (as in the server's model): the .NET server writes
them, our encoder leaves a true value out (``omit_defaults``) and decodes absent as true."""


def as_encoded(expected: dict[str, Any]) -> dict[str, Any]:
    """``expected`` as our encoder writes it: nulls and default-true fields left out."""
    kept = {k: v for k, v in expected.items()
            if not ((expected["$type"], k) in DEFAULT_TRUE and v is True)}
    return dict(without_nulls(kept))


def find_vector(lines: list[bytes], type_name: str, contains: bytes = b"") -> bytes:
    """The first golden vector of ``type_name`` whose JSON contains ``contains``."""
    return next(
        line for line in lines if vector_id(line) == type_name and contains in line
    )


def vector_id(line: bytes) -> str:
    return str(json.loads(line)["$type"])


def quirk_id(quirk: dict[str, Any]) -> str:
    return str(quirk["note"])


# --- golden round trips ------------------------------------------------------------------


@pytest.mark.parametrize("line", SERVER_VECTORS, ids=vector_id)
def test_server_vector_decodes_to_its_class_and_round_trips(line: bytes) -> None:
    expected = json.loads(line)
    message = decode_server_message(line)
    assert type(message) is SERVER_MESSAGE_TYPES[expected["$type"]]
    encoded = encode_message(message)
    assert without_nulls(json.loads(encoded)) == as_encoded(expected)
    assert encoded.startswith(b'{"$type":')
    assert decode_server_message(encoded) == message


@pytest.mark.parametrize("line", CLIENT_VECTORS, ids=vector_id)
def test_client_vector_decodes_to_its_class_and_round_trips(line: bytes) -> None:
    expected = json.loads(line)
    message = decode_client_message(line)
    assert type(message) is CLIENT_MESSAGE_TYPES[expected["$type"]]
    encoded = encode_message(message)
    assert without_nulls(json.loads(encoded)) == without_nulls(expected)
    assert encoded.startswith(b'{"$type":')
    assert decode_client_message(encoded) == message


def test_every_message_class_has_a_golden_vector() -> None:
    assert {vector_id(line) for line in SERVER_VECTORS} == set(SERVER_MESSAGE_TYPES)
    assert {vector_id(line) for line in CLIENT_VECTORS} == set(CLIENT_MESSAGE_TYPES)


def _walk(value: Any, json_value: Any) -> Iterator[tuple[type, str]]:
    """(Struct class, wire name) for every member the golden JSON sets, at any depth."""
    if isinstance(value, msgspec.Struct):
        assert isinstance(json_value, dict)
        for field in msgspec.structs.fields(type(value)):
            if json_value.get(field.encode_name) is not None:
                yield type(value), field.encode_name
                yield from _walk(getattr(value, field.name), json_value[field.encode_name])
    elif isinstance(value, tuple):
        for item, json_item in zip(value, json_value, strict=True):
            yield from _walk(item, json_item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, json_value[key])


def _struct_classes(root: type[msgspec.Struct]) -> Iterator[type[msgspec.Struct]]:
    """``root`` and every Struct class reachable from its fields."""
    seen: set[type] = set()
    pending: list[Any] = [msgspec.inspect.type_info(root)]
    while pending:
        info = pending.pop()
        if isinstance(info, msgspec.inspect.StructType):
            if info.cls in seen:
                continue
            seen.add(info.cls)
            yield info.cls
            pending.extend(f.type for f in info.fields)
        elif isinstance(info, msgspec.inspect.UnionType):
            pending.extend(info.types)
        elif isinstance(info, (msgspec.inspect.VarTupleType, msgspec.inspect.ListType)):
            pending.append(info.item_type)
        elif isinstance(info, msgspec.inspect.DictType):
            pending.append(info.value_type)


@pytest.mark.parametrize(
    ("lines", "decode", "registry"),
    [
        (SERVER_VECTORS, decode_server_message, SERVER_MESSAGE_TYPES),
        (CLIENT_VECTORS, decode_client_message, CLIENT_MESSAGE_TYPES),
    ],
    ids=["server", "client"],
)
def test_golden_vectors_set_every_field_of_every_class(
    lines: list[bytes], decode: Any, registry: dict[str, type[msgspec.Struct]]
) -> None:
    """Each wire name of every message and nested object appears in some hand-written
    vector and lands in the right attribute, which checks all wire names."""
    seen: set[tuple[type, str]] = set()
    for line in lines:
        seen.update(_walk(decode(line), json.loads(line)))
    wanted = {
        (cls, field.encode_name)
        for root in registry.values()
        for cls in _struct_classes(root)
        for field in msgspec.structs.fields(cls)
    }
    assert sorted(f"{cls.__name__}.{name}" for cls, name in wanted - seen) == []


# --- specific values -----------------------------------------------------------------------


def test_doc_reply_chunk_values() -> None:
    from voxta_proto.voxta import ReplyChunk

    chunk = decode_server_message(find_vector(SERVER_VECTORS, "replyChunk", b"Hello there!"))
    assert chunk == ReplyChunk(
        session_id="33333333-3333-4333-8333-333333333333",
        message_id="55555555-5555-4555-8555-555555555555",
        sender_id="22222222-2222-4222-8222-222222222222",
        text="Hello there!",
        start_index=0,
        end_index=12,
        audio_url="",
        is_narration=False,
    )


def test_doc_user_update_values() -> None:
    from voxta_proto.voxta import ChatMessageRole, Update

    update = decode_server_message(find_vector(SERVER_VECTORS, "update", b"Tell me a joke"))
    assert isinstance(update, Update)
    assert update.role is ChatMessageRole.USER
    assert update.text == "Tell me a joke"
    assert update.timestamp == "2025-12-29T11:04:42.7828357+00:00"
    assert (update.index, update.conversation_index, update.chat_time, update.tokens) == (
        2, 2, 15234, 0)


def test_dotnet_escapes_decode_to_plain_text() -> None:
    from voxta_proto.voxta import ChatStarted, ErrorMessage

    error = decode_server_message(find_vector(SERVER_VECTORS, "error", b"\\u0027en-US"))
    assert isinstance(error, ErrorMessage)
    assert error.details == "System.InvalidOperationException: The model 'en-US' is not installed."
    started = decode_server_message(find_vector(SERVER_VECTORS, "chatStarted", b"\\u002B00:00"))
    assert isinstance(started, ChatStarted)
    assert started.messages[1].timestamp == "2025-12-29T11:04:42.7828357+00:00"


def test_app_trigger_arguments_stay_raw_json() -> None:
    from voxta_proto.voxta import AppTrigger

    trigger = decode_server_message(find_vector(SERVER_VECTORS, "appTrigger", b"Emote"))
    assert isinstance(trigger, AppTrigger)
    assert trigger.arguments is not None
    assert [msgspec.json.decode(arg) for arg in trigger.arguments] == ["🌳", "#00ff00"]


# --- quirks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("quirk", SERVER_QUIRKS, ids=quirk_id)
def test_server_quirk(quirk: dict[str, Any]) -> None:
    data = json.dumps(quirk["message"]).encode()
    [record] = server_codec().decode_records(
        b'{"type":1,"target":"ReceiveMessage","arguments":[' + data + b"]}\x1e"
    )
    assert isinstance(record, Invocation)
    [event] = record.arguments
    if quirk["expect"] == "ok":
        message = decode_server_message(data)
        assert event == message
        assert type(message) is SERVER_MESSAGE_TYPES[quirk["message"]["$type"]]
        encoded = json.loads(encode_message(message))
        for name, value in quirk["fields"].items():
            assert encoded[name] == value
    elif quirk["expect"] == "unknown":
        assert decode_server_message(data) == UnknownServerMessage(quirk["type"], msgspec.Raw(data))
        assert event == UnknownServerMessage(quirk["type"], msgspec.Raw(data))
    else:
        with pytest.raises(MessageValidationError) as caught:
            decode_server_message(data)
        assert caught.value.type_name == quirk["type"]
        assert isinstance(event, InvalidServerMessage)
        assert event.type_name == quirk["type"]
        assert bytes(event.raw) == data
        assert event.error == str(caught.value)


@pytest.mark.parametrize("quirk", CLIENT_QUIRKS, ids=quirk_id)
def test_client_quirk(quirk: dict[str, Any]) -> None:
    data = json.dumps(quirk["message"]).encode()
    [record] = client_codec().decode_records(
        b'{"type":1,"invocationId":"7","target":"SendMessage","arguments":[' + data + b"]}\x1e"
    )
    assert isinstance(record, Invocation)
    [event] = record.arguments
    if quirk["expect"] == "ok":
        message = decode_client_message(data)
        assert event == message
        assert type(message) is CLIENT_MESSAGE_TYPES[quirk["message"]["$type"]]
        encoded = json.loads(encode_message(message))
        for name, value in quirk["fields"].items():
            assert encoded[name] == value
    else:
        with pytest.raises(MessageValidationError) as caught:
            decode_client_message(data)
        assert caught.value.type_name == quirk["type"]
        assert isinstance(event, InvalidClientMessage)
        assert event.type_name == quirk["type"]
        assert bytes(event.raw) == data


# --- whole frames ------------------------------------------------------------------------------


def test_all_server_vectors_in_one_frame_decode_typed() -> None:
    messages = [decode_server_message(line) for line in SERVER_VECTORS]
    assert not any(isinstance(m, UnknownServerMessage) for m in messages)
    frame = b"".join(
        b'{"type":1,"target":"ReceiveMessage","arguments":[' + line + b"]}\x1e"
        for line in SERVER_VECTORS
    )
    records = server_codec().decode_records(frame)
    assert records == [
        Invocation(target="ReceiveMessage", arguments=(m,)) for m in messages
    ]


def test_all_client_vectors_in_one_frame_decode_typed() -> None:
    messages = [decode_client_message(line) for line in CLIENT_VECTORS]
    frame = b"".join(
        b'{"type":1,"invocationId":"' + str(i).encode()
        + b'","target":"SendMessage","arguments":[' + line + b"]}\x1e"
        for i, line in enumerate(CLIENT_VECTORS)
    )
    records = client_codec().decode_records(frame)
    assert records == [
        wrap_client_message(m, invocation_id=str(i)) for i, m in enumerate(messages)
    ]


# --- API 2025-11 ----------------------------------------------------------------------------


def test_absent_retry_decodes_as_true_and_false_is_written() -> None:
    from voxta_proto.voxta import ChatSessionError, ErrorMessage

    quirk = next(q for q in SERVER_QUIRKS if "without retry" in q["note"])
    message = decode_server_message(json.dumps(quirk["message"]).encode())
    assert isinstance(message, ChatSessionError)
    assert message.retry is True
    error = decode_server_message(find_vector(SERVER_VECTORS, "error", b"service_missing"))
    assert isinstance(error, ErrorMessage)
    assert error.retry is False
    assert b'"retry":false' in encode_message(error)


def test_reply_thinking_is_a_reply_think() -> None:
    from voxta_proto.voxta import ReplyThink, ReplyThinking

    message = decode_server_message(find_vector(SERVER_VECTORS, "replyThinking"))
    assert isinstance(message, ReplyThinking)
    assert isinstance(message, ReplyThink)
    assert message.text == "The user greeted me, so I greet back."


def test_context_updated_2025_11_fields_are_typed() -> None:
    from voxta_proto.voxta import ContextUpdated, FunctionInvocation

    message = decode_server_message(find_vector(SERVER_VECTORS, "contextUpdated", b"mcp:weather"))
    assert isinstance(message, ContextUpdated)
    assert message.variables is not None
    assert {k: msgspec.json.decode(v) for k, v in message.variables.items()} == {
        "score": 3, "mood": "calm", "inventory": ["torch"], "door": None}
    assert message.tools is not None
    assert message.tools[0].source == "mcp:weather"
    assert message.tools[1].description is None
    assert message.tool_permissions_apply is True
    assert message.controls is not None
    assert message.controls[0].title == "Camera"
    assert msgspec.json.decode(message.controls[0].controls[0])["name"] == "zoom"  # type: ignore[index]
    assert message.actions is not None
    action = message.actions[0]
    assert action.invocation is FunctionInvocation.TOOL_CALLING
    assert (action.disabled_flags_filter, action.client_metadata, action.watched_variables) == (
        "!awake", {"icon": "hand"}, ("score",))


def test_register_app_form_fields_and_app_configuration() -> None:
    from voxta_proto.voxta import AppForm, AppFormField, ChatStarted, RegisterApp

    register = decode_client_message(find_vector(CLIENT_VECTORS, "registerApp", b"noneLabel"))
    assert isinstance(register, RegisterApp)
    assert register.character_form == AppForm(fields=(
        AppFormField(kind="bool", name="follow", label="Follow the player",
                     text="The bot walks after you", default_value=False),
        AppFormField(kind="asset", name="skin", label="Skin",
                     text="Minecraft skin of this character", content_types=("image/*",),
                     none_label="Default skin"),
    ))
    # .NET reads a polymorphic object's $type only when it comes first.
    assert b'"fields":[{"$type":"bool","name":"follow"' in encode_message(register)
    started = decode_server_message(find_vector(SERVER_VECTORS, "chatStarted", b"urn:voxta"))
    assert isinstance(started, ChatStarted)
    assert started.characters[0].app_configuration == {
        "follow": "True",
        "skin": "urn:voxta:resources:characters:22222222-2222-4222-8222-222222222222:assets:"
                "skins/apex.png"}


def test_known_api_versions() -> None:
    from voxta_proto.voxta import CURRENT_API_VERSION, KNOWN_API_VERSIONS, Welcome

    assert CURRENT_API_VERSION == "2025-11"
    assert "2025-08" in KNOWN_API_VERSIONS
    welcome = decode_server_message(find_vector(SERVER_VECTORS, "welcome", b"b533b287"))
    assert isinstance(welcome, Welcome)
    assert welcome.api_version in KNOWN_API_VERSIONS
