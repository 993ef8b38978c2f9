"""WebSocket over anyio with wsproto: the client connect, the transport, and a small
HTTP/WebSocket server for the mock.

Imports anyio, h11 and wsproto; the sans-IO core must never import this module.

wsproto does the framing and nothing else, so this module adds: reassembly of
fragmented messages under a size cap (wsproto has none), answering pings (wsproto does
not), both halves of the close handshake, a lock around writes, and
:func:`~voxta_proto.transports.base.map_exceptions` at every I/O call. There is no
background reader task: whoever calls :meth:`WebSocketTransport.receive` drives the
connection, and all partial state lives on the object, so cancelling ``receive()``
loses nothing.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

import anyio
import h11
from anyio.abc import ByteStream, Listener, SocketAttribute, TaskStatus
from anyio.streams.tls import TLSStream
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError as WsLocalProtocolError
from wsproto.utilities import RemoteProtocolError as WsRemoteProtocolError

from voxta_proto.errors import (
    ConnectError,
    HandshakeRejected,
    LocalProtocolError,
    NegotiationError,
    ReadError,
    TransportClosed,
    TransportError,
    WriteError,
)
from voxta_proto.hub.negotiate import DEFAULT_MAX_BODY_SIZE, build_websocket_url
from voxta_proto.transports._net import (
    READ_SIZE,
    Endpoint,
    encode_headers,
    open_connection,
    parse_url,
)
from voxta_proto.transports.base import (
    DEFAULT_MAX_MESSAGE_SIZE,
    ConnectOptions,
    _translate,
    map_exceptions,
)
from voxta_proto.transports.http import MAX_HEADER_BYTES, USER_AGENT, HttpRequest, HttpResponse

__all__ = [
    "CLOSE_TIMEOUT",
    "HttpApp",
    "ServerAddress",
    "WebSocketHandler",
    "WebSocketTransport",
    "WebSocketUpgrade",
    "connect_websocket",
    "serve",
    "serve_listener",
]

logger = logging.getLogger("voxta_proto.transports")

CLOSE_TIMEOUT: Final = 5.0
"""Seconds to wait for the peer's close reply (and to write control frames) before
dropping the TCP connection."""

TLS_HANDSHAKE_TIMEOUT: Final = 10.0
"""Seconds the server gives a client to finish the TLS handshake."""

_WS_SCHEMES: Final = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}
_MAX_REJECT_BODY: Final = 64 * 1024
_DEFAULT_OPTIONS: Final = ConnectOptions()
_LOCAL_ONLY_CODES: Final = frozenset({1004, 1005, 1006, 1015})
_HANDSHAKE_HEADERS: Final = frozenset(
    {"upgrade", "connection", "sec-websocket-key", "sec-websocket-version"}
)
# The client proposed a protocol switch (Upgrade header); h11 does not re-export it typed.
_MIGHT_SWITCH_PROTOCOL: Final = h11.MIGHT_SWITCH_PROTOCOL  # type: ignore[attr-defined]


def _check_close_code(code: int) -> None:
    """Refuse codes that must never go on the wire (RFC 6455 §7.4)."""
    if not (1000 <= code <= 1014 or 3000 <= code <= 4999) or code in _LOCAL_ONLY_CODES:
        raise ValueError(f"{code} is not a close code that may be sent")


@dataclass(slots=True)
class _Closed:
    code: int
    reason: str
    message: str


@dataclass(slots=True)
class _PingWaiter:
    event: anyio.Event
    answered: bool = False


# ------------------------------------------------------------------------------ transport


class WebSocketTransport:
    """A WebSocket connection carrying whole messages (``str`` = text, ``bytes`` = binary).

    Made by :func:`connect_websocket` (client) or handed to a server handler. Sends are
    serialized by a lock; ``receive()`` is for one task at a time and is cancel-safe.
    Pings are answered while someone is in ``receive()``; with nobody reading, no
    control frames are processed (as with trio-websocket's backpressure, the peer then
    sees us as slow).

    Attributes:
        handshake_headers: headers of the other side's handshake message (the 101
            response for a client), names in lower case.
    """

    def __init__(
        self,
        stream: ByteStream,
        connection: WSConnection,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        close_timeout: float = CLOSE_TIMEOUT,
        description: str = "WebSocket",
        handshake_headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Wrap an open wsproto connection; use :func:`connect_websocket` or
        :func:`serve` instead of calling this directly."""
        if connection.state is not ConnectionState.OPEN:
            raise ValueError("the WebSocket handshake has not completed")
        self._stream = stream
        self._ws = connection
        self._max_message_size = max_message_size
        self._close_timeout = close_timeout
        self._description = description
        self.handshake_headers = tuple(handshake_headers)

        self._send_lock = anyio.Lock()
        self._ready: deque[str | bytes] = deque()
        self._text_parts: list[str] = []
        self._binary_parts: list[bytes] = []
        self._partial_size = 0
        self._discarding = False  # closing: incoming messages are dropped
        self._outgoing = bytearray()  # control frames (pongs, close replies) to write
        self._failure: tuple[int, str, TransportError] | None = None
        self._closed: _Closed | None = None
        self._stream_closed = False
        self._receiving = False
        self._close_done = anyio.Event()
        self._pings: dict[bytes, _PingWaiter] = {}
        self.pings_received = 0
        """WebSocket pings from the peer so far: a sign of life that carries no message
        (a server's silent-client timeout can count it, see ``HubConnection.peer_alive``)."""

    def __repr__(self) -> str:
        state = f"closed {self._closed.code}" if self._closed else self._ws.state.name.lower()
        return f"<WebSocketTransport {self._description} {state}>"

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
        """The close reason matching :attr:`close_code`."""
        return self._closed.reason if self._closed else ""

    # ---------------------------------------------------------------- sans-IO bookkeeping

    def _record_closed(self, code: int, reason: str, message: str) -> None:
        """Remember how the connection ended (first cause wins) and wake ping waiters."""
        if self._closed is None:
            self._closed = _Closed(code, reason, message)
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
        return TransportClosed(
            f"{self._description}: {closed.message}", code=closed.code, reason=closed.reason
        )

    def _fail(self, code: int, reason: str, error: TransportError) -> None:
        """Schedule closing with ``code`` and raising ``error`` from ``receive()``."""
        if self._failure is None and self._closed is None:
            self._failure = (code, reason, error)
        self._discarding = True
        self._text_parts.clear()
        self._binary_parts.clear()
        self._partial_size = 0

    def _process_events(self) -> None:
        """Drain wsproto's events into our state; synchronous, so never interrupted."""
        for event in self._ws.events():
            if isinstance(event, TextMessage | BytesMessage):
                self._on_data(event)
            elif isinstance(event, Ping):
                self.pings_received += 1
                if self._ws.state is ConnectionState.OPEN:
                    self._outgoing += self._ws.send(event.response())
            elif isinstance(event, Pong):
                waiter = self._pings.pop(bytes(event.payload), None)
                if waiter is not None:
                    waiter.answered = True
                    waiter.event.set()
            elif isinstance(event, CloseConnection):
                self._on_close(event)

    def _on_data(self, event: TextMessage | BytesMessage) -> None:
        if self._discarding:
            return
        data = event.data
        if isinstance(data, str):
            size = len(data) if data.isascii() else len(data.encode("utf-8"))
        else:
            size = len(data)
        self._partial_size += size
        if self._partial_size > self._max_message_size:
            self._fail(
                1009,
                "message too big",
                ReadError(
                    f"{self._description}: incoming message is over the "
                    f"{self._max_message_size}-byte limit"
                ),
            )
            return
        if isinstance(event, TextMessage):
            self._text_parts.append(event.data)
        else:
            self._binary_parts.append(bytes(event.data))
        if event.message_finished:
            message: str | bytes
            if isinstance(event, TextMessage):
                message = "".join(self._text_parts)
            else:
                message = b"".join(self._binary_parts)
            self._text_parts.clear()
            self._binary_parts.clear()
            self._partial_size = 0
            self._ready.append(message)

    def _on_close(self, event: CloseConnection) -> None:
        state = self._ws.state
        code, reason = event.code, event.reason or ""
        if state is ConnectionState.REMOTE_CLOSING:
            # The peer started the close handshake: answer with the same code.
            self._outgoing += self._ws.send(event.response())
            self._record_closed(code, reason, f"closed by the peer with code {code}"
                                + (f" ({reason})" if reason else ""))
            self._discarding = True
        elif state is ConnectionState.CLOSED:
            # Either the reply to our close, or TCP EOF (wsproto reports 1006).
            self._record_closed(code, reason, "the connection was lost without a close frame"
                                if code == 1006 else f"closed with code {code}")
        elif state is ConnectionState.OPEN:
            # wsproto reports a frame the peer got wrong as a close event without
            # changing state: we close with that code ourselves.
            self._fail(code, reason, ReadError(
                f"{self._description}: the peer broke the WebSocket protocol: {reason} "
                f"(closing with {code})"
            ))
        else:  # LOCAL_CLOSING: garbage while waiting for the close reply; stop waiting
            self._record_closed(code, reason, f"closed after a protocol error ({reason})")
            self._discarding = True
            self._close_done.set()
        if self._ws.state is ConnectionState.CLOSED:
            self._close_done.set()

    # ------------------------------------------------------------------------------ I/O

    async def _write(self, data: bytes, *, what: str) -> None:
        """Write while holding the send lock. A failed or cancelled write may leave half
        a frame on the wire, so it ends the connection."""
        try:
            with map_exceptions(WriteError, context=f"{self._description}: {what}"):
                await self._stream.send(data)
        except BaseException:
            self._record_closed(1006, "", f"the connection was aborted while sending {what}")
            await self._close_stream()
            raise

    async def _flush_control(self) -> None:
        """Write queued pongs / close replies. Shielded (with a deadline) so cancelling
        ``receive()`` never leaves half a control frame behind."""
        async with self._send_lock:
            if not self._outgoing or self._stream_closed:
                self._outgoing.clear()
                return
            data = bytes(self._outgoing)
            self._outgoing.clear()
            with anyio.CancelScope(shield=True) as scope:
                scope.deadline = anyio.current_time() + self._close_timeout
                try:
                    await self._write(data, what="a control frame")
                except TransportError:
                    return  # recorded as closed; the caller raises TransportClosed
            if scope.cancelled_caught:
                self._record_closed(1006, "", "the peer stopped reading (control frame timeout)")
                await self._close_stream()

    async def _read_more(self) -> None:
        """Read one chunk from the socket into wsproto (``None`` = EOF)."""
        data: bytes | None
        try:
            data = await self._stream.receive(READ_SIZE)
        except anyio.EndOfStream:
            data = None
        except anyio.ClosedResourceError:
            # aclose() in another task closed the stream under us.
            self._record_closed(1006, "", "the connection is closed")
            self._stream_closed = True
            self._close_done.set()
            return
        except Exception as exc:
            mapped = _translate(exc, ReadError, f"{self._description}: receive") or exc
            self._record_closed(1006, "", f"the connection was lost ({mapped})")
            await self._close_stream()
            raise mapped from exc
        if self._ws.state in (ConnectionState.OPEN, ConnectionState.LOCAL_CLOSING):
            self._ws.receive_data(data)
        elif data is None:
            self._record_closed(1006, "", "the connection was lost without a close frame")
            await self._close_stream()

    async def _close_stream(self) -> None:
        if not self._stream_closed:
            self._stream_closed = True
            self._close_done.set()
            await anyio.aclose_forcefully(self._stream)

    async def _drain_until_closed(self) -> None:
        """Act as the reader until the peer answers our close (messages are dropped)."""
        while not self._close_done.is_set():  # set on CLOSED, stream closed or give-up
            await self._read_more()
            self._process_events()
            if self._outgoing:
                await self._flush_control()

    async def _send_close(self, code: int, reason: str, message: str) -> None:
        async with self._send_lock:
            if self._ws.state is ConnectionState.OPEN and not self._stream_closed:
                self._record_closed(code, reason, message)
                self._discarding = True
                await self._write(self._ws.send(CloseConnection(code, reason)), what="close")

    async def _handle_failure(self) -> None:
        """Close with the failure's code, then raise its error (only once)."""
        assert self._failure is not None
        code, reason, error = self._failure
        self._failure = None
        try:
            with anyio.move_on_after(self._close_timeout):
                await self._send_close(code, reason, f"closed with code {code}: {error}")
                await self._drain_until_closed()
        except TransportError:
            pass
        finally:
            self._record_closed(code, reason, f"closed with code {code}: {error}")
            await self._close_stream()
        raise error

    def _check_can_send(self) -> None:
        if self._closed is not None or self._failure is not None or self._stream_closed:
            raise self._closed_error()
        if self._ws.state is not ConnectionState.OPEN:
            raise self._closed_error()

    # ------------------------------------------------------------------------ public API

    async def send(self, message: str | bytes) -> None:
        """Send one message: ``str`` as a text frame, bytes as a binary frame.

        Cancelling a send may leave part of a frame written, so it aborts the
        connection (later calls raise ``TransportClosed`` with code 1006).

        Raises:
            TransportClosed: the connection is closed or closing.
            WriteError: the write failed.
            TypeError: ``message`` is neither ``str`` nor bytes-like.
            ValueError: ``message`` is a ``str`` that is not valid Unicode (lone
                surrogates); nothing was sent.
        """
        event: TextMessage | BytesMessage
        if isinstance(message, str):
            event = TextMessage(data=message)
        elif isinstance(message, bytes | bytearray | memoryview):
            event = BytesMessage(data=bytes(message))
        else:
            raise TypeError(f"message must be str or bytes, not {type(message).__name__}")
        async with self._send_lock:
            self._check_can_send()
            await self._write(self._ws.send(event), what="a message")

    async def send_text(self, data: bytes) -> None:
        """Send one text message given as UTF-8 bytes (see ``MessageTransport``)."""
        await self.send(data.decode("utf-8"))

    async def receive(self) -> str | bytes:
        """Return the next complete message (fragments reassembled).

        Messages that arrived before the peer's close frame are returned first.

        Raises:
            TransportClosed: the connection ended; ``code``/``reason`` come from the
                close frame (1006 when TCP ended without one).
            ReadError: the socket failed, the peer broke the protocol, or a message was
                over ``max_message_size`` (we close with 1002/1007/1009 first).
            LocalProtocolError: another task is already in ``receive()``.
        """
        if self._receiving:
            raise LocalProtocolError("receive() is already running in another task")
        self._receiving = True
        try:
            while True:
                self._process_events()
                if self._outgoing:
                    await self._flush_control()
                if self._ready:
                    return self._ready.popleft()
                if self._failure is not None:
                    await self._handle_failure()
                if self._closed is not None or self._stream_closed:
                    if self._ws.state is ConnectionState.CLOSED or self._stream_closed:
                        await self._close_stream()
                        raise self._closed_error()
                    if self._ws.state is ConnectionState.LOCAL_CLOSING:
                        # Our close is out (aclose elsewhere, or a failed send): wait for
                        # the reply so the TCP close is clean.
                        with anyio.move_on_after(self._close_timeout):
                            await self._drain_until_closed()
                        await self._close_stream()
                        raise self._closed_error()
                await self._read_more()
        finally:
            self._receiving = False

    async def receive_many(self) -> list[bytes]:
        """Wait for at least one complete message, then return every message that the
        same socket read completed (text as UTF-8 bytes); see ``MessageTransport``.

        Raises:
            TransportClosed, ReadError, LocalProtocolError: as :meth:`receive`.
        """
        first = await self.receive()
        batch = [first.encode() if isinstance(first, str) else first]
        ready = self._ready
        while ready:
            message = ready.popleft()
            batch.append(message.encode() if isinstance(message, str) else message)
        return batch

    async def ping(self, payload: bytes = b"") -> None:
        """Send a Ping and wait for the matching Pong.

        The Pong is only seen while some task is in :meth:`receive`.

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
            await self._write(self._ws.send(Ping(payload=payload)), what="a ping")
        try:
            await waiter.event.wait()
        finally:
            if self._pings.get(payload) is waiter:
                del self._pings[payload]
        if not waiter.answered:
            raise self._closed_error()

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close: send a close frame, wait up to ``close_timeout`` for the reply, drop TCP.

        Safe to call more than once and from another task than ``receive()``; a
        concurrent ``receive()`` then raises ``TransportClosed``. When cancelled, the
        socket is still closed (without the handshake).

        Raises:
            ValueError: ``code`` may not be sent (1004-1006, 1015, outside 1000-4999).
        """
        _check_close_code(code)
        if self._stream_closed:
            return
        try:
            with anyio.move_on_after(self._close_timeout):
                if self._outgoing:
                    await self._flush_control()
                message = f"closed locally with code {code}" + (f" ({reason})" if reason else "")
                await self._send_close(code, reason, message)
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
    reserved = names & _HANDSHAKE_HEADERS
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


def _rejection(endpoint: Endpoint, status: int, body: bytes) -> HandshakeRejected:
    text = body.decode("utf-8", "replace").strip()
    text = " ".join(text.split())[:300]
    message = f"WebSocket upgrade to {endpoint.display} was refused with HTTP {status}"
    return HandshakeRejected(message + (f": {text}" if text else ""), status_code=status)


async def _client_handshake(
    stream: ByteStream,
    ws: WSConnection,
    endpoint: Endpoint,
    host: str,
    headers: list[tuple[str, str]],
) -> AcceptConnection:
    """Send the upgrade request and read until the server accepts or refuses."""
    request = Request(host=host, target=endpoint.target, extra_headers=encode_headers(headers))
    await stream.send(ws.send(request))
    status: int | None = None
    body = bytearray()
    while True:
        for event in ws.events():
            if isinstance(event, AcceptConnection):
                # Frames that came with the 101 stay queued in wsproto for receive().
                return event
            if isinstance(event, RejectConnection):
                status = event.status_code
                if not event.has_body:
                    raise _rejection(endpoint, status, bytes(body))
            elif isinstance(event, RejectData):
                body += event.data[: _MAX_REJECT_BODY - len(body)]
                if event.body_finished or len(body) >= _MAX_REJECT_BODY:
                    raise _rejection(endpoint, status or 0, bytes(body))
        try:
            data = await stream.receive(READ_SIZE)
        except anyio.EndOfStream:
            if status is not None:
                raise _rejection(endpoint, status, bytes(body)) from None
            raise ConnectError(
                f"the server at {endpoint.display} closed the connection during the "
                "WebSocket handshake"
            ) from None
        ws.receive_data(data)


async def connect_websocket(
    url: str, *, options: ConnectOptions = _DEFAULT_OPTIONS
) -> WebSocketTransport:
    """Open a WebSocket (client role) to a ``ws://`` or ``wss://`` URL.

    The upgrade request carries ``options.headers``, a ``User-Agent``, the bearer
    token (``Authorization`` header, or ``access_token=`` in the query when
    ``options.access_token_in_query``) and ``options.cookies``. TLS, proxy and
    timeouts follow ``options``; ``http``/``https`` URLs are accepted as ``ws``/``wss``.

    Args:
        url: the WebSocket URL, e.g. ``NegotiateOutcome.websocket_url()``.
        options: connection options.

    Returns:
        The open transport.

    Raises:
        ValueError: the URL or a header is malformed, or a header the transport sets
            itself (framing, handshake) was given.
        ConnectError: refused, DNS failure, proxy or TLS failure, or a broken handshake.
        HandshakeRejected: the server answered the upgrade with a non-101 status
            (``status_code`` set, the body text in the message).
        TransportTimeout: ``options.connect_timeout`` ran out.
    """
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
            ws = WSConnection(ConnectionType.CLIENT)
            accepted = await _client_handshake(stream, ws, endpoint, host, headers)
        except BaseException:
            await anyio.aclose_forcefully(stream)
            raise
    return WebSocketTransport(
        stream,
        ws,
        max_message_size=options.max_message_size,
        description=f"WebSocket {endpoint.display}",
        handshake_headers=[
            (bytes(name).decode("latin-1").lower(), bytes(value).decode("latin-1"))
            for name, value in accepted.extra_headers
        ],
    )


# --------------------------------------------------------------------------------- server

WebSocketHandler = Callable[[WebSocketTransport, HttpRequest], Awaitable[None]]
"""Runs one accepted WebSocket; the connection is closed (1000) when it returns."""


@dataclass(frozen=True, slots=True)
class WebSocketUpgrade:
    """What a server app returns to accept a WebSocket upgrade request.

    Attributes:
        handler: runs with the server-side transport and the upgrade request.
        extra_headers: extra headers for the 101 response (e.g. ``Set-Cookie``).
    """

    handler: WebSocketHandler
    extra_headers: Sequence[tuple[str, str]] = ()


HttpApp = Callable[[HttpRequest], Awaitable[HttpResponse | WebSocketUpgrade]]
"""A server application: answers each request with a response or an upgrade."""


class ServerAddress(NamedTuple):
    """Where :func:`serve` listens (host and the port the OS picked)."""

    host: str
    port: int

    def url(self, scheme: str = "http", path: str = "/") -> str:
        """``scheme://host:port/path`` with IPv6 hosts in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"


@dataclass(frozen=True, slots=True)
class _ServerConfig:
    app: HttpApp
    ssl_context: ssl.SSLContext | None
    max_message_size: int
    max_body_size: int


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _ServerConnection:
    """One client connection: HTTP/1.1 requests (keep-alive) until one upgrades."""

    def __init__(self, stream: ByteStream, config: _ServerConfig, peer: str,
                 client: tuple[str, int] | None) -> None:
        self._stream = stream
        self._config = config
        self._peer = peer
        self._client = client
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)

    async def run(self) -> None:
        conn = self._conn
        while True:
            try:
                received = await self._read_request()
            except _BadRequest as exc:
                logger.info("bad request from %s: %s", self._peer, exc)
                await self._send_error(exc.status, str(exc))
                return
            if received is None:
                return
            request, raw = received
            outcome = await self._call_app(request)
            if isinstance(outcome, WebSocketUpgrade):
                if request.is_websocket_upgrade and conn.their_state is _MIGHT_SWITCH_PROTOCOL:
                    await self._upgrade(request, raw, outcome)
                    return
                outcome = HttpResponse(
                    426,
                    [("Upgrade", "websocket"), ("Content-Type", "text/plain; charset=utf-8")],
                    b"this endpoint only accepts WebSocket upgrade requests",
                )
            await self._send_response(request.method, outcome)
            if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                conn.start_next_cycle()
            else:
                return

    async def _read_request(self) -> tuple[HttpRequest, h11.Request] | None:
        conn = self._conn
        request: h11.Request | None = None
        body: list[bytes] = []
        size = 0
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise _BadRequest(exc.error_status_hint, f"invalid HTTP: {exc}") from None
            if event is h11.NEED_DATA:
                if conn.they_are_waiting_for_100_continue:
                    await self._stream.send(
                        conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b""
                    )
                try:
                    data = await self._stream.receive(READ_SIZE)
                except anyio.EndOfStream:
                    data = b""
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > self._config.max_body_size:
                    raise _BadRequest(413, "request body too large")
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                return (
                    HttpRequest(
                        method=request.method.decode("ascii", "replace"),
                        target=request.target.decode("latin-1"),
                        headers=tuple(
                            (name.decode("latin-1"), value.decode("latin-1"))
                            for name, value in request.headers
                        ),
                        body=b"".join(body),
                        client=self._client,
                    ),
                    request,
                )
            else:  # ConnectionClosed (client went away between requests) or PAUSED
                return None

    async def _call_app(self, request: HttpRequest) -> HttpResponse | WebSocketUpgrade:
        try:
            return await self._config.app(request)
        except Exception:
            logger.exception("the app failed on %s %s from %s", request.method,
                             request.path, self._peer)
            return HttpResponse(500, [("Content-Type", "text/plain; charset=utf-8")],
                                b"internal server error")

    async def _send_response(self, method: str, response: HttpResponse) -> None:
        headers = list(response.headers)
        names = {name.lower() for name, _ in headers}
        if "content-length" not in names and "transfer-encoding" not in names:
            headers.append(("Content-Length", str(len(response.body))))
        conn = self._conn
        data = conn.send(h11.Response(status_code=response.status,
                                      headers=encode_headers(headers))) or b""
        if response.body and method != "HEAD":
            data += conn.send(h11.Data(data=response.body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        await self._stream.send(data)

    async def _send_error(self, status: int, message: str) -> None:
        """Best effort: answer a broken request before hanging up."""
        if self._conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = message.encode("utf-8", "replace")
        response = HttpResponse(
            status,
            [("Content-Type", "text/plain; charset=utf-8"), ("Connection", "close")],
            body,
        )
        with contextlib.suppress(h11.LocalProtocolError, anyio.BrokenResourceError, OSError):
            await self._send_response("GET", response)

    async def _upgrade(self, request: HttpRequest, raw: h11.Request,
                       upgrade: WebSocketUpgrade) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        try:
            ws.initiate_upgrade_connection(list(raw.headers), raw.target)
            for _ in ws.events():  # the Request event; validated already
                pass
            accept = AcceptConnection(extra_headers=encode_headers(upgrade.extra_headers))
            data = ws.send(accept)
        except WsRemoteProtocolError as exc:
            logger.info("bad WebSocket upgrade from %s: %s", self._peer, exc)
            await self._send_response(request.method, HttpResponse(
                400, [("Content-Type", "text/plain; charset=utf-8")],
                f"bad WebSocket upgrade: {exc}".encode(),
            ))
            return
        await self._stream.send(data)
        trailing, _ = self._conn.trailing_data
        if trailing:  # the client's first frames came with its upgrade request
            ws.receive_data(trailing)
        transport = WebSocketTransport(
            self._stream,
            ws,
            max_message_size=self._config.max_message_size,
            description=f"WebSocket from {self._peer}",
            handshake_headers=request.headers,
        )
        try:
            await upgrade.handler(transport, request)
        except TransportError as exc:
            logger.debug("WebSocket from %s ended: %s", self._peer, exc)
            await transport.aclose(1011, "internal server error")
        except Exception:
            logger.exception("WebSocket handler failed for %s", self._peer)
            await transport.aclose(1011, "internal server error")
        else:
            await transport.aclose(1000)


def _peer_name(stream: ByteStream) -> tuple[str, tuple[str, int] | None]:
    address = stream.extra(SocketAttribute.remote_address, None)
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = str(address[0]), int(address[1])
        name = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return name, (host, port)
    return "unknown peer", None


async def _handle_connection(stream: ByteStream, config: _ServerConfig) -> None:
    """Serve one TCP connection; nothing it does may reach the listener or other peers."""
    peer, client = _peer_name(stream)
    try:
        if config.ssl_context is not None:
            with anyio.fail_after(TLS_HANDSHAKE_TIMEOUT):
                stream = await TLSStream.wrap(
                    stream, server_side=True, ssl_context=config.ssl_context,
                    standard_compatible=False,
                )
        await _ServerConnection(stream, config, peer, client).run()
    except Exception as exc:
        ours = isinstance(exc, h11.LocalProtocolError | WsLocalProtocolError | LocalProtocolError)
        if not ours and (isinstance(exc, TransportError) or _translate(exc, TransportError, "")):
            logger.debug("connection from %s ended: %r", peer, exc)
        else:  # a bug: ours, or the app's (e.g. a response h11 refuses to send)
            logger.exception("unexpected error on the connection from %s", peer)
    finally:
        await anyio.aclose_forcefully(stream)


async def serve_listener(
    app: HttpApp,
    listener: Listener[ByteStream],
    *,
    ssl_context: ssl.SSLContext | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    task_status: TaskStatus[ServerAddress] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on an existing anyio listener until cancelled.

    Each connection runs in its own task; garbage, disconnects and app or handler
    exceptions are logged and end only that connection. The listener is not closed.

    Args:
        app: answers requests with an :class:`HttpResponse` or a :class:`WebSocketUpgrade`.
        listener: where connections come from.
        ssl_context: wrap each connection in TLS (server side) when given.
        max_message_size: largest WebSocket message accepted from clients.
        max_body_size: largest HTTP request body accepted (413 above it).
        task_status: reports the bound :class:`ServerAddress` (``("", 0)`` when the
            listener has no socket address).
    """
    config = _ServerConfig(app, ssl_context, max_message_size, max_body_size)
    address = listener.extra(SocketAttribute.local_address, None)
    if isinstance(address, tuple) and len(address) >= 2:
        bound = ServerAddress(str(address[0]), int(address[1]))
    else:
        bound = ServerAddress("", 0)

    async def handle(stream: ByteStream) -> None:
        await _handle_connection(stream, config)

    async with anyio.create_task_group() as tg:
        task_status.started(bound)
        await listener.serve(handle, task_group=tg)


async def serve(
    app: HttpApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    task_status: TaskStatus[ServerAddress] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``host:port`` (port 0 = any free port) and serve ``app`` until cancelled.

    Use with ``address = await task_group.start(serve, app)`` to learn the bound port.
    See :func:`serve_listener` for the per-connection behaviour.
    """
    with map_exceptions(ConnectError, context=f"listening on {host}:{port}"):
        listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    async with listener:
        await serve_listener(
            app,
            listener,
            ssl_context=ssl_context,
            max_message_size=max_message_size,
            max_body_size=max_body_size,
            task_status=task_status,
        )
