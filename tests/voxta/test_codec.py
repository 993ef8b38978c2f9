"""voxta_proto.voxta.codec: decoding per direction, errors, encoding, invocation wrapping,
and the single-pass hub codecs (including proof that the fast path is taken)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

import voxta_proto.voxta.codec as codec_module
from voxta_proto.errors import MessageValidationError
from voxta_proto.hub import Completion, Invocation, JsonHubCodec, Ping
from voxta_proto.voxta import (
    ChatMessageRole,
    ClientEvent,
    ContextUpdated,
    Interrupt,
    InvalidClientMessage,
    InvalidServerMessage,
    ReplyChunk,
    Send,
    ServerEvent,
    UnknownServerMessage,
    client_codec,
    decode_client_message,
    decode_server_message,
    encode_message,
    server_codec,
    unwrap_client_message,
    unwrap_server_message,
    wrap_client_message,
    wrap_server_message,
)

SESSION = "33333333-3333-4333-8333-333333333333"


def reply_chunk(i: int) -> ReplyChunk:
    text = f"Sentence number {i}."
    return ReplyChunk(
        session_id=SESSION,
        message_id="99999999-9999-4999-8999-999999999999",
        sender_id="22222222-2222-4222-8222-222222222222",
        text=text,
        start_index=i * 20,
        end_index=i * 20 + len(text),
        audio_url=f"/api/tts/gens/{i}",
        is_narration=False,
    )


def receive_record(argument: bytes) -> bytes:
    return b'{"type":1,"target":"ReceiveMessage","arguments":[' + argument + b"]}\x1e"


def send_record(argument: bytes, invocation_id: str = "1") -> bytes:
    return (b'{"type":1,"invocationId":"' + invocation_id.encode()
            + b'","target":"SendMessage","arguments":[' + argument + b"]}\x1e")


# --- decode_server_message -------------------------------------------------------------


def test_decode_server_message_types_a_known_message() -> None:
    chunk = reply_chunk(1)
    assert decode_server_message(encode_message(chunk)) == chunk


def test_unknown_server_type_is_kept_not_raised() -> None:
    data = b'{"$type":"brandNewThing","x":[1,2]}'
    message = decode_server_message(data)
    assert message == UnknownServerMessage("brandNewThing", msgspec.Raw(data))
    assert isinstance(message, UnknownServerMessage)
    assert msgspec.json.decode(message.raw) == {"$type": "brandNewThing", "x": [1, 2]}


def test_client_only_type_is_unknown_to_the_client() -> None:
    message = decode_server_message(b'{"$type":"send","sessionId":"s"}')
    assert isinstance(message, UnknownServerMessage)
    assert message.type_name == "send"


@pytest.mark.parametrize(
    ("data", "type_name", "text"),
    [
        (b'{"$type":"replyChunk","text":"x"}', "replyChunk", "missing required field"),
        (b'{"$type":"chatFlow","state":"Dancing","sessionId":"s"}', "chatFlow", "Dancing"),
        (b'{"$type":"chatPaused","paused":"yes","sessionId":"s"}', "chatPaused", "$.paused"),
        (b'{"text":"x"}', None, "no '$type'"),
        (b'{"$type":5}', None, "string '$type'"),
        (b"[]", None, "JSON object"),
        (b'"welcome"', None, "JSON object"),
        (b'{"$type":"welcome"', None, "valid JSON"),
        (b"", None, "valid JSON"),
        (b'{"$type":"chatPaused","paused":true,"sessionId":"s"} {}', None, "valid JSON"),
    ],
)
def test_decode_server_message_errors(data: bytes, type_name: str | None, text: str) -> None:
    with pytest.raises(MessageValidationError) as caught:
        decode_server_message(data)
    assert caught.value.type_name == type_name
    assert text in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_deep_nesting_is_a_validation_error_not_a_recursion_error() -> None:
    deep = b'{"$type":"appTrigger","arguments":[' + b"[" * 50_000 + b"]" * 50_000 + b"]}"
    with pytest.raises(MessageValidationError):
        decode_server_message(deep)
    with pytest.raises(MessageValidationError):
        decode_client_message(deep)
    event = codec_module._server_fallback(msgspec.Raw(deep))
    assert isinstance(event, InvalidServerMessage)


# --- decode_client_message ---------------------------------------------------------------


def test_decode_client_message() -> None:
    assert decode_client_message(b'{"$type":"interrupt","sessionId":"s"}') == Interrupt(
        session_id="s"
    )


@pytest.mark.parametrize(
    ("data", "type_name", "text"),
    [
        (b'{"$type":"pause","sessionId":"s","pause":true}', "pause", "unknown client message"),
        (b'{"$type":"welcome","apiVersion":"x"}', "welcome", "unknown client message"),
        (b'{"$type":"typingEnd","sessionId":"s"}', "typingEnd", "`sent`"),
        (b'{"sessionId":"s"}', None, "no '$type'"),
        (b"null", None, "JSON object"),
    ],
)
def test_decode_client_message_errors(data: bytes, type_name: str | None, text: str) -> None:
    with pytest.raises(MessageValidationError) as caught:
        decode_client_message(data)
    assert caught.value.type_name == type_name
    assert text in str(caught.value)


# --- encode_message ------------------------------------------------------------------------


def test_encode_puts_type_first_and_leaves_nulls_out() -> None:
    message = Send(session_id=SESSION, text="hi", do_reply=False, role=ChatMessageRole.EVENT)
    assert encode_message(message) == (
        b'{"$type":"send","sessionId":"' + SESSION.encode()
        + b'","text":"hi","doReply":false,"role":"Event"}'
    )


def test_encode_leaves_unset_raw_out_and_keeps_raw_verbatim() -> None:
    assert b"variables" not in encode_message(
        ContextUpdated(session_id="s", flags=(), roles={}, buttons=(), characters=())
    )
    chunk = ReplyChunk(session_id="s", message_id="m", sender_id="c", text="", start_index=0,
                       end_index=0, audio_url="", is_narration=False,
                       speech_line_id=msgspec.Raw(b'{"line": 7}'))
    assert encode_message(chunk).endswith(b',"speechLineId":{"line": 7}}')


def test_encode_keeps_false_zero_and_empty_values() -> None:
    chunk = ReplyChunk(session_id="s", message_id="m", sender_id="c", text="", start_index=0,
                       end_index=0, audio_url="", is_narration=False)
    assert json.loads(encode_message(chunk)) == {
        "$type": "replyChunk", "sessionId": "s", "messageId": "m", "senderId": "c", "text": "",
        "startIndex": 0, "endIndex": 0, "audioUrl": "", "isNarration": False,
    }


# --- wrapping -------------------------------------------------------------------------------


def test_wrap_client_message() -> None:
    message = Interrupt(session_id=SESSION)
    invocation = wrap_client_message(message, invocation_id="7")
    assert invocation == Invocation(target="SendMessage", arguments=(message,), invocation_id="7")
    assert json.loads(JsonHubCodec.encode(invocation)[:-1]) == {
        "type": 1, "invocationId": "7", "target": "SendMessage",
        "arguments": [{"$type": "interrupt", "sessionId": SESSION}],
    }
    fire_and_forget = JsonHubCodec.encode(wrap_client_message(message, invocation_id=None))
    assert b"invocationId" not in fire_and_forget
    assert unwrap_client_message(invocation) is message


def test_wrap_server_message() -> None:
    chunk = reply_chunk(0)
    invocation = wrap_server_message(chunk)
    assert invocation == Invocation(target="ReceiveMessage", arguments=(chunk,))
    record = JsonHubCodec.encode(invocation)
    assert record.startswith(b'{"type":1,"target":"ReceiveMessage","arguments":[{"$type":"reply')
    assert unwrap_server_message(invocation) is chunk


@pytest.mark.parametrize(
    "invocation",
    [
        Invocation(target="ReceiveMessage", arguments=(1,)),
        Invocation(target="SendMessage", arguments=()),
        Invocation(target="SendMessage", arguments=(1, 2)),
        Invocation(target="sendmessage", arguments=(1,)),
    ],
)
def test_unwrap_client_message_refuses_other_shapes(invocation: Invocation[int]) -> None:
    assert unwrap_client_message(invocation) is None


@pytest.mark.parametrize(
    "invocation",
    [
        Invocation(target="SendMessage", arguments=(1,)),
        Invocation(target="ReceiveMessage", arguments=()),
        Invocation(target="ReceiveMessage", arguments=(1, 2)),
    ],
)
def test_unwrap_server_message_refuses_other_shapes(invocation: Invocation[int]) -> None:
    assert unwrap_server_message(invocation) is None


# --- the hub codecs --------------------------------------------------------------------------


class Spy:
    """Wraps a function and records its calls."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.calls = 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return self.function(*args)


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> tuple[Spy, Spy, Spy]:
    """Spies on the server and client fallbacks and on the hub's record-by-record path."""
    server = Spy(codec_module._server_fallback)
    client = Spy(codec_module._client_fallback)
    per_record = Spy(JsonHubCodec._decode_one)

    def decode_one(self: JsonHubCodec[Any], record: bytes) -> Any:
        return per_record(self, record)

    monkeypatch.setattr(codec_module, "_server_fallback", server)
    monkeypatch.setattr(codec_module, "_client_fallback", client)
    monkeypatch.setattr(JsonHubCodec, "_decode_one", decode_one)
    return server, client, per_record


def test_a_frame_of_reply_chunks_is_typed_in_one_pass(spies: tuple[Spy, Spy, Spy]) -> None:
    server, _, per_record = spies
    chunks = [reply_chunk(i) for i in range(300)]
    frame = b"".join(receive_record(encode_message(c)) for c in chunks)
    messages = server_codec().decode_records(frame)
    assert messages == [wrap_server_message(c) for c in chunks]
    assert all(type(m.arguments[0]) is ReplyChunk for m in messages if isinstance(m, Invocation))
    assert server.calls == 0
    assert per_record.calls == 0


def test_one_unknown_message_takes_the_slow_path_and_keeps_the_rest(
    spies: tuple[Spy, Spy, Spy],
) -> None:
    server, _, per_record = spies
    unknown = b'{"$type":"brandNewThing","sessionId":"s"}'
    invalid = b'{"$type":"replyChunk","sessionId":"s"}'
    frame = (receive_record(encode_message(reply_chunk(0))) + receive_record(unknown)
             + b'{"type":6}\x1e' + receive_record(invalid)
             + receive_record(encode_message(reply_chunk(1))))
    messages = server_codec().decode_records(frame)
    events: list[ServerEvent | Ping] = [
        m.arguments[0] if isinstance(m, Invocation) else m for m in messages  # type: ignore[misc]
    ]
    assert events[0] == reply_chunk(0)
    assert events[1] == UnknownServerMessage("brandNewThing", msgspec.Raw(unknown))
    assert events[2] == Ping()
    assert isinstance(events[3], InvalidServerMessage)
    assert events[3].type_name == "replyChunk"
    assert bytes(events[3].raw) == invalid
    assert "missing required field" in events[3].error
    assert events[4] == reply_chunk(1)
    assert server.calls == 2
    assert per_record.calls == 5


def test_client_codec_types_client_messages_in_one_pass(spies: tuple[Spy, Spy, Spy]) -> None:
    _, client, per_record = spies
    sends = [Send(session_id=SESSION, text=f"message {i}", do_reply=True) for i in range(50)]
    frame = b"".join(send_record(encode_message(s), str(i)) for i, s in enumerate(sends))
    messages = client_codec().decode_records(frame)
    assert messages == [wrap_client_message(s, invocation_id=str(i)) for i, s in enumerate(sends)]
    assert client.calls == 0
    assert per_record.calls == 0


def test_client_codec_turns_bad_arguments_into_invalid_client_messages() -> None:
    bad = b'{"$type":"pause","sessionId":"s","pause":true}'
    frame = send_record(bad, "1") + send_record(b'{"$type":"interrupt","sessionId":"s"}', "2")
    first, second = client_codec().decode_records(frame)
    assert isinstance(first, Invocation)
    assert isinstance(second, Invocation)
    event: ClientEvent = first.arguments[0]
    assert event == InvalidClientMessage(
        "pause", msgspec.Raw(bad), "unknown client message type 'pause'"
    )
    assert second.arguments == (Interrupt(session_id="s"),)


def test_codecs_leave_other_hub_messages_alone() -> None:
    frame = b'{"type":3,"invocationId":"1"}\x1e{"type":6}\x1e'
    assert server_codec().decode_records(frame) == [Completion(invocation_id="1"), Ping()]
    assert client_codec().decode_records(frame) == [Completion(invocation_id="1"), Ping()]


def test_non_voxta_arguments_never_raise() -> None:
    frame = (b'{"type":1,"target":"ReceiveMessage","arguments":[1,"x",null,[]]}\x1e'
             b'{"type":1,"target":"Other","arguments":[{"$type":"replyChunk"}]}\x1e')
    first, second = server_codec().decode_records(frame)
    assert isinstance(first, Invocation)
    assert [type(a) for a in first.arguments] == [InvalidServerMessage] * 4
    assert all(a.type_name is None for a in first.arguments)
    assert isinstance(second, Invocation)
    assert unwrap_server_message(second) is None
