"""The mock's I/O: HTTP, negotiate, the hub WebSocket and REST on anyio (asyncio or trio).

Per hub connection a :class:`~voxta_proto.voxta.server.VoxtaServerSession` does the
SignalR and Voxta checks, the :class:`~voxta_mock.engine.MockEngine` decides what to
answer, and this module only moves bytes, sleeps between streamed chunks and applies
fault plans. Each connection runs in its own task and its errors end only that
connection.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import msgspec
from anyio.abc import ByteStream, SocketAttribute

from voxta_mock.data import DEFAULT_DATA, MockData
from voxta_mock.engine import Complete, Emit, MockEngine, Step, Wait
from voxta_mock.faults import FaultPlan, split_message
from voxta_mock.rest import NO_AUTH_PATHS, MockRest
from voxta_proto import RemoteProtocolError, TransportError
from voxta_proto.hub import HubConfig
from voxta_proto.transports import (
    DEFAULT_MAX_MESSAGE_SIZE,
    HttpRequest,
    HttpResponse,
    MemoryTransport,
    MessageTransport,
    ServerAddress,
    WebSocketUpgrade,
    memory_transport_pair,
    serve_listener,
)
from voxta_proto.voxta import (
    Authenticate,
    ChatsSessionsUpdated,
    DownloadProgress,
    DownloadStatus,
    ReplyChunk,
)
from voxta_proto.voxta.server import ClientRequest, ServerState, VoxtaServerSession
from voxta_proto.voxta.session import Disconnected

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "AudioStream", "MockVoxtaServer"]

logger = logging.getLogger("voxta_mock")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5384
_JSON = (("Content-Type", "application/json; charset=utf-8"),)
_TEXT = (("Content-Type", "text/plain; charset=utf-8"),)


@dataclass
class AudioStream:
    """What one ``/ws/audio/input/stream`` client sent: its spec and how much PCM."""

    session_id: str | None
    spec: dict[str, Any] | None = None
    frames: int = 0
    bytes: int = 0
    closed: bool = False


@dataclass
class _HubConn:
    key: str
    session: VoxtaServerSession
    transport: MessageTransport
    plan: FaultPlan
    peer: tuple[str, int] | None
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    silent: bool = False
    chunks: int = 0
    dead: bool = False


class _TrackingListener(anyio.abc.Listener[ByteStream]):
    """Wraps a TCP listener to remember each connection's stream by peer address, so a
    fault can drop a connection at the TCP level (no close frame)."""

    def __init__(self, inner: anyio.abc.Listener[ByteStream],
                 streams: dict[tuple[str, int], ByteStream]) -> None:
        self._inner = inner
        self._streams = streams

    async def serve(self, handler: Callable[[ByteStream], Any],
                    task_group: anyio.abc.TaskGroup | None = None) -> None:
        async def tracked(stream: ByteStream) -> None:
            address = stream.extra(SocketAttribute.remote_address, None)
            key = (str(address[0]), int(address[1])) if isinstance(address, tuple) else None
            if key is not None:
                self._streams[key] = stream
            try:
                await handler(stream)
            finally:
                if key is not None:
                    self._streams.pop(key, None)

        await self._inner.serve(tracked, task_group)

    async def aclose(self) -> None:
        await self._inner.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self._inner.extra_attributes


class MockVoxtaServer:
    """A mock Voxta server; ``async with MockVoxtaServer(port=0) as server:``.

    Args:
        host, port: where to listen (port 0 picks a free one); ``listen=False`` serves
            only in-memory clients (:meth:`connect_memory`).
        data: characters, scenarios, chats, replies and scripts.
        seed: makes ids and replies reproducible.
        reply_delay: seconds between streamed reply chunks.
        auth_token: when set, every request needs ``Authorization: Bearer <token>`` or
            ``access_token=<token>`` (else 401).
        preseed_session: start with a session owned by a virtual UI connection.
        speech: text-to-speech with client playback for clients that authenticate with
            ``audioOutput: "Url"`` (see ``MockEngine``); off: speech disabled.
        keepalive_interval: seconds of silence before the server sends a Ping.
        client_timeout: seconds a client may stay silent before it is dropped (None:
            never).
        stateful_reconnect: offer stateful reconnect to clients that ask for it.
        faults: a fault plan for every hub connection.
        connection_faults: fault plans for the n-th hub connection (0-based).
        broadcast_sessions: send ``chatsSessionsUpdated`` user-wide, as Voxta does; False
            sends it to the requesting connection only (for load tests: with N clients
            each running a chat, the broadcast is N messages of N sessions per start).
    """

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        data: MockData = DEFAULT_DATA,
        seed: int = 0,
        reply_delay: float = 0.03,
        auth_token: str | None = None,
        preseed_session: bool = False,
        speech: bool = False,
        keepalive_interval: float = 15.0,
        client_timeout: float | None = 30.0,
        stateful_reconnect: bool = False,
        faults: FaultPlan | None = None,
        connection_faults: Mapping[int, FaultPlan] | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        listen: bool = True,
        clock: Callable[[], float] = time.time,
        broadcast_sessions: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.listen = listen
        self.auth_token = auth_token
        self.engine = MockEngine(data, seed=seed, reply_delay=reply_delay, clock=clock,
                                 preseed_session=preseed_session, speech=speech)
        self.rest = MockRest(self.engine, auth_token=auth_token)
        self.hub_config = HubConfig(keepalive_interval=keepalive_interval,
                                    peer_timeout=client_timeout,
                                    stateful_reconnect=stateful_reconnect)
        self.faults = faults or FaultPlan()
        self.connection_faults: dict[int, FaultPlan] = dict(connection_faults or {})
        self.max_message_size = max_message_size
        self.broadcast_sessions = broadcast_sessions
        self.audio_streams: list[AudioStream] = []
        self.address: ServerAddress | None = None
        self._conns: dict[str, _HubConn] = {}
        self._pending: dict[str, str] = {}
        self._counter = itertools.count()
        self._lanes: dict[str, deque[tuple[_HubConn | None, str | None, Iterator[Step]]]] = {}
        self._streams: dict[tuple[str, int], ByteStream] = {}
        self._tg: anyio.abc.TaskGroup | None = None

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server (no trailing slash)."""
        if self.address is None:
            raise RuntimeError("the server is not listening")
        return self.address.url("http", "").rstrip("/")

    @property
    def hub_url(self) -> str:
        """The hub URL clients negotiate against: ``{url}/hub``."""
        return f"{self.url}/hub"

    async def __aenter__(self) -> MockVoxtaServer:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            if self.listen:
                listener = await anyio.create_tcp_listener(local_host=self.host,
                                                           local_port=self.port)
                tracking = _TrackingListener(listener, self._streams)
                self.address = await self._tg.start(self._serve, tracking)
        except BaseException:
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)
            raise
        return self

    async def _serve(self, listener: _TrackingListener,
                     task_status: anyio.abc.TaskStatus[ServerAddress]) -> None:
        async with listener:
            await serve_listener(self._app, listener, max_message_size=self.max_message_size,
                                 task_status=task_status)

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> bool | None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        return await self._tg.__aexit__(exc_type, exc, tb)

    def set_faults(self, plan: FaultPlan | None, *, connection: int | None = None) -> None:
        """Change the fault plan of all future connections, or of the n-th one."""
        if connection is None:
            self.faults = plan or FaultPlan()
        elif plan is None:
            self.connection_faults.pop(connection, None)
        else:
            self.connection_faults[connection] = plan

    async def connect_memory(self) -> MemoryTransport:
        """A client transport wired to this server in memory (no socket, no negotiate)."""
        if self._tg is None:
            raise RuntimeError("use the server inside 'async with'")
        client, server_end = memory_transport_pair()
        self._tg.start_soon(self._run_hub, server_end, None)
        return client

    # -- HTTP --------------------------------------------------------------------------

    def _authorized(self, request: HttpRequest) -> bool:
        if self.auth_token is None:
            return True
        header = request.header("authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and secrets.compare_digest(value.strip(),
                                                                 self.auth_token):
            return True
        query = request.query_param("access_token")
        return query is not None and secrets.compare_digest(query, self.auth_token)

    async def _app(self, request: HttpRequest) -> HttpResponse | WebSocketUpgrade:
        path = request.path.rstrip("/") or "/"
        if path not in NO_AUTH_PATHS and not self._authorized(request):
            return HttpResponse(401, (*_TEXT, ("WWW-Authenticate", "Bearer")), b"Unauthorized")
        if path == "/hub/negotiate":
            if request.method != "POST":
                return HttpResponse(405, (*_TEXT, ("Allow", "POST")), b"negotiate needs POST")
            return self._negotiate(request)
        if path == "/hub":
            if not request.is_websocket_upgrade:
                return HttpResponse(400, _TEXT, b"Connection ID required")
            token = request.query_param("id")
            if token is not None:
                key = self._pending.pop(token, None)
                if key is None:
                    status = 409 if any(k == token for k in self._conns) else 404
                    return HttpResponse(status, _TEXT, b"No Connection with that ID")
            else:
                key = None
            return WebSocketUpgrade(lambda t, r: self._run_hub(t, key, r.client))
        if path == "/ws/audio/input/stream":
            return WebSocketUpgrade(self._run_audio)
        response = self.rest.handle(request) if path.startswith("/api/") else None
        return response or HttpResponse(404, _TEXT, b"Not Found")

    def _negotiate(self, request: HttpRequest) -> HttpResponse:
        version = 1 if request.query_param("negotiateVersion") not in (None, "0") else 0
        key = self._new_key()
        body: dict[str, Any] = {"negotiateVersion": version, "connectionId": key}
        if version >= 1:
            token = secrets.token_urlsafe(16)
            body["connectionToken"] = token
            self._pending[token] = key
        else:
            self._pending[key] = key
        body["availableTransports"] = [
            {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}]
        if (self.hub_config.stateful_reconnect
                and request.query_param("useStatefulReconnect") == "true"):
            body["useStatefulReconnect"] = True
        return HttpResponse(200, _JSON, msgspec.json.encode(body))

    def _new_key(self) -> str:
        return secrets.token_urlsafe(16)

    # -- hub connections ---------------------------------------------------------------

    async def _run_hub(self, transport: MessageTransport, key: str | None,
                       peer: tuple[str, int] | None = None) -> None:
        key = key or self._new_key()
        number = next(self._counter)
        plan = self.connection_faults.get(number, self.faults)
        session = VoxtaServerSession(now=anyio.current_time(), hub_config=self.hub_config,
                                     refuse_handshake=plan.refuse_handshake)
        conn = _HubConn(key, session, transport, plan, peer)
        self._conns[key] = conn
        self.engine.connect(key)
        try:
            with conn.scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._timer, conn)
                    await self._receive_loop(conn)
                    tg.cancel_scope.cancel()
        finally:
            self._conns.pop(key, None)
            with anyio.CancelScope(shield=True):
                await self._drive(None, None, self.engine.disconnect(key), key)
                if isinstance(transport, MemoryTransport):
                    await transport.aclose()

    async def _receive_loop(self, conn: _HubConn) -> None:
        session = conn.session
        while not conn.dead:
            try:
                data = await conn.transport.receive()
            except TransportError:
                session.receive_eof(now=anyio.current_time())
                return
            before = session.state
            try:
                events = session.receive_data(data.encode() if isinstance(data, str) else data,
                                              now=anyio.current_time())
            except RemoteProtocolError as exc:
                logger.info("connection %s broke the protocol: %s", conn.key, exc)
                if exc.close_hint is not None:
                    session.close(now=anyio.current_time(), error=exc.close_hint.error)
                await self._flush(conn)
                return
            await self._flush(conn)
            if before is ServerState.NEW and session.state is ServerState.CONNECTED:
                await self._after_handshake(conn)
            for event in events:
                if isinstance(event, Disconnected):
                    return
                if isinstance(event, ClientRequest):
                    await self._request(conn, event)
            if session.state is ServerState.CLOSED:
                return

    async def _after_handshake(self, conn: _HubConn) -> None:
        if conn.plan.garbage_after_handshake:
            await self._raw_send(conn, "this is not json\x1e")
        if conn.plan.silent_after_handshake:
            conn.silent = True

    async def _request(self, conn: _HubConn, request: ClientRequest) -> None:
        steps = self.engine.handle(conn.key, request.message)
        lane = getattr(request.message, "session_id", None) or conn.key
        await self._drive(conn, request.invocation_id, steps, lane)
        if isinstance(request.message, Authenticate):
            plan = conn.plan
            if plan.oversized_after_authenticate:
                conn.session.send(DownloadProgress(
                    id="x" * plan.oversized_after_authenticate, target="oversized",
                    status=DownloadStatus.PENDING, percent=0.0), now=anyio.current_time())
                await self._flush(conn)
            if plan.close_after_authenticate is not None:
                conn.session.close(now=anyio.current_time(),
                                   error=plan.close_after_authenticate,
                                   allow_reconnect=plan.allow_reconnect)
                await self._flush(conn)
                await conn.transport.aclose()
                conn.dead = True

    async def _drive(self, origin: _HubConn | None, invocation_id: str | None,
                     steps: Iterator[Step], lane: str) -> None:
        """Run steps until the first ``Wait``; the rest plays on the lane's task."""
        for step in steps:
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
            await self._apply(origin, invocation_id, step)

    async def _play_lane(self, lane: str) -> None:
        queue = self._lanes[lane]
        try:
            while queue:
                origin, invocation_id, steps = queue.popleft()
                for step in steps:
                    if isinstance(step, Wait):
                        await anyio.sleep(step.seconds)
                    else:
                        await self._apply(origin, invocation_id, step)
        finally:
            self._lanes.pop(lane, None)

    async def _apply(self, origin: _HubConn | None, invocation_id: str | None,
                     step: Step) -> None:
        now = anyio.current_time()
        if isinstance(step, Complete):
            if (origin is not None and invocation_id is not None
                    and invocation_id in origin.session.owed_completions):
                origin.session.complete(invocation_id, now=now, error=step.error)
                await self._flush(origin)
            return
        if not isinstance(step, Emit):
            return
        targets = step.to
        if not self.broadcast_sessions and isinstance(step.message, ChatsSessionsUpdated):
            targets = (origin.key,) if origin is not None else ()
        for target in targets:
            conn = self._conns.get(target)
            if conn is None or conn.dead or conn.session.state is ServerState.CLOSED:
                continue
            conn.session.send(step.message, now=now)
            await self._flush(conn)
            if isinstance(step.message, ReplyChunk) and conn.plan.drop_after_chunks is not None:
                conn.chunks += 1
                if conn.chunks >= conn.plan.drop_after_chunks:
                    await self._drop(conn)

    async def _drop(self, conn: _HubConn) -> None:
        """Fault: end the TCP connection without a Close message or a close frame."""
        conn.dead = True
        stream = self._streams.get(conn.peer) if conn.peer else None
        if stream is not None:
            await anyio.aclose_forcefully(stream)
        else:
            await conn.transport.aclose(1011, "dropped")
        conn.scope.cancel()

    async def _raw_send(self, conn: _HubConn, message: str | bytes) -> None:
        async with conn.lock:
            try:
                await conn.transport.send(message)
            except TransportError:
                conn.dead = True
                conn.scope.cancel()

    async def _flush(self, conn: _HubConn) -> None:
        async with conn.lock:
            messages = conn.session.data_to_send()
            if conn.silent or conn.dead:
                return
            try:
                for data in messages:
                    if conn.plan.latency:
                        await anyio.sleep(conn.plan.latency)
                    if conn.plan.split_every:
                        for piece in split_message(data, conn.plan.split_every):
                            await conn.transport.send(piece)
                    else:
                        await conn.transport.send(data.decode("utf-8"))
            except TransportError as exc:
                logger.debug("connection %s: send failed: %s", conn.key, exc)
                conn.dead = True
                conn.scope.cancel()

    async def _timer(self, conn: _HubConn) -> None:
        """Keep-alive pings and the client timeout, each woken at its deadline (so a Ping
        follows the last message by at most ``keepalive_interval``), rechecked at least
        every tick."""
        tick = min(1.0, self.hub_config.keepalive_interval / 2)
        while True:
            deadline = conn.session.next_deadline()
            delay = tick if deadline is None else deadline - anyio.current_time()
            await anyio.sleep(min(tick, max(0.0, delay)))
            events = conn.session.handle_timer(now=anyio.current_time())
            await self._flush(conn)
            if any(isinstance(e, Disconnected) for e in events):
                logger.info("connection %s timed out", conn.key)
                await conn.transport.aclose(1000)
                conn.scope.cancel()
                return

    # -- audio input -------------------------------------------------------------------

    async def _run_audio(self, transport: Any, request: HttpRequest) -> None:
        """Audio input stream (reference §2.3): a JSON spec, then binary PCM; counted."""
        stats = AudioStream(request.query_param("sessionId"))
        self.audio_streams.append(stats)
        try:
            while True:
                message = await transport.receive()
                if isinstance(message, str):
                    try:
                        decoded = msgspec.json.decode(message)
                    except msgspec.DecodeError:
                        await transport.aclose(1003, "invalid JSON")
                        return
                    if stats.spec is None and isinstance(decoded, dict):
                        stats.spec = decoded
                else:
                    stats.frames += 1
                    stats.bytes += len(message)
        except TransportError:
            return
        finally:
            stats.closed = True
