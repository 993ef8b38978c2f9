"""The hub properties over both hub protocols (JSON and MessagePack): round trips,
chunking invariance, garbage tolerance, timers, exactly-once stateful reconnect, and a
differential walk showing a MessagePack pair behaves exactly like a JSON pair.

The JSON-only properties (the single-pass JSON decode, the state-table walk on JSON
records) stay in ``test_hub_properties.py``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import strategies
from codec_helpers import (
    CODECS,
    CodecPair,
    as_wire_message,
    for_codec,
    open_codec_conn,
    open_codec_pair,
)
from helpers import Conn, Event, feed, split_at
from voxta_proto.errors import ProtocolError, RemoteProtocolError
from voxta_proto.hub import (
    HUB_MESSAGE_TYPES,
    TRACKABLE_TYPES,
    TRANSITIONS,
    Ack,
    AckDue,
    CancelInvocation,
    Close,
    Completion,
    HandshakeAccepted,
    HandshakeRefused,
    HandshakeRequest,
    HubConfig,
    HubConnection,
    HubMessage,
    HubState,
    Invocation,
    Outgoing,
    Ping,
    Reattached,
    Role,
    Sequence,
    StreamInvocation,
    StreamItem,
    encode_length_prefix,
)
from voxta_proto.hub.events import ConnectionLost

Raw = msgspec.Raw
PROTOCOLS = list(CODECS)
protocols = pytest.mark.parametrize("protocol", PROTOCOLS)


def encode_all(protocol: str, messages: list[HubMessage]) -> bytes:
    encode = CODECS[protocol]().encode
    return b"".join(encode(m) for m in messages)


def traffic(protocol: str, max_size: int) -> st.SearchStrategy[list[HubMessage]]:
    return st.lists(for_codec(strategies.open_traffic(), protocol), max_size=max_size)


# -- round trips -------------------------------------------------------------------------


@protocols
@given(data=st.data())
def test_every_message_round_trips_alone_and_together(protocol: str,
                                                      data: st.DataObject) -> None:
    codec = CODECS[protocol]()
    messages = data.draw(st.lists(for_codec(strategies.hub_messages(), protocol),
                                  max_size=8))
    for message in messages:
        assert codec.decode_records(codec.encode(message)) == [message]
    assert codec.decode_records(encode_all(protocol, messages)) == messages


@given(value=strategies.json_values())
def test_messagepack_raw_payloads_keep_their_value(value: strategies.JsonValue) -> None:
    message = Invocation(target="T", arguments=(Raw(msgspec.json.encode(value)),))
    try:
        wire_message = as_wire_message(message, "messagepack")
    except OverflowError:
        return  # over 64 bits: MessagePack cannot carry it
    codec = CODECS["messagepack"]()
    (decoded,) = codec.decode_records(codec.encode(wire_message))
    assert isinstance(decoded, Invocation)
    assert msgspec.msgpack.decode(decoded.arguments[0]) == value


# -- chunking never changes the events -----------------------------------------------------


def expected_events(messages: list[HubMessage]) -> list[HubMessage]:
    """What an OPEN connection without stateful reconnect reports for ``messages``."""
    return [m for m in messages if not isinstance(m, (Ack, Sequence))]


def receiver(protocol: str, role: Role, messages: list[HubMessage]) -> Conn:
    """An OPEN connection that invoked every id some Completion in ``messages`` answers."""
    conn = open_codec_conn(protocol, role)
    for call in sorted({m.invocation_id for m in messages if isinstance(m, Completion)}):
        conn.send(Invocation(target="T", arguments=(), invocation_id=call), now=0.0)
    return conn


@protocols
@given(data=st.data(), cuts=strategies.cut_points(), role=st.sampled_from(Role))
def test_chunking_never_changes_events(protocol: str, data: st.DataObject, cuts: list[int],
                                       role: Role) -> None:
    messages = data.draw(traffic(protocol, 8))
    wire = encode_all(protocol, messages)
    whole, cut = receiver(protocol, role, messages), receiver(protocol, role, messages)
    assert feed(whole, [wire]) == feed(cut, split_at(wire, cuts)) == expected_events(messages)
    assert whole.pending_invocations == cut.pending_invocations == frozenset()
    assert whole.state is cut.state is HubState.OPEN


@protocols
@given(data=st.data())
def test_one_byte_at_a_time(protocol: str, data: st.DataObject) -> None:
    messages = data.draw(traffic(protocol, 4))
    wire = encode_all(protocol, messages)
    conn = receiver(protocol, Role.CLIENT, messages)
    events = feed(conn, [wire[i:i + 1] for i in range(len(wire))])
    assert events == expected_events(messages)


@protocols
@given(data=st.data(), cuts=strategies.cut_points())
def test_chunking_with_the_handshake_response_in_front(protocol: str, data: st.DataObject,
                                                      cuts: list[int]) -> None:
    messages = data.draw(traffic(protocol, 6))
    wire = b'{"extra":1}\x1e' + encode_all(protocol, messages)
    results: list[list[Event]] = []
    for pieces in ([wire], split_at(wire, cuts)):
        conn: Conn = HubConnection(Role.CLIENT, now=0.0, codec=CODECS[protocol]())
        conn.send(HandshakeRequest(protocol=protocol, version=1), now=0.0)
        results.append(feed(conn, pieces))
        assert conn.state is HubState.OPEN
    assert results[0] == results[1] == [HandshakeAccepted(), *expected_events(messages)]


@protocols
@given(data=st.data(), cuts=strategies.cut_points())
def test_chunking_with_stateful_reconnect(protocol: str, data: st.DataObject,
                                          cuts: list[int]) -> None:
    messages = data.draw(st.lists(for_codec(strategies.open_traffic().filter(
        lambda m: not isinstance(m, Sequence)), protocol), max_size=6))
    wire = encode_all(protocol, messages)
    runs = []
    for pieces in ([wire], split_at(wire, cuts)):
        pair = open_codec_pair(protocol, stateful=True)
        for call in sorted({m.invocation_id for m in messages if isinstance(m, Completion)}):
            pair.client.send(Invocation(target="T", arguments=(), invocation_id=call), now=0.0)
        pair.now = 2.0
        events = [e for piece in pieces for e in pair.to_client(piece)]
        runs.append((events, pair.client.next_deadline(), pair.client.handle_timer(now=3.0)))
    assert runs[0] == runs[1]
    trackable = sum(type(m) in TRACKABLE_TYPES for m in messages)
    assert runs[0][2][:1] == ([AckDue(sequence_id=trackable)] if trackable else [])


# -- garbage only ever raises RemoteProtocolError ------------------------------------------

_ANY = st.recursive(
    st.none() | st.booleans() | strategies.INT64 | st.floats() | st.text(max_size=6)
    | st.binary(max_size=6),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=4) | strategies.INT64, children, max_size=3),
    max_leaves=6,
)
"""Any MessagePack value."""


def _mutate(message: HubMessage, index: int, value: Any, cut: bool) -> bytes:
    """A real MessagePack message with one array item replaced (or the array cut short)."""
    items = msgspec.msgpack.decode(_payload(CODECS["messagepack"]().encode(message)))
    position = index % len(items)
    items = items[:position] if cut else [*items[:position], value, *items[position + 1:]]
    return msgspec.msgpack.encode(items)


def _payload(framed: bytes) -> bytes:
    start = 1
    while framed[start - 1] & 0x80:
        start += 1
    return framed[start:]


def msgpack_garbage() -> st.SearchStrategy[bytes]:
    """Length-prefixed MessagePack messages: valid, mutated, arrays with any type first,
    any value, random bytes; some with a wrong length prefix."""
    valid = for_codec(strategies.hub_messages(), "messagepack")
    payloads = st.one_of(
        valid.map(lambda m: _payload(CODECS["messagepack"]().encode(m))),
        st.builds(_mutate, valid, st.integers(0, 6), _ANY, st.booleans()),
        st.builds(lambda kind, rest: msgspec.msgpack.encode([kind, *rest]),
                  st.integers(-1, 11) | _ANY, st.lists(_ANY, max_size=6)),
        _ANY.map(msgspec.msgpack.encode),
        st.binary(max_size=12),
    )
    framed = st.builds(
        lambda payload, skew: encode_length_prefix(max(0, len(payload) + skew)) + payload,
        payloads, st.sampled_from([0, 0, 0, -1, 1]))
    return st.lists(framed, max_size=6).map(b"".join) | st.binary(max_size=64)


def garbage_target(protocol: str, kind: str) -> Conn:
    if kind == "open-client":
        return open_codec_conn(protocol, Role.CLIENT)
    if kind == "open-server":
        return open_codec_conn(protocol, Role.SERVER)
    if kind == "open-stateful":
        return open_codec_pair(protocol, stateful=True).client
    role = Role.CLIENT if kind == "handshaking-client" else Role.SERVER
    conn: Conn = HubConnection(role, now=0.0, codec=CODECS[protocol]())
    if role is Role.CLIENT:
        conn.send(HandshakeRequest(protocol=protocol, version=1), now=0.0)
    return conn


@given(data=msgpack_garbage() | st.just(b'{}\x1e').flatmap(
           lambda h: msgpack_garbage().map(lambda g: h + g)),
       cuts=strategies.cut_points(),
       kind=st.sampled_from(["open-client", "open-server", "open-stateful",
                             "handshaking-client", "new-server"]))
def test_messagepack_garbage_only_ever_raises_remote_protocol_error(
        data: bytes, cuts: list[int], kind: str) -> None:
    conn = garbage_target("messagepack", kind)
    raised = False
    try:
        for piece in split_at(data, cuts):
            for event in conn.receive_data(piece, now=0.0):
                assert isinstance(event, (*HUB_MESSAGE_TYPES.values(), HandshakeRequest,
                                          HandshakeAccepted, HandshakeRefused))
                assert not isinstance(event, (Ack, Sequence))
    except RemoteProtocolError:
        raised = True
    assert (conn.state is HubState.ERROR) is raised
    with contextlib.suppress(RemoteProtocolError):
        conn.receive_eof(now=0.0)


# -- timers always make progress -----------------------------------------------------------

intervals = st.floats(min_value=0.001, max_value=1e4, allow_nan=False)


@protocols
@given(keepalive=intervals, peer=st.none() | intervals, ack=intervals,
       stateful=st.booleans(), offsets=st.lists(st.floats(0.0, 100.0), max_size=4),
       detach=st.booleans())
def test_handle_timer_at_next_deadline_always_does_something(
    protocol: str, keepalive: float, peer: float | None, ack: float, stateful: bool,
    offsets: list[float], detach: bool,
) -> None:
    config = HubConfig(keepalive_interval=keepalive, peer_timeout=peer, ack_interval=ack,
                       stateful_reconnect=stateful)
    pair = open_codec_pair(protocol, config, stateful=stateful)
    for offset in offsets:
        pair.now += offset
        pair.server_sends(Invocation(target="T", arguments=()))
    if detach and stateful:
        pair.drop()
    for conn in (pair.client, pair.server):
        deadline = conn.next_deadline()
        if deadline is not None:
            assert conn.handle_timer(now=deadline) != [] or conn.next_deadline() != deadline


# -- exactly once across stateful reconnects -----------------------------------------------

RECONNECT_CONFIG = HubConfig(stateful_reconnect=True, peer_timeout=None,
                             reattach_timeout=1e9, handshake_timeout=None)

actions = st.one_of(
    st.tuples(st.just("send"), st.sampled_from(Role), st.integers(0, 4)),
    st.tuples(st.just("deliver"), st.sampled_from(Role), st.integers(0, 1 << 12)),
    st.tuples(st.just("ack"), st.sampled_from(Role), st.just(0)),
    st.tuples(st.just("drop"), st.just(Role.CLIENT), st.just(0)),
    st.tuples(st.just("reattach"), st.sampled_from(Role), st.just(0)),
)


def numbered(protocol: str, kind: int, n: int) -> HubMessage:
    """A trackable message made unique by ``n``."""
    null = Raw(b"null" if protocol == "json" else b"\xc0")
    samples: tuple[HubMessage, ...] = (
        Invocation(target=f"T{n}", arguments=(null,)),
        StreamItem(invocation_id=f"{n}", item=null),
        Completion(invocation_id=f"{n}"),
        StreamInvocation(invocation_id=f"i{n}", target="S", arguments=()),
        CancelInvocation(invocation_id=f"{n}"),
    )
    return samples[kind]


@protocols
@given(steps=st.lists(actions, max_size=40))
def test_stateful_reconnect_delivers_everything_exactly_once_in_order(
    protocol: str, steps: list[tuple[str, Role, int]],
) -> None:
    pair = open_codec_pair(protocol, RECONNECT_CONFIG, stateful=True)
    sent: dict[Role, list[HubMessage]] = {Role.CLIENT: [], Role.SERVER: []}
    got: dict[Role, list[Event]] = {Role.CLIENT: [], Role.SERVER: []}
    inflight = {Role.CLIENT: b"", Role.SERVER: b""}  # bytes on their way TO that role

    def deliver(role: Role, size: int) -> None:
        if pair.conn(role).state is HubState.DETACHED:
            return
        piece, inflight[role] = inflight[role][:size], inflight[role][size:]
        got[role].extend(e for e in pair.deliver(role, piece) if not isinstance(e, Reattached))

    for counter, (action, role, arg) in enumerate(steps):
        conn = pair.conn(role)
        if action == "send":
            message = numbered(protocol, arg, counter)
            if isinstance(message, Completion):
                call: Invocation[Raw] = Invocation(target="T", arguments=(),
                                                   invocation_id=message.invocation_id)
                sent[role.peer].append(call)
                inflight[role] += pair.conn(role.peer).send(call, now=pair.now)
            sent[role].append(message)
            inflight[role.peer] += conn.send(message, now=pair.now)
        elif action == "deliver":
            deliver(role, arg)
        elif action == "ack":
            pair.advance(1.0)
            for tick in conn.handle_timer(now=pair.now):
                if isinstance(tick, AckDue):
                    inflight[role.peer] += conn.answer_timer(tick, now=pair.now)
        elif action == "drop":
            pair.drop()
            inflight = {Role.CLIENT: b"", Role.SERVER: b""}
        elif action == "reattach" and conn.state is HubState.DETACHED:
            inflight[role.peer] += conn.reattach(now=pair.now)
    for role in Role:
        if pair.conn(role).state is HubState.DETACHED:
            inflight[role.peer] += pair.conn(role).reattach(now=pair.now)
    for role in Role:
        deliver(role, len(inflight[role]))
    assert pair.states() == (HubState.OPEN, HubState.OPEN)
    assert got[Role.SERVER] == sent[Role.CLIENT]
    assert got[Role.CLIENT] == sent[Role.SERVER]


# -- MessagePack behaves exactly like JSON ---------------------------------------------------

WALK: tuple[Outgoing, ...] = (
    HandshakeAccepted(),
    HandshakeRefused(error="no"),
    Invocation(target="T", arguments=(Raw(b"1"),), invocation_id="0"),
    Invocation(target="T", arguments=()),
    StreamItem(invocation_id="0", item=Raw(b"null")),
    Completion(invocation_id="0", result=Raw(b"null")),
    Completion(invocation_id="1", error="bad"),
    StreamInvocation(invocation_id="1", target="S", arguments=()),
    CancelInvocation(invocation_id="1"),
    Ping(),
    Close(),
    Close(error="bye", allow_reconnect=True),
    Ack(sequence_id=1),
    Sequence(sequence_id=1),
)
walk_steps = st.lists(st.one_of(
    st.tuples(st.just("send"), st.sampled_from(Role), st.integers(0, len(WALK) - 1)),
    st.tuples(st.just("send_allowed"), st.sampled_from(Role), st.integers(0, len(WALK) - 1)),
    st.tuples(st.just("deliver"), st.sampled_from(Role), st.integers(0, 64)),
    st.tuples(st.just("timer"), st.sampled_from(Role), st.integers(0, 20)),
    st.tuples(st.just("eof"), st.sampled_from(Role), st.just(0)),
    st.tuples(st.just("reattach"), st.sampled_from(Role), st.just(0)),
), max_size=30)


def _comparable(event: Event, protocol: str) -> object:
    """An event in MessagePack form, whichever protocol carried it."""
    if isinstance(event, HandshakeRequest):
        return ("handshake request", event.version)
    if protocol == "json" and isinstance(event, HubMessage):
        return as_wire_message(event, "messagepack")
    return event


def _walk(protocol: str, version: int, opened: bool,
          steps: list[tuple[str, Role, int]]) -> list[Any]:
    """Run ``steps`` on a pair speaking ``protocol`` (``opened``: after the handshake);
    returns what every step gave.

    Deliveries cut the bytes in flight after ``n`` whole messages (not bytes, which
    differ between the protocols); ``send_allowed`` picks among the messages the state
    table allows, so walks get deep."""
    pair = CodecPair(protocol, HubConfig(stateful_reconnect=version == 2))
    queue: dict[Role, list[bytes]] = {Role.SERVER: [], Role.CLIENT: []}
    if opened:
        pair.handshake(version)
    else:
        request = HandshakeRequest(protocol=protocol, version=version)
        queue[Role.SERVER].append(pair.client.send(request, now=0.0))
    outcomes: list[Any] = []
    for action, role, arg in steps:
        conn = pair.conn(role)
        try:
            if action in ("send", "send_allowed"):
                message = WALK[arg]
                if action == "send_allowed":
                    allowed = [m for m in WALK if type(m) is not Sequence
                               and (conn.state, role, type(m)) in TRANSITIONS]
                    message = allowed[arg % len(allowed)] if allowed else message
                if isinstance(message, HubMessage):
                    message = as_wire_message(message, protocol)
                data = conn.send(message, now=pair.now)
                if data:
                    queue[role.peer].append(data)
                outcome: Any = ("sent", bool(data))
            elif action == "deliver":
                pieces, queue[role] = queue[role][:arg], queue[role][arg:]
                outcome = [_comparable(e, protocol)
                           for e in conn.receive_data(b"".join(pieces), now=pair.now)]
            elif action == "timer":
                pair.advance(arg)
                outcome = conn.handle_timer(now=pair.now)
            elif action == "eof":
                queue[role] = []
                outcome = conn.receive_eof(now=pair.now)
            elif conn.state is HubState.DETACHED:
                data = conn.reattach(now=pair.now)
                queue[role.peer].append(data)
                outcome = "reattached"
            else:
                outcome = None
        except ProtocolError as exc:
            outcome = type(exc).__name__
        outcomes.append((outcome, conn.state, conn.pending_invocations))
    return outcomes


@given(version=st.sampled_from([1, 2]), opened=st.booleans(), steps=walk_steps)
def test_messagepack_pair_behaves_like_a_json_pair(
        version: int, opened: bool, steps: list[tuple[str, Role, int]]) -> None:
    assert (_walk("messagepack", version, opened, steps)
            == _walk("json", version, opened, steps))


def test_messagepack_rejects_json_after_the_handshake() -> None:
    """``{`` reads as a 123-byte length: the record waits for more (the end of the stream
    then counts as a lost connection); a short JSON value is not MessagePack."""
    conn = open_codec_conn("messagepack")
    assert conn.receive_data(b'{"type":6}\x1e', now=0.0) == []
    assert conn.receive_eof(now=0.0) == [ConnectionLost(reattachable=False)]
    other = open_codec_conn("messagepack")
    with pytest.raises(RemoteProtocolError, match="not valid MessagePack"):
        other.receive_data(b"\x02{}", now=0.0)


def test_one_codec_instance_serves_many_connections() -> None:
    """A codec keeps no per-connection state: the partial message stays with its
    connection."""
    codec = CODECS["messagepack"]()
    a: Conn = HubConnection(Role.CLIENT, now=0.0, codec=codec)
    b: Conn = HubConnection(Role.CLIENT, now=0.0, codec=codec)
    for conn in (a, b):
        conn.send(HandshakeRequest(protocol="messagepack", version=1), now=0.0)
        conn.receive_data(b"{}\x1e", now=0.0)
    assert a.receive_data(b"\x02\x91", now=0.0) == []
    assert b.receive_data(b"\x02\x91\x06", now=0.0) == [Ping()]
    assert a.receive_data(b"\x06", now=0.0) == [Ping()]
