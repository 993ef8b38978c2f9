"""One mock hub connection: its session, fault plan and driver, and the view of the
session the driver runs (what the fault plans change on the way out: silence, garbage,
the replay after a reattach; WebSocket pings as signs of life on the way in)."""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

import anyio
import anyio.abc

from voxta_mock.faults import FaultPlan, split_message
from voxta_proto.driver import Driver, Writer
from voxta_proto.errors import TransportError, WriteError
from voxta_proto.transports import (
    MessageTransport,
)
from voxta_proto.voxta import ChatsSessionsUpdated
from voxta_proto.voxta.server import ClientRequest, ServerEvent, ServerState, VoxtaServerSession
from voxta_proto.voxta.server_messages import ServerMessage

__all__ = ["DEFAULT_MAX_OUTPUT", "SNAPSHOTS", "HubConn", "fault_writer"]

logger = logging.getLogger("voxta_mock")

DEFAULT_MAX_OUTPUT: Final = 4 * 1024 * 1024
"""Bytes handed to a connection's writer and not yet written, at most; past it the client
is not reading and is dropped (snapshots do not count: they wait, see ``SNAPSHOTS``)."""

SNAPSHOTS: Final[frozenset[type[ServerMessage]]] = frozenset({ChatsSessionsUpdated})
"""Messages that are state, not events: a newer one replaces an unsent one. While a
connection's writer is behind (``SNAPSHOT_HOLD``) they wait in ``HubConn.snapshots``
(newest per type) and leave when the writer has caught up, so what they cost is bounded
by what the client reads (N clients starting chats would otherwise queue N x N session
lists)."""

SNAPSHOT_HOLD: Final = 16 * 1024
"""Unwritten bytes past which a snapshot waits instead of being queued; below it (a
client that keeps up) snapshots go out in order with everything else."""

SNAPSHOT_RATE: Final = 8 * 1024 * 1024
"""Bytes per second one snapshot broadcast may cost, summed over its audience: after a
snapshot a connection gets the next one no sooner than audience x size / rate seconds
later (the newest, once due). A handful of clients see every update at once; 1,000
clients sharing a 250 KB session list get one every ~30 s instead of 250 MB per start."""


@dataclass
class HubConn:
    key: str
    session: VoxtaServerSession
    transport: MessageTransport
    plan: FaultPlan
    peer: tuple[str, int] | None
    driver: Driver[ServerEvent] | None = None
    """Runs the session on the current transport (reader, writer, timer)."""
    raw: list[bytes] = field(default_factory=list)
    """Bytes a fault writes outside the session (garbage) or the reattach's replay."""
    inbox: deque[ClientRequest] = field(default_factory=deque)
    inbox_idle: anyio.Event = field(default_factory=anyio.Event)
    """Set while no request task runs."""
    may_read: anyio.Event = field(default_factory=anyio.Event)
    """The driver's reader waits on it (``flow``): set while no request task runs, or
    while the request task waits for the client's acks (see ``wait_for_room``)."""
    unblocked: anyio.Event = field(default_factory=anyio.Event)
    """Set when an Ack frees the replay buffer (``SendUnblocked``) or the connection ends."""
    tasks: anyio.abc.TaskGroup | None = None
    pings_seen: int = 0
    handshaken: bool = False
    silent: bool = False
    chunks: int = 0
    dead: bool = False
    """Gone for good: nothing more is sent or buffered."""
    attached: bool = True
    """A transport is usable; False while a stateful connection waits for a reattach."""
    released: anyio.Event | None = None
    """Set when the current transport is given up (ends a reattach's WebSocket handler)."""
    incoming: tuple[MessageTransport, tuple[str, int] | None, anyio.Event] | None = None
    handover: anyio.Event = field(default_factory=anyio.Event)
    max_output: int = DEFAULT_MAX_OUTPUT
    write_timeout: float | None = None
    """Seconds one message's write may take (``fault_writer``)."""
    write_deadline: float = math.inf
    """When the write under way times out (``fault_writer``); left set when a write
    fails, so the server can tell a stalled write from a reset peer."""
    unwritten: int = 0
    """Bytes handed to the writer (``data_to_send``) and not written yet."""
    snapshots: dict[type[ServerMessage], ServerMessage] = field(default_factory=dict)
    """The newest unsent snapshot per type (``SNAPSHOTS``), waiting for the writer."""
    snapshot_due: float = -math.inf
    """When the next snapshot may leave (``SNAPSHOT_RATE``)."""
    snapshot_spacing: float = 0.0

    def offer_snapshot(self, message: ServerMessage, *, now: float, spacing: float) -> bool:
        """Send a snapshot now if the writer has caught up and one is due (in order with
        the rest), else keep it, replacing an older one, until then; True when kept."""
        self.snapshot_spacing = spacing
        if self.unwritten <= SNAPSHOT_HOLD and not self.snapshots and now >= self.snapshot_due:
            self.send(message, now=now)
            self.snapshot_due = now + spacing
            return False
        self.snapshots[type(message)] = message
        return True

    def snapshot_ready(self, now: float) -> bool:
        """A kept snapshot may leave now (the writer caught up, and it is due)."""
        return bool(self.snapshots) and self.unwritten <= 0 and now >= self.snapshot_due

    on_sent: Callable[[HubConn, ServerMessage], None] | None = None
    """Told of every Voxta message queued for this connection (the server's journal)."""

    def send(self, message: ServerMessage, *, now: float) -> None:
        """Queue a Voxta message on the session, and tell ``on_sent``."""
        self.session.send(message, now=now)
        if self.on_sent is not None:
            self.on_sent(self, message)

    # -- the driver's view of the session (DrivenSession) ----------------------------

    def data_to_send(self) -> list[bytes]:
        """What the session queued, then raw bytes; nothing while silent or gone (a
        detached stateful connection keeps its messages for the replay)."""
        if self.snapshots and not self.dead:
            now = anyio.current_time()
            if self.snapshot_ready(now):
                for message in self.snapshots.values():
                    self.send(message, now=now)
                self.snapshots.clear()
                self.snapshot_due = now + self.snapshot_spacing
        out = self.session.data_to_send()
        if self.raw:
            out += self.raw
            self.raw = []
        if self.silent or self.dead:
            return []
        if not self.handshaken and self.session.state not in (ServerState.NEW,
                                                              ServerState.CLOSED):
            self.handshaken = True  # its answer is in ``out``: the faults start after it
            if self.plan.garbage_after_handshake:
                out.append(b"this is not json\x1e")
            self.silent = self.plan.silent_after_handshake
        self.unwritten += sum(map(len, out))
        if self.unwritten > self.max_output and self.handshaken:
            logger.warning("connection %s dropped: %d bytes wait to be written (more than "
                           "%d): the client does not read", self.key, self.unwritten,
                           self.max_output)
            self.dead = True
            self.snapshots.clear()
            if self.driver is not None:
                self.driver.abort()
            return []
        return out

    def receive_data(self, data: bytes, *, now: float) -> list[ServerEvent]:
        if self.session.state is ServerState.NEW:
            # One read may hold the handshake and the first messages: the session must
            # answer the handshake before the hub accepts traffic, so feed it first.
            end = data.find(b"\x1e") + 1
            if 0 < end < len(data):
                events = self.session.receive_data(data[:end], now=now)
                return events + self.session.receive_data(data[end:], now=now)
        return self.session.receive_data(data, now=now)

    def receive_eof(self, *, now: float | None = None) -> list[ServerEvent]:
        return self.session.receive_eof(now=now)

    def handle_timer(self, *, now: float) -> list[ServerEvent]:
        # A WebSocket ping is a sign of life: voxta-client keeps its connection up with
        # those alone and never sends a SignalR Ping (reference §10).
        pings = getattr(self.transport, "pings_received", 0)
        if pings != self.pings_seen:
            self.pings_seen = pings
            self.session.peer_alive(now=now)
        return self.session.handle_timer(now=now)

    def next_deadline(self) -> float | None:
        return self.session.next_deadline()

    def reattach(self, *, now: float) -> None:
        self.unwritten = 0  # the driver dropped its queue: the replay resends it
        self.raw.append(self.session.hub.reattach(now=now))

    async def wait_for_room(self) -> None:
        """Stateful reconnect's backpressure (ASP.NET Core's): while the replay buffer is
        full, wait for the client's acks (``SendUnblocked``), reading meanwhile; never
        drop a client that acks, and never drop a message. Returns at once when there is
        room, or once the connection is gone."""
        while self.session.send_would_block and not self.dead:
            self.may_read.set()  # the acks come through the reader: never wait on it here
            if self.unblocked.is_set():
                self.unblocked = anyio.Event()
            await self.unblocked.wait()

    def flow(self) -> Awaitable[None] | None:
        """The driver's ``flow``: the reader waits while requests are being handled."""
        return None if self.may_read.is_set() else self.may_read.wait()

    def alive(self) -> bool:
        return not self.dead and self.session.state is not ServerState.CLOSED


def fault_writer(conn: HubConn, batch: int) -> Writer:
    """How ``conn``'s messages are written: one WebSocket message per item the session
    queued (the lanes already grouped up to ``batch`` steps into one), with the fault
    plan's latency and splitting. Items are never joined: what is queued at once can be
    a whole reply without delay, too big for one message."""
    async def write(transport: MessageTransport, items: list[bytes]) -> None:
        plan = conn.plan
        limit = conn.write_timeout
        deadline = math.inf if limit is None else anyio.current_time() + limit
        conn.write_deadline = deadline
        for data in items:
            if plan.latency:
                await anyio.sleep(plan.latency)
            with anyio.CancelScope(deadline=deadline) as scope:
                try:
                    if plan.split_every:
                        for piece in split_message(data, plan.split_every):
                            await transport.send(piece)
                    else:
                        await transport.send_text(data)
                except TransportError:
                    if not scope.cancel_called:
                        raise
            if scope.cancel_called:  # a transport may report its cancelled write as closed
                raise WriteError(f"writing took longer than {limit} s")
            conn.unwritten -= len(data)
        conn.write_deadline = math.inf
        if conn.unwritten <= 0 and conn.snapshots and conn.driver is not None:
            conn.unwritten = 0
            conn.driver.transmit()  # caught up: the kept snapshots go next

    return write
