"""A fault-injecting TCP proxy for tests: cuts, stalls, stopped reading and resets.

The proxy sits between a client and a server on 127.0.0.1 with an OS-picked port and
forwards bytes both ways until told to break something. Every random choice comes from
``random.Random(seed)``, so a failing run is replayed by its seed::

    async with ChaosProxy("127.0.0.1", server_port, seed=7) as proxy:
        client = await connect("127.0.0.1", proxy.port)      # instead of server_port
        proxy.cut_at_random()                                 # a drop somewhere soon
        ...
        proxy.stall()                                         # nothing moves, sockets open
        proxy.resume()
        await proxy.reset()                                   # RST every connection now

Directions are named from the client: ``UP`` is client → server, ``DOWN`` server →
client. A cut is armed as "after N more bytes in this direction": the proxy forwards
exactly N of them (so a record can be cut in half), then ends that connection, with a
FIN on both sides (``rst=False``) or an RST (SO_LINGER 0). Each cut fires once; what
happened is recorded in ``proxy.cuts``. A stall stops forwarding in one or both
directions (the bytes stay in the kernel's buffers); ``stop_reading()`` stops reading
from the client so that its writes eventually block, as a server that stops reading
would. New connections are accepted throughout, so a reconnecting client reaches the
server again through the same port.
"""

from __future__ import annotations

import contextlib
import enum
import random
import socket
import struct
from dataclasses import dataclass, field

import anyio
from anyio.abc import SocketAttribute, SocketStream, TaskGroup

__all__ = ["ChaosProxy", "Cut", "Direction"]


class Direction(enum.Enum):
    """Which way bytes flow, seen from the client."""

    UP = "client→server"
    DOWN = "server→client"


@dataclass(frozen=True)
class Cut:
    """A cut that fired: which connection (its number, from 0), which way the bytes were
    flowing, how many bytes of that direction the connection had carried in total when
    it was cut, and whether it was an RST."""

    connection: int
    direction: Direction
    offset: int
    rst: bool


@dataclass
class _Plan:
    remaining: int
    rst: bool


@dataclass
class _Link:
    number: int
    client: SocketStream
    server: SocketStream
    carried: dict[Direction, int] = field(
        default_factory=lambda: {Direction.UP: 0, Direction.DOWN: 0})
    closed: bool = False


class ChaosProxy:
    """A seeded TCP proxy to ``target_host:target_port`` that breaks things on request.

    Args:
        target_host: where the real server listens.
        target_port: its port.
        seed: the seed of every random choice (offsets, directions).
        chunk_size: the largest read per forward step; smaller means finer cuts cost
            more steps, never a different result.
    """

    def __init__(self, target_host: str, target_port: int, *, seed: int = 0,
                 chunk_size: int = 65536) -> None:
        self.target = (target_host, target_port)
        self.rng = random.Random(seed)
        self.chunk_size = chunk_size
        self.port = 0
        """The port to connect to instead of the server's; set on entering."""
        self.cuts: list[Cut] = []
        """Every cut and reset that fired, in order."""
        self.accepted = 0
        """Connections accepted so far."""
        self._links: list[_Link] = []
        self._plans: dict[Direction, _Plan] = {}
        self._open: dict[Direction, anyio.Event] = {}
        self._tg: TaskGroup | None = None

    async def __aenter__(self) -> ChaosProxy:
        for direction in Direction:  # anyio events need the running event loop
            self._open[direction] = anyio.Event()
            self._open[direction].set()
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(SocketAttribute.local_port)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(listener.serve, self._handle)
        self._listener = listener
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(None, None, None)
        await self._listener.aclose()
        for link in self._links:
            await self._close(link, rst=False)

    # -- faults ----------------------------------------------------------------------

    def cut_after(self, nbytes: int, direction: Direction, *, rst: bool = False) -> None:
        """Arm a cut: after ``nbytes`` more bytes flow in ``direction`` (through any
        connection), forward exactly those and end that connection. ``nbytes=0`` cuts
        at the next byte, before forwarding it."""
        if nbytes < 0:
            raise ValueError("nbytes must not be negative")
        self._plans[direction] = _Plan(nbytes, rst)

    def cut_at_random(self, *, within: int = 4096, direction: Direction | None = None,
                      rst: bool | None = None) -> tuple[Direction, int, bool]:
        """Arm a cut at a random offset below ``within`` in a random (or the given)
        direction, as a FIN or an RST at random (or as given). Returns the choice."""
        chosen = direction if direction is not None else self.rng.choice(list(Direction))
        offset = self.rng.randrange(within)
        hard = rst if rst is not None else self.rng.random() < 0.5
        self.cut_after(offset, chosen, rst=hard)
        return chosen, offset, hard

    def disarm(self) -> None:
        """Forget every armed cut that has not fired."""
        self._plans.clear()

    def stall(self, *directions: Direction) -> None:
        """Stop forwarding in the given directions (both when none is given); the
        connections stay open and bytes wait in the kernel's buffers."""
        for direction in directions or tuple(Direction):
            if self._open[direction].is_set():
                self._open[direction] = anyio.Event()

    def stop_reading(self) -> None:
        """Stop reading what the client sends: its writes block once the buffers fill,
        as with a server that stopped reading. ``resume()`` undoes it."""
        self.stall(Direction.UP)

    def resume(self, *directions: Direction) -> None:
        """Forward again in the given directions (both when none is given)."""
        for direction in directions or tuple(Direction):
            self._open[direction].set()

    async def reset(self) -> None:
        """End every open connection now with an RST on both sides."""
        for link in list(self._links):
            if not link.closed:
                self.cuts.append(Cut(link.number, Direction.UP, link.carried[Direction.UP],
                                     rst=True))
                await self._close(link, rst=True)

    async def cut_now(self) -> None:
        """End every open connection now with a FIN on both sides."""
        for link in list(self._links):
            if not link.closed:
                self.cuts.append(Cut(link.number, Direction.UP, link.carried[Direction.UP],
                                     rst=False))
                await self._close(link, rst=False)

    @property
    def open_connections(self) -> int:
        """How many proxied connections are still open."""
        return sum(not link.closed for link in self._links)

    # -- forwarding --------------------------------------------------------------------

    async def _handle(self, client: SocketStream) -> None:
        number = self.accepted
        self.accepted += 1
        try:
            server = await anyio.connect_tcp(*self.target)
        except OSError:
            await client.aclose()
            return
        link = _Link(number, client, server)
        self._links.append(link)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._pump, link, Direction.UP, client, server)
            tg.start_soon(self._pump, link, Direction.DOWN, server, client)

    async def _pump(self, link: _Link, direction: Direction, source: SocketStream,
                    sink: SocketStream) -> None:
        try:
            while not link.closed:
                await self._open[direction].wait()
                data = await source.receive(self.chunk_size)
                await self._open[direction].wait()  # a stall that began during the read
                plan = self._plans.get(direction)
                if plan is not None and plan.remaining < len(data):
                    head = data[:plan.remaining]
                    del self._plans[direction]
                    if head:
                        await sink.send(head)
                    link.carried[direction] += len(head)
                    self.cuts.append(Cut(link.number, direction, link.carried[direction],
                                         plan.rst))
                    await self._close(link, rst=plan.rst)
                    return
                if plan is not None:
                    plan.remaining -= len(data)
                await sink.send(data)
                link.carried[direction] += len(data)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError,
                OSError):
            pass
        # One side finished or broke: pass the end on, as a real network path would.
        await self._close(link, rst=False)

    async def _close(self, link: _Link, *, rst: bool) -> None:
        if link.closed:
            return
        link.closed = True
        for stream in (link.client, link.server):
            if rst:
                raw = stream.extra(SocketAttribute.raw_socket)
                with contextlib.suppress(OSError):
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
            with anyio.CancelScope(shield=True):
                await stream.aclose()
