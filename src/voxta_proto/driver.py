"""One connection driver: runs a sans-IO session over one
[`MessageTransport`][voxta_proto.transports.base.MessageTransport].

Used by [`HubClient`][voxta_proto.hub_client.HubClient],
[`VoxtaClient`][voxta_proto.client.connection.VoxtaClient]
and the generic hub server, so end of stream, timeouts, Close and stateful reattach are
handled in one place. Like aioquic's protocol adapter, every input (a batch read, a
timer, an API call) is followed by one [`Driver.transmit()`][voxta_proto.driver.Driver.transmit],
which hands what the
session queued to the writer task and re-arms the single deadline only when it moved
earlier.

Per transport, none waiting on another:

* the reader takes every complete message of one socket read
  (``receive_many()``), feeds them to the session in one ``receive_data`` call and
  hands the events to the owner in one call: no lock, no cancel scope and no
  event-loop turn per WebSocket message;
* the writer (a task per burst, none while idle) writes what ``transmit`` queued,
  coalescing records into one message, each
  write under a timeout; a failed or stalled write is a lost connection;
* the timer sleeps until the session's deadline; when the deadline moved later it just
  sleeps again, so keep-alive costs nothing per message.

This module does I/O (anyio), so it is not part of the sans-IO core.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Generic, Protocol, TypeVar

import anyio
import anyio.abc
import msgspec

from voxta_proto.errors import (
    LocalProtocolError,
    ProtocolError,
    TransportError,
    VoxtaProtoError,
    WriteError,
)
from voxta_proto.framing import encode_record
from voxta_proto.hub.messages import Close
from voxta_proto.transports.base import MessageTransport

__all__ = [
    "DEFAULT_WRITE_TIMEOUT",
    "DrivenSession",
    "Driver",
    "DriverState",
    "TextMessage",
    "Writer",
    "binary_writer",
    "close_quietly",
    "coalesce",
    "coalescing_writer",
]

logger = logging.getLogger("voxta_proto.driver")

_encode: Final = msgspec.json.Encoder().encode

DEFAULT_WRITE_TIMEOUT: Final = 10.0
"""Seconds one write may take before the connection counts as lost."""

COALESCE_LIMIT: Final = 64 * 1024
"""Bytes a writer joins into one WebSocket message: a long burst (a stream's items queued
while the writer waited) goes as several messages, never one over the peer's limit
(ours is 1 MiB); one message larger than this still goes alone and whole."""

EventT = TypeVar("EventT")


class DrivenSession(Protocol[EventT]):
    """What the driver needs from a sans-IO session (client or server role).

    ``VoxtaClientSession`` fits as it is; ``HubSession`` adapts a plain
    [`HubConnection`][voxta_proto.hub.connection.HubConnection].
    """

    def data_to_send(self) -> list[bytes]: ...

    def receive_data(self, data: bytes, *, now: float) -> list[EventT]: ...

    def receive_eof(self, *, now: float | None = None) -> list[EventT]: ...

    def handle_timer(self, *, now: float) -> list[EventT]: ...

    def next_deadline(self) -> float | None: ...

    def reattach(self, *, now: float) -> None: ...


class DriverState(enum.Enum):
    """Where the driver is; one value instead of a set of flags."""

    IDLE = "idle"
    """No transport (before the first ``run`` or between a loss and a reattach)."""
    RUNNING = "running"
    """Reading, writing and keeping time on a transport."""
    CLOSING = "closing"
    """``close()`` was called: the writer drains, then the transport closes."""
    LOST = "lost"
    """The transport ended or failed; the session has been told (``receive_eof``)."""
    CLOSED = "closed"
    """Over for good (we closed, or the session ended); ``run`` may not be called again."""


Writer = Callable[[MessageTransport, list[bytes]], Awaitable[None]]
"""Writes queued transport messages (each item the bytes of one message as the session
queued it); the default joins them into one text message."""


def coalesce(items: list[bytes], limit: int = COALESCE_LIMIT) -> list[bytes]:
    """``items`` joined in order into as few messages as fit in ``limit`` bytes each (an
    item larger than ``limit`` alone); both hub protocols frame each message, so a
    message may carry many."""
    if len(items) == 1:
        return items
    if sum(map(len, items)) <= limit:
        return [b"".join(items)]
    joined: list[bytes] = []
    run: list[bytes] = []
    size = 0
    for item in items:
        if run and size + len(item) > limit:
            joined.append(b"".join(run))
            run, size = [], 0
        run.append(item)
        size += len(item)
    joined.append(b"".join(run))
    return joined


async def coalescing_writer(transport: MessageTransport, items: list[bytes]) -> None:
    """Write the queued items as few text messages (`coalesce`): SignalR's 0x1E
    framing lets a message carry many records, so a burst costs one frame."""
    for message in coalesce(items):
        await transport.send_text(message)


class TextMessage(bytes):
    """Queued bytes that must go as a text message on a binary connection: the JSON
    handshake request of the MessagePack hub protocol (JS and .NET clients send it as
    text; everything after it is binary)."""

    __slots__ = ()


async def binary_writer(transport: MessageTransport, items: list[bytes]) -> None:
    """Write a burst of a binary hub protocol (MessagePack): every message carries its
    own length prefix, so the items go as few binary messages (`coalesce`),
    except a `TextMessage` (the handshake), which goes alone as text, in order."""
    run: list[bytes] = []
    for item in items:
        if type(item) is TextMessage:
            for message in coalesce(run) if run else ():
                await transport.send(message)
            run = []
            await transport.send_text(item)
        else:
            run.append(item)
    for message in coalesce(run) if run else ():
        await transport.send(message)


class Driver(Generic[EventT]):
    """Runs ``session`` over a transport; see the module docstring.

    Args:
        session: the sans-IO session.
        on_events: called with every non-empty list of events, once per input (a batch
            read, a timer, the end of the stream), in the task that made them; it must
            not block (queue work for another task).
        alive: False once the session is over (closed by either side); the driver then
            writes what is queued and closes the transport.
        flow: optional backpressure: awaited before the next read when it returns an
            awaitable (e.g. while the owner's event queue is full).
        writer: how queued messages are written (the mock's fault plans pass their own).
        write_timeout: seconds one write may take; None waits forever.
        encode_hint: encodes the Close sent before hanging up on a peer that broke the
            protocol, which then goes through ``writer``; None sends it as a JSON
            record in a text message (the JSON hub protocol, the default).
    """

    def __init__(
        self,
        session: DrivenSession[EventT],
        *,
        on_events: Callable[[list[EventT]], None],
        alive: Callable[[], bool],
        flow: Callable[[], Awaitable[None] | None] | None = None,
        writer: Writer = coalescing_writer,
        write_timeout: float | None = DEFAULT_WRITE_TIMEOUT,
        encode_hint: Callable[[Close], bytes] | None = None,
    ) -> None:
        self.session: Final = session
        self._on_events = on_events
        self._alive = alive
        self._flow = flow
        self._writer = writer
        self._write_timeout = math.inf if write_timeout is None else write_timeout
        self._encode_hint = encode_hint
        self._state = DriverState.IDLE
        self._transport: MessageTransport | None = None
        self._queue: list[bytes] = []
        self._writing = False
        """A writer task exists (it is started per burst and ends when all is written,
        so an idle connection has no writer task)."""
        self._drained: anyio.Event | None = None
        self._armed: float | None = None
        self._timer_scope: anyio.CancelScope | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._error: BaseException | None = None
        self.lost_error: VoxtaProtoError | None = None
        """Why the last transport was lost (``TransportError``), when it was."""

    # -- views -----------------------------------------------------------------------

    @property
    def state(self) -> DriverState:
        """The driver's state."""
        return self._state

    @property
    def transport(self) -> MessageTransport | None:
        """The transport being driven, or None."""
        return self._transport

    # -- inputs from the owner -------------------------------------------------------

    def transmit(self) -> None:
        """Hand what the session queued to the writer and re-arm the deadline.

        Call it after every API call that may have queued bytes. Without a running
        transport the bytes stay queued in the session until the next ``run``.
        """
        if self._state is not DriverState.RUNNING:
            return
        data = self.session.data_to_send()
        if data:
            self._queue.extend(data)
            tg = self._tg
            if not self._writing and tg is not None:
                self._writing = True
                tg.start_soon(self._write_loop)
        deadline = self.session.next_deadline()
        armed = self._armed
        if deadline is not None and (armed is None or deadline < armed):
            self._armed = deadline
            timer = self._timer_scope
            if timer is not None:
                timer.deadline = deadline  # moved earlier: the timer wakes then

    async def run(self, transport: MessageTransport, *, reattach: bool = False) -> DriverState:
        """Drive ``transport`` until it ends; returns ``CLOSED`` (closed on purpose or
        the session ended) or ``LOST`` (the transport ended or failed; the session has
        had ``receive_eof`` and its events went to ``on_events``).

        With ``reattach`` the session resumes on ``transport`` (stateful reconnect): what
        was queued while detached is dropped, since the session's ``reattach`` replays
        every unacknowledged message after its Sequence.

        Raises:
            ProtocolError: the peer broke the protocol (its close hint was sent first).
            LocalProtocolError: ``run`` on a driver that is running or closed.
        """
        if self._state in (DriverState.RUNNING, DriverState.CLOSING, DriverState.CLOSED):
            raise LocalProtocolError(f"cannot run a driver that is {self._state.value}")
        now = anyio.current_time()
        if reattach:
            self.session.data_to_send()  # also in the replay buffer: sent after Sequence
            self.session.reattach(now=now)
        self._transport = transport
        self._state = DriverState.RUNNING
        self._queue = []
        self._writing = False
        self._armed = None
        self._error = None
        self.lost_error = None
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self.transmit()
                tg.start_soon(self._timer_loop)
                try:
                    await self._read_loop()  # in this task: one task fewer per connection
                finally:
                    self._tg = None  # closing: transmit() starts no writer any more
                    # The reader's end is the connection's end. Stop the timer (and a
                    # writer) here: a stop asked for later (close() after its drain, a
                    # failed write) finds no task group, and the timer would sleep on.
                    tg.cancel_scope.cancel()
        finally:
            self._tg = None
            self._timer_scope = None
            self._transport = None
            await close_quietly(transport)
        error = self._take_error()
        if error is not None:
            self._state = DriverState.CLOSED
            raise error
        lost = self._lost()
        if lost and self._alive():
            self._deliver(self.session.receive_eof(now=anyio.current_time()))
        self._state = DriverState.LOST if lost else DriverState.CLOSED
        return self._state

    async def close(self, *, timeout: float = 1.0) -> None:  # noqa: ASYNC109
        """Write what the session queued (e.g. its Close), then close the transport;
        ``run`` then returns ``CLOSED``. Safe to call twice, and when not running."""
        if self._state is DriverState.RUNNING:
            self.transmit()
            self._state = DriverState.CLOSING
            with anyio.move_on_after(timeout):
                await self._wait_drained()
            self._stop()
        elif self._state in (DriverState.IDLE, DriverState.LOST):
            self._state = DriverState.CLOSED

    async def drain(self, *, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Transmit, then wait until the writer has written everything queued (e.g.
        before a fault that hangs up right after a given message)."""
        self.transmit()
        with anyio.move_on_after(timeout):
            await self._wait_drained()

    def abort(self) -> None:
        """Drop the transport now, without flushing; ``run`` returns ``LOST``."""
        if self._state is DriverState.RUNNING:
            self._lose(None)

    def _take_error(self) -> BaseException | None:
        error, self._error = self._error, None
        return error

    def _lost(self) -> bool:
        """Read the state afresh (tasks change it; defeats mypy's narrowing)."""
        return self._state is DriverState.LOST

    # -- tasks -----------------------------------------------------------------------

    async def _read_loop(self) -> None:
        transport = self._transport
        assert transport is not None
        session = self.session
        receive_many = transport.receive_many
        current_time = anyio.current_time
        while True:
            flow = self._flow
            if flow is not None:
                waiting = flow()
                if waiting is not None:
                    await waiting
            try:
                batch = await receive_many()
            except TransportError as exc:
                if self._state is DriverState.RUNNING:
                    self._lose(exc)
                return
            now = current_time()
            try:
                events = session.receive_data(
                    batch[0] if len(batch) == 1 else b"".join(batch), now=now)
            except ProtocolError as exc:
                await self._fail(exc, now)
                return
            if events:
                self._on_events(events)
            self.transmit()  # after the owner answered what it could, in the same write
            if not self._alive():
                await self._finish()
                return

    async def _timer_loop(self) -> None:
        session = self.session
        while True:
            deadline = session.next_deadline()
            self._armed = deadline
            with anyio.CancelScope(deadline=math.inf if deadline is None else deadline) as scope:
                self._timer_scope = scope  # transmit() moves its deadline earlier
                await anyio.sleep_forever()
            self._timer_scope = None
            now = anyio.current_time()
            deadline = session.next_deadline()
            if deadline is None or now < deadline:
                continue  # moved later
            events = session.handle_timer(now=now)
            if events:
                self._on_events(events)
            self.transmit()  # after the owner answered what it could, in the same write
            if not self._alive():
                await self._finish()
                return

    async def _write_loop(self) -> None:
        transport = self._transport
        assert transport is not None
        write = self._writer
        try:
            while self._queue:
                items, self._queue = self._queue, []
                try:
                    with anyio.fail_after(self._write_timeout):
                        await write(transport, items)
                except TimeoutError:
                    self._lose(WriteError(f"a write took longer than {self._write_timeout} s"))
                    return
                except TransportError as exc:
                    self._lose(exc)
                    return
        finally:
            self._writing = False
            drained = self._drained
            if drained is not None:
                drained.set()

    # -- endings ---------------------------------------------------------------------

    def _deliver(self, events: Sequence[EventT]) -> None:
        if events:
            self._on_events(list(events))

    async def _wait_drained(self) -> None:
        while (self._queue or self._writing) and self._state in (DriverState.RUNNING,
                                                                 DriverState.CLOSING):
            drained = self._drained
            if drained is None or drained.is_set():  # shared by close() and _finish()
                drained = self._drained = anyio.Event()
            await drained.wait()

    async def _finish(self) -> None:
        """The session ended itself (Close either way, a timeout): write what it
        queued, then close the transport."""
        if self._state is DriverState.RUNNING:
            self._state = DriverState.CLOSING
        with anyio.move_on_after(1.0):  # also when close() is already draining
            await self._wait_drained()
        self._stop()

    async def _fail(self, exc: ProtocolError, now: float) -> None:
        """The peer broke the protocol: send the close hint if there is one, then end."""
        logger.warning("peer broke the protocol: %s", exc)  # its fault, not our bug
        self._error = exc
        hint = getattr(exc, "close_hint", None)
        transport = self._transport
        if isinstance(hint, Close) and transport is not None:
            # Encoded here, not through the session: its state machine is in ERROR now.
            with anyio.move_on_after(1.0):
                try:
                    if self._encode_hint is None:
                        await transport.send_text(encode_record(_encode(hint)))
                    else:
                        await self._writer(transport, [self._encode_hint(hint)])
                except VoxtaProtoError as send_exc:
                    logger.debug("could not send the close hint: %s", send_exc)
        self._stop()

    def _lose(self, exc: VoxtaProtoError | None) -> None:
        if exc is not None:
            logger.debug("transport lost: %s", exc)
        self.lost_error = exc
        self._state = DriverState.LOST
        self._stop()

    def _stop(self) -> None:
        tg = self._tg
        if tg is not None:
            tg.cancel_scope.cancel()


async def close_quietly(transport: MessageTransport) -> None:
    """Close ``transport`` (code 1000) within a second, even when cancelled; a
    failure is only logged: the connection is over either way."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
        try:
            await transport.aclose(1000)
        except VoxtaProtoError as exc:
            logger.debug("closing the transport failed: %s", exc)
