"""``HubClient``: a generic async SignalR client for any hub (asyncio or trio).

```python
async with HubClient("http://localhost:5000/chathub") as hub:
    total = await hub.invoke("Add", 1, 2)                # awaits the Completion
    await hub.send("Broadcast", "hello")                  # fire and forget
    async with hub.stream("Counter", 5) as items:         # cancellable stream
        async for item in items: ...
    hub.on("ReceiveMessage", print)                       # server -> client calls
```

A handler's return value answers a server invocation that carries an id (a client
result). Keep-alive, server timeout, a reconnect policy and stateful reconnect (nothing
lost across a dropped socket) come from the sans-IO
[`HubConnection`][voxta_proto.hub.connection.HubConnection] and the one
[`Driver`][voxta_proto.driver.Driver]. Arguments and results are JSON (msgspec), or
MessagePack with ``HubClient(url, protocol="messagepack")``; pass
``result_type``/``item_type`` to get typed values.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Final, TypeVar, cast

import anyio
import msgspec
from anyio.abc import TaskGroup

from voxta_proto.driver import (
    Driver,
    DriverState,
    TextMessage,
    binary_writer,
    coalescing_writer,
)
from voxta_proto.errors import (
    ConnectionClosed,
    HandshakeRejected,
    InvocationError,
    NegotiationError,
    ProtocolError,
    TransportError,
    VoxtaProtoError,
)
from voxta_proto.hub.codec import HubCodec, decode_handshake_request
from voxta_proto.hub.connection import HubConfig, HubConnection, Outgoing, raw_codec
from voxta_proto.hub.events import (
    ConnectionLost,
    HandshakeTimedOut,
    PeerTimedOut,
    Reattached,
    ReattachTimedOut,
)
from voxta_proto.hub.messages import (
    CancelInvocation,
    Close,
    Completion,
    HandshakeAccepted,
    HandshakeRefused,
    HandshakeRequest,
    Invocation,
    StreamInvocation,
    StreamItem,
)
from voxta_proto.hub.msgpack import raw_messagepack_codec
from voxta_proto.hub.negotiate import build_websocket_url
from voxta_proto.hub.state import HubState, Role
from voxta_proto.transports import (
    ConnectOptions,
    Connector,
    MessageTransport,
    NegotiateOutcome,
    connect_websocket,
    negotiate,
)

__all__ = [
    "DEFAULT_RECONNECT_DELAYS",
    "HubClient",
    "HubSession",
    "HUB_PROTOCOLS",
    "HubStream",
    "Negotiator",
    "ReconnectPolicy",
    "ValueCodec",
    "default_negotiator",
    "engine_connector",
]

logger = logging.getLogger("voxta_proto.hub_client")

DEFAULT_RECONNECT_DELAYS: Final = (0.0, 2.0, 10.0, 30.0)
"""Seconds to wait before each reconnect attempt (as SignalR's JS client does)."""

T = TypeVar("T")
Handler = Callable[..., Any]
Negotiator = Callable[[str, ConnectOptions, bool], Awaitable[NegotiateOutcome]]
"""``(hub_url, options, use_stateful_reconnect) -> NegotiateOutcome``; swap it in tests."""

_LIVE: Final = frozenset({HubState.NEW, HubState.HANDSHAKING, HubState.OPEN,
                          HubState.DETACHED, HubState.REATTACHING})


@dataclass(frozen=True)
class ValueCodec:
    """How one hub protocol writes arguments, results and stream items (they travel as
    ``msgspec.Raw`` in that protocol's encoding), and the hub codec that frames them."""

    protocol: str
    encode: Callable[[Any], bytes]
    decode: Callable[..., Any]
    """``decode(raw, type=T)``, as ``msgspec.json.decode``."""
    hub_codec: Callable[[], HubCodec[msgspec.Raw]]

    def encode_args(self, args: Sequence[object]) -> tuple[msgspec.Raw, ...]:
        """Python values as hub arguments."""
        encode = self.encode
        return tuple(msgspec.Raw(encode(arg)) for arg in args)

    def decode_args(self, arguments: Sequence[msgspec.Raw]) -> list[Any]:
        """Hub arguments as plain Python values."""
        decode = self.decode
        return [decode(raw) for raw in arguments]


HUB_PROTOCOLS: Final[dict[str, ValueCodec]] = {
    "json": ValueCodec("json", msgspec.json.Encoder().encode, msgspec.json.decode, raw_codec),
    "messagepack": ValueCodec("messagepack", msgspec.msgpack.Encoder().encode,
                              msgspec.msgpack.decode, raw_messagepack_codec),
}
"""The hub protocols ``HubClient`` and ``HubServer`` speak, by handshake name."""
_JSON: Final = HUB_PROTOCOLS["json"]


def value_codec(protocol: str) -> ValueCodec:
    """The `ValueCodec` of ``protocol``.

    Raises:
        ValueError: not a protocol in `HUB_PROTOCOLS`.
    """
    try:
        return HUB_PROTOCOLS[protocol]
    except KeyError:
        raise ValueError(f"unknown hub protocol {protocol!r}; use one of "
                         f"{', '.join(map(repr, HUB_PROTOCOLS))}") from None


@dataclass(frozen=True)
class ReconnectPolicy:
    """When to retry after an unexpected disconnect; ``delays=()`` never reconnects."""

    delays: Sequence[float] = DEFAULT_RECONNECT_DELAYS

    def delay(self, attempt: int) -> float | None:
        """Seconds before attempt ``attempt`` (1-based), or None to give up."""
        return self.delays[attempt - 1] if attempt <= len(self.delays) else None


def engine_connector(websocket_engine: str) -> Connector:
    """The WebSocket connector for ``websocket_engine`` (``"wsproto"``, the default, or
    ``"websockets"`` where the transports support it).

    Raises:
        ValueError: the engine is unknown to this build of the transports.
    """
    if websocket_engine == "wsproto":
        return connect_websocket
    if "websocket_engine" not in inspect.signature(connect_websocket).parameters:
        raise ValueError(f"websocket_engine={websocket_engine!r}: this build only has the "
                         "'wsproto' engine")
    engine_connect: Any = connect_websocket

    async def connect(url: str, *, options: ConnectOptions) -> MessageTransport:
        transport: MessageTransport = await engine_connect(
            url, options=options, websocket_engine=websocket_engine)
        return transport

    return connect


async def default_negotiator(url: str, options: ConnectOptions, stateful: bool, *,
                             transfer_format: str = "Text") -> NegotiateOutcome:
    """Negotiate over HTTP (h11), within ``options.connect_timeout``; the server must
    offer WebSockets with ``transfer_format`` (``"Binary"`` for MessagePack)."""
    return await negotiate(url, options=options, use_stateful_reconnect=stateful,
                           timeout=options.connect_timeout, transfer_format=transfer_format)


class HubSession:
    """A [`HubConnection`][voxta_proto.hub.connection.HubConnection] (either role)
    shaped for the driver: queued bytes, timers answered (Ping, Ack) and timer events
    reported.

    A client speaks ``protocol``. A server speaks what the client's handshake asks for:
    it reads the handshake request first, builds its connection with that protocol's
    codec and answers (JSON and MessagePack accepted, anything else refused). Use
    `write` as the driver's writer and `encode_hint` as its hint encoder:
    MessagePack goes in binary messages, its (JSON) handshake request as text."""

    __slots__ = ("_config", "_handshake", "_out", "_room", "_waiting", "hub", "values")

    def __init__(self, role: Role, *, now: float, config: HubConfig,
                 protocol: str = "json") -> None:
        self.values: ValueCodec = value_codec(protocol)
        """The protocol's value encoding (a server's changes with the handshake)."""
        self.hub: HubConnection[msgspec.Raw] = HubConnection(
            role, now=now, config=config, codec=self.values.hub_codec())
        self._config = config
        self._out: list[bytes] = []
        self._handshake = bytearray()
        """Server role: the handshake request read so far (until its 0x1E)."""
        self._room = anyio.Event()
        self._waiting = 0
        """Tasks in `wait_for_room`."""

    @property
    def binary(self) -> bool:
        """The protocol is binary (MessagePack): written as binary WebSocket messages."""
        return self.values is not _JSON

    def send(self, message: Outgoing, *, now: float) -> None:
        """Queue ``message`` (while detached the hub keeps it for the replay)."""
        data = self.hub.send(message, now=now)
        if data:
            self._out.append(TextMessage(data) if type(message) is HandshakeRequest
                             and self.binary else data)

    async def wait_for_room(self) -> None:
        """Stateful reconnect backpressure, as ASP.NET Core applies it: while the replay
        buffer is full, wait until the peer's Ack frees room or the connection ends
        (nothing is refused or dropped meanwhile)."""
        self._waiting += 1
        try:
            while self.hub.send_would_block and self.alive():
                if self._room.is_set():
                    self._room = anyio.Event()
                await self._room.wait()
        finally:
            self._waiting -= 1

    def wake(self) -> None:
        """Let `wait_for_room` look again (room was freed, or the end came)."""
        if self._waiting:
            self._room.set()

    async def write(self, transport: MessageTransport, items: list[bytes]) -> None:
        """The driver's writer: text messages for JSON, binary ones for MessagePack."""
        if self.binary:
            await binary_writer(transport, items)
        else:
            await coalescing_writer(transport, items)

    def encode_hint(self, close: Close) -> bytes:
        """``close`` in this session's protocol, for the driver's hint to a bad peer."""
        return self.values.hub_codec().encode(close)

    def data_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def receive_data(self, data: bytes, *, now: float) -> list[object]:
        hub = self.hub
        if hub.role is Role.SERVER and hub.state is HubState.NEW:
            return self._receive_handshake(data, now)
        events: list[object] = hub.receive_data(data, now=now)  # type: ignore[assignment]
        if self._waiting:
            self._room.set()  # an Ack may have freed room
        return events

    def _receive_handshake(self, data: bytes, now: float) -> list[object]:
        """Server role: collect the handshake request, build the connection with the
        codec it asks for, and answer it before the traffic that may share its read
        (the hub refuses traffic until the answer went out)."""
        buffer = self._handshake
        searched = len(buffer)
        buffer += data
        end = buffer.find(b"\x1e", searched) + 1
        if not end:
            if len(buffer) <= self._config.max_record_size:
                return []
            end = len(buffer)  # the hub refuses the oversized record
        record, rest = bytes(buffer[:end]), bytes(buffer[end:])
        buffer.clear()
        try:
            protocol = decode_handshake_request(record[:-1]).protocol
        except ProtocolError:
            protocol = "json"  # the hub raises the right error for the record
        if protocol in HUB_PROTOCOLS and protocol != self.values.protocol:
            self.values = HUB_PROTOCOLS[protocol]
            self.hub = HubConnection(Role.SERVER, now=now, config=self._config,
                                     codec=self.values.hub_codec())
        hub = self.hub
        events: list[object] = list(hub.receive_data(record, now=now))
        for event in events:
            if isinstance(event, HandshakeRequest):
                self.send(HandshakeAccepted() if event.protocol in HUB_PROTOCOLS else
                          HandshakeRefused(error=f"The protocol '{event.protocol}' is not "
                                           "supported."), now=now)
        if rest and self.alive():
            events += hub.receive_data(rest, now=now)
        return events

    def receive_eof(self, *, now: float | None = None) -> list[object]:
        events: list[object] = list(self.hub.receive_eof(now=now))
        self.wake()
        return events

    def handle_timer(self, *, now: float) -> list[object]:
        events: list[object] = []
        for tick in self.hub.handle_timer(now=now):
            data = self.hub.answer_timer(tick, now=now)
            if data:
                self._out.append(data)
            events.append(tick)
        self.wake()  # a timeout may have ended the connection
        return events

    def next_deadline(self) -> float | None:
        return self.hub.next_deadline()

    def reattach(self, *, now: float) -> None:
        self._out.append(self.hub.reattach(now=now))

    def alive(self) -> bool:
        """Not CLOSED or in ERROR: the connection can still carry (or resume) traffic."""
        return self.hub.state in _LIVE


def decode_args(arguments: Sequence[msgspec.Raw]) -> list[Any]:
    """Hub arguments (JSON) as plain Python values."""
    return _JSON.decode_args(arguments)


def encode_args(args: Sequence[object]) -> tuple[msgspec.Raw, ...]:
    """Python values as hub arguments (JSON)."""
    return _JSON.encode_args(args)


class _Call:
    """One pending invocation: a single result, or the items of a stream."""

    __slots__ = ("done", "error", "items", "result", "wake")

    def __init__(self) -> None:
        self.items: deque[msgspec.Raw] = deque()
        self.result: msgspec.Raw | None = None
        self.error: BaseException | None = None
        self.done = False
        self.wake = anyio.Event()

    def item(self, raw: msgspec.Raw) -> None:
        self.items.append(raw)
        self.wake.set()

    def finish(self, result: msgspec.Raw | None = None,
               error: BaseException | None = None) -> None:
        if not self.done:
            self.done, self.result, self.error = True, result, error
            self.wake.set()


class HubStream(AsyncIterator[T]):
    """The items of ``HubClient.stream()``; leaving ``async with`` (or ``aclose()``)
    before the end sends CancelInvocation."""

    def __init__(self, client: HubClient, invocation_id: str, call: _Call,
                 item_type: type[T]) -> None:
        self._client, self._id, self._call, self._type = client, invocation_id, call, item_type

    def __aiter__(self) -> HubStream[T]:
        return self

    async def __anext__(self) -> T:
        call = self._call
        while not call.items:
            if call.done:
                if call.error is not None:
                    raise call.error
                raise StopAsyncIteration
            call.wake = anyio.Event()
            await call.wake.wait()
        return cast("T", self._client.values.decode(call.items.popleft(), type=self._type))

    async def aclose(self) -> None:
        """Stop the stream: the server is told with CancelInvocation."""
        if not self._call.done:
            self._call.finish()
            self._client._cancel(self._id)

    async def __aenter__(self) -> HubStream[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class HubClient:
    """An async SignalR client for any hub; see the module docstring.

    Args:
        url: the hub URL, e.g. ``"http://localhost:5000/chathub"``.
        options: headers, token, TLS, timeouts
            ([`ConnectOptions`][voxta_proto.transports.base.ConnectOptions]).
        hub_config: keep-alive interval, server timeout, limits.
        stateful_reconnect: ask for stateful reconnect (used when the server offers it).
        reconnect: a [`ReconnectPolicy`][voxta_proto.hub_client.ReconnectPolicy] or delays in
            seconds; ``()`` (the default) never reconnects; a stateful reattach is tried regardless.
        request_timeout: default seconds ``invoke`` waits; None waits forever.
        skip_negotiation: connect the WebSocket directly (no negotiate, no stateful
            reconnect), as the JS client's ``skipNegotiation``.
        connector: swaps the WebSocket connect (tests).
        negotiator: swaps negotiate (tests).
        websocket_engine: ``"wsproto"`` (default) or another engine the transports have.
        protocol: the hub protocol, ``"json"`` (default) or ``"messagepack"`` (negotiate
            asks for the Binary transfer format; everything after the JSON handshake
            goes in binary WebSocket messages).

    Raises:
        ValueError: an unknown ``protocol`` or ``websocket_engine``.
    """

    def __init__(
        self,
        url: str,
        *,
        options: ConnectOptions | None = None,
        hub_config: HubConfig | None = None,
        stateful_reconnect: bool = True,
        reconnect: ReconnectPolicy | Sequence[float] = (),
        request_timeout: float | None = 30.0,
        skip_negotiation: bool = False,
        connector: Connector | None = None,
        negotiator: Negotiator | None = None,
        websocket_engine: str = "wsproto",
        protocol: str = "json",
    ) -> None:
        self.values: Final = value_codec(protocol)
        """The hub protocol's value encoding (``values.protocol`` is its name)."""
        self.url = url.rstrip("/")
        self.options = options or ConnectOptions()
        self.hub_config = hub_config or HubConfig()
        self.stateful_reconnect = stateful_reconnect and not skip_negotiation
        self.reconnect_policy = (reconnect if isinstance(reconnect, ReconnectPolicy)
                                 else ReconnectPolicy(tuple(reconnect)))
        self.request_timeout = request_timeout
        self.skip_negotiation = skip_negotiation
        self._connector = connector or engine_connector(websocket_engine)
        transfer_format = self.values.hub_codec().transfer_format

        async def negotiate_format(url: str, options: ConnectOptions,
                                   stateful: bool) -> NegotiateOutcome:
            return await default_negotiator(url, options, stateful,
                                            transfer_format=transfer_format)

        self._negotiator: Negotiator = negotiator or negotiate_format
        self._handlers: dict[str, list[Handler]] = {}
        self._calls: dict[str, _Call] = {}
        self._ids = map(str, itertools.count(1))
        self._session: HubSession | None = None
        self._driver: Driver[object] | None = None
        self._inbox: deque[Invocation[msgspec.Raw]] = deque()
        self._inbox_wake = anyio.Event()
        self._opened = anyio.Event()
        self._closing = False
        self._error: BaseException | None = None
        self._tg: TaskGroup | None = None
        self.reattach_count = 0
        """Stateful reattaches so far (each resumed the same connection, nothing lost)."""

    # -- handlers ----------------------------------------------------------------------

    def on(self, target: str, handler: Handler) -> Handler:
        """Call ``handler(*args)`` (sync or async) for each server invocation of
        ``target`` (case-insensitive, as SignalR matches). Handlers run one at a time in
        the dispatch task, never in the reader. When the server awaits a result (the
        invocation has an id), the first handler's return value answers it, and its
        exception becomes the error."""
        self._handlers.setdefault(target.lower(), []).append(handler)
        return handler

    # -- calls -------------------------------------------------------------------------

    def _live(self) -> tuple[HubSession, Driver[object]]:
        session, driver = self._session, self._driver
        if session is None or driver is None or not session.alive() or self._closing:
            raise ConnectionClosed("not connected")
        return session, driver

    def _queue(self, message: Outgoing) -> None:
        session, driver = self._live()
        session.send(message, now=anyio.current_time())
        driver.transmit()

    async def _queue_when_room(self, message: Outgoing) -> None:
        """`_queue`, after waiting while the stateful replay buffer is full."""
        session, _ = self._live()
        await session.wait_for_room()
        self._queue(message)

    def _queue_soon(self, message: Outgoing) -> None:
        """`_queue` for the calls that cannot wait (``stream()``, a cancel): while
        the replay buffer is full, a task queues ``message`` once there is room."""
        session, _ = self._live()
        tg = self._tg
        if tg is None or not session.hub.send_would_block:
            self._queue(message)
        else:
            tg.start_soon(self._queue_later, message)

    async def _queue_later(self, message: Outgoing) -> None:
        try:
            await self._queue_when_room(message)
        except VoxtaProtoError as exc:  # the calls fail with the connection
            logger.debug("could not send %s: %s", type(message).__name__, exc)

    async def send(self, target: str, *args: object) -> None:
        """Invoke ``target`` without waiting for (or getting) a result.

        Raises:
            ConnectionClosed: not connected.
        """
        await self._queue_when_room(Invocation(target=target,
                                               arguments=self.values.encode_args(args)))

    async def invoke(self, target: str, *args: object, result_type: type[T] = Any,  # type: ignore[assignment]
                     timeout: float | None = None) -> T:  # noqa: ASYNC109
        """Invoke ``target`` and return its result (decoded as ``result_type``).

        Raises:
            InvocationError: the hub method failed (the server's error text).
            ConnectionClosed: not connected, or the connection ended first.
            TimeoutError: no result within ``timeout`` (default ``request_timeout``).
        """
        invocation_id = next(self._ids)
        call = self._calls[invocation_id] = _Call()
        try:
            await self._queue_when_room(Invocation(
                target=target, arguments=self.values.encode_args(args),
                invocation_id=invocation_id))
            limit = self.request_timeout if timeout is None else timeout
            with anyio.move_on_after(math.inf if limit is None else limit):
                await call.wake.wait()
            if not call.done:
                raise TimeoutError(f"no result for {target} within {limit} s")
        finally:
            self._calls.pop(invocation_id, None)
        if call.error is not None:
            raise call.error
        values = self.values
        raw = call.result if call.result is not None else values.encode(None)
        return cast("T", values.decode(raw, type=result_type))

    def stream(self, target: str, *args: object,
               item_type: type[T] = Any) -> HubStream[T]:  # type: ignore[assignment]
        """Start the server stream ``target``; iterate the result (``async with`` it to
        cancel on exit).

        Raises:
            ConnectionClosed: not connected.
        """
        invocation_id = next(self._ids)
        call = self._calls[invocation_id] = _Call()
        try:
            self._queue_soon(StreamInvocation(invocation_id=invocation_id, target=target,
                                              arguments=self.values.encode_args(args)))
        except BaseException:
            del self._calls[invocation_id]
            raise
        return HubStream(self, invocation_id, call, item_type)

    def _cancel(self, invocation_id: str) -> None:
        self._calls.pop(invocation_id, None)
        try:
            self._queue_soon(CancelInvocation(invocation_id=invocation_id))
        except VoxtaProtoError as exc:
            logger.debug("could not cancel stream %s: %s", invocation_id, exc)

    # -- events from the driver (reader task: never blocks) ----------------------------

    def _on_events(self, events: list[object]) -> None:
        calls = self._calls
        for event in events:
            kind = type(event)
            if kind is StreamItem:
                item = cast("StreamItem", event)
                call = calls.get(item.invocation_id)
                if call is not None:
                    call.item(item.item)
            elif kind is Completion:
                completion = cast("Completion", event)
                call = calls.pop(completion.invocation_id, None)
                if call is not None:
                    call.finish(
                        completion.result if completion.has_result else None,  # type: ignore[arg-type]
                        None if completion.error is None
                        else InvocationError(completion.invocation_id, completion.error))
            elif kind is Invocation:
                self._inbox.append(cast("Invocation[msgspec.Raw]", event))
                self._inbox_wake.set()
            elif kind is HandshakeAccepted:
                self._opened.set()
            elif kind is HandshakeRefused:
                self._error = HandshakeRejected(
                    f"handshake refused: {cast('HandshakeRefused', event).error}")
            elif kind is Close:
                close = cast("Close", event)
                self._error = ConnectionClosed(close.error,
                                               allow_reconnect=close.allow_reconnect)
            elif kind is PeerTimedOut:
                self._error = ConnectionClosed(
                    f"server sent nothing for {cast('PeerTimedOut', event).silent_for:.1f} s",
                    allow_reconnect=True)
            elif kind in (HandshakeTimedOut, ReattachTimedOut):
                self._error = ConnectionClosed(f"{kind.__name__}", allow_reconnect=True)
            elif kind is Reattached:
                logger.debug("reattached")
            elif kind is ConnectionLost:
                logger.debug("connection lost: %r", event)

    def _fail_calls(self, error: BaseException) -> None:
        calls, self._calls = self._calls, {}
        for call in calls.values():
            call.finish(error=error)

    # -- dispatch task: handlers and client results ------------------------------------

    async def _dispatch(self) -> None:
        while True:
            while not self._inbox:
                self._inbox_wake = anyio.Event()
                await self._inbox_wake.wait()
            invocation = self._inbox.popleft()
            await self._handle(invocation)

    async def _handle(self, invocation: Invocation[msgspec.Raw]) -> None:
        handlers = self._handlers.get(invocation.target.lower(), [])
        wants_result = invocation.invocation_id is not None
        result: object = None
        error: str | None = None
        if not handlers:
            logger.warning("no handler for %r", invocation.target)
            error = f"Client didn't provide a result: no handler for '{invocation.target}'"
        else:
            try:
                args = self.values.decode_args(invocation.arguments)
            except msgspec.DecodeError as exc:
                args, error = [], f"bad arguments: {exc}"
            for index, handler in enumerate(handlers if error is None else ()):
                try:
                    value = handler(*args)
                    if inspect.isawaitable(value):
                        value = await value
                except Exception as exc:
                    logger.exception("handler %r for %r failed", handler, invocation.target)
                    if index == 0:
                        error = f"{type(exc).__name__}: {exc}"
                    continue
                if index == 0:
                    result = value
        if wants_result:
            assert invocation.invocation_id is not None
            answer = (Completion(invocation_id=invocation.invocation_id, error=error)
                      if error is not None else
                      Completion(invocation_id=invocation.invocation_id,
                                 result=msgspec.Raw(self.values.encode(result))))
            try:
                await self._queue_when_room(answer)
            except ConnectionClosed as exc:
                logger.debug("could not answer %r: %s", invocation.target, exc)

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> HubClient:
        """Negotiate, connect and finish the handshake.

        Raises:
            NegotiationError, TransportError, HandshakeRejected, TimeoutError: connecting
                failed.
        """
        tg = anyio.create_task_group()
        await tg.__aenter__()
        try:
            outcome = await self._negotiate()
            transport = await self._connect(outcome)
            self._start_session(outcome)
            self._tg = tg
            tg.start_soon(self._run, outcome, transport)
            tg.start_soon(self._dispatch)
            with anyio.fail_after(self.options.connect_timeout or math.inf):
                await self._opened.wait()
            if self._error is not None:
                raise self._error
        except BaseException:
            self._closing = True
            tg.cancel_scope.cancel()
            # Leave the group without handing it our exception, which would come back
            # wrapped in an ExceptionGroup: callers catch NegotiationError and the rest.
            await tg.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        """Close, then leave the task group ``__aenter__`` entered."""
        tg, self._tg = self._tg, None
        try:
            await self.close()
        finally:
            if tg is not None:
                tg.cancel_scope.cancel()
                await tg.__aexit__(exc_type, exc, tb)

    async def close(self) -> None:
        """Send Close, then close the WebSocket; pending calls raise ConnectionClosed."""
        if self._closing:
            return
        self._closing = True
        session, driver = self._session, self._driver
        if session is not None:
            if session.hub.state in (HubState.OPEN, HubState.DETACHED):
                session.send(Close(), now=anyio.current_time())
            session.wake()
        if driver is not None:
            await driver.close()
        self._fail_calls(ConnectionClosed("the client was closed"))

    async def _negotiate(self) -> NegotiateOutcome | None:
        if self.skip_negotiation:
            return None
        return await self._negotiator(self.url, self.options, self.stateful_reconnect)

    async def _connect(self, outcome: NegotiateOutcome | None) -> MessageTransport:
        if outcome is None:
            return await self._connector(self.url, options=self.options)
        url = build_websocket_url(outcome.base_url,
                                  connection_token=outcome.result.connection_token)
        return await self._connector(url, options=outcome.connect_options(self.options))

    def _start_session(self, outcome: NegotiateOutcome | None) -> None:
        stateful = bool(self.stateful_reconnect and outcome is not None
                        and outcome.result.use_stateful_reconnect)
        now = anyio.current_time()
        protocol = self.values.protocol
        session = HubSession(Role.CLIENT, now=now, protocol=protocol,
                             config=replace(self.hub_config, stateful_reconnect=stateful))
        session.send(HandshakeRequest(protocol=protocol, version=2 if stateful else 1),
                     now=now)
        self._session = session
        self._driver = Driver(session, on_events=self._on_events, alive=session.alive,
                              writer=binary_writer if session.binary else coalescing_writer,
                              encode_hint=session.encode_hint)

    async def _run(self, outcome: NegotiateOutcome | None,
                   transport: MessageTransport) -> None:
        """Drive the connection; reattach (stateful) or reconnect (policy) after a loss."""
        reattach = False
        attempt = 0
        try:
            while True:
                session, driver = self._session, self._driver
                assert session is not None
                assert driver is not None
                try:
                    ended = await driver.run(transport, reattach=reattach)
                except ProtocolError as exc:
                    self._error = exc
                    return
                if self._closing:
                    return
                reattach = session.hub.state is HubState.DETACHED
                if ended is DriverState.CLOSED and not reattach:
                    return  # a Close, a refusal or a timeout: _error says which
                if not reattach:
                    self._fail_calls(ConnectionClosed("the connection was lost",
                                                      allow_reconnect=True))
                while True:
                    attempt += 1
                    delay = self.reconnect_policy.delay(attempt)
                    if delay is None and not (reattach and attempt == 1):
                        self._error = ConnectionClosed(
                            f"gave up reconnecting after {attempt - 1} attempts",
                            allow_reconnect=True)
                        return
                    await anyio.sleep(delay or 0.0)
                    try:
                        if not reattach:
                            outcome = await self._negotiate()
                        transport = await self._connect(outcome)
                    except (TransportError, NegotiationError, HandshakeRejected,
                            TimeoutError) as exc:
                        logger.warning("reconnect attempt %d failed: %s", attempt, exc)
                        if reattach:  # past the reattach timeout the session is over
                            self._on_events(session.handle_timer(now=anyio.current_time()))
                            if session.hub.state is not HubState.DETACHED:
                                reattach = False
                                self._fail_calls(ConnectionClosed("could not reattach"))
                        continue
                    break
                attempt = 0
                if reattach:
                    self.reattach_count += 1
                else:
                    self._opened = anyio.Event()
                    self._start_session(outcome)
        finally:
            self._fail_calls(self._error or ConnectionClosed("the connection ended"))
            self._opened.set()
            if self._session is not None:
                self._session.wake()
