"""Both WebSocket engines, sans-IO: the same frames give the same events.

Frames are built by hand (server to client, so unmasked) to reach the cases a well-behaved
peer never sends: a character cut between two fragments, a continuation with no message,
a new message inside a fragmented one, close payloads a peer may not send.
"""

from __future__ import annotations

import pytest

from voxta_proto.transports.websocket.engine import (
    ENGINES,
    CloseReceived,
    MessageData,
    PingReceived,
    ProtocolFailure,
    WebSocketEngine,
    create_engine,
)

TEXT, BINARY, CONT, CLOSE, PING = 0x1, 0x2, 0x0, 0x8, 0x9


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """An unmasked frame, as a server sends it."""
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    if size < 126:
        return head + bytes([size]) + payload
    return head + bytes([126]) + size.to_bytes(2, "big") + payload


def unmasked(data: bytes) -> tuple[int, bytes]:
    """Opcode and payload of the one small masked frame the client engine queued."""
    assert data[1] & 0x80, "a client masks what it sends"
    size, mask = data[1] & 0x7F, data[2:6]
    assert len(data) == 6 + size
    return data[0] & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data[6:]))


def close_code_sent(ws: WebSocketEngine) -> int:
    opcode, payload = unmasked(ws.data_to_send())
    assert opcode == CLOSE
    return int.from_bytes(payload[:2], "big")


def engine(name: str) -> WebSocketEngine:
    return create_engine(name, client=True, max_message_size=None)


@pytest.fixture(params=ENGINES)
def name(request: pytest.FixtureRequest) -> str:
    if request.param == "websockets":
        pytest.importorskip("websockets")
    return str(request.param)


def test_many_messages_in_one_read_stay_bytes(name: str) -> None:
    records = [b'{"type":6}\x1e', "caf\u00e9 \u00fcber".encode(), b"\x00\x01"]
    data = frame(TEXT, records[0]) + frame(TEXT, records[1]) + frame(BINARY, records[2])
    events = engine(name).receive_data(data)
    assert events == [MessageData(records[0], True, True), MessageData(records[1], True, True),
                      MessageData(records[2], False, True)]
    assert all(type(event.data) is bytes for event in events)  # type: ignore[union-attr]


def test_a_character_cut_between_fragments_is_valid(name: str) -> None:
    text = "\u00e9t\u00e9".encode()  # é is 2 bytes: cut it in the middle
    ws = engine(name)
    events = ws.receive_data(frame(TEXT, text[:1], fin=False) + frame(CONT, text[1:]))
    assert b"".join(e.data for e in events if isinstance(e, MessageData)) == text
    assert [e.finished for e in events if isinstance(e, MessageData)] == [False, True]


def test_a_frame_split_across_reads_is_put_together(name: str) -> None:
    data = frame(TEXT, b"x" * 300)
    ws = engine(name)
    events = ws.receive_data(data[:7]) + ws.receive_data(data[7:150]) + ws.receive_data(data[150:])
    pieces = [e for e in events if isinstance(e, MessageData)]
    assert b"".join(p.data for p in pieces) == b"x" * 300
    assert pieces[-1].finished
    assert not any(p.finished for p in pieces[:-1])


@pytest.mark.parametrize("pieces", [
    [frame(TEXT, b"\xc3", fin=False), frame(CONT, b"(")],  # a cut character never completed
    [frame(TEXT, b"ab\xc3")],  # ends inside a character
    [frame(TEXT, b"ok", fin=False), frame(CONT, b"\xff", fin=False), frame(CONT, b"!")],
])
def test_invalid_utf8_fails_with_1007(name: str, pieces: list[bytes]) -> None:
    ws = engine(name)
    events = ws.receive_data(b"".join(pieces))
    assert isinstance(events[-1], ProtocolFailure)
    assert events[-1].code == 1007
    assert close_code_sent(ws) == 1007
    assert ws.receive_data(frame(TEXT, b"later")) == []  # nothing after a failure


@pytest.mark.parametrize("data", [
    frame(CONT, b"orphan"),  # a continuation with no message
    frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"),  # a new message inside one
    frame(CLOSE, b"\x03"),  # a 1-byte close payload
    frame(CLOSE, (1005).to_bytes(2, "big")),  # a code only an endpoint may use locally
    frame(CLOSE, (999).to_bytes(2, "big")),  # out of range
    frame(CLOSE, (1004).to_bytes(2, "big")),  # reserved
    frame(PING, b"x", fin=False),  # a fragmented control frame
])
def test_broken_frames_fail_with_a_protocol_error(name: str, data: bytes) -> None:
    ws = engine(name)
    events = ws.receive_data(data)
    assert isinstance(events[-1], ProtocolFailure)
    assert events[-1].code == 1002
    assert close_code_sent(ws) == 1002


def test_a_close_reason_that_is_not_utf8_fails(name: str) -> None:
    events = engine(name).receive_data(frame(CLOSE, (1000).to_bytes(2, "big") + b"\xff"))
    assert isinstance(events[-1], ProtocolFailure)
    assert events[-1].code in (1002, 1007)  # websockets says 1002, wsproto 1007


@pytest.mark.parametrize(("payload", "code", "reason"), [
    (b"", 1005, ""), ((4000).to_bytes(2, "big") + b"bye", 4000, "bye"),
    ((1001).to_bytes(2, "big"), 1001, ""),
])
def test_the_peers_close_is_answered_once(name: str, payload: bytes, code: int,
                                          reason: str) -> None:
    ws = engine(name)
    events = ws.receive_data(frame(TEXT, b"last") + frame(CLOSE, payload))
    assert events == [MessageData(b"last", True, True), CloseReceived(code, reason)]
    opcode, sent = unmasked(ws.data_to_send())
    assert opcode == CLOSE
    assert sent[:2] == (b"" if code == 1005 else code.to_bytes(2, "big"))  # echoed
    assert ws.receive_data(frame(TEXT, b"after")) == []
    assert ws.send_close(1000, "") == b""  # already answered


def test_the_reply_to_our_close_is_not_answered(name: str) -> None:
    ws = engine(name)
    assert ws.send_close(1000, "done")
    events = ws.receive_data(frame(CLOSE, (1000).to_bytes(2, "big")))
    assert events == [CloseReceived(1000, "")]
    assert ws.data_to_send() == b""


def test_a_ping_is_answered_with_its_payload(name: str) -> None:
    ws = engine(name)
    assert ws.receive_data(frame(PING, b"hi")) == [PingReceived(b"hi")]
    assert unmasked(ws.data_to_send()) == (0xA, b"hi")
