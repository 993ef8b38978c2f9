"""Test helpers for the sans-IO hub core: an in-memory client/server pair and byte splitting.

``HubPair`` is h11's ``ConnectionPair`` idea for SignalR: a client ``HubConnection`` and a
server ``HubConnection`` wired back to back in memory, sharing a manual clock. Every
message sent through it is checked to come out of the other side unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Literal

import msgspec

from voxta_proto.hub import (
    Ack,
    AckDue,
    HandshakeAccepted,
    HandshakeRequest,
    HubConfig,
    HubConnection,
    HubEvent,
    HubState,
    Outgoing,
    Role,
)

__all__ = ["Conn", "Event", "HubPair", "feed", "open_conn", "open_pair", "split_at", "state_of"]

Conn = HubConnection[msgspec.Raw]
Event = HubEvent[msgspec.Raw]


def state_of(conn: Conn) -> HubState:
    """``conn.state`` through a call, so mypy does not keep a narrowed literal across
    calls that change it (``assert c.state is A; c.go(); assert c.state is B``)."""
    return conn.state


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """Cut ``data`` at the given offsets (taken modulo ``len(data) + 1``, any order).

    The pieces joined give ``data`` back; empty pieces are kept, so a transport that
    delivers an empty message is exercised too.
    """
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces: list[bytes] = []
    start = 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def feed(conn: Conn, pieces: Iterable[bytes], *, now: float = 0.0) -> list[Event]:
    """Feed every piece to ``conn`` and return all the events, in order."""
    events: list[Event] = []
    for piece in pieces:
        events.extend(conn.receive_data(piece, now=now))
    return events


def open_conn(role: Role = Role.CLIENT, config: HubConfig | None = None,
              *, now: float = 0.0) -> Conn:
    """A connection already OPEN (handshake done with ``version=1``), on its own."""
    conn = HubConnection(role, now=now, config=config or HubConfig())
    if role is Role.CLIENT:
        conn.send(HandshakeRequest(protocol="json", version=1), now=now)
        assert conn.receive_data(b"{}\x1e", now=now) == [HandshakeAccepted()]
    else:
        request = b'{"protocol":"json","version":1}\x1e'
        assert conn.receive_data(request, now=now) == [
            HandshakeRequest(protocol="json", version=1)
        ]
        conn.send(HandshakeAccepted(), now=now)
    assert conn.state is HubState.OPEN
    return conn


class HubPair:
    """A client and a server hub connection talking through memory.

    Attributes:
        now: the manual clock, passed as ``now`` to every call; move it with ``advance``.
        client: the client connection.
        server: the server connection.
    """

    def __init__(
        self,
        config: HubConfig | None = None,
        *,
        client_config: HubConfig | None = None,
        server_config: HubConfig | None = None,
        now: float = 0.0,
    ) -> None:
        self.now = now
        base = config or HubConfig()
        self.client: Conn = HubConnection(Role.CLIENT, now=now, config=client_config or base)
        self.server: Conn = HubConnection(Role.SERVER, now=now, config=server_config or base)

    # -- plumbing ---------------------------------------------------------------------

    def conn(self, role: Role) -> Conn:
        """The connection playing ``role``."""
        return self.client if role is Role.CLIENT else self.server

    def states(self) -> tuple[HubState, HubState]:
        """(client state, server state)."""
        return self.client.state, self.server.state

    def advance(self, seconds: float) -> float:
        """Move the clock forward; returns the new ``now``."""
        assert seconds >= 0
        self.now += seconds
        return self.now

    def to_server(self, data: bytes) -> list[Event]:
        """Deliver raw bytes to the server."""
        return self.server.receive_data(data, now=self.now)

    def to_client(self, data: bytes) -> list[Event]:
        """Deliver raw bytes to the client."""
        return self.client.receive_data(data, now=self.now)

    def deliver(self, receiver: Role, data: bytes) -> list[Event]:
        """Deliver raw bytes to ``receiver``."""
        return self.conn(receiver).receive_data(data, now=self.now)

    # -- checked sends ----------------------------------------------------------------

    def send(
        self,
        sender: Role,
        *messages: Outgoing,
        expect: Sequence[Event] | Literal["match"] = "match",
    ) -> list[Event]:
        """Send ``messages`` from ``sender`` and deliver the bytes in one piece.

        With ``expect="match"`` the receiver must report exactly the messages sent, in
        order and unchanged (``Ack``/``Sequence`` are consumed by the core, so pass
        ``expect=[]`` for those). Returns the receiver's events.
        """
        conn = self.conn(sender)
        data = b"".join(conn.send(message, now=self.now) for message in messages)
        events = self.deliver(sender.peer, data)
        expected = list(messages) if expect == "match" else list(expect)
        assert events == expected, f"sent {messages!r}, got {events!r}"
        return events

    def client_sends(
        self, *messages: Outgoing, expect: Sequence[Event] | Literal["match"] = "match"
    ) -> list[Event]:
        """``send`` from the client; returns what the server got."""
        return self.send(Role.CLIENT, *messages, expect=expect)

    def server_sends(
        self, *messages: Outgoing, expect: Sequence[Event] | Literal["match"] = "match"
    ) -> list[Event]:
        """``send`` from the server; returns what the client got."""
        return self.send(Role.SERVER, *messages, expect=expect)

    # -- life cycle -------------------------------------------------------------------

    def handshake(self, version: int = 1) -> None:
        """Run the handshake; both sides end OPEN."""
        self.client_sends(HandshakeRequest(protocol="json", version=version))
        assert self.states() == (HubState.HANDSHAKING, HubState.HANDSHAKING)
        self.server_sends(HandshakeAccepted())
        assert self.states() == (HubState.OPEN, HubState.OPEN)

    def drop(self) -> None:
        """The transport dies without a Close: both sides see the end of the stream."""
        self.client.receive_eof(now=self.now)
        self.server.receive_eof(now=self.now)

    def reattach(self) -> tuple[bytes, bytes]:
        """Both sides reattach on a new transport and exchange what ``reattach`` returned.

        Returns the bytes each side wrote first (client's, server's), still undelivered:
        a test decides when and how they arrive.
        """
        client_wire = self.client.reattach(now=self.now)
        server_wire = self.server.reattach(now=self.now)
        assert self.states() == (HubState.REATTACHING, HubState.REATTACHING)
        return client_wire, server_wire

    def ack_both(self) -> None:
        """Let both ack timers fire (after 1 s) and send the Acks they ask for."""
        for role in (Role.CLIENT, Role.SERVER):
            conn = self.conn(role)
            for tick in conn.handle_timer(now=self.now):
                if isinstance(tick, AckDue):
                    self.send(role, Ack(sequence_id=tick.sequence_id), expect=[])


def open_pair(config: HubConfig | None = None, *, stateful: bool = False,
              now: float = 0.0) -> HubPair:
    """A HubPair after a successful handshake.

    With ``stateful=True`` both sides enable stateful reconnect and the client asks for
    it with handshake version 2.
    """
    if stateful:
        config = dataclasses.replace(config or HubConfig(), stateful_reconnect=True)
    pair = HubPair(config, now=now)
    pair.handshake(version=2 if stateful else 1)
    assert pair.client.stateful_reconnect is stateful
    assert pair.server.stateful_reconnect is stateful
    return pair

