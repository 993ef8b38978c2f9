"""Shared pieces for the transport tests: running our server, raw TCP/wsproto peers, a
SignalR-style app and a small CONNECT proxy. Everything binds 127.0.0.1 port 0."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
import h11
from anyio.abc import ByteStream, SocketAttribute
from wsproto import ConnectionType, WSConnection
from wsproto.events import Event, Request

from voxta_proto.errors import TransportClosed
from voxta_proto.transports import (
    HttpApp,
    HttpRequest,
    HttpResponse,
    ServerAddress,
    WebSocketTransport,
    WebSocketUpgrade,
    serve,
)

RawHandler = Callable[[ByteStream], Awaitable[None]]

HANDSHAKE_REQUEST = '{"protocol":"json","version":1}\x1e'
NEGOTIATE_BODY = {
    "negotiateVersion": 1,
    "connectionId": "conn-1",
    "connectionToken": "token 1/+",  # needs percent-encoding on the WebSocket URL
    "availableTransports": [
        {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]},
        {"transport": "LongPolling", "transferFormats": ["Text", "Binary"]},
    ],
}


def json_response(body: object, *headers: tuple[str, str], status: int = 200) -> HttpResponse:
    return HttpResponse(
        status, [("Content-Type", "application/json"), *headers], json.dumps(body).encode()
    )


async def closed_port() -> int:
    """A port that was just in use and now has nobody listening (connection refused)."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port: int = listener.extra(SocketAttribute.local_port)
    await listener.aclose()
    return port


@asynccontextmanager
async def running_server(app: HttpApp, **kwargs: Any) -> AsyncIterator[ServerAddress]:
    """Run :func:`serve` for the duration of the block."""
    async with anyio.create_task_group() as tg:
        address: ServerAddress = await tg.start(partial(serve, app, **kwargs))
        try:
            yield address
        finally:
            tg.cancel_scope.cancel()


@asynccontextmanager
async def raw_server(handler: RawHandler, host: str = "127.0.0.1") -> AsyncIterator[ServerAddress]:
    """A bare TCP listener whose connections go to ``handler`` (closed afterwards)."""
    listener = await anyio.create_tcp_listener(local_host=host, local_port=0)

    async def wrapped(stream: ByteStream) -> None:
        async with stream:
            await handler(stream)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, wrapped)
        bound = listener.extra(SocketAttribute.local_address)
        assert isinstance(bound, tuple)
        try:
            yield ServerAddress(str(bound[0]), int(bound[1]))
        finally:
            tg.cancel_scope.cancel()


async def read_ws_events(stream: ByteStream, ws: WSConnection) -> list[Event]:
    """Read until wsproto has at least one event, then return all of them."""
    while True:
        events = list(ws.events())
        if events:
            return events
        try:
            data: bytes | None = await stream.receive()
        except anyio.EndOfStream:
            data = None
        ws.receive_data(data)


async def accept_raw_websocket(stream: ByteStream) -> tuple[WSConnection, Request]:
    """Server side of a handshake with plain wsproto; the caller sends the answer."""
    ws = WSConnection(ConnectionType.SERVER)
    while True:
        for event in await read_ws_events(stream, ws):
            if isinstance(event, Request):
                return ws, event


async def read_http_responses(stream: ByteStream, count: int) -> list[tuple[h11.Response, bytes]]:
    """Read ``count`` HTTP responses with one h11 connection (for raw-socket tests)."""
    conn = h11.Connection(h11.CLIENT)
    responses: list[tuple[h11.Response, bytes]] = []
    while len(responses) < count:
        if responses:
            conn.start_next_cycle()
        conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
        conn.send(h11.EndOfMessage())
        response: h11.Response | None = None
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    conn.receive_data(await stream.receive())
                except anyio.EndOfStream:
                    conn.receive_data(b"")
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                responses.append((response, body))
                break
            else:
                raise AssertionError(f"unexpected {event!r}")
    return responses


async def read_http_response(stream: ByteStream) -> tuple[h11.Response, bytes]:
    """Read one HTTP response."""
    return (await read_http_responses(stream, 1))[0]


async def echo_handler(transport: WebSocketTransport, request: HttpRequest) -> None:
    """Send every message back until the client closes."""
    while True:
        try:
            message = await transport.receive()
        except TransportClosed:
            return
        await transport.send(message)


def echo_app(*, extra_headers: tuple[tuple[str, str], ...] = ()) -> HttpApp:
    async def app(request: HttpRequest) -> HttpResponse | WebSocketUpgrade:
        if request.is_websocket_upgrade:
            return WebSocketUpgrade(echo_handler, extra_headers=extra_headers)
        return HttpResponse(200, [("Content-Type", "text/plain")], b"plain " + request.body)

    return app


@dataclass
class SignalRApp:
    """A tiny SignalR-style endpoint: ``POST /hub/negotiate`` and an upgrade at ``/hub``
    that checks ``id``, answers the JSON handshake and echoes hub records."""

    requests: list[HttpRequest] = field(default_factory=list)
    upgrades: list[HttpRequest] = field(default_factory=list)

    async def __call__(self, request: HttpRequest) -> HttpResponse | WebSocketUpgrade:
        self.requests.append(request)
        if request.path == "/hub/negotiate":
            if request.method != "POST":
                return HttpResponse(405)
            return json_response(NEGOTIATE_BODY, ("Set-Cookie", "ARRAffinity=abc123; Path=/"))
        if request.path == "/hub":
            if request.query_param("id") != NEGOTIATE_BODY["connectionToken"]:
                return HttpResponse(404, body=b"No Connection with that ID")
            self.upgrades.append(request)
            return WebSocketUpgrade(self.hub)
        return HttpResponse(404, body=b"not found")

    async def hub(self, transport: WebSocketTransport, request: HttpRequest) -> None:
        if await transport.receive() != HANDSHAKE_REQUEST:
            await transport.send('{"error":"bad handshake"}\x1e')
            return
        await transport.send("{}\x1e")
        await echo_handler(transport, request)


@dataclass
class ConnectProxy:
    """A minimal HTTP CONNECT proxy on anyio; records each tunnel target."""

    targets: list[str] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    refuse_with: int | None = None

    async def handle(self, client: ByteStream) -> None:
        conn = h11.Connection(h11.SERVER)
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await client.receive())
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.EndOfMessage):
                break
        self.targets.append(request.target.decode())
        auth = dict(request.headers).get(b"proxy-authorization")
        self.authorizations.append(auth.decode() if auth else None)
        if self.refuse_with is not None:
            await client.send(
                conn.send(h11.Response(status_code=self.refuse_with,
                                       headers=[("Content-Length", "6")]))
                + (conn.send(h11.Data(data=b"denied")) or b"")
                + (conn.send(h11.EndOfMessage()) or b"")
            )
            return
        host, _, port = request.target.decode().rpartition(":")
        async with await anyio.connect_tcp(host.strip("[]"), int(port)) as upstream:
            await client.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
            leftover, _ = conn.trailing_data
            if leftover:
                await upstream.send(leftover)
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._pipe, client, upstream, tg.cancel_scope)
                await self._pipe(upstream, client, tg.cancel_scope)

    @staticmethod
    async def _pipe(source: ByteStream, sink: ByteStream, scope: anyio.CancelScope) -> None:
        try:
            async for chunk in source:
                await sink.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        scope.cancel()
