"""One mock hub connection: its session, fault plan and driver, and the view of the
session the driver runs (what the fault plans change on the way out: silence, garbage,
the replay after a reattach; WebSocket pings as signs of life on the way in)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
import anyio.abc

from voxta_mock.faults import FaultPlan, split_message
from voxta_proto.driver import Driver, Writer
from voxta_proto.transports import (
    MessageTransport,
)
from voxta_proto.voxta import ServerMessage
from voxta_proto.voxta.server import ClientRequest, ServerEvent, ServerState, VoxtaServerSession

__all__ = ["HubConn", "fault_writer"]


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
    """Set while no request task runs; the driver's reader waits on it (``flow``)."""
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
        self.raw.append(self.session.hub.reattach(now=now))

    def alive(self) -> bool:
        return not self.dead and self.session.state is not ServerState.CLOSED


def fault_writer(conn: HubConn, batch: int) -> Writer:
    """How ``conn``'s messages are written: one WebSocket message each (or up to
    ``batch`` records in one), with the fault plan's latency and splitting."""
    async def write(transport: MessageTransport, items: list[bytes]) -> None:
        plan = conn.plan
        if batch > 1 and len(items) > 1 and not (plan.latency or plan.split_every):
            items = [b"".join(items)]  # one WebSocket message, many records
        for data in items:
            if plan.latency:
                await anyio.sleep(plan.latency)
            if plan.split_every:
                for piece in split_message(data, plan.split_every):
                    await transport.send(piece)
            else:
                await transport.send_text(data)

    return write
