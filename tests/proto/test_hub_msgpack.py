"""The MessagePack hub codec: golden vectors byte for byte, framing, and a HubConnection
speaking it (the handshake stays JSON)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from codec_helpers import CodecPair, hex_bytes, load_vectors, message_from_json, open_codec_conn
from helpers import Conn, feed, split_at
from voxta_proto.errors import LocalProtocolError, NegotiationError, RemoteProtocolError
from voxta_proto.hub import (
    Close,
    Completion,
    HandshakeAccepted,
    HandshakeRefused,
    HandshakeRequest,
    HubConfig,
    HubConnection,
    HubState,
    Invocation,
    KeepAliveDue,
    LengthPrefixedBuffer,
    MessagePackHubCodec,
    Ping,
    Role,
    StreamItem,
    encode_length_prefix,
    raw_codec,
    raw_messagepack_codec,
)
from voxta_proto.hub.events import ConnectionLost
from voxta_proto.hub.negotiate import NegotiateResult, parse_negotiate_response

Raw = msgspec.Raw
CODEC = raw_messagepack_codec()
MESSAGES = load_vectors("hub_messages")
DECODE_ONLY = load_vectors("hub_decode")
ERRORS = load_vectors("hub_errors")


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [row["name"] for row in rows]


# -- golden vectors ----------------------------------------------------------------------


@pytest.mark.parametrize("row", MESSAGES, ids=_ids(MESSAGES))
def test_vector_encodes_byte_for_byte(row: dict[str, Any]) -> None:
    assert CODEC.encode(message_from_json(row["message"])).hex(" ") == hex_bytes(
        row["hex"]).hex(" ")


@pytest.mark.parametrize("row", MESSAGES + DECODE_ONLY, ids=_ids(MESSAGES + DECODE_ONLY))
def test_vector_decodes(row: dict[str, Any]) -> None:
    assert CODEC.decode_records(hex_bytes(row["hex"])) == [message_from_json(row["message"])]


def test_vectors_cover_every_message_type() -> None:
    assert {row["message"]["type"] for row in MESSAGES} == set(range(1, 10))


@pytest.mark.parametrize("row", ERRORS, ids=_ids(ERRORS))
def test_malformed_vector_is_a_remote_protocol_error(row: dict[str, Any]) -> None:
    with pytest.raises(RemoteProtocolError, match=row["error"]) as caught:
        CODEC.decode_records(hex_bytes(row["hex"]))
    assert caught.value.close_hint is not None


@pytest.mark.parametrize("row", ERRORS, ids=_ids(ERRORS))
def test_malformed_vector_moves_a_connection_to_error(row: dict[str, Any]) -> None:
    """A broken message is a protocol error; a message cut short by the end of the
    stream (a prefix promising more than arrived) is a lost connection, as a network
    drop leaves it, never a protocol error."""
    conn = open_codec_conn("messagepack", config=HubConfig(max_record_size=64))
    try:
        conn.receive_data(hex_bytes(row["hex"]), now=0.0)
    except RemoteProtocolError:
        assert conn.state is HubState.ERROR
        return
    assert row["error"] == "incomplete message", "only a cut message decodes to nothing"
    events = conn.receive_eof(now=0.0)
    assert events == [ConnectionLost(reattachable=False)]
    assert conn.state is not HubState.ERROR


def test_all_vectors_in_one_frame_decode_in_order() -> None:
    data = b"".join(hex_bytes(row["hex"]) for row in MESSAGES)
    assert CODEC.decode_records(data) == [message_from_json(r["message"]) for r in MESSAGES]


def _int_or_marker(raw: Raw) -> int | str:
    try:
        return msgspec.msgpack.decode(raw, type=int)
    except msgspec.DecodeError:
        return f"bad:{bytes(raw).hex()}"


def test_typed_arguments_and_fallback() -> None:
    codec: MessagePackHubCodec[int | str] = MessagePackHubCodec(int, _int_or_marker)
    ok = raw_messagepack_codec().encode(Invocation(target="T", arguments=(Raw(b"\x05"),)))
    assert codec.decode_records(ok) == [Invocation(target="T", arguments=(5,))]
    wire = raw_messagepack_codec().encode(
        Invocation(target="T", arguments=(Raw(b"\x05"), Raw(b"\xa1x"))))
    assert codec.decode_records(wire) == [Invocation(target="T", arguments=(5, "bad:a178"))]


def test_encode_refuses_what_is_not_a_hub_message() -> None:
    with pytest.raises(TypeError, match="not a hub message"):
        CODEC.encode(HandshakeAccepted())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CODEC.encode(Invocation(target="T", arguments=(object(),)))
    with pytest.raises(OverflowError):
        CODEC.encode(Invocation(target="T", arguments=(2**64,)))


# -- length prefixes and the buffer --------------------------------------------------------


@pytest.mark.parametrize(("length", "prefix"), [
    (0, "00"), (127, "7f"), (128, "80 01"), (300, "ac 02"), (16383, "ff 7f"),
    (16384, "80 80 01"), ((1 << 31) - 1, "ff ff ff ff 07"),
])
def test_length_prefix(length: int, prefix: str) -> None:
    assert encode_length_prefix(length).hex(" ") == prefix


def test_buffer_hands_out_whole_messages_at_every_split() -> None:
    data = b"".join(hex_bytes(row["hex"]) for row in MESSAGES)
    for cut in range(len(data) + 1):
        buffer = LengthPrefixedBuffer()
        assert buffer.feed_and_pop(data[:cut]) + buffer.feed_and_pop(data[cut:]) == data
        assert len(buffer) == 0


def test_buffer_hands_pings_back_unparsed_and_the_decode_recognises_them() -> None:
    data = CODEC.encode(Ping()) * 3
    assert LengthPrefixedBuffer().feed_and_pop(data) is data
    assert CODEC.decode_records(data) == [Ping()] * 3


def test_buffered_and_unbuffered_chunks_decode_alike() -> None:
    data = b"".join(hex_bytes(row["hex"]) for row in MESSAGES)
    buffer = LengthPrefixedBuffer()
    fresh = buffer.feed_and_pop(data)  # carries the payloads its walk found
    assert buffer.feed_and_pop(data[:5]) == b""
    rest = buffer.feed_and_pop(data[5:])  # from the buffer: decoded from scratch
    assert fresh == rest == data
    assert CODEC.decode_records(fresh) == CODEC.decode_records(rest) == CODEC.decode_records(
        bytes(data))


def test_oversized_length_is_refused_before_its_payload_arrives() -> None:
    buffer = LengthPrefixedBuffer(max_message_size=100)
    assert buffer.feed_and_pop(b"\x80") == b""  # an incomplete prefix is kept
    with pytest.raises(RemoteProtocolError, match="exceeds the maximum size of 100"):
        buffer.feed_and_pop(b"\x01")  # 128 bytes announced, none sent yet


def test_oversized_length_after_complete_messages_in_one_frame() -> None:
    buffer = LengthPrefixedBuffer(max_message_size=100)
    with pytest.raises(RemoteProtocolError, match="maximum size"):
        buffer.feed_and_pop(CODEC.encode(Ping()) + encode_length_prefix(101))


def test_message_at_the_size_limit_is_accepted() -> None:
    item = StreamItem(invocation_id="1", item=Raw(msgspec.msgpack.encode("x" * 200)))
    wire = CODEC.encode(item)
    payload = len(wire) - 2  # a two-byte prefix
    conn = open_codec_conn("messagepack", config=HubConfig(max_record_size=payload))
    assert conn.receive_data(wire, now=0.0) == [item]
    small = open_codec_conn("messagepack", config=HubConfig(max_record_size=payload - 1))
    with pytest.raises(RemoteProtocolError):
        small.receive_data(wire[:3], now=0.0)


def test_buffer_refuses_a_non_positive_limit() -> None:
    with pytest.raises(ValueError, match="positive"):
        LengthPrefixedBuffer(0)


# -- HubConnection on MessagePack ----------------------------------------------------------


def msgpack_client() -> Conn:
    conn: Conn = HubConnection(Role.CLIENT, now=0.0, codec=raw_messagepack_codec())
    wire = conn.send(HandshakeRequest(protocol="messagepack", version=1), now=0.0)
    assert wire == b'{"protocol":"messagepack","version":1}\x1e'
    return conn


def test_handshake_response_and_messages_in_one_frame_at_every_split() -> None:
    messages = [message_from_json(row["message"]) for row in MESSAGES
                if row["message"]["type"] in (1, 2, 3, 6)]
    data = b'{"extra":1}\x1e' + b"".join(CODEC.encode(m) for m in messages)
    # Completions are delivered whether or not we are waiting for them.
    for cut in range(len(data) + 1):
        conn = msgpack_client()
        events = feed(conn, split_at(data, [cut, cut + 7]))
        assert events == [HandshakeAccepted(), *messages]
        assert conn.state is HubState.OPEN


def test_a_binary_record_separator_right_after_the_handshake_is_not_a_record() -> None:
    item = StreamItem(invocation_id="\x1e", item=Raw(b"\x1e"))
    conn = msgpack_client()
    assert conn.receive_data(b"{}\x1e" + CODEC.encode(item), now=0.0) == [
        HandshakeAccepted(), item]


def test_refused_handshake_closes_and_ignores_the_rest() -> None:
    conn = msgpack_client()
    events = conn.receive_data(b'{"error":"no"}\x1e\x02\x91\x06', now=0.0)
    assert events == [HandshakeRefused(error="no")]
    assert conn.state is HubState.CLOSED


def test_handshake_record_over_the_limit_is_refused() -> None:
    conn: Conn = HubConnection(Role.SERVER, now=0.0, config=HubConfig(max_record_size=16),
                               codec=raw_messagepack_codec())
    with pytest.raises(RemoteProtocolError, match="maximum size"):
        conn.receive_data(b'{"protocol":"messagepack"', now=0.0)


def test_eof_inside_the_handshake_or_a_message_is_a_lost_connection() -> None:
    """What a network drop leaves (as with the JSON protocol): not a protocol error."""
    conn = msgpack_client()
    conn.receive_data(b'{"ext', now=0.0)
    assert conn.receive_eof(now=0.0) == [ConnectionLost(reattachable=False)]
    opened = open_codec_conn("messagepack")
    opened.receive_data(CODEC.encode(Ping())[:2], now=0.0)
    assert opened.receive_eof(now=0.0) == [ConnectionLost(reattachable=False)]


def test_handshake_protocol_must_match_the_codec() -> None:
    conn: Conn = HubConnection(Role.CLIENT, now=0.0, codec=raw_messagepack_codec())
    with pytest.raises(LocalProtocolError, match="'json' protocol but the codec speaks"):
        conn.send(HandshakeRequest(protocol="json", version=1), now=0.0)
    json_conn: Conn = HubConnection(Role.CLIENT, now=0.0)
    with pytest.raises(LocalProtocolError, match="speaks 'json'"):
        json_conn.send(HandshakeRequest(protocol="messagepack", version=1), now=0.0)


def test_keepalive_is_the_two_byte_ping() -> None:
    conn = open_codec_conn("messagepack")
    (tick,) = conn.handle_timer(now=15.0)
    assert isinstance(tick, KeepAliveDue)
    assert conn.answer_timer(tick, now=15.0) == b"\x02\x91\x06"


def test_pair_invoke_and_complete() -> None:
    pair = CodecPair("messagepack")
    pair.handshake()
    call = Invocation(target="Add", arguments=(Raw(b"\x01"), Raw(b"\x02")),
                      invocation_id=pair.client.next_invocation_id())
    pair.client_sends(call)
    assert pair.client.pending_invocations == {"0"}
    pair.server_sends(Completion(invocation_id="0", result=Raw(b"\x03")))
    assert pair.client.pending_invocations == frozenset()
    pair.server_sends(Close(error="bye", allow_reconnect=True))
    assert pair.client.state is HubState.CLOSED


def test_stateful_reconnect_replays_messagepack() -> None:
    pair = CodecPair("messagepack", HubConfig(stateful_reconnect=True))
    pair.handshake(version=2)
    item = StreamItem(invocation_id="s", item=Raw(b"\xc0"))
    lost = pair.client.send(item, now=0.0)
    assert lost
    pair.drop()
    client_wire, server_wire = pair.reattach()
    assert client_wire == bytes.fromhex("03 92 09 01") + lost  # Sequence 1, then the replay
    events = pair.to_server(client_wire)
    assert item in events
    pair.to_client(server_wire)
    assert pair.states() == (HubState.OPEN, HubState.OPEN)


# -- negotiate -------------------------------------------------------------------------------


def test_negotiate_with_the_codecs_transfer_format() -> None:
    """A MessagePack client needs WebSockets with Binary: a Text-only server is refused."""
    assert MessagePackHubCodec.transfer_format == "Binary"
    assert raw_codec().transfer_format == "Text"

    def answer(formats: list[str]) -> bytes:
        return json.dumps({"negotiateVersion": 1, "connectionId": "i", "connectionToken": "t",
                           "availableTransports": [{"transport": "WebSockets",
                                                    "transferFormats": formats}]}).encode()

    fmt = CODEC.transfer_format
    with pytest.raises(NegotiationError, match="'Binary'"):
        parse_negotiate_response(answer(["Text"]), transfer_format=fmt)
    assert isinstance(parse_negotiate_response(answer(["Text", "Binary"]), transfer_format=fmt),
                      NegotiateResult)
