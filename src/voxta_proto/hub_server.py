"""``HubServer``: a small generic SignalR hub served by the core's server role.

The counterpart of [`HubClient`][voxta_proto.hub_client.HubClient] for tests, examples and
embedding: negotiate, WebSocket connections on the same [`Driver`][voxta_proto.driver.Driver],
methods that return a value or raise (the error goes back in the Completion), streams,
calls to the client that await its result, and stateful reattach:

```python
server = HubServer()
server.method("Add", lambda conn, a, b: a + b)
async with anyio.create_task_group() as tg:
    address = await tg.start(server.serve)
    ...   # HubClient(address.url(path="/hub"))
```

A method gets the [`HubServerConnection`][voxta_proto.hub_server.HubServerConnection] first,
then the call's arguments. Each connection speaks the hub protocol its client's handshake
asks for: JSON (text messages) or MessagePack (binary messages); negotiate offers both
transfer formats.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import math
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any, Final, cast

import anyio
import msgspec
from anyio.abc import TaskGroup, TaskStatus

from voxta_proto.driver import Driver, DriverState
from voxta_proto.errors import ConnectionClosed, InvocationError, ProtocolError, VoxtaProtoError
from voxta_proto.hub.connection import HubConfig, Outgoing
from voxta_proto.hub.messages import (
    CancelInvocation,
    Close,
    Completion,
    Invocation,
    StreamInvocation,
    StreamItem,
)
from voxta_proto.hub.negotiate import AvailableTransport, NegotiateResponseBody
from voxta_proto.hub.state import HubState, Role
from voxta_proto.hub_client import HubSession
from voxta_proto.transports import (
    HttpRequest,
    HttpResponse,
    MessageTransport,
    ServerAddress,
    WebSocketUpgrade,
    serve,
)

__all__ = ["HubServer", "HubServerConnection"]

logger = logging.getLogger("voxta_proto.hub_server")

Method = Callable[..., Any]
StreamMethod = Callable[..., AsyncIterator[Any]]
_JSON: Final = (("Content-Type", "application/json"),)


class HubServerConnection:
    """One client's hub connection; it outlives its WebSocket when stateful reconnect
    lets the client reattach."""

    def __init__(self, server: HubServer, token: str, config: HubConfig) -> None:
        self.server = server
        self.token = token
        self.session = HubSession(Role.SERVER, now=anyio.current_time(), config=config)
        self.driver: Driver[object] = Driver(
            self.session, on_events=self._on_events, alive=self.session.alive,
            writer=self.session.write, encode_hint=self.session.encode_hint)
        self._tg: TaskGroup | None = None
        self._calls: dict[str, tuple[anyio.Event, list[Any]]] = {}
        self._streams: dict[str, anyio.CancelScope] = {}
        self._ids = map(str, itertools.count(1))
        self._next_transport: tuple[MessageTransport, anyio.Event] | None = None
        self._transport_ready = anyio.Event()
        self._inbox: deque[Invocation[msgspec.Raw]] = deque()
        self._inbox_wake = anyio.Event()

    @property
    def protocol(self) -> str:
        """The hub protocol the client asked for (``"json"`` until its handshake)."""
        return self.session.values.protocol

    # -- calls to the client -----------------------------------------------------------

    def _queue(self, message: Outgoing) -> None:
        if not self.session.alive():
            raise ConnectionClosed("the client is gone")
        self.session.send(message, now=anyio.current_time())
        self.driver.transmit()

    async def _queue_when_room(self, message: Outgoing) -> None:
        """`_queue`, after waiting while the stateful replay buffer is full."""
        await self.session.wait_for_room()
        self._queue(message)

    async def send(self, target: str, *args: object) -> None:
        """Call ``target`` on the client without waiting for an answer (but waiting for
        room while the stateful replay buffer is full)."""
        await self._queue_when_room(Invocation(
            target=target, arguments=self.session.values.encode_args(args)))

    async def invoke(self, target: str, *args: object, timeout: float = 30.0) -> Any:  # noqa: ASYNC109
        """Call ``target`` on the client and return its result (a client result).

        Raises:
            InvocationError: the client's handler failed or it has none.
            ConnectionClosed: the connection ended first.
            TimeoutError: no answer within ``timeout``.
        """
        invocation_id = f"s{next(self._ids)}"
        done, box = self._calls[invocation_id] = (anyio.Event(), [])
        try:
            await self._queue_when_room(Invocation(
                target=target, arguments=self.session.values.encode_args(args),
                invocation_id=invocation_id))
            with anyio.fail_after(timeout):
                await done.wait()
        finally:
            self._calls.pop(invocation_id, None)
        outcome = box[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    # -- events (reader task) ----------------------------------------------------------

    def _on_events(self, events: list[object]) -> None:
        tg = self._tg
        assert tg is not None
        for event in events:
            if isinstance(event, Invocation):
                self._inbox.append(event)  # one at a time, in order, as ASP.NET's default
                self._inbox_wake.set()
            elif isinstance(event, StreamInvocation):
                scope = anyio.CancelScope()
                self._streams[event.invocation_id] = scope
                tg.start_soon(self._stream, event, scope)
            elif isinstance(event, CancelInvocation):
                cancelled = self._streams.pop(event.invocation_id, None)
                if cancelled is not None:
                    cancelled.cancel()
            elif isinstance(event, Completion):
                entry = self._calls.get(event.invocation_id)
                if entry is not None:
                    entry[1].append(
                        InvocationError(event.invocation_id, event.error)
                        if event.error is not None
                        else self.session.values.decode(cast("msgspec.Raw", event.result))
                        if event.has_result else None)
                    entry[0].set()

    async def _dispatch(self) -> None:
        while True:
            while not self._inbox:
                self._inbox_wake = anyio.Event()
                await self._inbox_wake.wait()
            await self._call(self._inbox.popleft())

    async def _call(self, invocation: Invocation[msgspec.Raw]) -> None:
        method = self.server.methods.get(invocation.target.lower())
        result: object = None
        error: str | None = None
        if method is None:
            error = f"Method does not exist: {invocation.target}"
        else:
            try:
                result = method(self, *self.session.values.decode_args(invocation.arguments))
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                error = f"An unexpected error occurred invoking '{invocation.target}': {exc}"
        if invocation.invocation_id is None:
            return
        await self._answer(Completion(invocation_id=invocation.invocation_id, error=error)
                           if error is not None else
                           Completion(invocation_id=invocation.invocation_id,
                                      result=msgspec.Raw(self.session.values.encode(result))))

    async def _stream(self, invocation: StreamInvocation, scope: anyio.CancelScope) -> None:
        method = self.server.streams.get(invocation.target.lower())
        error: str | None = None
        with scope:
            if method is None:
                error = f"Method does not exist: {invocation.target}"
            else:
                try:
                    values = self.session.values
                    async for item in method(self, *values.decode_args(invocation.arguments)):
                        await self._answer(StreamItem(
                            invocation_id=invocation.invocation_id,
                            item=msgspec.Raw(values.encode(item))))
                except Exception as exc:
                    error = f"An error occurred on the stream '{invocation.target}': {exc}"
        self._streams.pop(invocation.invocation_id, None)
        await self._answer(Completion(invocation_id=invocation.invocation_id, error=error))

    async def _answer(self, message: Outgoing) -> None:
        """Queue an answer, waiting for room while the replay buffer is full (never
        dropping it for that); only a connection that is gone loses it."""
        try:
            await self._queue_when_room(message)
        except (ConnectionClosed, ProtocolError) as exc:
            logger.debug("could not answer: %s", exc)

    # -- transports ----------------------------------------------------------------------

    async def run(self, transport: MessageTransport) -> None:
        """Serve this connection on ``transport``, then on every transport a stateful
        reattach brings, until it is over."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._dispatch)
                reattach = False
                done: anyio.Event | None = None
                while True:
                    try:
                        ended = await self.driver.run(transport, reattach=reattach)
                    except VoxtaProtoError as exc:
                        logger.debug("connection %s failed: %s", self.token[:6], exc)
                        ended = DriverState.CLOSED
                    if done is not None:
                        done.set()
                    if ended is DriverState.CLOSED or self.session.hub.state is not \
                            HubState.DETACHED:
                        break
                    deadline = self.session.next_deadline()
                    with anyio.move_on_after(math.inf if deadline is None
                                             else deadline - anyio.current_time()):
                        await self._transport_ready.wait()
                    if self._next_transport is None:
                        break  # no reattach in time
                    (transport, done), self._next_transport = self._next_transport, None
                    self._transport_ready = anyio.Event()
                    reattach = True
                tg.cancel_scope.cancel()
        finally:
            self.server.connections.pop(self.token, None)
            for event, box in self._calls.values():
                box.append(ConnectionClosed("the client is gone"))
                event.set()

    async def reattach(self, transport: MessageTransport) -> None:
        """Hand a reconnected client's transport to the running connection; returns
        when that transport is done."""
        done = anyio.Event()
        self._next_transport = (transport, done)
        self._transport_ready.set()
        await done.wait()


class HubServer:
    """A generic hub; see the module docstring.

    Args:
        path: where the hub lives (negotiate at ``{path}/negotiate``).
        hub_config: keep-alive, client timeout, stateful reconnect (on by default).
    """

    def __init__(self, *, path: str = "/hub", hub_config: HubConfig | None = None) -> None:
        self.path = path.rstrip("/")
        self.hub_config = hub_config or HubConfig(stateful_reconnect=True)
        self.methods: dict[str, Method] = {}
        self.streams: dict[str, StreamMethod] = {}
        self.connections: dict[str, HubServerConnection] = {}
        self._negotiated: dict[str, bool] = {}

    def method(self, name: str, function: Method) -> Method:
        """Serve ``name``: ``function(connection, *args)``, sync or async; its return value
        is the result and its exception the error the client sees."""
        self.methods[name.lower()] = function
        return function

    def stream(self, name: str, function: StreamMethod) -> StreamMethod:
        """Serve the stream ``name``: ``function(connection, *args)`` is an async
        iterator of items; a client's CancelInvocation cancels it."""
        self.streams[name.lower()] = function
        return function

    async def serve(self, *, host: str = "127.0.0.1", port: int = 0,
                    task_status: TaskStatus[ServerAddress] = anyio.TASK_STATUS_IGNORED,
                    ) -> None:
        """Listen until cancelled; ``await tg.start(server.serve)`` gives the address."""
        await serve(self.app, host=host, port=port, task_status=task_status)

    async def app(self, request: HttpRequest) -> HttpResponse | WebSocketUpgrade:
        """The HTTP app: negotiate, and the hub's WebSocket (``id=<token>``)."""
        path = request.path
        if path == self.path + "/negotiate" and request.method == "POST":
            token = secrets.token_urlsafe(16)
            stateful = (self.hub_config.stateful_reconnect
                        and request.query_param("useStatefulReconnect") == "true")
            self._negotiated[token] = stateful
            body = NegotiateResponseBody(
                negotiate_version=1, connection_id=secrets.token_urlsafe(8),
                connection_token=token, use_stateful_reconnect=stateful,
                available_transports=(AvailableTransport(transport="WebSockets",
                                                          transfer_formats=("Text", "Binary")),))
            return HttpResponse(200, _JSON, msgspec.json.encode(body))
        if path != self.path or not request.is_websocket_upgrade:
            return HttpResponse(404, (), b"not found")
        token = request.query_param("id") or ""
        if not token:  # skipNegotiation: a connection of its own, never stateful
            token = secrets.token_urlsafe(16)
            self._negotiated[token] = False
        if token in self._negotiated:
            stateful = self._negotiated.pop(token)
            config = replace(self.hub_config, stateful_reconnect=stateful)
            connection = HubServerConnection(self, token, config)
            self.connections[token] = connection

            async def handler(transport: Any, _request: HttpRequest) -> None:
                await connection.run(transport)

            return WebSocketUpgrade(handler)
        existing = self.connections.get(token)
        if existing is None or existing.session.hub.state is not HubState.DETACHED:
            return HttpResponse(404, (), b"no such connection")

        async def reattach(transport: Any, _request: HttpRequest) -> None:
            await existing.reattach(transport)

        return WebSocketUpgrade(reattach)

    async def close_all(self, error: str | None = None) -> None:
        """Close every connection with a SignalR Close."""
        for connection in list(self.connections.values()):
            if connection.session.alive():
                connection.session.send(Close(error=error), now=anyio.current_time())
            await connection.driver.close()
