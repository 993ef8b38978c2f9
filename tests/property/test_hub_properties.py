"""Hypothesis properties of the hub core: round-trips, chunking invariance, garbage
tolerance, batch-versus-record decoding, exactly-once delivery across stateful reconnects,
and a random walk over the state table."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import strategies
from helpers import Conn, Event, HubPair, feed, open_conn, open_pair, split_at
from voxta_proto.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from voxta_proto.framing import RECORD_SEPARATOR
from voxta_proto.hub import (
    HUB_MESSAGE_TYPES,
    TRACKABLE_TYPES,
    TRANSITIONS,
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
    decode_handshake_request,
    decode_handshake_response,
    encode_handshake,
    raw_codec,
)
from voxta_proto.hub.state import EndOfStream, Reattach, TimedOut, TransportLost

Raw = msgspec.Raw
CODEC = raw_codec()
SEP = RECORD_SEPARATOR

# -- round trips ------------------------------------------------------------------------


PER_TYPE = {
    f.__name__: f()
    for f in (strategies.invocations, strategies.stream_items, strategies.completions,
              strategies.stream_invocations, strategies.cancel_invocations, strategies.pings,
              strategies.closes, strategies.acks, strategies.sequences)
}


@pytest.mark.parametrize("name", list(PER_TYPE))
@given(data=st.data())
def test_every_hub_message_round_trips(name: str, data: st.DataObject) -> None:
    message: HubMessage = data.draw(PER_TYPE[name])
    wire = JsonHubCodec.encode(message)
    assert wire.endswith(SEP)
    assert wire.count(SEP) == 1
    assert CODEC.decode_records(wire) == [message]
    assert CODEC.decode_records(SEP + wire) == [message]  # the record-by-record path


@given(messages=st.lists(strategies.hub_messages(), max_size=10))
def test_many_messages_round_trip_in_one_chunk(messages: list[HubMessage]) -> None:
    wire = b"".join(JsonHubCodec.encode(m) for m in messages)
    assert CODEC.decode_records(wire) == messages


@given(protocol=st.text(max_size=10), version=strategies.INT64,
       error=st.none() | st.text(max_size=10))
def test_handshake_round_trips(protocol: str, version: int, error: str | None) -> None:
    request = HandshakeRequest(protocol=protocol, version=version)
    assert decode_handshake_request(encode_handshake(request)[:-1]) == request
    response = HandshakeAccepted() if error is None else HandshakeRefused(error=error)
    assert decode_handshake_response(encode_handshake(response)[:-1]) == response


@given(value=strategies.json_values())
def test_raw_arguments_keep_their_bytes(value: strategies.JsonValue) -> None:
    raw = Raw(msgspec.json.encode(value))
    message = Invocation(target="T", arguments=(raw, raw))
    (decoded,) = CODEC.decode_records(JsonHubCodec.encode(message))
    assert isinstance(decoded, Invocation)
    assert [bytes(a) for a in decoded.arguments] == [bytes(raw)] * 2
    assert msgspec.json.decode(decoded.arguments[0]) == value


# -- chunking never changes the events --------------------------------------------------


def expected_events(messages: list[HubMessage], pending: set[str]) -> list[HubMessage]:
    """What an OPEN connection without stateful reconnect reports for ``messages``."""
    pending = set(pending)
    out: list[HubMessage] = []
    for message in messages:
        if isinstance(message, (Ack, Sequence)):
            continue
        if isinstance(message, Completion):  # delivered, known id or not
            pending.discard(message.invocation_id)
        out.append(message)
    return out


def receiver_with_pending(role: Role, messages: list[HubMessage],
                          config: HubConfig | None = None) -> tuple[Conn, set[str]]:
    """An OPEN connection that invoked every id some Completion in ``messages`` answers."""
    conn = open_conn(role, config)
    ids = {m.invocation_id for m in messages if isinstance(m, Completion)}
    for call in sorted(ids):
        conn.send(Invocation(target="T", arguments=(), invocation_id=call), now=0.0)
    assert conn.pending_invocations == ids
    return conn, ids


@given(messages=st.lists(strategies.open_traffic(), max_size=8),
       cuts=strategies.cut_points(), role=st.sampled_from(Role))
def test_chunking_never_changes_events(messages: list[HubMessage], cuts: list[int],
                                       role: Role) -> None:
    wire = b"".join(JsonHubCodec.encode(m) for m in messages)
    whole, pending = receiver_with_pending(role, messages)
    cut, _ = receiver_with_pending(role, messages)
    expected = expected_events(messages, pending)
    assert feed(whole, [wire]) == expected
    assert feed(cut, split_at(wire, cuts)) == expected
    assert whole.pending_invocations == cut.pending_invocations
    assert whole.state is cut.state is HubState.OPEN


@given(messages=st.lists(strategies.open_traffic(), max_size=4))
def test_one_byte_at_a_time(messages: list[HubMessage]) -> None:
    wire = b"".join(JsonHubCodec.encode(m) for m in messages)
    conn, pending = receiver_with_pending(Role.CLIENT, messages)
    events = feed(conn, [wire[i : i + 1] for i in range(len(wire))])
    assert events == expected_events(messages, pending)


@given(messages=st.lists(strategies.open_traffic(), max_size=6),
       cuts=strategies.cut_points())
def test_chunking_with_the_handshake_response_in_front(messages: list[HubMessage],
                                                      cuts: list[int]) -> None:
    wire = b'{"extra":1}\x1e' + b"".join(JsonHubCodec.encode(m) for m in messages)
    results: list[list[Event]] = []
    for pieces in ([wire], split_at(wire, cuts)):
        conn: Conn = HubConnection(Role.CLIENT, now=0.0)
        conn.send(HandshakeRequest(protocol="json", version=1), now=0.0)
        results.append(feed(conn, pieces))
        assert conn.state is HubState.OPEN
    assert results[0] == results[1] == [HandshakeAccepted(), *expected_events(messages, set())]


@given(messages=st.lists(strategies.open_traffic().filter(
           lambda m: not isinstance(m, Sequence)), max_size=6),
       cuts=strategies.cut_points())
def test_chunking_with_stateful_reconnect(messages: list[HubMessage], cuts: list[int]) -> None:
    wire = b"".join(JsonHubCodec.encode(m) for m in messages)
    runs = []
    for pieces in ([wire], split_at(wire, cuts)):
        pair = open_pair(stateful=True)
        for call in sorted({m.invocation_id for m in messages if isinstance(m, Completion)}):
            pair.client.send(Invocation(target="T", arguments=(), invocation_id=call), now=0.0)
        pair.now = 2.0
        events = [e for piece in pieces for e in pair.to_client(piece)]
        runs.append((events, pair.client.next_deadline(), pair.client.handle_timer(now=3.0)))
    assert runs[0] == runs[1]
    trackable = sum(type(m) in TRACKABLE_TYPES for m in messages)
    assert runs[0][2][:1] == ([AckDue(sequence_id=trackable)] if trackable else [])


# -- garbage only ever raises RemoteProtocolError ---------------------------------------


def garbage_target(kind: str) -> Conn:
    if kind == "open-client":
        return open_conn(Role.CLIENT)
    if kind == "open-server":
        return open_conn(Role.SERVER)
    if kind == "open-stateful":
        return open_pair(stateful=True).client
    conn: Conn = HubConnection(Role.CLIENT if kind == "handshaking-client" else Role.SERVER,
                               now=0.0)
    if kind == "handshaking-client":
        conn.send(HandshakeRequest(protocol="json", version=1), now=0.0)
    return conn


@given(data=st.binary(max_size=200) | strategies.json_records(),
       cuts=strategies.cut_points(),
       kind=st.sampled_from(["open-client", "open-server", "open-stateful",
                             "handshaking-client", "new-server"]))
def test_garbage_only_ever_raises_remote_protocol_error(data: bytes, cuts: list[int],
                                                       kind: str) -> None:
    conn = garbage_target(kind)
    raised = False
    try:
        for piece in split_at(data, cuts):
            for event in conn.receive_data(piece, now=0.0):
                assert isinstance(event, (*HUB_MESSAGE_TYPES.values(), HandshakeRequest,
                                          HandshakeAccepted, HandshakeRefused))
                assert not isinstance(event, (Ack, Sequence))
    except RemoteProtocolError:
        raised = True
    if raised:
        assert conn.state is HubState.ERROR
    else:
        assert conn.state is not HubState.ERROR
    # Whatever happened, the end of the stream is handled without surprises.
    with contextlib.suppress(RemoteProtocolError):
        conn.receive_eof(now=0.0)


# -- the single-pass decode agrees with the record-by-record decode ---------------------


def outcome(codec: JsonHubCodec[Any], chunk: bytes) -> list[HubMessage] | str:
    try:
        return codec.decode_records(chunk)
    except RemoteProtocolError:
        return "error"


def record_by_record(codec: JsonHubCodec[Any], records: list[bytes]) -> list[HubMessage] | str:
    """Decode each record alone on the slow path: an empty record in front makes the
    single-pass array invalid, so ``decode_records`` falls back to one record at a time."""
    messages: list[HubMessage] = []
    for record in records:
        result = outcome(codec, SEP + record + SEP)
        if result == "error":
            return "error"
        assert isinstance(result, list)
        messages.extend(result)
    return messages


def _int_or_marker(raw: Raw) -> int:
    try:
        return msgspec.json.decode(raw, type=int)
    except msgspec.ValidationError:
        return -1


INT_CODEC: JsonHubCodec[int] = JsonHubCodec(int, _int_or_marker)


@given(records=strategies.json_record_lists())
def test_batch_decode_equals_record_by_record_decode(records: list[bytes]) -> None:
    chunk = b"".join(r + SEP for r in records)
    for codec in (CODEC, INT_CODEC):
        slow = record_by_record(codec, records)
        note(f"slow path: {slow!r}")
        assert outcome(codec, chunk) == slow
        # Each record alone (a one-element batch) agrees too.
        singles = [outcome(codec, r + SEP) for r in records]
        if slow != "error":
            assert all(s != "error" for s in singles)
            assert [m for s in singles if isinstance(s, list) for m in s] == slow
        else:
            assert "error" in singles


@given(messages=st.lists(strategies.hub_messages(), min_size=1, max_size=6),
       joiner=st.sampled_from([b",", b"\n,", b" ,\n"]), at=st.integers(min_value=0))
def test_two_messages_in_one_record_are_refused(messages: list[HubMessage], joiner: bytes,
                                                at: int) -> None:
    records = [JsonHubCodec.encode(m)[:-1] for m in messages]
    i = at % len(records)
    records[i] = records[i] + joiner + records[i]
    chunk = b"".join(r + SEP for r in records)
    assert outcome(CODEC, chunk) == "error"
    assert record_by_record(CODEC, records) == "error"


# -- timers always make progress -------------------------------------------------------

times = st.floats(min_value=0.0, max_value=1e7, allow_nan=False)
intervals = st.floats(min_value=0.001, max_value=1e4, allow_nan=False)


@given(start=times, keepalive=intervals, peer=st.none() | intervals,
       handshake=st.none() | intervals, ack=intervals, reattach=intervals,
       stateful=st.booleans(), offsets=st.lists(st.floats(0.0, 100.0), max_size=4),
       detach=st.booleans(), finish=st.booleans())
def test_handle_timer_at_next_deadline_always_does_something(
    start: float, keepalive: float, peer: float | None, handshake: float | None, ack: float,
    reattach: float, stateful: bool, offsets: list[float], detach: bool, finish: bool,
) -> None:
    """aioquic's rule: at ``next_deadline()`` the timer reports an event or moves the
    deadline, so a driver sleeping until the deadline never spins."""
    config = HubConfig(keepalive_interval=keepalive, peer_timeout=peer,
                       handshake_timeout=handshake, ack_interval=ack,
                       reattach_timeout=reattach, stateful_reconnect=stateful)
    pair = HubPair(config, now=start)
    if finish:
        pair.handshake(version=2 if stateful else 1)
        for offset in offsets:  # some traffic at random times
            pair.now += offset
            pair.server_sends(Invocation(target="T", arguments=()))
        if detach and stateful:
            pair.now += 0.5
            pair.drop()
    for conn in (pair.client, pair.server):
        deadline = conn.next_deadline()
        if deadline is None:
            continue
        assert conn.handle_timer(now=deadline) != [] or conn.next_deadline() != deadline


# -- exactly once across stateful reconnects --------------------------------------------

RECONNECT_CONFIG = HubConfig(stateful_reconnect=True, peer_timeout=None,
                             reattach_timeout=1e9, handshake_timeout=None)

actions = st.one_of(
    st.tuples(st.just("send"), st.sampled_from(Role), st.integers(0, 4)),
    st.tuples(st.just("deliver"), st.sampled_from(Role), st.integers(0, 1 << 12)),
    st.tuples(st.just("ack"), st.sampled_from(Role), st.just(0)),
    st.tuples(st.just("drop"), st.just(Role.CLIENT), st.just(0)),
    st.tuples(st.just("reattach"), st.sampled_from(Role), st.just(0)),
)

TRACKABLE_SAMPLES: tuple[HubMessage, ...] = (
    Invocation(target="T", arguments=()),
    StreamItem(invocation_id="s", item=Raw(b"null")),
    Completion(invocation_id="c"),
    StreamInvocation(invocation_id="i", target="S", arguments=()),
    CancelInvocation(invocation_id="i"),
)


def numbered(kind: int, n: int) -> HubMessage:
    """A trackable message made unique by ``n`` (in its target or its id)."""
    sample = TRACKABLE_SAMPLES[kind]
    if isinstance(sample, Invocation):
        return Invocation(target=f"T{n}", arguments=())
    if isinstance(sample, StreamInvocation):
        return StreamInvocation(invocation_id=f"i{n}", target="S", arguments=())
    return msgspec.structs.replace(sample, invocation_id=f"{n}")


@given(steps=st.lists(actions, max_size=40))
def test_stateful_reconnect_delivers_everything_exactly_once_in_order(
    steps: list[tuple[str, Role, int]],
) -> None:
    pair = open_pair(RECONNECT_CONFIG, stateful=True)
    sent: dict[Role, list[HubMessage]] = {Role.CLIENT: [], Role.SERVER: []}
    got: dict[Role, list[Event]] = {Role.CLIENT: [], Role.SERVER: []}
    inflight = {Role.CLIENT: b"", Role.SERVER: b""}  # bytes on their way TO that role
    counter = 0

    def deliver(receiver: Role, size: int) -> None:
        if pair.conn(receiver).state is HubState.DETACHED:
            return
        data = inflight[receiver]
        piece, inflight[receiver] = data[:size], data[size:]
        got[receiver].extend(e for e in pair.deliver(receiver, piece)
                             if not isinstance(e, Reattached))

    for action, role, arg in steps:
        conn = pair.conn(role)
        if action == "send":
            counter += 1
            message = numbered(arg, counter)
            if isinstance(message, Completion):
                # The peer invokes first, so the Completion answers something pending.
                call: Invocation[Raw] = Invocation(
                    target="T", arguments=(), invocation_id=message.invocation_id
                )
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
                    inflight[role.peer] += conn.send(Ack(sequence_id=tick.sequence_id),
                                                     now=pair.now)
        elif action == "drop":
            pair.drop()
            inflight = {Role.CLIENT: b"", Role.SERVER: b""}
        elif action == "reattach" and conn.state is HubState.DETACHED:
            inflight = {Role.CLIENT: inflight[Role.CLIENT], Role.SERVER: inflight[Role.SERVER]}
            inflight[role.peer] += conn.reattach(now=pair.now)

    # Settle: reattach whoever is detached, then deliver everything.
    for role in Role:
        if pair.conn(role).state is HubState.DETACHED:
            inflight[role.peer] += pair.conn(role).reattach(now=pair.now)
    for role in Role:
        deliver(role, len(inflight[role]))
    assert pair.states() == (HubState.OPEN, HubState.OPEN)
    assert got[Role.SERVER] == sent[Role.CLIENT]
    assert got[Role.CLIENT] == sent[Role.SERVER]


# -- exactly once across cuts at random byte offsets, both ways --------------------------

cut_actions = st.one_of(
    st.tuples(st.just("send"), st.sampled_from(Role), st.integers(0, 4)),
    st.tuples(st.just("deliver"), st.sampled_from(Role), st.integers(0, 1 << 12)),
    st.tuples(st.just("ack"), st.sampled_from(Role), st.just(0)),
    st.tuples(st.just("cut"), st.sampled_from(Role), st.integers(0, 1 << 12)),
    st.tuples(st.just("send and cut"), st.sampled_from(Role), st.integers(0, 1 << 12)),
    st.tuples(st.just("reattach"), st.just(Role.CLIENT), st.just(0)),
)


@given(steps=st.lists(cut_actions, max_size=50))
def test_exactly_once_across_cuts_at_random_offsets(steps: list[tuple[str, Role, int]]) -> None:
    """Issue 13/14: stateful reconnect through a transport that dies at any byte, in
    either direction, with the two ends noticing at different times (the one that has
    not noticed keeps writing into the dead transport), including a cut right after a
    request (inside its record). Whatever was sent arrives exactly once, in order: the
    unacknowledged is replayed whole, the half record is dropped, the replay deduped."""
    pair = open_pair(RECONNECT_CONFIG, stateful=True)
    sent: dict[Role, list[HubMessage]] = {Role.CLIENT: [], Role.SERVER: []}
    got: dict[Role, list[Event]] = {Role.CLIENT: [], Role.SERVER: []}
    wire = {Role.CLIENT: b"", Role.SERVER: b""}  # bytes on their way TO that role
    open_to = {Role.CLIENT: True, Role.SERVER: True}  # that direction still carries bytes
    counter = 0

    def attached(role: Role) -> bool:
        return pair.conn(role).state is not HubState.DETACHED

    def write(sender: Role, data: bytes) -> None:
        if open_to[sender.peer]:
            wire[sender.peer] += data
        # else: written into a transport that is gone; only the replay can save it

    def deliver(receiver: Role, size: int) -> None:
        if not (open_to[receiver] and attached(receiver)):
            return
        piece, wire[receiver] = wire[receiver][:size], wire[receiver][size:]
        got[receiver].extend(e for e in pair.deliver(receiver, piece)
                             if not isinstance(e, (Reattached, SendUnblocked)))

    def cut(receiver: Role, size: int) -> None:
        """The direction to ``receiver`` ends after ``size`` more bytes; it sees the end."""
        if not open_to[receiver]:
            return
        deliver(receiver, size)
        wire[receiver] = b""
        open_to[receiver] = False
        if attached(receiver):
            assert pair.conn(receiver).receive_eof(now=pair.now) == [
                ConnectionLost(reattachable=True)]

    def send(role: Role, kind: int) -> bytes:
        nonlocal counter
        counter += 1
        message = numbered(kind, counter)
        if isinstance(message, Completion):
            call: Invocation[Raw] = Invocation(target="T", arguments=(),
                                               invocation_id=message.invocation_id)
            sent[role.peer].append(call)
            write(role.peer, pair.conn(role.peer).send(call, now=pair.now))
        sent[role].append(message)
        data = pair.conn(role).send(message, now=pair.now)
        write(role, data)
        return data

    def reattach() -> None:
        for role in Role:  # a new transport: whoever still holds the old one drops it
            cut(role, 0)
        open_to.update({Role.CLIENT: True, Role.SERVER: True})
        write(Role.CLIENT, pair.client.reattach(now=pair.now))
        write(Role.SERVER, pair.server.reattach(now=pair.now))

    for action, role, arg in steps:
        if action == "send":
            send(role, arg)
        elif action == "deliver":
            deliver(role, arg)
        elif action == "ack":
            pair.advance(1.0)
            conn = pair.conn(role)
            for tick in conn.handle_timer(now=pair.now):
                if isinstance(tick, AckDue):
                    write(role, conn.send(Ack(sequence_id=tick.sequence_id), now=pair.now))
        elif action == "cut":
            cut(role, arg)
        elif action == "send and cut":
            # A cut inside the record of a request just written, on its way to the peer.
            data = send(role, arg % len(TRACKABLE_SAMPLES))
            before = len(wire[role.peer]) - len(data)
            cut(role.peer, max(before, 0) + (arg % len(data) if data else 0))
        elif action == "reattach" and not all(open_to.values()):
            reattach()

    if not all(open_to.values()) or not all(map(attached, Role)):
        reattach()
    while any(wire.values()):
        for role in Role:
            deliver(role, len(wire[role]))
    assert pair.states() == (HubState.OPEN, HubState.OPEN)
    assert got[Role.SERVER] == sent[Role.CLIENT]
    assert got[Role.CLIENT] == sent[Role.SERVER]


# -- a random walk over the state table -------------------------------------------------

HANDSHAKE_KINDS = (HandshakeRequest, HandshakeAccepted, HandshakeRefused)
WALK_MESSAGES: tuple[Outgoing, ...] = (
    HandshakeRequest(protocol="json", version=1),
    HandshakeRequest(protocol="json", version=2),
    HandshakeAccepted(),
    HandshakeRefused(error="no"),
    Invocation(target="T", arguments=(Raw(b"1"),), invocation_id="0"),
    Invocation(target="T", arguments=()),
    StreamItem(invocation_id="0", item=Raw(b"null")),
    Completion(invocation_id="0", result=Raw(b"null")),
    StreamInvocation(invocation_id="1", target="S", arguments=()),
    CancelInvocation(invocation_id="1"),
    Ping(),
    Close(),
    Close(error="bye", allow_reconnect=True),
    Ack(sequence_id=1),
    Sequence(sequence_id=1),
)
LIVE = (HubState.NEW, HubState.HANDSHAKING, HubState.OPEN, HubState.DETACHED,
        HubState.REATTACHING)


def record_kind(record: bytes) -> type[object]:
    """What one of our own records is: a hub message class or a handshake class."""
    obj = msgspec.json.decode(record)
    assert isinstance(obj, dict)
    if "type" in obj:
        return HUB_MESSAGE_TYPES[obj["type"]]
    if "protocol" in obj:
        return HandshakeRequest
    return HandshakeRefused if "error" in obj else HandshakeAccepted


def predict_receive(state: HubState, role: Role, kinds: list[type[object]]) -> HubState | None:
    """The state after receiving records of these kinds, by the table; None: an error."""
    if state in (HubState.ERROR, HubState.DETACHED):
        return None
    for kind in kinds:
        if state is HubState.CLOSED:
            break
        awaiting = (state is HubState.NEW if role is Role.SERVER
                    else state in (HubState.NEW, HubState.HANDSHAKING))
        seen: type[object]
        if awaiting:
            if role is Role.SERVER:
                if kind is not HandshakeRequest:
                    return None
                seen = kind
            elif kind in HANDSHAKE_KINDS:
                # A request has no 'error' and no 'type': it reads as an acceptance.
                seen = HandshakeRefused if kind is HandshakeRefused else HandshakeAccepted
            else:
                return None  # a hub message where the response belongs
        elif kind in HANDSHAKE_KINDS:
            return None  # no 'type'
        elif state is HubState.REATTACHING and kind is not Sequence:
            continue  # stale until the peer's Sequence
        else:
            seen = kind
        target = TRANSITIONS.get((state, role.peer, seen))
        if target is None:
            return None
        state = target
    return state


class HubTableWalk(RuleBasedStateMachine):
    """Two connections, a shared clock and the bytes in flight between them. Every call
    must either follow TRANSITIONS or raise a ProtocolError and leave the state ERROR."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.restarts = 0
        self.conns: dict[Role, Conn] = {}
        self.inflight: dict[Role, bytes] = {}

    @initialize(stateful=st.booleans(), budget=st.sampled_from([100_000, 120]))
    def start(self, stateful: bool, budget: int) -> None:
        config = HubConfig(stateful_reconnect=stateful, max_buffered_bytes=budget)
        self.config = config
        self.conns = {role: HubConnection(role, now=self.now, config=config) for role in Role}
        self.inflight = {Role.CLIENT: b"", Role.SERVER: b""}

    def expect_error(self, role: Role, exc: ProtocolError) -> None:
        note(f"{role.value}: {type(exc).__name__}: {exc}")
        assert self.conns[role].state is HubState.ERROR

    @rule(role=st.sampled_from(Role), message=st.sampled_from(WALK_MESSAGES))
    def send(self, role: Role, message: Outgoing) -> None:
        self.settle()
        self._send(role, message)

    @rule(role=st.sampled_from(Role), data=st.data())
    def send_allowed(self, role: Role, data: st.DataObject) -> None:
        """Most random sends are refused; this one picks what the table allows, so walks
        get deep (stateful reconnect included) before they end."""
        self.settle()
        state = self.conns[role].state
        allowed = [m for m in WALK_MESSAGES
                   if (state, role, type(m)) in TRANSITIONS and type(m) is not Sequence]
        if allowed:
            self._send(role, data.draw(st.sampled_from(allowed)))

    def _send(self, role: Role, message: Outgoing) -> None:
        conn = self.conns[role]
        old, kind = conn.state, type(message)
        target = TRANSITIONS.get((old, role, kind))
        should_fail = old is HubState.ERROR or kind is Sequence or target is None
        # A full replay buffer is backpressure: refused, and nothing changes.
        must_wait = (not should_fail and conn.stateful_reconnect and kind in TRACKABLE_TYPES
                     and conn.send_would_block)
        error: ProtocolError | None = None
        try:
            data = conn.send(message, now=self.now)
        except ProtocolError as exc:
            error = exc
        if error is not None and must_wait:
            assert isinstance(error, LocalProtocolError)
            assert "buffer is full" in str(error)
            assert conn.state is old
            return
        if error is not None:
            assert should_fail, f"{role} {old} {kind.__name__} raised {error!r}"
            self.expect_error(role, error)
            return
        assert not should_fail, f"{role} {old} {kind.__name__} did not raise"
        assert not must_wait, f"{role} {old} {kind.__name__} did not wait"
        assert conn.state is target
        if old is HubState.DETACHED:
            assert data == b""
        elif isinstance(message, HANDSHAKE_KINDS):
            assert data == encode_handshake(message)
        else:
            assert data == JsonHubCodec.encode(message)
        self.inflight[role.peer] += data

    @precondition(lambda self: self.conns[Role.CLIENT].state is HubState.NEW
                  and self.conns[Role.SERVER].state is HubState.NEW)
    @rule(version=st.sampled_from([1, 2]))
    def handshake(self, version: int) -> None:
        self.settle()
        client, server = self.conns[Role.CLIENT], self.conns[Role.SERVER]
        request = HandshakeRequest(protocol="json", version=version)
        assert server.receive_data(client.send(request, now=self.now), now=self.now) == [request]
        accepted = server.send(HandshakeAccepted(), now=self.now)
        assert client.receive_data(accepted, now=self.now) == [HandshakeAccepted()]
        assert (client.state, server.state) == (HubState.OPEN, HubState.OPEN)
        assert client.stateful_reconnect is server.stateful_reconnect is (
            self.config.stateful_reconnect and version == 2
        )

    @rule(role=st.sampled_from(Role), cut=st.integers(min_value=0))
    def deliver(self, role: Role, cut: int) -> None:
        self.settle()
        conn = self.conns[role]
        data, self.inflight[role] = self.inflight[role], b""
        kinds = [record_kind(r) for r in data.split(SEP)[:-1]]
        old = conn.state
        predicted = predict_receive(old, role, kinds)
        error: ProtocolError | None = None
        try:
            for piece in split_at(data, [cut]):
                conn.receive_data(piece, now=self.now)
        except ProtocolError as exc:
            error = exc
        if error is not None:
            if predicted is not None:
                # The one error the table cannot see: a Sequence beyond what we received.
                assert isinstance(error, RemoteProtocolError), error
                assert "skips messages" in str(error), error
            self.expect_error(role, error)
            return
        assert predicted is not None, f"{role} {old} {kinds} did not raise"
        assert conn.state is predicted, (old, kinds)

    def _eof(self, role: Role) -> None:
        conn = self.conns[role]
        old = conn.state
        stateful = conn.stateful_reconnect
        try:
            events = conn.receive_eof(now=self.now)
        except ProtocolError as exc:  # pragma: no cover - only after a partial record
            self.expect_error(role, exc)
            return
        if old in (HubState.CLOSED, HubState.ERROR, HubState.DETACHED):
            assert events == []
            assert conn.state is old
        elif stateful and old in (HubState.OPEN, HubState.REATTACHING):
            assert events == [ConnectionLost(reattachable=True)]
            assert conn.state is TRANSITIONS[(old, role.peer, TransportLost)]
        else:
            assert events == [ConnectionLost(reattachable=False)]
            assert conn.state is TRANSITIONS[(old, role.peer, EndOfStream)]

    @rule()
    def drop(self) -> None:
        self.settle()
        self.inflight = {Role.CLIENT: b"", Role.SERVER: b""}
        for role in Role:
            self._eof(role)

    @rule(role=st.sampled_from(Role))
    def eof(self, role: Role) -> None:
        self.settle()
        self.inflight[role] = b""
        self._eof(role)

    @rule(role=st.sampled_from(Role))
    def reattach(self, role: Role) -> None:
        self.settle()
        conn = self.conns[role]
        old = conn.state
        target = TRANSITIONS.get((old, role, Reattach))
        try:
            data = conn.reattach(now=self.now)
        except ProtocolError as exc:
            assert target is None
            self.expect_error(role, exc)
            return
        assert conn.state is target
        assert record_kind(data.split(SEP)[0]) is Sequence
        self.inflight[role.peer] = data

    @rule(role=st.sampled_from(Role),
          seconds=st.sampled_from([0.0, 0.5, 1.0, 1.0, 5.0, 14.99, 15.0, 30.0]))
    def timer(self, role: Role, seconds: float) -> None:
        self.settle()
        self.now += seconds
        conn = self.conns[role]
        old, deadline = conn.state, conn.next_deadline()
        events = conn.handle_timer(now=self.now)
        if deadline is None or self.now < deadline:
            assert events == []
            assert conn.state is old
            return
        timed_out = [e for e in events
                     if isinstance(e, (HandshakeTimedOut, PeerTimedOut, ReattachTimedOut))]
        if timed_out:
            assert events == timed_out
            assert conn.state is TRANSITIONS[(old, role.peer, TimedOut)]
            expected = {HubState.NEW: HandshakeTimedOut, HubState.HANDSHAKING: HandshakeTimedOut,
                        HubState.OPEN: PeerTimedOut, HubState.DETACHED: ReattachTimedOut,
                        HubState.REATTACHING: ReattachTimedOut}[old]
            assert isinstance(timed_out[0], expected)
        else:
            assert old is HubState.OPEN
            assert events
            assert conn.state is HubState.OPEN

    def settle(self) -> None:
        """Before each step: a finished connection refuses to send and ignores (CLOSED) or
        refuses (ERROR) data; then both ends start over, so walks stay on live states."""
        dead = [c for c in self.conns.values() if c.state in (HubState.CLOSED, HubState.ERROR)]
        for conn in dead:
            if conn.state is HubState.CLOSED:
                assert conn.receive_data(b'{"type":6}\x1e', now=self.now) == []
            else:
                with pytest.raises(RemoteProtocolError):
                    conn.receive_data(b'{"type":6}\x1e', now=self.now)
            with pytest.raises(LocalProtocolError):
                conn.send(Ping(), now=self.now)
            assert conn.state is HubState.ERROR
        if dead:
            self.conns = {role: HubConnection(role, now=self.now, config=self.config)
                          for role in Role}
            self.inflight = {Role.CLIENT: b"", Role.SERVER: b""}
            self.restarts += 1
            if self.restarts % 3:  # mostly skip the handshake, to spend steps on OPEN
                self.handshake(2 if self.config.stateful_reconnect else 1)

    @invariant()
    def consistent(self) -> None:
        for conn in self.conns.values():
            assert isinstance(conn.state, HubState)
            assert (conn.next_deadline() is None) == (conn.state not in LIVE)
            assert conn.buffered_bytes >= 0
            if not conn.stateful_reconnect:
                assert conn.buffered_bytes == 0
                assert conn.state not in (HubState.DETACHED, HubState.REATTACHING)


HubTableWalk.TestCase.settings = settings(stateful_step_count=40)
test_hub_table_walk = HubTableWalk.TestCase

