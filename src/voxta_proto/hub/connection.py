"""HubConnection: the sans-IO SignalR connection for both roles. No I/O, no clock reads.

Bytes and ``now`` go in, events and bytes come out:

```python
conn = HubConnection(Role.CLIENT, now=t)
wire = conn.send(HandshakeRequest(protocol="json", version=1), now=t)
events = conn.receive_data(data_from_peer, now=t)
deadline = conn.next_deadline()            # absolute, on the caller's clock
timer_events = conn.handle_timer(now=t)    # KeepAliveDue → send a Ping, ...
```

Every state change is a lookup in
[`voxta_proto.hub.state.TRANSITIONS`][voxta_proto.hub.state.TRANSITIONS]. A
protocol error moves the connection to ``HubState.ERROR`` for good.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from typing import Final, Generic, TypeVar, Union, overload

import msgspec

from voxta_proto.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from voxta_proto.framing import DEFAULT_MAX_RECORD_SIZE, RECORD_SEPARATOR
from voxta_proto.hub.codec import (
    HubCodec,
    JsonHubCodec,
    decode_handshake_request,
    decode_handshake_response,
    encode_handshake,
)
from voxta_proto.hub.events import (
    AckDue,
    ConnectionLost,
    HandshakeTimedOut,
    KeepAliveDue,
    PeerTimedOut,
    Reattached,
    ReattachTimedOut,
    SendUnblocked,
)
from voxta_proto.hub.messages import (
    TRACKABLE_TYPES,
    Ack,
    CancelInvocation,
    Close,
    Completion,
    HandshakeAccepted,
    HandshakeRefused,
    HandshakeRequest,
    HubMessage,
    Invocation,
    Ping,
    Sequence,
    StreamInvocation,
    StreamItem,
)
from voxta_proto.hub.state import (
    TRANSITIONS,
    EndOfStream,
    HubState,
    Reattach,
    Role,
    TimedOut,
    TransportLost,
)

__all__ = ["HubConfig", "HubConnection", "HubEvent", "Outgoing", "TimerEvent", "raw_codec"]

ArgT = TypeVar("ArgT")

HubEvent = Union[
    Invocation[ArgT],
    StreamItem,
    Completion,
    StreamInvocation,
    CancelInvocation,
    Ping,
    Close,
    HandshakeRequest,
    HandshakeAccepted,
    HandshakeRefused,
    ConnectionLost,
    Reattached,
    SendUnblocked,
]
"""What ``receive_data`` and ``receive_eof`` return. Ack and Sequence are handled inside
(an Ack that frees a full replay buffer yields ``SendUnblocked``)."""

TimerEvent = Union[KeepAliveDue, AckDue, PeerTimedOut, HandshakeTimedOut, ReattachTimedOut]
"""What ``handle_timer`` returns."""

Outgoing = Union[HubMessage, HandshakeRequest, HandshakeAccepted, HandshakeRefused]
"""What ``send`` accepts."""

_TRAFFIC: Final = frozenset(
    {Invocation, StreamItem, Completion, StreamInvocation, CancelInvocation, Ping}
)
"""Messages that, outside stateful reconnect, keep an OPEN connection OPEN and need no
bookkeeping on receipt but a Completion's (see ``JsonHubCodec.decode_traffic``)."""
_OPEN, _ERROR, _CLOSED, _DETACHED = (HubState.OPEN, HubState.ERROR, HubState.CLOSED,
                                     HubState.DETACHED)
"""Module constants: an enum member as a class attribute costs a lookup on every use."""
_encode_into: Final = msgspec.json.Encoder().encode_into
_SEND_BUFFER_KEEP: Final = 16 * 1024
"""The largest encode buffer a connection keeps between sends (bytes)."""


def raw_codec() -> JsonHubCodec[msgspec.Raw]:
    """A codec that leaves invocation arguments as undecoded JSON."""
    return JsonHubCodec(msgspec.Raw, lambda raw: raw)


@dataclass(frozen=True)
class HubConfig:
    """Tunables of one hub connection; the defaults are ASP.NET Core's."""

    keepalive_interval: float = 15.0
    """Seconds of us sending nothing before a Ping is due."""
    peer_timeout: float | None = 30.0
    """Seconds of the peer sending nothing before it has timed out (None: never)."""
    handshake_timeout: float | None = 15.0
    """Seconds the handshake may take (None: no limit)."""
    max_record_size: int = DEFAULT_MAX_RECORD_SIZE
    """Largest record accepted from the peer, in bytes."""
    stateful_reconnect: bool = False
    """Allow stateful reconnect; a server activates it when the client asks (version 2),
    a client when it asks (by sending handshake version 2)."""
    max_buffered_bytes: int = 100_000
    """Stateful reconnect: unacknowledged bytes kept for replay before sends must wait."""
    ack_interval: float = 1.0
    """Stateful reconnect: seconds between receiving something and acknowledging it."""
    reattach_timeout: float = 15.0
    """Stateful reconnect: seconds a DETACHED connection waits for a new transport."""


class HubConnection(Generic[ArgT]):
    """One SignalR hub connection, client or server side, without any I/O.

    Args:
        role: which end we are.
        now: the current time on the caller's clock; starts the handshake timer.
        config: intervals, timeouts and limits.
        codec: the hub protocol (JSON or MessagePack) and how invocation arguments are
            typed; by default JSON with arguments left as ``msgspec.Raw``.
    """

    @overload
    def __init__(
        self: HubConnection[msgspec.Raw],
        role: Role,
        *,
        now: float,
        config: HubConfig = ...,
        codec: None = None,
    ) -> None: ...
    @overload
    def __init__(
        self,
        role: Role,
        *,
        now: float,
        config: HubConfig = ...,
        codec: HubCodec[ArgT],
    ) -> None: ...
    def __init__(
        self,
        role: Role,
        *,
        now: float,
        config: HubConfig = HubConfig(),
        codec: HubCodec[ArgT] | HubCodec[msgspec.Raw] | None = None,
    ) -> None:
        self.role: Final = role
        self.config: Final = config
        self._codec = codec if codec is not None else raw_codec()
        self._records = self._codec.new_buffer(config.max_record_size)
        self._binary = not isinstance(self._codec, JsonHubCodec)
        """The codec's framing is not 0x1E records: the handshake record is collected
        in ``_handshake_bytes`` instead of ``_records``."""
        self._handshake_bytes = bytearray()
        self._state = HubState.NEW
        self._started = now
        self._last_sent = now
        self._last_received = now
        self._ids = map(str, itertools.count())
        self._pending: dict[str, str] = {}
        self._send_buffer = bytearray()
        self._requested_version = 0
        self._requested_protocol: str | None = None
        # Stateful reconnect, sender side: (sequence id, record) not yet acknowledged.
        self._stateful = False
        self._replay: deque[tuple[int, bytes]] = deque()
        self._replay_bytes = 0
        self._next_send_seq = 1
        # Stateful reconnect, receiver side.
        self._next_expected = 1
        self._latest_processed = 0
        self._ack_deadline: float | None = None
        self._detached_at = now

    # -- read-only views -------------------------------------------------------------

    @property
    def state(self) -> HubState:
        """The current state."""
        return self._state

    @property
    def stateful_reconnect(self) -> bool:
        """Whether stateful reconnect was agreed in the handshake."""
        return self._stateful

    @property
    def pending_invocations(self) -> frozenset[str]:
        """Ids of our invocations still waiting for their Completion."""
        return frozenset(self._pending)

    @property
    def buffered_bytes(self) -> int:
        """Stateful reconnect: bytes kept for replay until the peer acknowledges them."""
        return self._replay_bytes

    @property
    def send_would_block(self) -> bool:
        """Stateful reconnect: the replay buffer is full; wait for an Ack before sending
        another invocation, stream item or completion.

        This is backpressure, as in ASP.NET Core: the writer waits, nothing is dropped.
        ``receive_data`` yields ``SendUnblocked`` when an Ack frees room; until then a
        driver holds what it wants to send (and keeps reading, so the Ack can come)."""
        return self._stateful and self._replay_bytes >= self.config.max_buffered_bytes

    # -- sending ---------------------------------------------------------------------

    def next_invocation_id(self) -> str:
        """A fresh invocation id from this connection's counter ("0", "1", ...)."""
        return next(self._ids)

    def send(self, message: Outgoing, *, now: float) -> bytes:
        """Serialize ``message`` and advance the state; returns the bytes to write.

        While DETACHED, replayable messages are kept for the reattach and ``b""`` is
        returned. Sending an Invocation with an ``invocation_id``, or a StreamInvocation,
        registers it as pending.

        Raises:
            LocalProtocolError: the message is not allowed in this state (for example hub
                traffic before the handshake finished) or is a Sequence (``reattach``
                sends those); the connection is then in ERROR. Or the replay buffer is
                full (``send_would_block``): nothing changed, wait for ``SendUnblocked``.
        """
        if (self._state is _OPEN and type(message) is Invocation and not self._stateful
                and not self._binary):
            # The common case, in short: the table keeps OPEN and nothing is replayed.
            # What JsonHubCodec.encode does, into a buffer kept for the next send: msgspec
            # then grows no fresh buffer per message. It never shrinks it, though, so one
            # large message (a session list of 1,000 entries) would stay allocated per
            # connection: past _SEND_BUFFER_KEEP the next send starts a fresh one.
            buffer = self._send_buffer
            _encode_into(message, buffer)
            buffer += RECORD_SEPARATOR
            data = bytes(buffer)
            if len(buffer) > _SEND_BUFFER_KEEP:
                self._send_buffer = bytearray()
            if message.invocation_id is not None:
                self._pending[message.invocation_id] = message.target
            self._last_sent = now
            return data
        if self._state is HubState.ERROR:
            raise LocalProtocolError("the connection is in the ERROR state")
        if (type(message) in TRACKABLE_TYPES and self.send_would_block
                and (self._state, self.role, type(message)) in TRANSITIONS):
            # Backpressure, not a failure: the connection stays usable.
            raise LocalProtocolError("the stateful reconnect buffer is full; wait for "
                                     "SendUnblocked")
        try:
            return self._send(message, now)
        except ProtocolError:
            self._state = HubState.ERROR
            raise

    def _send(self, message: Outgoing, now: float) -> bytes:
        kind = type(message)
        if kind is Sequence:
            raise LocalProtocolError("Sequence is sent by reattach(), not send()")
        new_state = self._next_state(self.role, kind, LocalProtocolError)
        if isinstance(message, HandshakeRequest):
            if message.protocol != self._codec.protocol:
                raise LocalProtocolError(
                    f"the handshake asks for the {message.protocol!r} protocol but the "
                    f"codec speaks {self._codec.protocol!r}")
            self._stateful = self.config.stateful_reconnect and message.version >= 2
            data = encode_handshake(message)
        elif isinstance(message, (HandshakeAccepted, HandshakeRefused)):
            if isinstance(message, HandshakeAccepted) and self._foreign_protocol():
                raise LocalProtocolError(
                    f"cannot accept the {self._requested_protocol!r} protocol: the codec "
                    f"speaks {self._codec.protocol!r}")
            self._stateful = (self.config.stateful_reconnect and self._requested_version >= 2
                              and isinstance(message, HandshakeAccepted))
            data = encode_handshake(message)
        else:
            data = self._codec.encode(message)
            if (isinstance(message, (Invocation, StreamInvocation))
                    and message.invocation_id is not None):
                self._pending[message.invocation_id] = message.target
            if self._stateful and kind in TRACKABLE_TYPES:
                self._replay.append((self._next_send_seq, data))
                self._replay_bytes += len(data)
                self._next_send_seq += 1
        detached = self._state is HubState.DETACHED
        self._state = new_state
        self._last_sent = now
        return b"" if detached else data

    # -- receiving -------------------------------------------------------------------

    def receive_data(self, data: bytes, *, now: float) -> list[HubEvent[ArgT]]:
        """Feed bytes from the transport; returns the events they complete.

        A partial record is kept for the next call. Hub messages that arrive together
        with the handshake response are returned after it. Once CLOSED, data is ignored.

        Raises:
            RemoteProtocolError: the peer broke the protocol (malformed or oversized
                record, a message not allowed in this state, a bad handshake).
            LocalProtocolError: called while DETACHED (reattach first) or in ERROR.
        """
        state = self._state
        if state is _OPEN and not self._stateful:
            # The hot path: an open connection without stateful reconnect.
            self._last_received = now
            try:
                chunk = self._records.feed_and_pop(data)
                if not chunk:
                    return []
                messages = self._codec.decode_traffic(chunk)
                if messages is None:  # a Close, Ack or Sequence, or an unusual record
                    return self._receive_messages(self._codec.decode_records(chunk), [], now)
                # Traffic keeps the connection OPEN; only a Completion needs bookkeeping
                # (its invocation is no longer pending), and only if we are waiting.
                if self._pending and Completion in map(type, messages):
                    self._complete(messages)
                return messages  # type: ignore[return-value]
            except ProtocolError:
                self._state = HubState.ERROR
                raise
        if state is _ERROR:
            raise RemoteProtocolError("the connection is in the ERROR state")
        if state is _CLOSED:
            return []
        if state is _DETACHED:
            self._state = HubState.ERROR
            raise LocalProtocolError("no transport is attached; call reattach() first")
        self._last_received = now
        try:
            return self._receive(data, now)
        except ProtocolError:
            self._state = HubState.ERROR
            raise

    def _receive(self, data: bytes, now: float) -> list[HubEvent[ArgT]]:
        if self._binary and self._awaiting_handshake_record():
            return self._receive_binary_handshake(data, now)
        chunk = self._records.feed_and_pop(data)
        if not chunk:
            return []
        events: list[HubEvent[ArgT]] = []
        if self._awaiting_handshake_record():
            end = chunk.find(RECORD_SEPARATOR)
            events.append(self._receive_handshake(chunk[:end]))
            chunk = chunk[end + 1:]
            # A server stays HANDSHAKING until it answers: records after the request
            # go through the table (and are refused), as they would in a later chunk.
            if self._state is HubState.CLOSED or not chunk or self._foreign_protocol():
                return events
        return self._receive_messages(self._codec.decode_records(chunk), events, now)

    def _receive_binary_handshake(self, data: bytes, now: float) -> list[HubEvent[ArgT]]:
        """The handshake is a JSON record for every protocol: collect it apart, then hand
        what follows it to the codec's framing."""
        buf = self._handshake_bytes
        searched = len(buf)  # holds no separator: only the new bytes need a look
        buf += data
        end = buf.find(RECORD_SEPARATOR, searched)
        if end > self.config.max_record_size or (
                end < 0 and len(buf) > self.config.max_record_size):
            raise RemoteProtocolError(
                f"record exceeds the maximum size of {self.config.max_record_size} bytes")
        if end < 0:
            return []
        record, rest = bytes(buf[:end]), bytes(buf[end + 1:])
        buf.clear()
        events: list[HubEvent[ArgT]] = [self._receive_handshake(record)]
        if self._state is HubState.CLOSED or not rest or self._foreign_protocol():
            return events
        chunk = self._records.feed_and_pop(rest)
        if not chunk:
            return events
        return self._receive_messages(self._codec.decode_records(chunk), events, now)

    def _receive_messages(self, messages: list[HubMessage], events: list[HubEvent[ArgT]],
                          now: float) -> list[HubEvent[ArgT]]:
        if self._state is _OPEN and not self._stateful and _TRAFFIC.issuperset(
                map(type, messages)):
            self._complete(messages)
            events.extend(messages)  # type: ignore[arg-type]
            return events
        for message in messages:
            event = self._receive_message(message, now)
            if event is not None:
                events.append(event)
            if self._state is HubState.CLOSED:
                break
        return events

    def _complete(self, messages: list[HubMessage]) -> None:
        """Forget the pending invocations that the Completions among ``messages`` end.
        Every Completion is still delivered, even for an id we never used. The
        Completions are found without a Python-level loop over the whole frame."""
        types = list(map(type, messages))
        pop = self._pending.pop
        index = -1
        for _ in range(types.count(Completion)):
            index = types.index(Completion, index + 1)
            completion: Completion = messages[index]  # type: ignore[assignment]
            pop(completion.invocation_id, None)

    def _awaiting_handshake_record(self) -> bool:
        if self.role is Role.SERVER:
            return self._state is HubState.NEW
        return self._state in (HubState.NEW, HubState.HANDSHAKING)

    def _foreign_protocol(self) -> bool:
        """A server was asked for a protocol its codec does not speak: it must refuse the
        handshake, and the bytes after the request (in that protocol) are not read, as
        ASP.NET Core answers the handshake without reading them."""
        return self._requested_protocol not in (None, self._codec.protocol)

    def _receive_handshake(
        self, record: bytes
    ) -> HandshakeRequest | HandshakeAccepted | HandshakeRefused:
        handshake: HandshakeRequest | HandshakeAccepted | HandshakeRefused
        if self.role is Role.SERVER:
            handshake = decode_handshake_request(record)
            self._requested_version = handshake.version
            self._requested_protocol = handshake.protocol
        else:
            handshake = decode_handshake_response(record)
        self._state = self._next_state(self.role.peer, type(handshake), RemoteProtocolError)
        return handshake

    def _receive_message(self, message: HubMessage, now: float) -> HubEvent[ArgT] | None:
        kind = type(message)
        if self._state is HubState.REATTACHING and kind is not Sequence:
            return None  # everything before the peer's Sequence is stale
        new_state = self._next_state(self.role.peer, kind, RemoteProtocolError)
        event: HubEvent[ArgT] | None = message  # type: ignore[assignment]
        if self._stateful and kind in TRACKABLE_TYPES:
            sequence_id = self._next_expected
            self._next_expected += 1
            if sequence_id <= self._latest_processed:
                return None  # a replayed duplicate
            self._latest_processed = sequence_id
            if self._ack_deadline is None:
                self._ack_deadline = now + self.config.ack_interval
        if isinstance(message, Completion):
            # Delivered even for an id we never used: it may end an upload stream the
            # peer sent us; the layer above ignores the ids it does not know.
            self._pending.pop(message.invocation_id, None)
        elif isinstance(message, Ack):
            event = None
            if self._stateful:
                was_full = self.send_would_block
                self._release(message.sequence_id)
                if was_full and not self.send_would_block:
                    event = SendUnblocked()
        elif isinstance(message, Sequence):
            event = None
            if self._stateful:
                # Only a gap after what we processed is an error. ``_next_expected`` may
                # lag behind it: a replay cut short by a second drop rewound it, and the
                # peer, acknowledged meanwhile, rightly starts after what we have.
                if message.sequence_id > self._latest_processed + 1:
                    raise RemoteProtocolError(
                        f"Sequence {message.sequence_id} skips messages; expected at most "
                        f"{self._latest_processed + 1}",
                        close_hint=Close(error="Sequence id is too high"),
                    )
                self._next_expected = message.sequence_id
                if self._state is HubState.REATTACHING:
                    event = Reattached()
        self._state = new_state
        return event

    def receive_eof(self, *, now: float | None = None) -> list[HubEvent[ArgT]]:
        """The transport ended. Returns ``[ConnectionLost(...)]`` unless a Close came first.

        With stateful reconnect active the connection becomes DETACHED and waits
        ``reattach_timeout`` (from ``now``, or from the last activity) for ``reattach``.
        A partial record buffered at that moment is dropped: the stream ending inside a
        record is a lost connection like any other (the peer replays it whole after a
        reattach; without stateful reconnect it is gone with the connection).
        """
        state = self._state
        if state in (HubState.CLOSED, HubState.ERROR, HubState.DETACHED):
            return []
        if self._stateful and state in (HubState.OPEN, HubState.REATTACHING):
            self._records.clear()
            self._state = self._next_state(self.role.peer, TransportLost, RemoteProtocolError)
            self._detached_at = now if now is not None else max(self._last_sent,
                                                                 self._last_received)
            return [ConnectionLost(reattachable=True)]
        # Half a record (or half a handshake) at the end is what a network drop leaves
        # when a record spans WebSocket messages: a lost connection, not a broken protocol.
        self._records.clear()
        self._handshake_bytes.clear()
        self._state = self._next_state(self.role.peer, EndOfStream, RemoteProtocolError)
        return [ConnectionLost(reattachable=False)]

    # -- stateful reconnect ------------------------------------------------------------

    def reattach(self, *, now: float) -> bytes:
        """Resume a DETACHED connection on a new transport (no new handshake).

        Returns our Sequence followed by every unacknowledged message, to write first on
        the new transport. Until the peer's Sequence arrives, what it sends is ignored;
        then ``receive_data`` yields ``Reattached()``.

        Raises:
            LocalProtocolError: the connection is not DETACHED.
        """
        try:
            self._state = self._next_state(self.role, Reattach, LocalProtocolError)
        except ProtocolError:
            self._state = HubState.ERROR
            raise
        self._records.clear()
        first = self._replay[0][0] if self._replay else self._next_send_seq
        self._detached_at = self._last_sent = self._last_received = now
        return self._codec.encode(Sequence(sequence_id=first)) + b"".join(
            record for _, record in self._replay
        )

    def _release(self, sequence_id: int) -> None:
        replay = self._replay
        while replay and replay[0][0] <= sequence_id:
            self._replay_bytes -= len(replay.popleft()[1])

    # -- timers ----------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When ``handle_timer`` next has something to do (absolute; None: never)."""
        state = self._state
        cfg = self.config
        if state in (HubState.NEW, HubState.HANDSHAKING):
            if cfg.handshake_timeout is None:
                return None
            return self._started + cfg.handshake_timeout
        if state is HubState.OPEN:
            deadline = self._last_sent + cfg.keepalive_interval
            if cfg.peer_timeout is not None:
                deadline = min(deadline, self._last_received + cfg.peer_timeout)
            if self._ack_deadline is not None:
                deadline = min(deadline, self._ack_deadline)
            return deadline
        if state in (HubState.DETACHED, HubState.REATTACHING):
            return self._detached_at + cfg.reattach_timeout
        return None

    def peer_alive(self, *, now: float) -> None:
        """The transport saw the peer without hub data (a WebSocket ping, say): restart the
        peer timeout. Some clients keep a connection alive only with WebSocket pings and
        never send a SignalR Ping; this keeps a server from dropping them as silent."""
        if now > self._last_received:
            self._last_received = now

    def handle_timer(self, *, now: float) -> list[TimerEvent]:
        """Report what is due at ``now``: a keep-alive, an Ack, or a timeout.

        The core sends nothing itself: answer ``KeepAliveDue`` with ``send(Ping())`` and
        ``AckDue`` with ``send(Ack(sequence_id=...))``. After a ``*TimedOut`` event the
        connection is CLOSED.
        """
        state = self._state
        cfg = self.config
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        if state in (HubState.NEW, HubState.HANDSHAKING):
            self._state = self._next_state(self.role.peer, TimedOut, LocalProtocolError)
            return [HandshakeTimedOut()]
        if state in (HubState.DETACHED, HubState.REATTACHING):
            self._state = self._next_state(self.role.peer, TimedOut, LocalProtocolError)
            return [ReattachTimedOut()]
        silent_for = now - self._last_received
        # The same sum as next_deadline(): "now - last >= timeout" can be False at that
        # very deadline through rounding, and a driver would then wake up for nothing.
        if cfg.peer_timeout is not None and now >= self._last_received + cfg.peer_timeout:
            self._state = self._next_state(self.role.peer, TimedOut, LocalProtocolError)
            return [PeerTimedOut(silent_for=silent_for)]
        events: list[TimerEvent] = []
        if self._ack_deadline is not None and now >= self._ack_deadline:
            self._ack_deadline = None
            events.append(AckDue(sequence_id=self._latest_processed))
        if now >= self._last_sent + cfg.keepalive_interval:
            events.append(KeepAliveDue())
        return events

    def answer_timer(self, event: TimerEvent, *, now: float) -> bytes:
        """The bytes that answer ``event``: a Ping for ``KeepAliveDue``, an Ack for
        ``AckDue``, and ``b""`` for the timeouts (they need no message)."""
        if isinstance(event, KeepAliveDue):
            return self.send(Ping(), now=now)
        if isinstance(event, AckDue):
            return self.send(Ack(sequence_id=event.sequence_id), now=now)
        return b""

    # -- the table -------------------------------------------------------------------

    def _next_state(
        self,
        sender: Role,
        kind: type[object],
        error: type[LocalProtocolError] | type[RemoteProtocolError],
    ) -> HubState:
        try:
            return TRANSITIONS[(self._state, sender, kind)]
        except KeyError:
            text = (f"{kind.__name__} from the {sender.value} is not allowed in state "
                    f"{self._state.name}")
            if error is RemoteProtocolError:
                raise RemoteProtocolError(text, close_hint=Close(error=text)) from None
            raise error(text) from None
