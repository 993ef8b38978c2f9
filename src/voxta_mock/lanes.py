"""Chat lanes: the engine's steps for a request run inline until the first ``Wait``,
then on a task per chat session (a lane), so a streamed reply never holds up reading."""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Iterator
from typing import Final

import anyio
import anyio.abc
import msgspec
from anyio.abc import ByteStream

from voxta_mock.connection import SNAPSHOT_RATE, SNAPSHOTS, HubConn
from voxta_mock.engine import Complete, Emit, MockEngine, Step, Wait
from voxta_proto.voxta import ChatsSessionsUpdated, ReplyChunk
from voxta_proto.voxta.server import ServerState

__all__ = ["ChatLanes"]

logger = logging.getLogger("voxta_mock")

SNAPSHOT_TICK: Final = 0.1
"""Seconds between looks for kept snapshots that are due (only while there are some)."""

_measure: Final = msgspec.json.Encoder().encode
"""Sizes a snapshot once per broadcast, for its spacing (``SNAPSHOT_RATE``)."""


class ChatLanes:
    """The step runner of [`MockVoxtaServer`][voxta_mock.server.MockVoxtaServer] (a mixin: the
    server owns the engine, the connections and the task group)."""

    engine: MockEngine
    batch: int
    broadcast_sessions: bool
    _conns: dict[str, HubConn]
    _lanes: dict[str, deque[tuple[HubConn | None, str | None, Iterator[Step]]]]
    _streams: dict[tuple[str, int], ByteStream]
    _tg: anyio.abc.TaskGroup | None
    _pumping: bool = False

    async def _drive(self, origin: HubConn | None, invocation_id: str | None,
                     steps: Iterator[Step], lane: str) -> None:
        """Run steps until the first ``Wait``; the rest plays on the lane's task.

        With ``batch`` > 1, messages emitted back to back are flushed together, up to
        ``batch`` steps at a time (see ``_flush``)."""
        unflushed: dict[str, HubConn] | None = {} if self.batch > 1 else None
        for count, step in enumerate(steps, 1):
            if unflushed and (isinstance(step, Wait) or count % self.batch == 0):
                for conn in unflushed.values():
                    await self._deliver(conn, origin)
                unflushed.clear()
            if isinstance(step, Wait):
                queue = self._lanes.get(lane)
                item = (origin, invocation_id, itertools.chain([step], steps))
                if queue is not None:
                    queue.append(item)
                else:
                    self._lanes[lane] = deque([item])
                    assert self._tg is not None
                    self._tg.start_soon(self._play_lane, lane)
                return
            await self._apply(origin, invocation_id, step, unflushed, own=origin)
        for conn in (unflushed or {}).values():
            await self._deliver(conn, origin)

    async def _play_lane(self, lane: str) -> None:
        queue = self._lanes[lane]
        try:
            while queue:
                origin, invocation_id, steps = queue.popleft()
                for step in steps:
                    if isinstance(step, Wait):
                        await anyio.sleep(step.seconds)
                    else:
                        await self._apply(origin, invocation_id, step, own=None)
        finally:
            self._lanes.pop(lane, None)

    async def _apply(self, origin: HubConn | None, invocation_id: str | None,
                     step: Step, unflushed: dict[str, HubConn] | None = None, *,
                     own: HubConn | None) -> None:
        """Carry out one step. With ``unflushed``, a plain emit is only queued on the
        session and its connection noted there, for the caller to flush. ``own`` is the
        connection whose task runs this (None: a lane's), see ``_deliver``."""
        now = anyio.current_time()
        if isinstance(step, Complete):
            if (origin is not None and invocation_id is not None
                    and invocation_id in origin.session.owed_completions):
                await origin.wait_for_room()
                if origin.dead:
                    return
                origin.session.complete(invocation_id, now=now, error=step.error)
                await self._deliver(origin, own)
            return
        if not isinstance(step, Emit):
            return
        targets = step.to
        spacing: float | None = None
        if not self.broadcast_sessions and isinstance(step.message, ChatsSessionsUpdated):
            targets = (origin.key,) if origin is not None else ()
        for target in targets:
            conn = self._conns.get(target)
            if conn is None or conn.dead or conn.session.state is ServerState.CLOSED:
                continue
            if conn.session.send_would_block:
                # Backpressure, as ASP.NET Core: wait for the client's acks; what it
                # has not acked yet is replayed after a reattach, so nothing is lost.
                await conn.wait_for_room()
                if not conn.alive():  # gone while waiting
                    continue
            if (type(step.message) in SNAPSHOTS and conn.attached
                    and conn.driver is not None):
                if spacing is None:
                    spacing = len(targets) * len(_measure(step.message)) / SNAPSHOT_RATE
                if conn.offer_snapshot(step.message, now=now, spacing=spacing):
                    self._pump_snapshots()
                    continue  # sent by the writer or the pump when due
            else:
                conn.send(step.message, now=now)
            if conn.plan.drop_after_chunks is None:
                if unflushed is not None:
                    unflushed[conn.key] = conn
                else:
                    await self._deliver(conn, own)
                continue
            assert conn.driver is not None  # the fault drops it right after this very chunk
            await conn.driver.drain()
            if isinstance(step.message, ReplyChunk) and conn.attached:
                conn.chunks += 1
                if conn.chunks >= conn.plan.drop_after_chunks:
                    await self._drop(conn)

    def _pump_snapshots(self) -> None:
        """Start the task that sends kept snapshots once due, unless it runs."""
        if not self._pumping and self._tg is not None:
            self._pumping = True
            self._tg.start_soon(self._snapshot_pump)

    async def _snapshot_pump(self) -> None:
        """While any connection keeps a snapshot: hand each one to its writer when due
        (a writer that is behind takes it itself once it has caught up)."""
        try:
            while True:
                await anyio.sleep(SNAPSHOT_TICK)
                now = anyio.current_time()
                waiting = False
                for conn in list(self._conns.values()):
                    if conn.snapshots and not conn.dead:
                        if conn.snapshot_ready(now):
                            self._flush(conn)
                        waiting = waiting or bool(conn.snapshots)
                if not waiting:
                    return
        finally:
            self._pumping = False

    async def _drop(self, conn: HubConn) -> None:
        """Fault: end the TCP connection without a Close message or a close frame (a
        stateful connection then waits for its client to reattach)."""
        conn.attached = False
        if not conn.session.hub.stateful_reconnect:
            conn.dead = True
        conn.chunks = 0
        conn.plan = msgspec.structs.replace(conn.plan, drop_after_chunks=None)
        stream = self._streams.get(conn.peer) if conn.peer else None
        if stream is not None:
            await anyio.aclose_forcefully(stream)
        else:
            await conn.transport.aclose(1011, "dropped")
        if conn.driver is not None:
            conn.driver.abort()

    async def _deliver(self, conn: HubConn, own: HubConn | None) -> None:
        """Hand what ``conn`` has queued to its writer task; never waits on the socket,
        so a client that stops reading holds up no other client and no chat lane."""
        self._flush(conn)

    def _flush(self, conn: HubConn) -> None:
        if conn.driver is not None:
            conn.driver.transmit()
