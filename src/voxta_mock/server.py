"""The mock's I/O: HTTP, negotiate, the hub WebSocket and REST on anyio (asyncio or trio).

Per hub connection a [`VoxtaServerSession`][voxta_proto.voxta.server.VoxtaServerSession] does the
SignalR and Voxta checks, the [`MockEngine`][voxta_mock.engine.MockEngine] decides what to
answer, and this module only moves bytes, sleeps between streamed chunks and applies
fault plans. Each connection runs in its own task and its errors end only that
connection.
"""

from __future__ import annotations

import inspect
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, overload
from urllib.parse import parse_qsl, urlsplit

import anyio
import anyio.abc
import msgspec
from anyio.abc import ByteStream, SocketAttribute

from voxta_mock.admin import (
    ChatState,
    ConnectionState,
    MockAdmin,
    MockState,
    SessionState,
    is_admin_path,
)
from voxta_mock.cassette import Cassette, ReplayMismatch
from voxta_mock.connection import DEFAULT_MAX_OUTPUT, HubConn, fault_writer
from voxta_mock.data import DEFAULT_DATA, MockData
from voxta_mock.engine import MockEngine, Step
from voxta_mock.expectations import Expectation, Expectations
from voxta_mock.faults import FaultPlan
from voxta_mock.inspector import INSPECTOR_PATHS, LiveFeed, inspector_page
from voxta_mock.journal import (
    DEFAULT_MAXLEN,
    Journal,
    JournalEntry,
    ReceivedMessage,
    SentMessage,
    entry_json,
)
from voxta_mock.lanes import ChatLanes
from voxta_mock.record import _redact_json
from voxta_mock.replay import Replayer
from voxta_mock.rest import NO_AUTH_PATHS, MockRest
from voxta_proto import HandshakeRejected, ProtocolError, TransportError
from voxta_proto.driver import DEFAULT_WRITE_TIMEOUT, Driver
from voxta_proto.errors import TransportTimeout, WriteAborted, WriteError
from voxta_proto.hub import HubConfig, HubState, SendUnblocked
from voxta_proto.hub.negotiate import NegotiateResult, parse_negotiate_response
from voxta_proto.transports import (
    DEFAULT_MAX_MESSAGE_SIZE,
    HttpRequest,
    HttpResponse,
    MemoryTransport,
    MessageTransport,
    NegotiateOutcome,
    ServerAddress,
    WebSocketUpgrade,
    memory_transport_pair,
    serve_listener,
)
from voxta_proto.transports.websocket import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_MAX_PENDING_CONNECTIONS,
    DEFAULT_REQUEST_TIMEOUT,
)
from voxta_proto.voxta import (
    Authenticate,
    AuthenticationRequired,
    ComputerVisionSource,
    DownloadProgress,
    DownloadStatus,
    ServerMessage,
)
from voxta_proto.voxta.server import ClientRequest, ServerEvent, ServerState, VoxtaServerSession

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "AudioStream", "MockVoxtaServer"]

logger = logging.getLogger("voxta_mock")
MessageT = TypeVar("MessageT")
traffic_logger = logging.getLogger("voxta_mock.traffic")
"""``verbose`` traffic lines (``voxta-mock -v``/``-vv``) go here, at INFO."""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5384
_JSON = (("Content-Type", "application/json; charset=utf-8"),)
_TEXT = (("Content-Type", "text/plain; charset=utf-8"),)
DEFAULT_TOKEN_LIFETIME = 15.0
"""Seconds a negotiated connection token stays valid unused (ASP.NET Core's
DisconnectTimeout default, SIGNALR_NOTES)."""


@dataclass
class AudioStream:
    """What one ``/ws/audio/input/stream`` client sent: its spec and how much PCM."""

    session_id: str | None
    spec: dict[str, Any] | None = None
    frames: int = 0
    bytes: int = 0
    closed: bool = False


def _feed_entry(entry: JournalEntry) -> dict[str, Any]:
    """A journal entry as the inspector's feed sends it: ``type`` is the ``$type``,
    ``METHOD /path`` or ``audio``; ``session_id`` as the page reads it."""
    data = entry_json(entry)
    session_id = data.pop("sessionId")
    if data["kind"] == "rest":
        data["type"] = f"{data['method']} {data['path']}"
    elif data["kind"] == "audio":
        data["type"] = "audio"
    data["session_id"] = session_id
    return data


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


def _stalled_write(error: BaseException | None, conn: HubConn) -> bool:
    """The transport was lost in a write that ran out of time: the write's own error, or
    ``WriteAborted`` when the reader saw the aborted connection first (on trio,
    fault_writer's cancelled write), once the write's deadline has passed (a peer that
    reset the connection fails a write at once: that is a lost connection, not a client
    that does not read)."""
    return (isinstance(error, WriteError | TransportTimeout | WriteAborted)
            and anyio.current_time() >= conn.write_deadline)


class MockVoxtaServer(ChatLanes):
    """A mock Voxta server; ``async with MockVoxtaServer(port=0) as server:``.

    Args:
        host: the address to listen on.
        port: the port to listen on; 0 picks a free one.
        data: characters, scenarios, chats, replies and scripts.
        seed: makes ids and replies reproducible.
        reply_delay: seconds between streamed reply chunks.
        auth_token: when set, every request needs ``Authorization: Bearer <token>`` or
            ``access_token=<token>`` (else 401).
        preseed_session: start with a session owned by a virtual UI connection.
        speech: text-to-speech with client playback for clients that authenticate with
            ``audioOutput: "Url"`` (see ``MockEngine``); off: speech disabled.
        keepalive_interval: seconds of silence before the server sends a Ping.
        client_timeout: seconds a client may stay silent (no hub message and no WebSocket
            ping) before it is dropped (None: never).
        stateful_reconnect: offer stateful reconnect to clients that ask for it; when
            such a connection's transport ends without a Close, it waits (the hub
            config's ``reattach_timeout``) for a new WebSocket to ``/hub?id=<token>``
            and resumes on it, replaying what the client has not acknowledged.
        faults: a fault plan for every hub connection.
        connection_faults: fault plans for the n-th hub connection (0-based).
        max_message_size: the largest WebSocket message accepted, in bytes.
        listen: False serves only in-memory clients
            ([`connect_memory()`][voxta_mock.server.MockVoxtaServer.connect_memory]), no socket.
        clock: wall-clock seconds, for timestamps and the chat clock.
        broadcast_sessions: send ``chatsSessionsUpdated`` user-wide, as Voxta does; False
            sends it to the requesting connection only. Not needed for load: the
            broadcast is paced (``voxta_mock.connection.SNAPSHOTS``).
        websocket_engine: the WebSocket engine the listener uses: ``"wsproto"`` (default)
            or another one the transports provide; ValueError when this build has no
            such engine.
        batch: up to this many back-to-back steps (a reply without ``reply_delay``)
            leave in one WebSocket message, as from a busy real server; 1, the default,
            sends every message in a WebSocket message of its own.
        write_timeout: seconds one write to a client may take; past it the client is
            dropped (one WARNING line): it does not read.
        max_output: bytes waiting to be written to one hub connection, at most; past it
            the client is dropped (one WARNING line). Snapshots such as
            ``chatsSessionsUpdated`` do not pile up: only the newest waits.
        token_lifetime: seconds a negotiated connection token stays valid unused (as
            ASP.NET Core's DisconnectTimeout reaps it); then ``/hub?id=`` answers 404.
        request_timeout: seconds for an HTTP request head and body (transports'
            ``serve_listener``); handshake_timeout: for the WebSocket upgrade answer;
            max_pending_connections: connections that have not finished those, at most.
        journal_size: how many entries `journal` keeps (the oldest go first).
        admin_token: the bearer token the admin API (``/_mock/...``) needs; None uses
            ``auth_token`` (so without either the admin API is open, as the mock is).
        verbose: 1 logs one line per message in each direction on the
            ``voxta_mock.traffic`` logger; 2 the whole payload, tokens redacted.
        replay: a cassette (or its path) from ``voxta-mock record``: hub connections are
            answered with the recorded server messages instead of the engine's (see
            `voxta_mock.replay`); departures are in `replay_errors`.
        replay_speed: recorded delays are divided by this; 0 or ``math.inf``: no delays.

        silence_placeholders: without ``speech``, send ``silence:N`` placeholder audio
            URLs to ``audioOutput: "Url"`` clients and wait for their playback
            acknowledgements (the other behaviour of a server without TTS, API 2025-11 §6.3).
        audio_gap_ms: written as ``replyChunk.audioGapMs`` (see ``MockEngine``).
        app_trigger_timeout: seconds a queued ``appTrigger`` holds its session's commands
            when no ``appTriggerComplete`` comes.

    Attributes:
        journal: every hub message in both directions, REST call and audio frame.
        expectations: answers to client messages, asked before the engine.
        feed: what the inspector page (``GET /``) shows live.
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
        batch: int = 1,
        websocket_engine: str = "wsproto",
        write_timeout: float | None = DEFAULT_WRITE_TIMEOUT,
        max_output: int = DEFAULT_MAX_OUTPUT,
        token_lifetime: float = DEFAULT_TOKEN_LIFETIME,
        request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        max_pending_connections: int = DEFAULT_MAX_PENDING_CONNECTIONS,
        journal_size: int = DEFAULT_MAXLEN,
        admin_token: str | None = None,
        verbose: int = 0,
        replay: Cassette | str | Path | None = None,
        replay_speed: float = 1.0,
        silence_placeholders: bool = False,
        audio_gap_ms: int | None = None,
        app_trigger_timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.listen = listen
        self.auth_token = auth_token
        self.engine = MockEngine(data, seed=seed, reply_delay=reply_delay, clock=clock,
                                 preseed_session=preseed_session, speech=speech,
                                 silence_placeholders=silence_placeholders,
                                 audio_gap_ms=audio_gap_ms,
                                 app_trigger_timeout=app_trigger_timeout)
        self.rest = MockRest(self.engine, auth_token=auth_token)
        self.hub_config = HubConfig(keepalive_interval=keepalive_interval,
                                    peer_timeout=client_timeout,
                                    stateful_reconnect=stateful_reconnect)
        self.faults = faults or FaultPlan()
        self.connection_faults: dict[int, FaultPlan] = dict(connection_faults or {})
        self.max_message_size = max_message_size
        self.broadcast_sessions = broadcast_sessions
        self.batch = max(1, batch)
        self.write_timeout = write_timeout
        self.max_output = max_output
        self.token_lifetime = token_lifetime
        self._serve_options: dict[str, Any] = {
            # Hub writes time out in fault_writer first (one WARNING line); the
            # transport's own limit is the backstop (and bounds the HTTP answers).
            "write_timeout": None if write_timeout is None else 2 * write_timeout,
            "request_timeout": request_timeout,
            "handshake_timeout": handshake_timeout,
            "max_pending_connections": max_pending_connections}
        if websocket_engine != "wsproto":
            if "websocket_engine" not in inspect.signature(serve_listener).parameters:
                raise ValueError(f"websocket_engine={websocket_engine!r}: this build only has "
                                 "the 'wsproto' engine")
            self._serve_options["websocket_engine"] = websocket_engine
        self.websocket_engine = websocket_engine
        self.audio_streams: list[AudioStream] = []
        self.address: ServerAddress | None = None
        self._conns: dict[str, HubConn] = {}
        self._pending: dict[str, tuple[str, float]] = {}
        """Negotiated, unused connection tokens -> (key, when), oldest first."""
        self._accepted: dict[str, str] = {}  # connection token -> key, for reattaches
        self._opened = 0
        """Hub connections opened so far (the next one's number, for fault plans)."""
        self._initial = (data, self.faults, dict(self.connection_faults))
        self.journal = Journal(clock=clock, maxlen=journal_size)
        self.expectations = Expectations()
        self.feed = LiveFeed(backlog=lambda since: map(
            _feed_entry, self.journal.entries(since=since)))
        self.admin = MockAdmin(self, token=admin_token or auth_token)
        self.verbose = verbose
        self._lanes: dict[str, deque[tuple[HubConn | None, str | None, Iterator[Step]]]] = {}
        self._streams: dict[tuple[str, int], ByteStream] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self.replay = None if replay is None else Replayer(replay, speed=replay_speed)
        """The cassette the hub connections are answered from, if any."""

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def replay_errors(self) -> list[ReplayMismatch]:
        """Each replayed connection's first departure from the recording (none: the
        clients did what was recorded, or there is no replay)."""
        return [] if self.replay is None else list(self.replay.errors)

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
                                 task_status=task_status, **self._serve_options)

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

    async def request_vision_capture(self, session_id: str,
                                     source: ComputerVisionSource | None = None) -> str:
        """Send the session's owner a ``visionCaptureRequest`` for ``source`` (default
        ``Screen``), as a scenario script or the UI would; the upload lands in
        ``rest.vision_uploads``, the outcome in ``engine.vision_requests[id]``. Returns the
        request id; KeyError: no such session."""
        request_id, steps = self.engine.request_vision_capture(
            session_id, source or ComputerVisionSource.SCREEN)
        await self._drive(None, None, steps, session_id)
        return request_id

    async def queue_app_trigger(self, session_id: str, name: str,
                                arguments: Sequence[object] = (), *,
                                scenario_role: str | None = None) -> str:
        """Send a queued ``appTrigger`` (with a ``triggerId``) to the session; the client's
        ``appTriggerComplete`` shows in ``engine.app_triggers[id]``. Returns the trigger id;
        KeyError: no such session."""
        trigger_id, steps = self.engine.queue_app_trigger(session_id, name, arguments,
                                                          scenario_role=scenario_role)
        await self._drive(None, None, steps, session_id)
        return trigger_id

    async def connect_memory(self, connection_token: str | None = None) -> MemoryTransport:
        """A client transport wired to this server in memory (no socket).

        Without a token the hub connection skips negotiate; with one (from
        [`negotiate_memory()`][voxta_mock.server.MockVoxtaServer.negotiate_memory]) it is accepted
        like ``/hub?id=<token>``, which reattaches a stateful connection whose transport dropped.

        Raises:
            HandshakeRejected: the token is unknown, expired or in use (``status_code``
                404 or 409, as the refused upgrade over HTTP).
        """
        if self._tg is None:
            raise RuntimeError("use the server inside 'async with'")
        accept = self._accept_hub(connection_token)
        if isinstance(accept, int):
            raise HandshakeRejected(f"hub connection refused with HTTP {accept}",
                                    status_code=accept)
        client, server_end = memory_transport_pair()
        self._tg.start_soon(accept, server_end, None)
        return client

    async def memory_connector(self, url: str, *, options: object = None) -> MemoryTransport:
        """A ``Connector`` (``VoxtaClient(connector=...)``) that opens a hub URL
        (``?id=<token>``) or the audio input stream URL in memory."""
        split = urlsplit(url)
        if split.path.rstrip("/").endswith("/ws/audio/input/stream"):
            if self._tg is None:
                raise RuntimeError("use the server inside 'async with'")
            client, server_end = memory_transport_pair()
            request = HttpRequest(method="GET", target=f"{split.path}?{split.query}")
            self._tg.start_soon(self._run_memory_audio, server_end, request)
            return client
        return await self.connect_memory(dict(parse_qsl(split.query)).get("id"))

    async def negotiate_memory(self, url: str = "", options: object = None,
                               stateful: bool = False) -> NegotiateOutcome:
        """Negotiate without HTTP; the signature of ``VoxtaClient(negotiator=...)``."""
        query = f"?negotiateVersion=1{'&useStatefulReconnect=true' if stateful else ''}"
        request = HttpRequest(method="POST", target="/hub/negotiate" + query)
        result = parse_negotiate_response(self._negotiate(request).body,
                                          requested_stateful_reconnect=stateful)
        assert isinstance(result, NegotiateResult)  # the mock never redirects
        return NegotiateOutcome(base_url=url or "http://mock.memory/hub", result=result)

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
        if path in INSPECTOR_PATHS and not request.is_websocket_upgrade:
            return inspector_page()  # static: the page sends the admin token itself
        if is_admin_path(path):
            return await self._admin_request(request, path)
        if path not in NO_AUTH_PATHS and not self._authorized(request):
            return HttpResponse(401, (*_TEXT, ("WWW-Authenticate", "Bearer")), b"Unauthorized")
        if path == "/hub/negotiate":
            if request.method != "POST":
                return HttpResponse(405, (*_TEXT, ("Allow", "POST")), b"negotiate needs POST")
            return self._negotiate(request)
        if path == "/hub":
            if not request.is_websocket_upgrade:
                return HttpResponse(400, _TEXT, b"Connection ID required")
            accept = self._accept_hub(request.query_param("id"))
            if isinstance(accept, int):
                return HttpResponse(accept, _TEXT, b"No Connection with that ID")
            return WebSocketUpgrade(lambda t, r: accept(t, r.client))
        if path == "/ws/audio/input/stream":
            return WebSocketUpgrade(self._run_audio)
        if not path.startswith("/api/"):
            return HttpResponse(404, _TEXT, b"Not Found")
        response = self.rest.handle(request) or HttpResponse(404, _TEXT, b"Not Found")
        self._note(self.journal.record_rest(request, response))
        return response

    async def _admin_request(self, request: HttpRequest,
                             path: str) -> HttpResponse | WebSocketUpgrade:
        """``/_mock/...``: the admin API, and the inspector's live feed (a browser cannot
        set a header on a WebSocket, so the feed takes ``?admin_token=``)."""
        if path != "/_mock/live":
            return await self.admin.handle(request)
        token = self.admin.token
        given = request.query_param("admin_token") or ""
        if token is not None and not secrets.compare_digest(given.encode(), token.encode()):
            return HttpResponse(401, _TEXT, b"the live feed needs ?admin_token=<token>")
        if not request.is_websocket_upgrade:
            return HttpResponse(400, _TEXT, b"/_mock/live is a WebSocket")
        return WebSocketUpgrade(self.feed.serve_page)

    def _negotiate(self, request: HttpRequest) -> HttpResponse:
        version = 1 if request.query_param("negotiateVersion") not in (None, "0") else 0
        key = self._new_key()
        body: dict[str, Any] = {"negotiateVersion": version, "connectionId": key}
        now = time.monotonic()
        self._expire_tokens(now)
        token = secrets.token_urlsafe(16) if version >= 1 else key
        if version >= 1:
            body["connectionToken"] = token
        self._pending[token] = (key, now)
        body["availableTransports"] = [
            {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}]
        if (self.hub_config.stateful_reconnect
                and request.query_param("useStatefulReconnect") == "true"):
            body["useStatefulReconnect"] = True
        return HttpResponse(200, _JSON, msgspec.json.encode(body))

    def _new_key(self) -> str:
        return secrets.token_urlsafe(16)

    def _expire_tokens(self, now: float) -> None:
        """Forget tokens negotiated more than ``token_lifetime`` ago and never used
        (the table is in negotiation order, so only its old end is looked at)."""
        pending = self._pending
        limit = now - self.token_lifetime
        while pending:
            token, (_, created) = next(iter(pending.items()))
            if created > limit:
                break
            del pending[token]

    def _accept_hub(self, token: str | None) -> int | Callable[
            [MessageTransport, tuple[str, int] | None], Coroutine[Any, Any, None]]:
        """What a hub WebSocket with ``id=token`` gets: a new connection, the reattach of
        a stateful one, or an HTTP status (404 unknown or expired, 409 in use)."""
        if token is None:
            return lambda t, peer: self._run_hub(t, None, peer)
        self._expire_tokens(time.monotonic())
        entry = self._pending.pop(token, None)
        if entry is not None:
            key = entry[0]
            self._accepted[token] = key
            return lambda t, peer: self._run_hub(t, key, peer)
        conn = self._conns.get(self._accepted.get(token, ""))
        if conn is None:
            return 409 if token in self._conns else 404
        if conn.dead or not conn.session.hub.stateful_reconnect:
            return 409
        return lambda t, peer: self._reattach(conn, t, peer)

    async def _reattach(self, conn: HubConn, transport: MessageTransport,
                        peer: tuple[str, int] | None) -> None:
        """Hand a new transport to a stateful connection; runs until it is given up."""
        released = anyio.Event()
        if conn.incoming is not None:
            conn.incoming[2].set()  # a newer attempt wins
        conn.incoming = (transport, peer, released)
        conn.handover.set()
        if conn.attached and conn.driver is not None:  # the client saw the drop first
            conn.attached = False
            conn.driver.abort()
        try:
            await released.wait()
        finally:
            if isinstance(transport, MemoryTransport):
                with anyio.CancelScope(shield=True):
                    await transport.aclose()

    # -- hub connections ---------------------------------------------------------------

    async def _run_hub(self, transport: MessageTransport, key: str | None,
                       peer: tuple[str, int] | None = None) -> None:
        key = key or self._new_key()
        number = self._opened
        self._opened += 1
        plan = self.connection_faults.get(number, self.faults)
        session = VoxtaServerSession(now=anyio.current_time(), hub_config=self.hub_config,
                                     refuse_handshake=plan.refuse_handshake)
        conn = HubConn(key, session, transport, plan, peer, max_output=self.max_output,
                       write_timeout=self.write_timeout,
                       on_sent=self._on_sent)
        conn.inbox_idle.set()
        conn.may_read.set()
        driver: Driver[ServerEvent] = Driver(
            conn, on_events=lambda events: self._on_events(conn, events), alive=conn.alive,
            flow=conn.flow,
            writer=fault_writer(conn, self.batch),
            # fault_writer times each write out (WriteError); the driver's, later, is a
            # backstop.
            write_timeout=None if self.write_timeout is None else 2 * self.write_timeout)
        conn.driver = driver
        self._conns[key] = conn
        self.engine.connect(key)
        try:
            async with anyio.create_task_group() as tg:
                conn.tasks = tg
                reattach = False
                while True:
                    try:
                        await driver.run(conn.transport, reattach=reattach)
                    except ProtocolError as exc:  # the driver sent the close hint
                        logger.info("connection %s broke the protocol: %s", conn.key, exc)
                        break
                    if _stalled_write(driver.lost_error, conn):
                        logger.warning("connection %s dropped: writing to it did not finish "
                                       "in %s s (the client does not read): %s", conn.key,
                                       self.write_timeout, driver.lost_error)
                    conn.write_deadline = math.inf
                    if not await self._detach(conn):
                        break
                    reattach = True
                tg.cancel_scope.cancel()
        finally:
            conn.dead = True
            conn.unblocked.set()
            self._conns.pop(key, None)
            self._accepted = {t: k for t, k in self._accepted.items() if k != key}
            for event in (conn.released, conn.incoming[2] if conn.incoming else None):
                if event is not None:
                    event.set()
            with anyio.CancelScope(shield=True):
                await self._drive(None, None, self.engine.disconnect(key), key)
                if isinstance(transport, MemoryTransport):
                    await transport.aclose()

    def _on_events(self, conn: HubConn, events: list[ServerEvent]) -> None:
        """From the driver (reader or timer task): requests go to the connection's
        request task, in order; reading waits until they are handled."""
        for event in events:
            if isinstance(event, ClientRequest):
                self._note(self.journal.record_received(conn.key, event.message))
                conn.inbox.append(event)
                if conn.inbox_idle.is_set():  # started per burst: an idle client has none
                    conn.inbox_idle = anyio.Event()
                    conn.may_read = anyio.Event()
                    assert conn.tasks is not None
                    conn.tasks.start_soon(self._serve_requests, conn)
            elif isinstance(event, SendUnblocked):
                conn.unblocked.set()

    async def _serve_requests(self, conn: HubConn) -> None:
        """Handle the queued requests in order, then end (reading waits meanwhile)."""
        try:
            while conn.inbox:
                await self._request(conn, conn.inbox.popleft())
                assert conn.driver is not None
                conn.driver.transmit()
        finally:
            conn.inbox_idle.set()
            conn.may_read.set()


    async def _detach(self, conn: HubConn) -> bool:
        """After a transport ended: with stateful reconnect, wait (up to the reattach
        timeout) for a new one to resume on; False when the connection is over."""
        conn.attached = False
        if conn.released is not None:
            conn.released.set()
        session = conn.session
        if session.hub.state in (HubState.OPEN, HubState.REATTACHING):
            session.receive_eof(now=anyio.current_time())  # ended by us, not by the peer
        while conn.incoming is None:
            if session.hub.state is not HubState.DETACHED or conn.dead:
                return False
            deadline = session.next_deadline()
            with anyio.CancelScope(deadline=math.inf if deadline is None else deadline):
                await conn.handover.wait()
            if conn.incoming is None:
                session.handle_timer(now=anyio.current_time())
                conn.handover = anyio.Event()
        conn.transport, conn.peer, conn.released = conn.incoming
        conn.incoming = None
        conn.handover = anyio.Event()
        if session.hub.state is not HubState.DETACHED:
            return False
        conn.attached = True
        logger.info("connection %s reattached", conn.key)
        return True

    def _replay_request(self, conn: HubConn, request: ClientRequest) -> None:
        """Replay mode: the cassette answers instead of the engine (voxta_mock.replay)."""
        assert self.replay is not None
        assert conn.tasks is not None
        if self.replay.receive(conn, request):
            conn.tasks.start_soon(self.replay.play, conn)

    async def _request(self, conn: HubConn, request: ClientRequest) -> None:
        if await self._answer_expected(conn, request):
            return
        if self.replay is not None:
            self._replay_request(conn, request)
            return
        if isinstance(request.message, Authenticate) and conn.plan.refuse_authenticate:
            conn.send(AuthenticationRequired(), now=anyio.current_time())
            return
        steps = self.engine.handle(conn.key, request.message)
        lane = getattr(request.message, "session_id", None) or conn.key
        await self._drive(conn, request.invocation_id, steps, lane)
        if isinstance(request.message, Authenticate):
            plan = conn.plan
            if plan.oversized_after_authenticate:
                conn.send(DownloadProgress(
                    id="x" * plan.oversized_after_authenticate, target="oversized",
                    status=DownloadStatus.PENDING, percent=0.0), now=anyio.current_time())
            if plan.close_after_authenticate is not None:
                conn.session.close(now=anyio.current_time(),
                                   error=plan.close_after_authenticate,
                                   allow_reconnect=plan.allow_reconnect)
                assert conn.driver is not None
                await conn.driver.close()
                conn.dead = True

    async def _answer_expected(self, conn: HubConn, request: ClientRequest) -> bool:
        """Let the expectations answer a client message before the engine does; True
        when one did and the engine must not see the message (no ``passthrough``)."""
        session_id = getattr(request.message, "session_id", None)
        hit = self.expectations.match(conn.key, session_id, request.message)
        if hit is None:
            return False
        await self._play_expectation(conn, request.invocation_id, hit)
        return not hit.passthrough

    async def _play_expectation(self, conn: HubConn, invocation_id: str | None,
                                hit: Expectation) -> None:
        now = anyio.current_time()
        if (not hit.passthrough and invocation_id is not None
                and invocation_id in conn.session.owed_completions):
            conn.session.complete(invocation_id, now=now)
        for message in hit.reply:
            conn.send(message, now=now)
        self._flush(conn)
        fault = hit.fault
        if fault is None:
            return
        if fault.kind == "silence":
            conn.silent = True
        elif fault.kind == "drop":
            assert conn.driver is not None
            await conn.driver.drain()  # the reply first, then the hang-up
            await self._drop(conn)
        else:
            conn.session.close(now=now, error=fault.error,
                               allow_reconnect=fault.allow_reconnect)
            assert conn.driver is not None
            await conn.driver.close()
            conn.dead = True

    # -- the journal, for tests -------------------------------------------------------

    @overload
    def received(self, kind: type[MessageT], /, *, session_id: str | None = None,
                 connection: str | None = None, **fields: object) -> list[MessageT]: ...
    @overload
    def received(self, kind: str | None = None, /, *, session_id: str | None = None,
                 connection: str | None = None, **fields: object) -> list[ReceivedMessage]: ...

    def received(self, kind: type | str | None = None, /, *, session_id: str | None = None,
                 connection: str | None = None, **fields: object) -> list[Any]:
        """What clients sent that matches, oldest first: ``received(Send, text="hi")``
        (the journal's ``received``)."""
        return self.journal.received(kind, session_id=session_id, connection=connection,
                                     **fields)

    @overload
    def sent(self, kind: type[MessageT], /, *, session_id: str | None = None,
             connection: str | None = None, **fields: object) -> list[MessageT]: ...
    @overload
    def sent(self, kind: str | None = None, /, *, session_id: str | None = None,
             connection: str | None = None, **fields: object) -> list[SentMessage]: ...

    def sent(self, kind: type | str | None = None, /, *, session_id: str | None = None,
             connection: str | None = None, **fields: object) -> list[Any]:
        """What the mock sent that matches, oldest first (the journal's ``sent``)."""
        return self.journal.sent(kind, session_id=session_id, connection=connection,
                                 **fields)

    # -- the admin API's target (see voxta_mock.admin.AdminTarget) ---------------------

    def push(self, message: ServerMessage, *, connection: str | None = None,
             session_id: str | None = None) -> int:
        """Send a server message, unasked: to one connection (its key, the negotiate
        ``connectionId``), to every connection of a chat session, or (neither given) to
        every authenticated connection. It is journaled as sent. Returns how many
        connections it went to (0 when none is known or authenticated).

        Raises:
            ValueError: both ``connection`` and ``session_id`` given.
        """
        if connection is not None and session_id is not None:
            raise ValueError("push to a connection or to a session, not both")
        if connection is not None:
            keys: tuple[str, ...] = (connection,)
        elif session_id is not None:
            record = self.engine.sessions.get(session_id)
            keys = record.audience if record is not None else ()
        else:
            keys = tuple(self._conns)
        now = anyio.current_time()
        delivered = 0
        for key in keys:
            conn = self._conns.get(key)
            if (conn is None or conn.dead
                    or conn.session.state is not ServerState.AUTHENTICATED):
                continue
            conn.send(message, now=now)
            self._flush(conn)
            delivered += 1
        return delivered

    def set_data(self, data: MockData) -> None:
        """Characters, scenarios, replies and scripts from now on (live chats keep theirs)."""
        self.engine.data = data

    def apply_faults(self, plan: FaultPlan | None, *, next_connections: int | None) -> None:
        """The fault plan of every future hub connection, or of the next n only."""
        if next_connections is None:
            self.set_faults(plan)
            return
        for number in range(self._opened, self._opened + next_connections):
            self.set_faults(plan, connection=number)

    async def fault_connection(self, connection: str, action: str) -> bool:
        """Misbehave on one live connection now: ``drop`` it (no Close, no close frame)
        or ``silence`` it (nothing more is sent, not even pings); False when unknown."""
        conn = self._conns.get(connection)
        if conn is None or conn.dead:
            return False
        if action == "silence":
            conn.silent = True
        else:
            await self._drop(conn)
        return True

    def reset(self) -> None:
        """Back to the data and faults given at start; journal and expectations cleared."""
        data, faults, connection_faults = self._initial
        self.engine.data = data
        self.faults = faults
        self.connection_faults = dict(connection_faults)
        self.journal.clear()
        self.expectations.clear()
        self.feed.clear()

    def state(self) -> MockState:
        """The live connections, chat sessions and stored chats."""
        sessions: list[SessionState] = []
        audiences: dict[str, tuple[str, ...]] = {}
        for info in self.engine.sessions.infos():
            record = self.engine.sessions.get(info.session_id)
            audience = record.audience if record is not None else ()
            audiences[info.session_id] = audience
            owner = audience[0] if audience and audience[0] in self._conns else None
            sessions.append(SessionState(session_id=info.session_id, chat_id=info.chat_id,
                                         connection=owner,
                                         character_ids=tuple(c.id for c in info.characters)))
        connections = tuple(
            ConnectionState(key=key, authenticated=conn.session.authenticate is not None,
                            session_ids=tuple(s for s, keys in audiences.items() if key in keys),
                            peer=f"{conn.peer[0]}:{conn.peer[1]}" if conn.peer else None)
            for key, conn in self._conns.items() if not conn.dead)
        chats = tuple(ChatState(id=chat_id, character_ids=characters, title=title,
                                messages=count)
                      for chat_id, characters, title, count in self.engine.stored_chats())
        return MockState(connections=connections, sessions=tuple(sessions), chats=chats)

    # -- the journal's listeners -------------------------------------------------------

    def _on_sent(self, conn: HubConn, message: ServerMessage) -> None:
        self._note(self.journal.record_sent(conn.key, message))

    def _note(self, entry: JournalEntry) -> None:
        """A new journal entry: to the inspector's open pages, and to the traffic log
        (its JSON is built only when one of them wants it)."""
        if not (self.verbose or self.feed.watched):
            return
        data = _feed_entry(entry)
        if self.feed.watched:
            self.feed.publish(data)
        if self.verbose:
            self._log_traffic(data)

    def _log_traffic(self, data: dict[str, Any]) -> None:
        arrow = "<-" if data["direction"] == "received" else "->"
        payload = data.get("message", data.get("body"))
        size = data["size"] if data["kind"] == "audio" else len(msgspec.json.encode(payload))
        line = f"{data['connection']} {arrow} {data['type']} {size}B"
        if self.verbose >= 2 and payload is not None:
            line += " " + msgspec.json.encode(_redact_json(payload)).decode()
        traffic_logger.info("%s", line)

    # -- audio input -------------------------------------------------------------------

    async def _run_memory_audio(self, transport: MemoryTransport, request: HttpRequest) -> None:
        try:
            await self._run_audio(transport, request)
        finally:
            with anyio.CancelScope(shield=True):
                await transport.aclose()

    async def _run_audio(self, transport: Any, request: HttpRequest) -> None:
        """Audio input stream (reference §2.3): a JSON spec, then binary PCM; counted."""
        stats = AudioStream(request.query_param("sessionId"))
        self.audio_streams.append(stats)
        key = f"audio-{len(self.audio_streams)}"
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
                    self._note(self.journal.record_audio(
                        key, session_id=stats.session_id, size=len(message), spec=decoded,
                        binary=False))
                else:
                    stats.frames += 1
                    stats.bytes += len(message)
                    self._note(self.journal.record_audio(
                        key, session_id=stats.session_id, size=len(message)))
        except TransportError:
            return
        finally:
            stats.closed = True
