"""The WebSocket transport over anyio, and
[`connect_websocket()`][voxta_proto.transports.websocket.transport.connect_websocket] (client role).

Framing is the engine's (`.engine`); this module adds what a connection needs on
top: reassembly under a size cap, both halves of the close handshake, write timeouts,
and [`map_exceptions()`][voxta_proto.transports.base.map_exceptions] at every I/O call.

Reading and writing are apart. There is no background task: whoever calls
[`WebSocketTransport.receive_many()`][voxta_proto.transports.websocket.transport.WebSocketTransport.receive_many]
drives the connection, one socket read per call,
and every message that read completed comes back at once. The reader never waits on a
write: control frames it owes the peer (pongs, close replies) are queued and written by
the reader only when no write is in progress, else by the writer after its own data.
Every write has ``write_timeout``; one that does not finish aborts the connection.
"""

from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import dataclass
from typing import Final

import anyio
from anyio.abc import ByteStream

from voxta_proto.errors import (
    ConnectError,
    LocalProtocolError,
    NegotiationError,
    ReadError,
    TransportClosed,
    TransportError,
    WriteAborted,
    WriteError,
)
from voxta_proto.hub.negotiate import build_websocket_url
from voxta_proto.transports._net import READ_SIZE, open_connection, parse_url
from voxta_proto.transports.base import (
    DEFAULT_MAX_MESSAGE_SIZE,
    ConnectOptions,
    _translate,
    map_exceptions,
)
from voxta_proto.transports.http import USER_AGENT
from voxta_proto.transports.websocket.engine import (
    CloseReceived,
    EngineEvent,
    MessageData,
    PingReceived,
    PongReceived,
    ProtocolFailure,
    WebSocketEngine,
    check_engine,
    create_engine,
)
from voxta_proto.transports.websocket.handshake import client_handshake

__all__ = [
    "CLOSE_TIMEOUT",
    "WRITE_TIMEOUT",
    "WebSocketTransport",
    "connect_websocket",
]

CLOSE_TIMEOUT: Final = 5.0
"""Seconds to wait for the peer's close reply before dropping the TCP connection."""

WRITE_TIMEOUT: Final = 10.0
"""Seconds one write may take; a peer that stops reading for longer is dropped."""

_WS_SCHEMES: Final = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}
_DEFAULT_OPTIONS: Final = ConnectOptions()
_LOCAL_ONLY_CODES: Final = frozenset({1004, 1005, 1006, 1015})
_HANDSHAKE_HEADERS: Final = frozenset(
    {"upgrade", "connection", "sec-websocket-key", "sec-websocket-version"}
)


def _check_close_code(code: int) -> None:
    """Refuse codes that must never go on the wire (RFC 6455 §7.4)."""
    if not (1000 <= code <= 1014 or 3000 <= code <= 4999) or code in _LOCAL_ONLY_CODES:
        raise ValueError(f"{code} is not a close code that may be sent")


def _check_timeout(name: str, value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{name} must be > 0 or None, got {value}")


@dataclass(slots=True)
class _Closed:
    code: int
    reason: str
    message: str
    in_write: bool = False  # a write was aborted: report it as WriteAborted


@dataclass(slots=True)
class _PingWaiter:
    event: anyio.Event
    answered: bool = False


class _WriteLock:
    """A FIFO lock for writers whose uncontended acquire costs no event-loop turn
    (anyio's ``Lock`` takes one each time: ~8 µs per message on a small box)."""

    def __init__(self) -> None:
        self.locked = False
        self._waiters: deque[anyio.Event] = deque()

    async def __aenter__(self) -> None:
        if not self.locked:
            self.locked = True
            return
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self._release()  # handed over just as we were cancelled: pass it on
            else:
                self._waiters.remove(event)
            raise
        # ownership was handed over by _release(): ``locked`` stayed True

    async def __aexit__(self, *exc_info: object) -> None:
        self._release()

    def _release(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()
        else:
            self.locked = False


class WebSocketTransport:
    """A WebSocket connection carrying whole messages (``str`` = text, ``bytes`` = binary).

    Made by [`connect_websocket()`][voxta_proto.transports.websocket.transport.connect_websocket]
    (client) or handed to a server handler. Writers are
    serialized by a lock the reader never takes while a write is in progress;
    ``receive()``/``receive_many()`` are for one task at a time and are cancel-safe.
    Pings are answered while someone is reading.

    Attributes:
        handshake_headers: headers of the other side's handshake message (the 101
            response for a client), names in lower case.
        engine: the name of the WebSocket engine (``"wsproto"`` or ``"websockets"``).
    """

    def __init__(
        self,
        stream: ByteStream,
        engine: WebSocketEngine,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        close_timeout: float = CLOSE_TIMEOUT,
        write_timeout: float | None = WRITE_TIMEOUT,
        description: str = "WebSocket",
        handshake_headers: tuple[tuple[str, str], ...] | list[tuple[str, str]] = (),
        initial_data: bytes = b"",
    ) -> None:
        """Wrap an upgraded stream and its engine; use
        [`connect_websocket()`][voxta_proto.transports.websocket.transport.connect_websocket] or
        [`serve()`][voxta_proto.transports.websocket.server.serve] instead of calling this.

        ``initial_data`` is what came after the upgrade in the same read (frames the
        peer sent right away)."""
        _check_timeout("write_timeout", write_timeout)
        self._stream = stream
        self._engine = engine
        self.engine = engine.name
        self._max_message_size = max_message_size
        self._close_timeout = close_timeout
        self._write_timeout = write_timeout
        self._description = description
        self.handshake_headers = tuple(handshake_headers)

        self._send_lock = _WriteLock()
        self._ready: deque[tuple[bytes, bool]] = deque()
        self._parts: list[bytes] = []
        self._partial_size = 0
        self._discarding = False  # closing: incoming messages are dropped
        self._control = bytearray()  # pongs and close frames owed to the peer
        self._close_sent = False
        self._failure: tuple[int, str, TransportError] | None = None
        self._closed: _Closed | None = None
        self._stream_closed = False
        self._receiving = False
        self._close_done = anyio.Event()
        self._pings: dict[bytes, _PingWaiter] = {}
        self.pings_received = 0
        """WebSocket pings from the peer so far: a sign of life that carries no message
        (a server's silent-client timeout can count it, see ``HubConnection.peer_alive``)."""
        if initial_data:
            self._feed(engine.receive_data(initial_data))

    def __repr__(self) -> str:
        state = f"closed {self._closed.code}" if self._closed else "open"
        return f"<WebSocketTransport {self._description} {self.engine} {state}>"

    async def __aenter__(self) -> WebSocketTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def close_code(self) -> int | None:
        """The close code (ours or the peer's, whichever came first), ``None`` while open."""
        return self._closed.code if self._closed else None

    @property
    def close_reason(self) -> str:
        """The close reason matching
        [`close_code`][voxta_proto.transports.websocket.transport.WebSocketTransport.close_code]."""
        return self._closed.reason if self._closed else ""

    # ---------------------------------------------------------------- sans-IO bookkeeping

    def _record_closed(self, code: int, reason: str, message: str, *,
                       in_write: bool = False) -> None:
        """Remember how the connection ended (first cause wins) and wake ping waiters."""
        if self._closed is None:
            self._closed = _Closed(code, reason, message, in_write)
        for waiter in self._pings.values():
            waiter.event.set()
        self._pings.clear()

    def _closed_error(self) -> TransportClosed:
        closed = self._closed
        if closed is None and self._failure is not None:  # closing with a failure code
            code, reason, error = self._failure
            closed = _Closed(code, reason, f"closing with code {code}: {error}")
        if closed is None:
            closed = _Closed(1006, "", "the connection is closed")
        kind = WriteAborted if closed.in_write else TransportClosed
        return kind(f"{self._description}: {closed.message}", code=closed.code,
                    reason=closed.reason)

    def _fail(self, code: int, reason: str, error: TransportError) -> None:
        """Our close frame (``code``) is queued: drop what is partial, raise ``error``
        from the reader once the messages before it are out."""
        if self._failure is None and self._closed is None:
            self._failure = (code, reason, error)
        self._discarding = True
        self._parts.clear()
        self._partial_size = 0

    def _feed(self, events: list[EngineEvent]) -> None:
        """Apply the engine's events; synchronous, so never interrupted."""
        ready = self._ready
        for event in events:
            if type(event) is MessageData:
                if self._discarding:
                    continue
                if event.finished and not self._parts:
                    if len(event.data) > self._max_message_size:
                        self._too_big()
                    else:
                        ready.append((event.data, event.is_text))
                else:
                    self._on_fragment(event)
            elif type(event) is PingReceived:
                self.pings_received += 1
            elif type(event) is PongReceived:
                waiter = self._pings.pop(event.payload, None)
                if waiter is not None:
                    waiter.answered = True
                    waiter.event.set()
            elif type(event) is CloseReceived:
                self._on_close(event)
            elif type(event) is ProtocolFailure:
                self._on_protocol_failure(event)
        out = self._engine.data_to_send()
        if out:
            self._control += out

    def _on_fragment(self, event: MessageData) -> None:
        self._partial_size += len(event.data)
        if self._partial_size > self._max_message_size:
            self._too_big()
            return
        self._parts.append(event.data)
        if event.finished:
            self._ready.append((b"".join(self._parts), event.is_text))
            self._parts.clear()
            self._partial_size = 0

    def _too_big(self) -> None:
        if not self._close_sent:
            self._close_sent = True
            self._control += self._engine.send_close(1009, "message too big")
        self._fail(1009, "message too big", ReadError(
            f"{self._description}: incoming message is over the "
            f"{self._max_message_size}-byte limit"
        ))

    def _on_close(self, event: CloseReceived) -> None:
        code, reason = event.code, event.reason
        if self._close_sent:  # the reply to our close
            self._record_closed(code, reason, f"closed with code {code}")
        else:  # the peer started the close handshake; the engine queued our reply
            self._close_sent = True
            self._record_closed(code, reason, f"closed by the peer with code {code}"
                                + (f" ({reason})" if reason else ""))
        self._discarding = True
        self._close_done.set()

    def _on_protocol_failure(self, event: ProtocolFailure) -> None:
        code, reason = event.code, event.reason
        if self._close_sent:  # garbage while waiting for our close reply: stop waiting
            self._record_closed(code, reason, f"closed after a protocol error ({reason})")
            self._discarding = True
            self._close_done.set()
            return
        self._close_sent = True  # the engine queued the close frame
        if code == 1009:
            error = ReadError(f"{self._description}: incoming message is over the "
                              f"{self._max_message_size}-byte limit")
        else:
            error = ReadError(f"{self._description}: the peer broke the WebSocket protocol: "
                              f"{reason} (closing with {code})")
        self._fail(code, reason, error)

    # ------------------------------------------------------------------------------ I/O

    async def _write(self, data: bytes, *, what: str) -> None:
        """Write with ``write_timeout``, holding the send lock. A write that fails, times
        out or is cancelled may leave half a frame on the wire, so it ends the connection."""
        try:
            with map_exceptions(WriteError, context=f"{self._description}: sending {what}"):
                if self._write_timeout is None:
                    await self._stream.send(data)
                else:
                    with anyio.fail_after(self._write_timeout):
                        await self._stream.send(data)
        except BaseException as exc:
            detail = ("the peer did not read it within the write timeout"
                      if isinstance(exc, TimeoutError) else "the write failed or was cancelled")
            self._record_closed(1006, "", f"the connection was aborted while sending {what} "
                                f"({detail})", in_write=True)
            await self._close_stream()
            raise

    async def _send_locked(self, data: bytes, *, what: str) -> None:
        """Write ``data`` and any control frames queued before or during the write."""
        if self._control:
            data = bytes(self._control) + data
            self._control.clear()
        await self._write(data, what=what)
        while self._control and not self._stream_closed:
            pending = bytes(self._control)
            self._control.clear()
            await self._write(pending, what="a control frame")

    async def _flush_control(self) -> None:
        """The reader's turn to write owed control frames: only when no write is in
        progress (that writer sends them after its data). Shielded, so cancelling the
        reader never leaves half a frame; bounded by ``write_timeout``."""
        if self._send_lock.locked:
            return
        async with self._send_lock:
            if not self._control or self._stream_closed:
                self._control.clear()
                return
            data = bytes(self._control)
            self._control.clear()
            # A failure is recorded as closed; the caller raises TransportClosed.
            with anyio.CancelScope(shield=True), contextlib.suppress(TransportError):
                await self._write(data, what="a control frame")

    async def _read_more(self) -> None:
        """One socket read into the engine."""
        try:
            data = await self._stream.receive(READ_SIZE)
        except anyio.EndOfStream:
            self._record_closed(1006, "", "the connection was lost without a close frame")
            await self._close_stream()
            return
        except anyio.ClosedResourceError:
            # aclose() or an aborted write in another task closed the stream under us.
            self._record_closed(1006, "", "the connection is closed")
            self._stream_closed = True
            self._close_done.set()
            return
        except Exception as exc:
            mapped = _translate(exc, ReadError, f"{self._description}: receive") or exc
            self._record_closed(1006, "", f"the connection was lost ({mapped})")
            await self._close_stream()
            raise mapped from exc
        self._feed(self._engine.receive_data(data))

    async def _close_stream(self) -> None:
        if not self._stream_closed:
            self._stream_closed = True
            self._close_done.set()
            await anyio.aclose_forcefully(self._stream)

    async def _drain_until_closed(self) -> None:
        """Act as the reader until the peer answers our close (messages are dropped)."""
        while not self._close_done.is_set():  # set on close reply, stream closed, give-up
            if self._control:
                await self._flush_control()
            await self._read_more()
        if self._control:
            await self._flush_control()

    async def _handle_failure(self) -> None:
        """Send the queued close, wait briefly for the reply, drop TCP, raise (once)."""
        assert self._failure is not None
        code, reason, error = self._failure
        self._failure = None
        message = f"closed with code {code}: {error}"
        self._record_closed(code, reason, message)
        try:
            with anyio.move_on_after(self._close_timeout):
                await self._drain_until_closed()
        except TransportError:
            pass
        finally:
            await self._close_stream()
        raise error

    def _check_can_send(self) -> None:
        if (self._closed is not None or self._failure is not None or self._stream_closed
                or self._close_sent):
            raise self._closed_error()

    async def _fill(self) -> None:
        """Read until at least one message is ready, or raise how the connection ended."""
        if self._receiving:
            raise LocalProtocolError("receive() is already running in another task")
        self._receiving = True
        try:
            while True:
                if self._control:
                    await self._flush_control()
                if self._ready:
                    return
                if self._failure is not None:
                    await self._handle_failure()
                if self._closed is not None or self._stream_closed:
                    if self._close_sent and not self._close_done.is_set():
                        # Our close is out (aclose elsewhere): wait for the reply so the
                        # TCP close is clean.
                        with anyio.move_on_after(self._close_timeout):
                            await self._drain_until_closed()
                    elif self._control and not self._stream_closed:
                        with anyio.move_on_after(self._close_timeout):  # our close reply
                            async with self._send_lock:
                                await self._send_locked(b"", what="a close reply")
                    await self._close_stream()
                    raise self._closed_error()
                await self._read_more()
        finally:
            self._receiving = False

    # ------------------------------------------------------------------------ public API

    async def send(self, message: str | bytes) -> None:
        """Send one message: ``str`` as a text frame, bytes as a binary frame.

        A send that fails, takes longer than ``write_timeout`` or is cancelled may leave
        part of a frame written, so it aborts the connection (later calls raise
        ``TransportClosed`` with code 1006).

        Raises:
            TransportClosed: the connection is closed or closing.
            TransportTimeout: the peer did not take the data within ``write_timeout``.
            WriteError: the write failed.
            TypeError: ``message`` is neither ``str`` nor bytes-like.
            ValueError: ``message`` is a ``str`` that is not valid Unicode (lone
                surrogates); nothing was sent.
        """
        if isinstance(message, str):
            await self._send_text(message)
        elif isinstance(message, bytes | bytearray | memoryview):
            async with self._send_lock:
                self._check_can_send()
                frame = self._engine.send_binary(bytes(message))
                await self._send_locked(frame, what="a message")
        else:
            raise TypeError(f"message must be str or bytes, not {type(message).__name__}")

    async def send_text(self, data: bytes) -> None:
        """Send one text message given as UTF-8 bytes (see ``MessageTransport``).

        Raises:
            ValueError: ``data`` is not valid UTF-8; nothing was sent.
            TransportClosed, TransportTimeout, WriteError: as
                [`send()`][voxta_proto.transports.websocket.transport.WebSocketTransport.send].
        """
        await self._send_text(data)

    async def _send_text(self, data: bytes | str) -> None:
        async with self._send_lock:
            self._check_can_send()
            try:
                frame = self._engine.send_text(data)
            except UnicodeError as exc:
                what = "a str with lone surrogates" if isinstance(data, str) else "not UTF-8"
                raise ValueError(f"text message is {what}: {exc}") from None
            await self._send_locked(frame, what="a message")

    async def receive(self) -> str | bytes:
        """Return the next complete message (fragments reassembled).

        Messages that arrived before the peer's close frame are returned first.

        Raises:
            TransportClosed: the connection ended; ``code``/``reason`` come from the
                close frame (1006 when TCP ended without one).
            ReadError: the socket failed, the peer broke the protocol, or a message was
                over ``max_message_size`` (we close with 1002/1007/1009 first).
            LocalProtocolError: another task is already receiving.
        """
        if not self._ready:
            await self._fill()
        data, is_text = self._ready.popleft()
        return data.decode("utf-8") if is_text else data

    async def receive_many(self) -> list[bytes]:
        """Wait for at least one complete message, then return every message that is
        ready (all that the same socket read completed), text as UTF-8 bytes; see
        ``MessageTransport``. One read, no lock, no per-message await.

        Raises:
            TransportClosed, ReadError, LocalProtocolError: as
                [`receive()`][voxta_proto.transports.websocket.transport.WebSocketTransport.receive].
        """
        ready = self._ready
        if not ready:
            await self._fill()
        batch = [data for data, _ in ready]
        ready.clear()
        return batch

    async def ping(self, payload: bytes = b"") -> None:
        """Send a Ping and wait for the matching Pong.

        The Pong is only seen while some task is receiving.

        Raises:
            TransportClosed: the connection closed before the Pong came.
            ValueError: a ping with the same payload is already waiting.
        """
        payload = bytes(payload)
        if payload in self._pings:
            raise ValueError("a ping with this payload is already waiting for its pong")
        waiter = _PingWaiter(anyio.Event())
        async with self._send_lock:
            self._check_can_send()
            self._pings[payload] = waiter
            await self._send_locked(self._engine.send_ping(payload), what="a ping")
        try:
            await waiter.event.wait()
        finally:
            if self._pings.get(payload) is waiter:
                del self._pings[payload]
        if not waiter.answered:
            raise self._closed_error()

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close: send a close frame, wait up to ``close_timeout`` for the reply, drop TCP.

        Safe to call more than once and from another task than the reader; a concurrent
        ``receive()`` then raises ``TransportClosed``. Returns within ``close_timeout``
        even while another task's write is stalled (that write then fails). When
        cancelled, the socket is still closed (without the handshake).

        Raises:
            ValueError: ``code`` may not be sent (1004-1006, 1015, outside 1000-4999).
        """
        _check_close_code(code)
        if self._stream_closed:
            return
        try:
            with anyio.move_on_after(self._close_timeout):
                async with self._send_lock:
                    if not self._close_sent and not self._stream_closed:
                        self._close_sent = True
                        self._record_closed(code, reason, f"closed locally with code {code}"
                                            + (f" ({reason})" if reason else ""))
                        self._discarding = True
                        await self._send_locked(self._engine.send_close(code, reason),
                                                what="close")
                if self._receiving:
                    await self._close_done.wait()
                else:
                    self._receiving = True
                    try:
                        await self._drain_until_closed()
                    finally:
                        self._receiving = False
        except TransportError:
            pass  # the peer is gone already; nothing more to say to it
        finally:
            self._record_closed(code, reason, f"closed locally with code {code}")
            self._discarding = True
            self._ready.clear()
            await self._close_stream()


# --------------------------------------------------------------------------------- client


def _upgrade_headers(options: ConnectOptions) -> list[tuple[str, str]]:
    """Our defaults plus the caller's headers; ``Host`` is handled by the caller."""
    extra = [(name, value) for name, value in options.header_items() if name.lower() != "host"]
    names = {name.lower() for name, _ in extra}
    reserved = names & (_HANDSHAKE_HEADERS | {"sec-websocket-extensions"})
    if reserved:
        raise ValueError(f"the WebSocket handshake sets {', '.join(sorted(reserved))} itself")
    headers = [] if "user-agent" in names else [("User-Agent", USER_AGENT)]
    headers += extra
    if options.access_token and not options.access_token_in_query and "authorization" not in names:
        headers.append(("Authorization", f"Bearer {options.access_token}"))
    cookies = options.cookie_items()
    if cookies and "cookie" not in names:
        headers.append(("Cookie", "; ".join(f"{name}={value}" for name, value in cookies)))
    return headers


async def connect_websocket(
    url: str,
    *,
    options: ConnectOptions = _DEFAULT_OPTIONS,
    websocket_engine: str = "wsproto",
    write_timeout: float | None = WRITE_TIMEOUT,
    close_timeout: float = CLOSE_TIMEOUT,
) -> WebSocketTransport:
    """Open a WebSocket (client role) to a ``ws://`` or ``wss://`` URL.

    The upgrade request carries ``options.headers``, a ``User-Agent``, the bearer
    token (``Authorization`` header, or ``access_token=`` in the query when
    ``options.access_token_in_query``) and ``options.cookies``. TLS, proxy and
    timeouts follow ``options``; ``http``/``https`` URLs are accepted as ``ws``/``wss``.

    Args:
        url: the WebSocket URL, e.g. ``NegotiateOutcome.websocket_url()``.
        options: connection options.
        websocket_engine: ``"wsproto"`` (default) or ``"websockets"`` (needs the
            ``voxta-proto[websockets]`` extra; text stays bytes both ways).
        write_timeout: seconds one write may take before the connection is aborted
            (``None``: no limit).
        close_timeout: seconds
            [`WebSocketTransport.aclose()`][voxta_proto.transports.websocket.transport.WebSocketTransport.aclose]
            waits for the close reply.

    Returns:
        The open transport.

    Raises:
        ValueError: the URL or a header is malformed, a header the transport sets
            itself (framing, handshake) was given, or the engine name is unknown.
        ImportError: the ``websockets`` engine was asked for and is not installed.
        ConnectError: refused, DNS failure, proxy or TLS failure, or a broken handshake.
        HandshakeRejected: the server answered the upgrade with a non-101 status
            (``status_code`` set, the body text in the message).
        TransportTimeout: ``options.connect_timeout`` ran out.
    """
    check_engine(websocket_engine)
    _check_timeout("write_timeout", write_timeout)
    if options.access_token and options.access_token_in_query:
        try:
            url = build_websocket_url(url, connection_token=None, access_token=options.access_token)
        except NegotiationError as exc:
            raise ValueError(str(exc)) from None
    endpoint = parse_url(url, _WS_SCHEMES)
    headers = _upgrade_headers(options)
    host = next(
        (value for name, value in options.header_items() if name.lower() == "host"),
        endpoint.host_header,
    )
    context = f"opening WebSocket {endpoint.display}"
    with map_exceptions(ConnectError, context=context), anyio.fail_after(options.connect_timeout):
        stream = await open_connection(endpoint, options)
        try:
            accepted, trailing = await client_handshake(stream, endpoint, host, headers)
        except BaseException:
            await anyio.aclose_forcefully(stream)
            raise
    engine = create_engine(websocket_engine, client=True,
                           max_message_size=options.max_message_size)
    return WebSocketTransport(
        stream,
        engine,
        max_message_size=options.max_message_size,
        close_timeout=close_timeout,
        write_timeout=write_timeout,
        description=f"WebSocket {endpoint.display}",
        handshake_headers=accepted,
        initial_data=trailing,
    )

