"""A small HTTP/1.1 + WebSocket server over anyio and h11 (what the mock serves with).

Hardened for CI-scale use: request heads and bodies, the TLS handshake and the
WebSocket upgrade each have a timeout; connections that have not finished their
request or upgrade are capped (past the cap new ones are closed at once); the accept
loop outlives running out of file descriptors. Ordinary bad input (garbage, half a
request, a client gone mid-handshake) costs one INFO line, never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

import anyio
import h11
from anyio.abc import ByteStream, Listener, SocketAttribute, TaskStatus
from anyio.streams.tls import TLSStream

from voxta_proto.errors import ConnectError, LocalProtocolError, TransportError
from voxta_proto.hub.negotiate import DEFAULT_MAX_BODY_SIZE
from voxta_proto.transports._net import encode_headers, next_h11_event
from voxta_proto.transports.base import DEFAULT_MAX_MESSAGE_SIZE, _translate, map_exceptions
from voxta_proto.transports.http import MAX_HEADER_BYTES, HttpRequest, HttpResponse
from voxta_proto.transports.websocket.engine import check_engine, create_engine
from voxta_proto.transports.websocket.handshake import check_upgrade_request, server_accept
from voxta_proto.transports.websocket.transport import (
    CLOSE_TIMEOUT,
    WRITE_TIMEOUT,
    WebSocketTransport,
)

__all__ = [
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_MAX_PENDING_CONNECTIONS",
    "DEFAULT_REQUEST_TIMEOUT",
    "HttpApp",
    "ServerAddress",
    "WebSocketHandler",
    "WebSocketUpgrade",
    "serve",
    "serve_listener",
]

logger = logging.getLogger("voxta_proto.transports")

DEFAULT_REQUEST_TIMEOUT: Final = 10.0
"""Seconds a client has to send a whole request (head and body), also while idle
between keep-alive requests."""

DEFAULT_HANDSHAKE_TIMEOUT: Final = 10.0
"""Seconds for the TLS handshake and for writing the WebSocket upgrade answer."""

DEFAULT_MAX_PENDING_CONNECTIONS: Final = 512
"""Connections that have not finished their request or WebSocket upgrade, at most."""

TLS_HANDSHAKE_TIMEOUT: Final = DEFAULT_HANDSHAKE_TIMEOUT
"""Kept for callers of the old name: the default TLS handshake time."""

ACCEPT_RETRY_DELAY: Final = 0.1
"""Seconds the accept loop pauses after running out of file descriptors."""

_EXHAUSTION_LOG_INTERVAL: Final = 60.0  # one WARNING per spell, at most one a minute
_FD_EXHAUSTION: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

# The client proposed a protocol switch (Upgrade header); h11 does not re-export it typed.
_MIGHT_SWITCH_PROTOCOL: Final = h11.MIGHT_SWITCH_PROTOCOL  # type: ignore[attr-defined]

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
    """Where [`serve()`][voxta_proto.transports.websocket.server.serve] listens (host and the port
    the OS picked)."""

    host: str
    port: int

    def url(self, scheme: str = "http", path: str = "/") -> str:
        """``scheme://host:port/path`` with IPv6 hosts in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"


@dataclass(slots=True, kw_only=True)
class _ServerConfig:
    app: HttpApp
    ssl_context: ssl.SSLContext | None
    max_message_size: int
    max_body_size: int
    websocket_engine: str
    write_timeout: float | None
    close_timeout: float
    request_timeout: float | None
    handshake_timeout: float | None
    max_pending: int
    pending: int = 0


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
        self.upgraded = False

    async def run(self) -> None:
        conn = self._conn
        while True:
            try:
                received = None
                with anyio.move_on_after(self._config.request_timeout) as scope:
                    received = await self._read_request()
                if scope.cancelled_caught:
                    started = conn.their_state is not h11.IDLE or conn.trailing_data[0]
                    if started:  # an idle keep-alive connection is just closed
                        logger.info("request from %s timed out after %s s", self._peer,
                                    self._config.request_timeout)
                        await self._send_error(408, "request timed out")
                    return
            except _BadRequest as exc:
                logger.info("bad request from %s: %s", self._peer, exc)
                await self._send_error(exc.status, str(exc))
                return
            if received is None:
                return
            request, _ = received
            outcome = await self._call_app(request)
            if isinstance(outcome, WebSocketUpgrade):
                if request.is_websocket_upgrade and conn.their_state is _MIGHT_SWITCH_PROTOCOL:
                    await self._upgrade(request, outcome)
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
                event = await next_h11_event(conn, self._stream)
            except h11.RemoteProtocolError as exc:
                if conn.their_state is h11.IDLE and not conn.trailing_data[0]:
                    return None  # nothing started (EOF between requests)
                raise _BadRequest(exc.error_status_hint, f"invalid HTTP: {exc}") from None
            if isinstance(event, h11.Request):
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
        with anyio.fail_after(self._config.write_timeout):
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
        with contextlib.suppress(h11.LocalProtocolError, anyio.BrokenResourceError,
                                 anyio.ClosedResourceError, OSError, TimeoutError):
            await self._send_response("GET", response)

    async def _upgrade(self, request: HttpRequest, upgrade: WebSocketUpgrade) -> None:
        try:
            key = check_upgrade_request(request)
        except ValueError as exc:
            logger.info("bad WebSocket upgrade from %s: %s", self._peer, exc)
            await self._send_error(400, f"bad WebSocket upgrade: {exc}")
            return
        data, trailing = server_accept(self._conn, key, upgrade.extra_headers)
        with anyio.fail_after(self._config.handshake_timeout):
            await self._stream.send(data)
        config = self._config
        engine = create_engine(config.websocket_engine, client=False,
                               max_message_size=config.max_message_size)
        transport = WebSocketTransport(
            self._stream,
            engine,
            max_message_size=config.max_message_size,
            close_timeout=config.close_timeout,
            write_timeout=config.write_timeout,
            description=f"WebSocket from {self._peer}",
            handshake_headers=request.headers,
            initial_data=trailing,
        )
        self.upgraded = True
        config.pending -= 1  # past the handshake: no longer counts against the cap
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
    if config.pending >= config.max_pending:
        logger.warning("refusing the connection from %s: %d connections have not finished "
                       "their request or handshake (max_pending_connections)",
                       peer, config.pending)
        await anyio.aclose_forcefully(stream)
        return
    config.pending += 1
    connection: _ServerConnection | None = None
    try:
        if config.ssl_context is not None:
            with anyio.fail_after(config.handshake_timeout):
                stream = await TLSStream.wrap(
                    stream, server_side=True, ssl_context=config.ssl_context,
                    standard_compatible=False,
                )
        connection = _ServerConnection(stream, config, peer, client)
        await connection.run()
    except Exception as exc:
        ours = isinstance(exc, h11.LocalProtocolError | LocalProtocolError)
        if not ours and (isinstance(exc, TransportError) or _translate(exc, TransportError, "")):
            mapped = exc if isinstance(exc, TransportError) else _translate(
                exc, TransportError, "")
            logger.info("connection from %s ended: %s", peer, mapped)
        else:  # a bug: ours, or the app's (e.g. a response h11 refuses to send)
            logger.exception("unexpected error on the connection from %s", peer)
    finally:
        if connection is None or not connection.upgraded:
            config.pending -= 1
        await anyio.aclose_forcefully(stream)


def _fd_exhaustion(exc: BaseException) -> OSError | None:
    """The ``OSError`` if accepting failed for lack of descriptors or memory (possibly
    wrapped by anyio, or in a group from a multi-address listener), else ``None``."""
    members = getattr(exc, "exceptions", None)
    if isinstance(members, tuple) and members:
        found = [_fd_exhaustion(member) for member in members]
        return found[0] if all(found) else None
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if isinstance(current, OSError) and current.errno in _FD_EXHAUSTION:
            return current
        current, seen = current.__cause__, seen + 1
    return None


async def serve_listener(
    app: HttpApp,
    listener: Listener[ByteStream],
    *,
    ssl_context: ssl.SSLContext | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    websocket_engine: str = "wsproto",
    write_timeout: float | None = WRITE_TIMEOUT,
    close_timeout: float = CLOSE_TIMEOUT,
    request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
    max_pending_connections: int = DEFAULT_MAX_PENDING_CONNECTIONS,
    task_status: TaskStatus[ServerAddress] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on an existing anyio listener until cancelled.

    Each connection runs in its own task; garbage, disconnects, timeouts and app or
    handler exceptions are logged and end only that connection. Running out of file
    descriptors pauses accepting for
    [`ACCEPT_RETRY_DELAY`][voxta_proto.transports.websocket.server.ACCEPT_RETRY_DELAY] at a time
    (one WARNING a minute at most), never ends the server. The listener is not closed.

    Args:
        app: answers requests with an [`HttpResponse`][voxta_proto.transports.http.HttpResponse] or
            a [`WebSocketUpgrade`][voxta_proto.transports.websocket.server.WebSocketUpgrade].
        listener: where connections come from.
        ssl_context: wrap each connection in TLS (server side) when given.
        max_message_size: largest WebSocket message accepted from clients.
        max_body_size: largest HTTP request body accepted (413 above it).
        websocket_engine: ``"wsproto"`` (default) or ``"websockets"`` (needs the
            ``voxta-proto[websockets]`` extra).
        write_timeout: seconds one write to a client may take; past it the connection
            is dropped (``None``: no limit).
        close_timeout: seconds a WebSocket close waits for the client's reply.
        request_timeout: seconds for a whole request, head and body (408 and close past
            it; an idle keep-alive connection is closed silently); ``None``: no limit.
        handshake_timeout: seconds for the TLS handshake and the WebSocket upgrade answer.
        max_pending_connections: connections still in their request/TLS/upgrade phase,
            at most; more are closed at once with one WARNING line.
        task_status: reports the bound
            [`ServerAddress`][voxta_proto.transports.websocket.server.ServerAddress] (``("", 0)``
            when the listener has no socket address).

    Raises:
        ValueError: an unknown engine name or a bad limit.
        ImportError: the ``websockets`` engine is not installed.
    """
    check_engine(websocket_engine)
    if max_pending_connections < 1:
        raise ValueError(f"max_pending_connections must be >= 1, got {max_pending_connections}")
    for name, value in (("write_timeout", write_timeout), ("request_timeout", request_timeout),
                        ("handshake_timeout", handshake_timeout)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be > 0 or None, got {value}")
    config = _ServerConfig(
        app=app, ssl_context=ssl_context, max_message_size=max_message_size,
        max_body_size=max_body_size, websocket_engine=websocket_engine,
        write_timeout=write_timeout, close_timeout=close_timeout,
        request_timeout=request_timeout, handshake_timeout=handshake_timeout,
        max_pending=max_pending_connections,
    )
    address = listener.extra(SocketAttribute.local_address, None)
    if isinstance(address, tuple) and len(address) >= 2:
        bound = ServerAddress(str(address[0]), int(address[1]))
    else:
        bound = ServerAddress("", 0)

    async def handle(stream: ByteStream) -> None:
        await _handle_connection(stream, config)

    async with anyio.create_task_group() as tg:
        task_status.started(bound)
        warned_at: float | None = None
        while True:
            try:
                await listener.serve(handle, task_group=tg)
            except Exception as exc:
                error = _fd_exhaustion(exc)
                if error is None:
                    raise
                now = anyio.current_time()
                if warned_at is None or now - warned_at >= _EXHAUSTION_LOG_INTERVAL:
                    warned_at = now
                    logger.warning("out of file descriptors (%s): pausing accept, open "
                                   "connections keep running", error.strerror or error)
                await anyio.sleep(ACCEPT_RETRY_DELAY)
            else:  # a listener that stops serving by itself: nothing more to accept
                return


async def serve(
    app: HttpApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    websocket_engine: str = "wsproto",
    write_timeout: float | None = WRITE_TIMEOUT,
    close_timeout: float = CLOSE_TIMEOUT,
    request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
    max_pending_connections: int = DEFAULT_MAX_PENDING_CONNECTIONS,
    task_status: TaskStatus[ServerAddress] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``host:port`` (port 0 = any free port) and serve ``app`` until cancelled.

    Use with ``address = await task_group.start(serve, app)`` to learn the bound port.
    See [`serve_listener()`][voxta_proto.transports.websocket.server.serve_listener] for the
    parameters and per-connection behaviour.
    """
    check_engine(websocket_engine)
    with map_exceptions(ConnectError, context=f"listening on {host}:{port}"):
        listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    async with listener:
        await serve_listener(
            app,
            listener,
            ssl_context=ssl_context,
            max_message_size=max_message_size,
            max_body_size=max_body_size,
            websocket_engine=websocket_engine,
            write_timeout=write_timeout,
            close_timeout=close_timeout,
            request_timeout=request_timeout,
            handshake_timeout=handshake_timeout,
            max_pending_connections=max_pending_connections,
            task_status=task_status,
        )
