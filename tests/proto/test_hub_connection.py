"""Tests for voxta_proto.hub.connection: handshake, traffic, errors, timers and stateful
reconnect, all with explicit ``now`` values (no sleeping, no clock)."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest

from helpers import Conn, Event, HubPair, feed, open_conn, open_pair, state_of
from voxta_proto.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from voxta_proto.framing import DEFAULT_MAX_RECORD_SIZE
from voxta_proto.hub import (
    Ack,
    AckDue,
    CancelInvocation,
    Close,
    Completion,
    ConnectionLost,
    HandshakeAccepted,
    HandshakeRefused,
    HandshakeRequest,
    HandshakeTimedOut,
    HubConfig,
    HubConnection,
    HubMessage,
    HubState,
    Invocation,
    JsonHubCodec,
    KeepAliveDue,
    Outgoing,
    PeerTimedOut,
    Ping,
    Reattached,
    ReattachTimedOut,
    Role,
    SendUnblocked,
    Sequence,
    StreamInvocation,
    StreamItem,
)

Raw = msgspec.Raw
REQUEST_V1 = HandshakeRequest(protocol="json", version=1)
REQUEST_WIRE = b'{"protocol":"json","version":1}\x1e'
STATEFUL = HubConfig(stateful_reconnect=True)


def inv(target: str = "X", *args: bytes, invocation_id: str | None = None) -> Invocation[Raw]:
    return Invocation(target=target, arguments=tuple(Raw(a) for a in args),
                      invocation_id=invocation_id)


def wire(message: HubMessage) -> bytes:
    return JsonHubCodec.encode(message)


def client_in(state: HubState) -> Conn:
    """A client connection in NEW or HANDSHAKING."""
    conn: Conn = HubConnection(Role.CLIENT, now=0.0)
    if state is HubState.HANDSHAKING:
        conn.send(REQUEST_V1, now=0.0)
    assert conn.state is state
    return conn


def server_in(state: HubState) -> Conn:
    """A server connection in NEW or HANDSHAKING."""
    conn: Conn = HubConnection(Role.SERVER, now=0.0)
    if state is HubState.HANDSHAKING:
        conn.receive_data(REQUEST_WIRE, now=0.0)
    assert conn.state is state
    return conn


HUB_KINDS: list[HubMessage] = [
    inv(invocation_id="0"),
    StreamItem(invocation_id="0", item=Raw(b"1")),
    Completion(invocation_id="0"),
    StreamInvocation(invocation_id="0", target="S", arguments=()),
    CancelInvocation(invocation_id="0"),
    Ping(),
    Close(),
    Ack(sequence_id=1),
]


# -- construction -----------------------------------------------------------------------


def test_new_connection() -> None:
    conn: Conn = HubConnection(Role.CLIENT, now=0.0)
    assert conn.role is Role.CLIENT
    assert conn.config == HubConfig()
    assert conn.state is HubState.NEW
    assert conn.stateful_reconnect is False
    assert conn.pending_invocations == frozenset()
    assert conn.buffered_bytes == 0
    assert conn.send_would_block is False


def test_default_config_is_aspnet_core() -> None:
    config = HubConfig()
    assert config.keepalive_interval == 15.0
    assert config.peer_timeout == 30.0
    assert config.handshake_timeout == 15.0
    assert config.max_record_size == DEFAULT_MAX_RECORD_SIZE
    assert config.stateful_reconnect is False
    assert config.max_buffered_bytes == 100_000
    assert config.ack_interval == 1.0
    assert config.reattach_timeout == 15.0


def test_invocation_ids_come_from_a_counter_per_connection() -> None:
    pair = HubPair()
    assert [pair.client.next_invocation_id() for _ in range(3)] == ["0", "1", "2"]
    assert pair.server.next_invocation_id() == "0"
    assert pair.client.next_invocation_id() == "3"


# -- handshake --------------------------------------------------------------------------


def test_handshake_bytes_and_states() -> None:
    client: Conn = HubConnection(Role.CLIENT, now=0.0)
    server: Conn = HubConnection(Role.SERVER, now=0.0)
    assert client.send(REQUEST_V1, now=0.0) == REQUEST_WIRE
    assert client.state is HubState.HANDSHAKING
    assert server.receive_data(REQUEST_WIRE, now=0.0) == [REQUEST_V1]
    assert server.state is HubState.HANDSHAKING
    assert server.send(HandshakeAccepted(), now=0.0) == b"{}\x1e"
    assert state_of(server) is HubState.OPEN
    assert client.receive_data(b"{}\x1e", now=0.0) == [HandshakeAccepted()]
    assert state_of(client) is HubState.OPEN


def test_handshake_request_one_byte_at_a_time() -> None:
    server = server_in(HubState.NEW)
    events = feed(server, [REQUEST_WIRE[i : i + 1] for i in range(len(REQUEST_WIRE))])
    assert events == [REQUEST_V1]
    assert server.state is HubState.HANDSHAKING


def test_handshake_response_followed_by_hub_records_in_the_same_data() -> None:
    client = client_in(HubState.HANDSHAKING)
    data = (b'{}\x1e{"type":1,"target":"Hello","arguments":["x"]}\x1e{"type":6}\x1e'
            b'{"type":2,"invocationId":"9","item":null}\x1e')
    assert client.receive_data(data, now=0.0) == [
        HandshakeAccepted(),
        inv("Hello", b'"x"'),
        Ping(),
        StreamItem(invocation_id="9", item=Raw(b"null")),
    ]
    assert client.state is HubState.OPEN


def test_handshake_response_and_a_partial_record() -> None:
    client = client_in(HubState.HANDSHAKING)
    assert client.receive_data(b'{}\x1e{"type"', now=0.0) == [HandshakeAccepted()]
    assert client.receive_data(b":6}\x1e", now=0.0) == [Ping()]


def test_handshake_response_with_extra_fields_is_accepted() -> None:
    client = client_in(HubState.HANDSHAKING)
    assert client.receive_data(b'{"minorVersion":1,"x":[1]}\x1e', now=0.0) == [
        HandshakeAccepted()
    ]
    assert client.state is HubState.OPEN


def test_handshake_refused() -> None:
    client = client_in(HubState.HANDSHAKING)
    text = "The server does not support version 2 of the 'json' protocol."
    data = b'{"error":"%s"}\x1e{"type":6}\x1e' % text.encode()
    assert client.receive_data(data, now=0.0) == [HandshakeRefused(error=text)]
    assert client.state is HubState.CLOSED
    assert client.receive_data(b'{"type":6}\x1e', now=0.0) == []
    assert client.receive_eof() == []
    assert client.state is HubState.CLOSED


def test_server_refuses_the_handshake() -> None:
    server = server_in(HubState.HANDSHAKING)
    assert server.send(HandshakeRefused(error="no"), now=0.0) == b'{"error":"no"}\x1e'
    assert server.state is HubState.CLOSED


def test_handshake_response_with_a_type_member_is_an_error() -> None:
    client = client_in(HubState.HANDSHAKING)
    with pytest.raises(RemoteProtocolError, match="got a hub message"):
        client.receive_data(b'{"type":1,"target":"X","arguments":[]}\x1e', now=0.0)
    assert client.state is HubState.ERROR


@pytest.mark.parametrize("data", [b"[]\x1e", b'{"error":1}\x1e', b"\x1e{}\x1e", b"nope\x1e"])
def test_bad_handshake_response(data: bytes) -> None:
    client = client_in(HubState.HANDSHAKING)
    with pytest.raises(RemoteProtocolError, match="invalid handshake response"):
        client.receive_data(data, now=0.0)
    assert client.state is HubState.ERROR


def test_response_before_the_request_was_sent_is_an_error() -> None:
    client = client_in(HubState.NEW)
    with pytest.raises(RemoteProtocolError, match="HandshakeAccepted from the server") as info:
        client.receive_data(b"{}\x1e", now=0.0)
    assert info.value.close_hint is not None
    assert client.state is HubState.ERROR


def test_server_refuses_a_hub_message_as_first_record() -> None:
    server = server_in(HubState.NEW)
    with pytest.raises(RemoteProtocolError, match="invalid handshake request"):
        server.receive_data(b'{"type":6}\x1e', now=0.0)
    assert server.state is HubState.ERROR


@pytest.mark.parametrize("split", [False, True])
def test_server_refuses_traffic_before_its_handshake_response(split: bool) -> None:
    """Regression: records after the handshake request in the SAME chunk were dropped
    silently, while in a later chunk they were (rightly) a protocol error."""
    server = server_in(HubState.NEW)
    ping = b'{"type":6}\x1e'
    pieces = [REQUEST_WIRE, ping] if split else [REQUEST_WIRE + ping]
    with pytest.raises(RemoteProtocolError, match="Ping from the client is not allowed"):
        feed(server, pieces)
    assert server.state is HubState.ERROR


def test_server_skips_unknown_types_after_the_request() -> None:
    server = server_in(HubState.NEW)
    assert server.receive_data(REQUEST_WIRE + b'{"type":42}\x1e', now=0.0) == [REQUEST_V1]
    assert server.state is HubState.HANDSHAKING


@pytest.mark.parametrize("state", [HubState.NEW, HubState.HANDSHAKING])
@pytest.mark.parametrize("message", HUB_KINDS, ids=lambda m: type(m).__name__)
def test_no_hub_traffic_before_the_handshake_response(state: HubState,
                                                      message: HubMessage) -> None:
    for conn in (client_in(state), server_in(state)):
        with pytest.raises(LocalProtocolError, match="is not allowed in state"):
            conn.send(message, now=0.0)
        assert conn.state is HubState.ERROR


@pytest.mark.parametrize(
    ("role", "message"),
    [
        (Role.SERVER, REQUEST_V1),
        (Role.CLIENT, HandshakeAccepted()),
        (Role.CLIENT, HandshakeRefused(error="x")),
    ],
)
def test_handshake_messages_from_the_wrong_role(role: Role, message: Outgoing) -> None:
    conn: Conn = HubConnection(role, now=0.0)
    with pytest.raises(LocalProtocolError):
        conn.send(message, now=0.0)
    assert conn.state is HubState.ERROR


def test_answering_before_the_request_or_twice() -> None:
    server = server_in(HubState.NEW)
    with pytest.raises(LocalProtocolError, match="HandshakeAccepted from the server"):
        server.send(HandshakeAccepted(), now=0.0)
    client = client_in(HubState.HANDSHAKING)
    with pytest.raises(LocalProtocolError, match="HandshakeRequest from the client"):
        client.send(REQUEST_V1, now=0.0)


@pytest.mark.parametrize(
    ("client_stateful", "server_stateful", "version", "agreed"),
    [
        (True, True, 2, True),
        (True, True, 1, False),  # a version-1 request disables it silently
        (False, False, 2, False),
    ],
)
def test_stateful_reconnect_is_agreed_in_the_handshake(
    client_stateful: bool, server_stateful: bool, version: int, agreed: bool
) -> None:
    pair = HubPair(client_config=HubConfig(stateful_reconnect=client_stateful),
                   server_config=HubConfig(stateful_reconnect=server_stateful))
    pair.handshake(version=version)
    assert pair.server.stateful_reconnect is agreed
    assert pair.client.stateful_reconnect is agreed


@pytest.mark.parametrize(
    ("client_stateful", "server_stateful", "expected"),
    [(True, False, (True, False)), (False, True, (False, True))],
)
def test_version_2_without_stateful_reconnect_on_both_ends_is_not_checked(
    client_stateful: bool, server_stateful: bool, expected: tuple[bool, bool]
) -> None:
    """The handshake response cannot say whether the server agreed, so the caller must
    send version 2 exactly when negotiate agreed and both configs allow it. The core does
    not check: the two ends then disagree, and the stateful one buffers messages the
    other never acknowledges (until ``send`` fails with a full buffer)."""
    pair = HubPair(client_config=HubConfig(stateful_reconnect=client_stateful),
                   server_config=HubConfig(stateful_reconnect=server_stateful))
    pair.handshake(version=2)
    assert (pair.client.stateful_reconnect, pair.server.stateful_reconnect) == expected


def test_refused_handshake_does_not_agree_on_stateful_reconnect() -> None:
    pair = HubPair(STATEFUL)
    pair.client_sends(HandshakeRequest(protocol="json", version=2))
    pair.server_sends(HandshakeRefused(error="no"))
    assert pair.server.stateful_reconnect is False
    assert pair.states() == (HubState.CLOSED, HubState.CLOSED)


# -- traffic ----------------------------------------------------------------------------


@pytest.mark.parametrize("sender", [Role.CLIENT, Role.SERVER])
def test_messages_pass_through_unchanged(sender: Role) -> None:
    pair = open_pair()
    messages: list[HubMessage] = [
        inv("A"),
        Invocation(target="B", arguments=(Raw(b"[1,2]"),), invocation_id="0",
                   stream_ids=("1",), headers={"k": "v"}),
        StreamItem(invocation_id="1", item=Raw(b"null")),
        StreamInvocation(invocation_id="2", target="S", arguments=(Raw(b"5"),)),
        CancelInvocation(invocation_id="2"),
        Ping(),
    ]
    for message in messages:
        pair.send(sender, message)
    pair.send(sender, *messages)  # all in one chunk
    assert pair.states() == (HubState.OPEN, HubState.OPEN)


@pytest.mark.parametrize("message", [Ack(sequence_id=5), Sequence(sequence_id=99)])
def test_ack_and_sequence_are_ignored_without_stateful_reconnect(message: HubMessage) -> None:
    pair = open_pair()
    assert pair.client.receive_data(wire(message) + b'{"type":6}\x1e', now=0.0) == [Ping()]
    assert pair.server.receive_data(wire(message), now=0.0) == []
    assert pair.states() == (HubState.OPEN, HubState.OPEN)
    assert pair.client.buffered_bytes == 0


def test_sending_an_ack_without_stateful_reconnect_is_allowed() -> None:
    pair = open_pair()
    pair.client_sends(Ack(sequence_id=1), expect=[])


def test_sequence_is_sent_by_reattach_only() -> None:
    pair = open_pair()
    with pytest.raises(LocalProtocolError, match="reattach"):
        pair.client.send(Sequence(sequence_id=1), now=0.0)
    assert pair.client.state is HubState.ERROR


def test_pending_invocation_is_cleared_by_its_completion() -> None:
    pair = open_pair()
    call = pair.client.next_invocation_id()
    assert call == "0"
    pair.client_sends(inv("Add", b"40", b"2", invocation_id=call))
    assert pair.client.pending_invocations == {"0"}
    assert pair.server.pending_invocations == frozenset()
    pair.client_sends(inv("Fire"))  # no id: nobody answers, nothing pending
    assert pair.client.pending_invocations == {"0"}
    pair.server_sends(Completion(invocation_id="0", result=Raw(b"42")))
    assert pair.client.pending_invocations == frozenset()
    # A second Completion for the same id is for nothing pending any more: delivered
    # (the layer above ignores ids it does not know), and nothing changes.
    pair.server_sends(Completion(invocation_id="0", result=Raw(b"42")))
    assert pair.client.pending_invocations == frozenset()


def test_completion_for_an_unknown_id_is_delivered_and_changes_nothing() -> None:
    pair = open_pair()
    pair.client_sends(inv(invocation_id="7"))
    events = pair.client.receive_data(
        b'{"type":3,"invocationId":"nope","result":1}\x1e{"type":6}\x1e'
        b'{"type":3,"invocationId":"7","error":""}\x1e',
        now=0.0,
    )
    assert events == [Completion(invocation_id="nope", result=Raw(b"1")), Ping(),
                      Completion(invocation_id="7", error="")]
    assert pair.client.pending_invocations == frozenset()


def test_completions_in_one_frame_are_all_delivered_and_retire_their_ids() -> None:
    """The fast path for frames of plain traffic and Completions delivers every
    Completion, as the record-by-record path does, and retires each id it knows."""
    pair = open_pair()
    pair.client_sends(inv(invocation_id="1"), inv(invocation_id="2"))
    events = pair.client.receive_data(
        b'{"type":3,"invocationId":"x"}\x1e{"type":3,"invocationId":"2"}\x1e'
        b'{"type":6}\x1e{"type":3,"invocationId":"2"}\x1e{"type":3,"invocationId":"y"}\x1e'
        b'{"type":1,"target":"T","arguments":[]}\x1e{"type":3,"invocationId":"1"}\x1e',
        now=0.0,
    )
    assert events == [Completion(invocation_id="x"), Completion(invocation_id="2"), Ping(),
                      Completion(invocation_id="2"), Completion(invocation_id="y"),
                      Invocation(target="T", arguments=()), Completion(invocation_id="1")]
    assert pair.client.pending_invocations == frozenset()


def test_completion_result_null_and_void_are_delivered_as_they_came() -> None:
    pair = open_pair()
    pair.client_sends(inv(invocation_id="0"), inv(invocation_id="1"))
    events = pair.server_sends(Completion(invocation_id="0", result=Raw(b"null")),
                               Completion(invocation_id="1"))
    assert [e.has_result for e in events if isinstance(e, Completion)] == [True, False]


def test_stream_invocation_completion_is_delivered() -> None:
    """Regression: a StreamInvocation was not registered as pending, so the Completion
    ending the stream was dropped as "for an unknown id"."""
    pair = open_pair()
    call = pair.client.next_invocation_id()
    pair.client_sends(StreamInvocation(invocation_id=call, target="Counter",
                                       arguments=(Raw(b"3"),)))
    assert pair.client.pending_invocations == {call}
    pair.server_sends(StreamItem(invocation_id=call, item=Raw(b"0")))
    pair.client_sends(CancelInvocation(invocation_id=call))
    pair.server_sends(Completion(invocation_id=call))
    assert pair.client.pending_invocations == frozenset()


def test_client_result_invocation_from_the_server() -> None:
    pair = open_pair()
    call = pair.server.next_invocation_id()
    pair.server_sends(inv("GetMessage", invocation_id=call))
    assert pair.server.pending_invocations == {call}
    pair.client_sends(Completion(invocation_id=call, error="Client didn't provide a result."))
    assert pair.server.pending_invocations == frozenset()


def test_upload_stream_completion_reaches_the_callee() -> None:
    """The Completion that ends an upload stream carries the caller's stream id, which
    the callee never used as an invocation id: it is delivered all the same."""
    pair = open_pair()
    pair.client_sends(Invocation(target="Upload", arguments=(Raw(b'"n"'),),
                                 invocation_id="0", stream_ids=("1",)))
    pair.client_sends(StreamItem(invocation_id="1", item=Raw(b'"chunk"')))
    assert pair.client_sends(Completion(invocation_id="1")) == [Completion(invocation_id="1")]
    assert pair.server.pending_invocations == frozenset()


def test_unknown_type_is_skipped_by_the_connection() -> None:
    conn = open_conn()
    assert conn.receive_data(b'{"type":6}\x1e{"type":11,"x":1}\x1e{"type":6}\x1e',
                             now=0.0) == [Ping(), Ping()]
    assert conn.state is HubState.OPEN


def test_empty_records_are_skipped_by_the_connection() -> None:
    conn = open_conn()
    assert conn.receive_data(b'\x1e\x1e{"type":6}\x1e \x1e', now=0.0) == [Ping()]


def test_split_records_across_many_chunks() -> None:
    conn = open_conn()
    data = wire(inv("A", b"1")) + wire(Ping()) + wire(inv("B"))
    pieces = [data[i : i + 1] for i in range(len(data))]
    assert feed(conn, pieces) == [inv("A", b"1"), Ping(), inv("B")]


@pytest.mark.parametrize("limit", [DEFAULT_MAX_RECORD_SIZE, 64])
def test_oversized_record_is_a_protocol_error(limit: int) -> None:
    conn = open_conn(config=HubConfig(max_record_size=limit))
    big = b'{"type":1,"target":"X","arguments":["' + b"x" * limit + b'"]}'
    with pytest.raises(RemoteProtocolError, match=f"maximum size of {limit} bytes"):
        conn.receive_data(big[: limit + 1], now=0.0)  # partial, already too long
    assert conn.state is HubState.ERROR
    conn = open_conn(config=HubConfig(max_record_size=limit))
    with pytest.raises(RemoteProtocolError, match="maximum size"):
        conn.receive_data(big + b"\x1e", now=0.0)  # complete
    assert conn.state is HubState.ERROR


def test_record_at_the_limit_is_accepted() -> None:
    record = wire(inv("X", b'"' + b"y" * 40 + b'"'))
    conn = open_conn(config=HubConfig(max_record_size=len(record) - 1))
    assert conn.receive_data(record, now=0.0) == [inv("X", b'"' + b"y" * 40 + b'"')]


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b'{"arguments":[]}\x1e', "hub message has no 'type'"),
        (b'{"type":"6"}\x1e', "hub message 'type' is not an integer: '6'"),
    ],
)
def test_missing_or_non_numeric_type_via_the_connection(data: bytes, text: str) -> None:
    conn = open_conn()
    with pytest.raises(RemoteProtocolError) as info:
        conn.receive_data(data, now=0.0)
    assert info.value.close_hint == Close(error=text)
    assert conn.state is HubState.ERROR


# -- close and end of stream ------------------------------------------------------------


@pytest.mark.parametrize(
    "close",
    [Close(), Close(error="Connection closed with an error."),
     Close(error="shutting down", allow_reconnect=True), Close(allow_reconnect=True)],
)
def test_close_from_the_server(close: Close) -> None:
    pair = open_pair()
    pair.server_sends(close)
    assert pair.states() == (HubState.CLOSED, HubState.CLOSED)
    assert pair.client.receive_data(b'{"type":6}\x1e', now=0.0) == []
    assert pair.client.receive_eof() == []
    assert pair.client.next_deadline() is None
    assert pair.client.handle_timer(now=1e9) == []


def test_records_after_a_close_in_the_same_chunk_are_dropped() -> None:
    conn = open_conn()
    data = wire(Ping()) + wire(Close(error="bye")) + wire(Ping())
    assert conn.receive_data(data, now=0.0) == [Ping(), Close(error="bye")]
    assert conn.state is HubState.CLOSED


def test_sending_after_close_is_a_local_error() -> None:
    pair = open_pair()
    pair.client_sends(Close())
    with pytest.raises(LocalProtocolError, match="not allowed in state CLOSED"):
        pair.client.send(Ping(), now=0.0)
    assert pair.client.state is HubState.ERROR


@pytest.mark.parametrize("state", [HubState.NEW, HubState.HANDSHAKING, HubState.OPEN])
def test_end_of_stream_without_close(state: HubState) -> None:
    conn = open_conn() if state is HubState.OPEN else client_in(state)
    assert conn.receive_eof() == [ConnectionLost(reattachable=False)]
    assert conn.state is HubState.CLOSED
    assert conn.receive_eof() == []


def test_end_of_stream_inside_a_record_is_a_lost_connection() -> None:
    """Issue 14: a TCP drop while a record spans WebSocket messages is a network loss
    (reconnect), never "the server broke the protocol"."""
    conn = open_conn()
    assert conn.receive_data(b'{"type":6}\x1e{"type"', now=0.0) == [Ping()]
    assert conn.receive_eof() == [ConnectionLost(reattachable=False)]
    assert conn.state is HubState.CLOSED
    assert conn.receive_eof() == []


def test_end_of_stream_inside_the_handshake_response_is_a_lost_connection() -> None:
    client = client_in(HubState.HANDSHAKING)
    client.receive_data(b"{", now=0.0)
    assert client.receive_eof() == [ConnectionLost(reattachable=False)]
    assert client.state is HubState.CLOSED


def test_end_of_stream_inside_the_handshake_request_is_a_lost_connection() -> None:
    server = HubConnection(Role.SERVER, now=0.0)
    server.receive_data(b'{"protocol":"js', now=0.0)
    assert server.receive_eof() == [ConnectionLost(reattachable=False)]
    assert server.state is HubState.CLOSED


def test_stateful_end_of_stream_inside_a_record_detaches_and_drops_the_half() -> None:
    pair = open_pair(stateful=True)
    pair.client.receive_data(b'{"type":1,"target":"x","argu', now=0.0)
    assert pair.client.receive_eof(now=0.0) == [ConnectionLost(reattachable=True)]
    assert pair.client.state is HubState.DETACHED
    assert len(pair.client._records) == 0


# -- after a protocol error, everything raises ------------------------------------------


def _break_by_bad_record(conn: Conn) -> None:
    conn.receive_data(b"nope\x1e", now=0.0)


def _break_by_oversized_record(conn: Conn) -> None:
    conn.receive_data(b"x" * (DEFAULT_MAX_RECORD_SIZE + 1), now=0.0)


def _break_by_local_misuse(conn: Conn) -> None:
    conn.send(HandshakeAccepted(), now=0.0)


def _break_by_reattach_while_open(conn: Conn) -> None:
    conn.reattach(now=0.0)


def _break_by_sequence(conn: Conn) -> None:
    conn.send(Sequence(sequence_id=1), now=0.0)


@pytest.mark.parametrize(
    "breaker",
    [_break_by_bad_record, _break_by_oversized_record, _break_by_local_misuse,
     _break_by_reattach_while_open, _break_by_sequence],
)
def test_every_call_raises_after_a_protocol_error(breaker: object) -> None:
    assert callable(breaker)
    conn = open_conn()
    with pytest.raises(ProtocolError):
        breaker(conn)
    assert conn.state is HubState.ERROR
    with pytest.raises(LocalProtocolError, match="ERROR state"):
        conn.send(Ping(), now=0.0)
    with pytest.raises(RemoteProtocolError, match="ERROR state"):
        conn.receive_data(b'{"type":6}\x1e', now=0.0)
    with pytest.raises(LocalProtocolError):
        conn.reattach(now=0.0)
    assert conn.next_deadline() is None
    assert conn.handle_timer(now=1e9) == []
    assert conn.receive_eof() == []
    assert conn.state is HubState.ERROR


def test_reattach_misuse_moves_to_error() -> None:
    """Regression: a refused reattach() left the state untouched, unlike every other
    protocol error."""
    conn = open_conn()
    with pytest.raises(LocalProtocolError, match="Reattach from the client"):
        conn.reattach(now=0.0)
    assert conn.state is HubState.ERROR


# -- timers -----------------------------------------------------------------------------


def test_keepalive_is_due_15s_after_the_last_send_and_receiving_does_not_reset_it() -> None:
    pair = open_pair()  # the client last sent at 0 (its handshake request)
    client = pair.client
    assert client.next_deadline() == 15.0
    pair.advance(10.0)
    pair.server_sends(Ping())  # received at 10
    assert client.next_deadline() == 15.0
    assert client.handle_timer(now=14.999) == []
    assert client.handle_timer(now=15.0) == [KeepAliveDue()]
    assert client.handle_timer(now=16.0) == [KeepAliveDue()]  # until something is sent
    pair.now = 16.0
    pair.client_sends(Ping())
    assert client.next_deadline() == 31.0  # min(16 + 15, 10 + 30)
    assert client.handle_timer(now=30.9) == []
    assert state_of(client) is HubState.OPEN


def test_keepalive_counts_any_send() -> None:
    pair = open_pair()
    pair.now = 7.5
    pair.client_sends(inv("Anything"))
    assert pair.client.next_deadline() == 22.5
    assert pair.client.handle_timer(now=22.5) == [KeepAliveDue()]


def test_peer_timeout_is_30s_after_the_last_receive_and_sending_does_not_reset_it() -> None:
    pair = open_pair(HubConfig(keepalive_interval=100.0))
    client = pair.client
    assert client.next_deadline() == 30.0
    pair.now = 20.0
    pair.client_sends(Ping())  # sending does not count
    assert client.next_deadline() == 30.0
    assert client.handle_timer(now=29.999) == []
    assert client.handle_timer(now=30.0) == [PeerTimedOut(silent_for=30.0)]
    assert client.state is HubState.CLOSED
    assert client.next_deadline() is None


def test_peer_timeout_fires_at_exactly_next_deadline_despite_rounding() -> None:
    """Regression: handle_timer compared ``now - last >= 30`` while next_deadline() said
    ``last + 30``; for this start time the two disagree by one ulp, so handle_timer at the
    deadline returned [] and the deadline did not move (a busy loop on a mock clock)."""
    start = 50.38846628535598
    assert (start + 30.0) - start < 30.0  # the rounding this test is about
    conn = open_conn(config=HubConfig(keepalive_interval=100.0), now=start)
    deadline = conn.next_deadline()
    assert deadline == start + 30.0
    assert conn.handle_timer(now=deadline) == [PeerTimedOut(silent_for=deadline - start)]
    assert conn.state is HubState.CLOSED


def test_receiving_resets_the_peer_timeout() -> None:
    pair = open_pair(HubConfig(keepalive_interval=100.0))
    pair.now = 25.0
    pair.server_sends(Ping())
    assert pair.client.next_deadline() == 55.0
    assert pair.client.handle_timer(now=54.0) == []
    assert pair.client.handle_timer(now=56.5) == [PeerTimedOut(silent_for=31.5)]


def test_peer_alive_resets_the_peer_timeout_but_never_moves_it_back() -> None:
    """A sign of life seen by the transport (a WebSocket ping) counts like a receive."""
    pair = open_pair(HubConfig(keepalive_interval=100.0))
    pair.client.peer_alive(now=20.0)
    assert pair.client.next_deadline() == 50.0
    pair.client.peer_alive(now=5.0)  # an older sighting changes nothing
    assert pair.client.next_deadline() == 50.0
    assert pair.client.handle_timer(now=49.0) == []
    assert pair.client.handle_timer(now=50.0) == [PeerTimedOut(silent_for=30.0)]


def test_even_a_partial_record_counts_as_received() -> None:
    conn = open_conn(config=HubConfig(keepalive_interval=100.0))
    conn.receive_data(b'{"ty', now=12.0)
    assert conn.next_deadline() == 42.0


def test_timers_are_configurable() -> None:
    pair = open_pair(HubConfig(keepalive_interval=5.0, peer_timeout=12.0))
    assert pair.server.next_deadline() == 5.0
    assert pair.server.handle_timer(now=5.0) == [KeepAliveDue()]
    pair.now = 5.0
    pair.server_sends(Ping())
    assert pair.server.next_deadline() == 10.0
    pair.now = 10.0
    pair.server_sends(Ping())
    assert pair.server.next_deadline() == 12.0  # the client last spoke at 0
    assert pair.server.handle_timer(now=12.0) == [PeerTimedOut(silent_for=12.0)]


def test_no_peer_timeout() -> None:
    pair = open_pair(HubConfig(peer_timeout=None))
    assert pair.client.next_deadline() == 15.0
    pair.now = 1000.0
    assert pair.client.handle_timer(now=1000.0) == [KeepAliveDue()]
    assert state_of(pair.client) is HubState.OPEN


def test_peer_timeout_wins_over_a_keepalive_due_at_the_same_time() -> None:
    pair = open_pair(HubConfig(keepalive_interval=30.0, peer_timeout=30.0))
    assert pair.client.handle_timer(now=30.0) == [PeerTimedOut(silent_for=30.0)]


@pytest.mark.parametrize("role", [Role.CLIENT, Role.SERVER])
def test_handshake_timeout(role: Role) -> None:
    conn: Conn = HubConnection(role, now=100.0)
    assert conn.next_deadline() == 115.0
    if role is Role.CLIENT:
        conn.send(REQUEST_V1, now=105.0)
    else:
        conn.receive_data(REQUEST_WIRE, now=105.0)
    assert state_of(conn) is HubState.HANDSHAKING
    assert conn.next_deadline() == 115.0  # counted from the start, not the last step
    assert conn.handle_timer(now=114.999) == []
    assert conn.handle_timer(now=115.0) == [HandshakeTimedOut()]
    assert state_of(conn) is HubState.CLOSED
    assert conn.next_deadline() is None


def test_handshake_timeout_is_configurable_or_off() -> None:
    conn: Conn = HubConnection(Role.CLIENT, now=1.0, config=HubConfig(handshake_timeout=2.5))
    assert conn.next_deadline() == 3.5
    assert conn.handle_timer(now=3.5) == [HandshakeTimedOut()]
    conn = HubConnection(Role.SERVER, now=1.0, config=HubConfig(handshake_timeout=None))
    assert conn.next_deadline() is None
    assert conn.handle_timer(now=1e9) == []
    assert conn.state is HubState.NEW


def test_deadlines_switch_after_the_handshake() -> None:
    pair = HubPair(now=100.0)
    pair.now = 101.0
    pair.client_sends(REQUEST_V1)
    pair.now = 103.0
    pair.server_sends(HandshakeAccepted())
    assert pair.client.next_deadline() == 116.0  # last sent 101
    assert pair.server.next_deadline() == 118.0  # last sent 103
    assert pair.client.handle_timer(now=115.5) == []


# -- stateful reconnect -----------------------------------------------------------------


def test_trackable_messages_are_buffered_until_acknowledged() -> None:
    pair = open_pair(stateful=True)
    client = pair.client
    sizes = [len(wire(inv("A", b"1"))), len(wire(StreamItem(invocation_id="s", item=Raw(b"2")))),
             len(wire(Completion(invocation_id="c")))]
    pair.client_sends(inv("A", b"1"))
    pair.client_sends(Ping(), Ack(sequence_id=0), expect=[Ping()])  # not trackable
    assert client.buffered_bytes == sizes[0]
    pair.client_sends(StreamItem(invocation_id="s", item=Raw(b"2")))
    pair.client_sends(Completion(invocation_id="c"))  # unknown id: delivered and counted
    assert client.buffered_bytes == sum(sizes)
    pair.server_sends(Ack(sequence_id=1), expect=[])
    assert client.buffered_bytes == sizes[1] + sizes[2]
    pair.server_sends(Ack(sequence_id=1), expect=[])  # again: nothing more to release
    assert client.buffered_bytes == sizes[1] + sizes[2]
    pair.server_sends(Ack(sequence_id=3), expect=[])
    assert client.buffered_bytes == 0


def test_sequence_ids_start_at_1_and_count_trackable_messages_only() -> None:
    pair = open_pair(stateful=True)
    for n in range(4):
        pair.client_sends(inv(str(n)))
        pair.client_sends(Ping())
    pair.server_sends(Ack(sequence_id=2), expect=[])  # releases 1 and 2
    pair.drop()
    client_wire, _ = pair.reattach()
    assert client_wire == wire(Sequence(sequence_id=3)) + wire(inv("2")) + wire(inv("3"))


def test_ack_due_about_a_second_after_receiving() -> None:
    pair = open_pair(stateful=True)
    client = pair.client
    assert client.next_deadline() == 15.0
    pair.now = 5.0
    pair.server_sends(inv("A"))
    assert client.next_deadline() == 6.0
    pair.now = 5.5
    pair.server_sends(inv("B"), Ping())  # does not push the Ack back
    assert client.next_deadline() == 6.0
    assert client.handle_timer(now=5.999) == []
    assert client.handle_timer(now=6.0) == [AckDue(sequence_id=2)]
    assert client.next_deadline() == 15.0
    assert client.handle_timer(now=6.5) == []
    pair.now = 6.0
    pair.client_sends(Ack(sequence_id=2), expect=[])
    assert pair.server.buffered_bytes == 0


def test_ack_due_is_not_armed_by_untracked_messages() -> None:
    pair = open_pair(stateful=True)
    pair.now = 3.0
    pair.server_sends(Ping(), Ack(sequence_id=0), expect=[Ping()])
    assert pair.client.next_deadline() == 15.0


def test_ack_and_keepalive_due_together() -> None:
    pair = open_pair(HubConfig(ack_interval=2.0), stateful=True)
    pair.now = 13.0
    pair.server_sends(inv("A"))
    assert pair.client.next_deadline() == 15.0
    assert pair.client.handle_timer(now=15.0) == [AckDue(sequence_id=1), KeepAliveDue()]


def test_send_would_block_at_the_byte_budget() -> None:
    record = wire(inv("X", b'"0123456789"'))
    budget = 3 * len(record)
    pair = open_pair(HubConfig(max_buffered_bytes=budget), stateful=True)
    client = pair.client

    def blocked() -> bool:
        return client.send_would_block

    for _ in range(2):
        pair.client_sends(inv("X", b'"0123456789"'))
        assert blocked() is False
    pair.client_sends(inv("X", b'"0123456789"'))
    assert client.buffered_bytes == budget
    assert blocked() is True
    pair.client_sends(Ping())  # not trackable: still fine
    pair.server_sends(Ack(sequence_id=1), expect=[SendUnblocked()])
    assert blocked() is False
    pair.client_sends(inv("X", b'"0123456789"'))
    assert blocked() is True
    # Backpressure, not a failure: the send is refused and the connection stays usable.
    with pytest.raises(LocalProtocolError, match="buffer is full"):
        client.send(inv("X"), now=0.0)
    assert state_of(client) is HubState.OPEN
    assert client.buffered_bytes == budget
    pair.server_sends(Ack(sequence_id=2), expect=[SendUnblocked()])
    pair.server_sends(Ack(sequence_id=4), expect=[])  # it was not full: no event
    assert client.buffered_bytes == 0
    pair.client_sends(inv("X"))


def test_a_full_buffer_waits_for_acks_and_loses_nothing() -> None:
    """Issue 13: a server whose client acks slowly waits (backpressure) instead of
    dropping; every message it held back arrives once the acks come, exactly once."""
    pair = open_pair(HubConfig(max_buffered_bytes=200), stateful=True)
    server, client = pair.server, pair.client
    waiting = [inv(f"M{n}", b'"0123456789012345678901234567890123456789"')
               for n in range(40)]
    got: list[Event] = []
    unblocked = 0
    while waiting:
        while waiting and not server.send_would_block:
            got += client.receive_data(server.send(waiting.pop(0), now=pair.now),
                                       now=pair.now)
        assert server.send_would_block or not waiting
        pair.advance(1.0)
        for tick in client.handle_timer(now=pair.now):
            if isinstance(tick, AckDue):
                events = server.receive_data(client.answer_timer(tick, now=pair.now),
                                             now=pair.now)
                unblocked += events.count(SendUnblocked())
    assert [e.target for e in got if isinstance(e, Invocation)] == [
        f"M{n}" for n in range(40)]
    assert unblocked >= 5
    assert server.state is HubState.OPEN


def test_no_buffering_without_stateful_reconnect() -> None:
    pair = open_pair(HubConfig(max_buffered_bytes=1))
    pair.client_sends(inv("X"), inv("Y"))
    assert pair.client.buffered_bytes == 0
    assert pair.client.send_would_block is False


@pytest.mark.parametrize("now", [3.0, None])
def test_end_of_stream_detaches(now: float | None) -> None:
    pair = open_pair(stateful=True)
    pair.now = 2.0
    pair.client_sends(Ping())
    assert pair.client.receive_eof(now=now) == [ConnectionLost(reattachable=True)]
    assert pair.client.state is HubState.DETACHED
    detached_at = 3.0 if now is not None else 2.0  # else: the last activity
    assert pair.client.next_deadline() == detached_at + 15.0
    assert pair.client.receive_eof(now=now) == []
    assert pair.client.handle_timer(now=detached_at + 14.9) == []
    assert pair.client.handle_timer(now=detached_at + 15.0) == [ReattachTimedOut()]
    assert state_of(pair.client) is HubState.CLOSED


def test_end_of_stream_inside_a_record_still_detaches() -> None:
    pair = open_pair(stateful=True)
    pair.to_client(b'{"type":1,"tar')
    assert pair.client.receive_eof(now=0.0) == [ConnectionLost(reattachable=True)]
    assert pair.client.state is HubState.DETACHED


def test_receiving_while_detached_is_a_local_error() -> None:
    pair = open_pair(stateful=True)
    pair.drop()
    with pytest.raises(LocalProtocolError, match=r"reattach\(\) first"):
        pair.to_client(b'{"type":6}\x1e')
    assert pair.client.state is HubState.ERROR


def test_sends_while_detached_return_nothing_and_are_replayed() -> None:
    pair = open_pair(stateful=True)
    pair.drop()
    client = pair.client
    assert client.send(inv("A"), now=0.0) == b""
    assert client.send(Ping(), now=0.0) == b""
    assert client.send(Ack(sequence_id=0), now=0.0) == b""
    assert client.send(StreamItem(invocation_id="1", item=Raw(b"1")), now=0.0) == b""
    assert client.state is HubState.DETACHED
    assert client.buffered_bytes == len(wire(inv("A"))) + len(
        wire(StreamItem(invocation_id="1", item=Raw(b"1")))
    )
    client_wire, server_wire = pair.reattach()
    assert client_wire == (wire(Sequence(sequence_id=1)) + wire(inv("A"))
                           + wire(StreamItem(invocation_id="1", item=Raw(b"1"))))
    assert server_wire == wire(Sequence(sequence_id=1))
    assert pair.to_server(client_wire) == [
        Reattached(), inv("A"), StreamItem(invocation_id="1", item=Raw(b"1"))
    ]
    assert pair.to_client(server_wire) == [Reattached()]
    assert pair.states() == (HubState.OPEN, HubState.OPEN)


def test_close_while_detached() -> None:
    pair = open_pair(stateful=True)
    pair.drop()
    assert pair.client.send(Close(), now=0.0) == b""
    assert pair.client.state is HubState.CLOSED
    with pytest.raises(LocalProtocolError):
        pair.client.reattach(now=0.0)


def test_reattach_exchanges_sequences_and_ignores_stale_data() -> None:
    pair = open_pair(stateful=True)
    pair.client_sends(inv("A"))
    pair.server_sends(inv("B"))
    pair.drop()
    client_wire, server_wire = pair.reattach()
    assert client_wire == wire(Sequence(sequence_id=1)) + wire(inv("A"))
    # Anything before the peer's Sequence is stale and ignored, even a Ping or a Close.
    stale = wire(Ping()) + wire(inv("stale")) + wire(Close())
    assert pair.to_server(stale) == []
    assert pair.server.state is HubState.REATTACHING
    assert pair.to_server(client_wire) == [Reattached()]  # "A" is a duplicate
    assert pair.to_client(server_wire) == [Reattached()]  # so is "B"
    assert pair.states() == (HubState.OPEN, HubState.OPEN)
    pair.client_sends(inv("C"))
    pair.server_sends(inv("D"))


def test_sends_while_reattaching_are_written_and_numbered() -> None:
    pair = open_pair(stateful=True)
    pair.drop()
    client_wire, server_wire = pair.reattach()
    extra = pair.client.send(inv("early"), now=0.0)
    assert extra == wire(inv("early"))
    assert pair.client.state is HubState.REATTACHING
    assert pair.to_server(client_wire + extra) == [Reattached(), inv("early")]
    assert pair.to_client(server_wire) == [Reattached()]
    pair.drop()
    client_wire, _ = pair.reattach()
    assert client_wire == wire(Sequence(sequence_id=1)) + extra  # not acknowledged yet


def test_sequence_id_too_high_is_a_protocol_error() -> None:
    pair = open_pair(stateful=True)
    pair.server_sends(inv("A"), inv("B"))  # the client expects id 3 next
    pair.drop()
    pair.reattach()
    with pytest.raises(RemoteProtocolError, match="skips messages") as info:
        pair.to_client(wire(Sequence(sequence_id=4)))
    assert info.value.close_hint == Close(error="Sequence id is too high")
    assert pair.client.state is HubState.ERROR
    assert pair.to_server(wire(Sequence(sequence_id=1))) == [Reattached()]


def test_a_replay_cut_short_then_acknowledged_does_not_look_like_a_gap() -> None:
    """Found by the session-level chaos property: the server processed A (id 1) and
    acknowledged it, but the client's replay of A after a first drop was cut before it
    arrived, rewinding the server's expected id to 1. After a second drop the client
    rightly starts at 2 (A is acknowledged): that skips nothing the server has not
    processed, so it must not be a protocol error (it was: the connection died)."""
    pair = open_pair(stateful=True)
    pair.client_sends(inv("A"))
    pair.drop()
    client_wire, server_wire = pair.reattach()
    sequence = wire(Sequence(sequence_id=1))
    assert client_wire == sequence + wire(inv("A"))
    assert pair.to_server(sequence) == [Reattached()]  # the replayed A never arrives
    assert pair.to_client(server_wire) == [Reattached()]
    pair.advance(1.0)
    pair.ack_both()  # the server acknowledges A (it processed it before the drop)
    assert pair.client.buffered_bytes == 0
    pair.drop()
    client_wire, server_wire = pair.reattach()
    assert client_wire == wire(Sequence(sequence_id=2))
    assert pair.to_server(client_wire) == [Reattached()]
    assert pair.to_client(server_wire) == [Reattached()]
    assert pair.to_server(wire(inv("B"))) == [inv("B")]  # B is id 2: not a duplicate
    assert pair.states() == (HubState.OPEN, HubState.OPEN)


def test_sequence_id_too_high_while_open() -> None:
    pair = open_pair(stateful=True)
    with pytest.raises(RemoteProtocolError, match="skips messages"):
        pair.to_client(wire(Sequence(sequence_id=2)))


def test_sequence_id_equal_to_next_expected_is_fine() -> None:
    pair = open_pair(stateful=True)
    pair.server_sends(inv("A"), inv("B"))
    pair.drop()
    pair.reattach()
    assert pair.to_client(wire(Sequence(sequence_id=3)) + wire(inv("C"))) == [
        Reattached(), inv("C")
    ]


def test_reattach_timeout_while_reattaching() -> None:
    pair = open_pair(stateful=True)
    pair.now = 4.0
    pair.drop()
    pair.now = 10.0
    pair.reattach()
    assert pair.client.next_deadline() == 25.0
    assert pair.client.handle_timer(now=24.9) == []
    assert pair.client.handle_timer(now=25.0) == [ReattachTimedOut()]
    assert pair.client.state is HubState.CLOSED


def test_reattach_is_configurable() -> None:
    pair = open_pair(HubConfig(reattach_timeout=2.0), stateful=True)
    pair.drop()
    assert pair.client.next_deadline() == 2.0


def test_transport_lost_again_while_reattaching() -> None:
    pair = open_pair(stateful=True)
    pair.drop()
    pair.reattach()
    assert pair.client.receive_eof(now=1.0) == [ConnectionLost(reattachable=True)]
    assert pair.client.state is HubState.DETACHED


def test_without_stateful_reconnect_end_of_stream_is_final() -> None:
    pair = HubPair(client_config=STATEFUL)  # the server does not allow it
    pair.handshake(version=2)
    assert pair.server.receive_eof() == [ConnectionLost(reattachable=False)]
    assert pair.server.state is HubState.CLOSED


def test_reattach_needs_a_detached_connection() -> None:
    pair = open_pair(stateful=True)
    with pytest.raises(LocalProtocolError, match="not allowed in state OPEN"):
        pair.client.reattach(now=0.0)


def _deliver_all(pair: HubPair, receiver: Role, data: bytes, got: list[Event]) -> None:
    got.extend(e for e in pair.deliver(receiver, data) if not isinstance(e, Reattached))


@pytest.mark.parametrize("cut_in_record", [False, True])
def test_reconnect_loses_nothing_and_delivers_nothing_twice(cut_in_record: bool) -> None:
    pair = open_pair(stateful=True)
    client, server = pair.client, pair.server
    to_server: list[Event] = []
    to_client: list[Event] = []
    sent_by_client: list[HubMessage] = []
    sent_by_server: list[HubMessage] = []

    def client_send(message: HubMessage, *, deliver: bool | int = True) -> None:
        sent_by_client.append(message)
        data = client.send(message, now=pair.now)
        if deliver is True:
            _deliver_all(pair, Role.SERVER, data, to_server)
        elif deliver is not False:
            _deliver_all(pair, Role.SERVER, data[:deliver], to_server)

    def server_send(message: HubMessage, *, deliver: bool | int = True) -> None:
        sent_by_server.append(message)
        data = server.send(message, now=pair.now)
        if deliver is True:
            _deliver_all(pair, Role.CLIENT, data, to_client)
        elif deliver is not False:
            _deliver_all(pair, Role.CLIENT, data[:deliver], to_client)

    # Acknowledged traffic both ways.
    for n in range(3):
        client_send(inv(f"c{n}"))
        server_send(inv(f"s{n}"))
    pair.advance(1.0)
    pair.ack_both()
    assert client.buffered_bytes == server.buffered_bytes == 0
    # Delivered but not acknowledged, then lost in flight, then cut inside a record.
    client_send(inv("c3"))
    server_send(StreamItem(invocation_id="x", item=Raw(b"3")))
    client_send(inv("c4"), deliver=False)
    server_send(inv("s4"), deliver=False)
    client_send(inv("c5"), deliver=5 if cut_in_record else False)
    server_send(inv("s5"), deliver=7 if cut_in_record else False)
    pair.drop()
    assert pair.states() == (HubState.DETACHED, HubState.DETACHED)
    # Sent while detached.
    client_send(inv("c6"), deliver=False)
    server_send(inv("s6"), deliver=False)
    client_wire, server_wire = pair.reattach()
    _deliver_all(pair, Role.SERVER, client_wire, to_server)
    _deliver_all(pair, Role.CLIENT, server_wire, to_client)
    assert pair.states() == (HubState.OPEN, HubState.OPEN)
    # And a second drop before anything was acknowledged: replayed again, still once.
    client_send(inv("c7"))
    server_send(inv("s7"))
    pair.drop()
    client_wire, server_wire = pair.reattach()
    _deliver_all(pair, Role.CLIENT, server_wire, to_client)
    _deliver_all(pair, Role.SERVER, client_wire, to_server)
    client_send(inv("c8"))
    server_send(inv("s8"))
    assert to_server == sent_by_client
    assert to_client == sent_by_server
    pair.advance(1.0)
    pair.ack_both()
    assert client.buffered_bytes == server.buffered_bytes == 0


def test_stateful_connection_keeps_pending_invocations_across_a_reattach() -> None:
    pair = open_pair(stateful=True)
    call = pair.client.next_invocation_id()
    pair.client_sends(inv("Add", b"1", invocation_id=call))
    pair.drop()
    pair.server.send(Completion(invocation_id=call, result=Raw(b"1")), now=0.0)
    client_wire, server_wire = pair.reattach()
    pair.to_server(client_wire)
    assert pair.to_client(server_wire) == [
        Reattached(), Completion(invocation_id=call, result=Raw(b"1"))
    ]
    assert pair.client.pending_invocations == frozenset()


def test_open_pair_stateful_keeps_other_settings() -> None:
    config = HubConfig(keepalive_interval=3.0)
    pair = open_pair(config, stateful=True)
    assert pair.client.config == dataclasses.replace(config, stateful_reconnect=True)


def test_answer_timer_gives_the_reply_each_timer_event_needs() -> None:
    from voxta_proto.hub import AckDue, KeepAliveDue, PeerTimedOut

    conn = open_conn(config=HubConfig(peer_timeout=None))
    assert conn.answer_timer(KeepAliveDue(), now=20.0) == b'{"type":6}\x1e'
    assert conn.next_deadline() == 35.0  # the Ping counts as sent
    assert conn.answer_timer(AckDue(sequence_id=4), now=20.0) == b'{"type":8,"sequenceId":4}\x1e'
    assert conn.answer_timer(PeerTimedOut(silent_for=30.0), now=20.0) == b""
