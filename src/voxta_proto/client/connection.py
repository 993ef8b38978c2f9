"""``VoxtaClient``: the connection (on [`Driver`][voxta_proto.driver.Driver]), its dispatch
task and reconnects, with the seed API of [`VoxtaApi`][voxta_proto.client.api.VoxtaApi]."""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any, Union, cast

import anyio
from anyio.abc import TaskGroup

from voxta_proto._version import __version__
from voxta_proto.client._typed import TypedEvents
from voxta_proto.client.api import VoxtaApi
from voxta_proto.client.audio import AudioInputStream
from voxta_proto.client.events import (
    _CLIENT_EVENT_NAMES,
    _EVENT_NAMES,
    Callback,
    Closed,
    ConnectionEvent,
    EventStream,
    Ready,
    Reconnected,
    Reconnecting,
    _EventQueue,
    event_name,
)
from voxta_proto.client.login import CodeCallback, device_login, load_token
from voxta_proto.client.requests import (
    AUDIO_INPUT_PATH,
    DEFAULT_EVENT_BUFFER,
    DEFAULT_REQUEST_TIMEOUT,
    HUB_PATH,
    _Waiter,
    logger,
)
from voxta_proto.driver import DEFAULT_WRITE_TIMEOUT, Driver, DriverState, close_quietly
from voxta_proto.errors import (
    AuthenticationFailed,
    ChatGone,
    ConnectionClosed,
    HandshakeRejected,
    InvocationError,
    LocalProtocolError,
    NegotiationError,
    ProtocolError,
    TransportError,
    VoxtaProtoError,
)
from voxta_proto.hub import HubConfig
from voxta_proto.hub.negotiate import build_websocket_url
from voxta_proto.hub_client import (
    Negotiator,
    ReconnectPolicy,
    default_negotiator,
    engine_connector,
)
from voxta_proto.transports import (
    DEFAULT_CONNECT_TIMEOUT,
    ConnectOptions,
    Connector,
    HeaderInput,
    MessageTransport,
    NegotiateOutcome,
)
from voxta_proto.voxta.client_messages import (
    ClientMessage,
    SubscribeToChat,
)
from voxta_proto.voxta.codec import SERVER_MESSAGE_TYPES
from voxta_proto.voxta.server_messages import (
    KNOWN_API_VERSIONS,
    ChatsSessionsUpdated,
    ChatStarted,
    ServerMessage,
    Welcome,
)
from voxta_proto.voxta.session import (
    ChatLost,
    ChatRef,
    ClientState,
    Disconnected,
    RequestCompleted,
    RequestFailed,
    SessionEvent,
    VoxtaClientSession,
)
from voxta_proto.voxta.shapes import (
    ClientCapabilities,
)

_BOOKKEEPING: frozenset[type[object]] = frozenset({Welcome, ChatStarted, ChatsSessionsUpdated})
"""Server messages the client acts on itself before dispatching them."""


class _Connection:
    """One session, its driver and the transport to run next; a stateful reattach keeps
    the session and driver, a fresh reconnect replaces all three."""

    def __init__(self, transport: MessageTransport, session: VoxtaClientSession,
                 driver: Driver[SessionEvent], *, reattach: bool = False) -> None:
        self.transport: MessageTransport | None = transport
        self.session = session
        self.driver = driver
        self.reattach = reattach
        self.lost: Disconnected | None = None
        self.lost_in = session.state
        """The session's state before the batch that ended it (typed, so a refused
        handshake is told apart without reading the error text)."""



# ------------------------------------------------------------------------------- client


class VoxtaClient(VoxtaApi, TypedEvents):
    """An async Voxta client (asyncio or trio).

    Request methods return once the server answered: with its paired reply message
    where the protocol has one (``voxta_proto.voxta.session.REPLIES``), else
    with its Completion. The server only queues chat-session requests before completing
    them; their effects arrive afterwards as events. Like ``send()``, every request
    method raises ConnectionClosed when not connected, InvocationError when the server
    fails the request, and TimeoutError when no answer comes within ``request_timeout``;
    one that targets a chat session raises LocalProtocolError when no ``session_id`` is
    given and there is no active session, and one that returns a reply message raises
    ProtocolError when the server answers with something else.

    Args:
        url: the server's base URL, e.g. ``"http://localhost:5384"``; the hub is at
            ``{url}/hub``.
        headers: extra HTTP headers for negotiate and the WebSocket upgrades.
        api_key: sent as a bearer token (alias of ``token``).
        token: a bearer token.
        ssl_context: TLS settings for ``https``/``wss``.
        connect_timeout: seconds for negotiate, connect and welcome each.
        request_timeout: default seconds a request method waits for its answer.
        reconnect: a [`ReconnectPolicy`][voxta_proto.hub_client.ReconnectPolicy] or a sequence of
            delays in seconds, one per
            attempt; None (the default) uses ``DEFAULT_RECONNECT_DELAYS``, and an
            empty sequence ``()`` never reconnects.
        client_name: the app name sent in ``authenticate``.
        client_version: the app version sent in ``authenticate``.
        capabilities: audio/vision abilities; text only by default.
        connector: opens the WebSocket; default
            [`connect_websocket()`][voxta_proto.transports.connect_websocket] (pass an
            in-memory one in tests).
        negotiator: runs negotiate; default the h11 HTTP client.
        hub_config: SignalR keep-alive, server timeout and limits.
        stateful_reconnect: ask for stateful reconnect (used when the server offers it).
        event_buffer: events ``events()`` and callbacks may lag behind before reading waits.
        websocket_engine: the WebSocket engine of the default connector: ``"wsproto"``
            (default) or another one the transports provide (e.g. ``"websockets"``);
            ValueError when this build has no such engine.
        write_timeout: seconds one write may take; a write that takes longer (a server
            that stopped reading) counts as a lost connection, then reconnect. None
            waits forever. Reading, keep-alive and ``close()`` never wait on a write.
        use_stored_token: without ``token``/``api_key``, use the key ``voxta login``
            (or `login()`) stored for this URL, if any.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: HeaderInput | None = None,
        api_key: str | None = None,
        token: str | None = None,
        ssl_context: Any = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
        reconnect: ReconnectPolicy | Sequence[float] | None = None,
        client_name: str = "voxta-proto",
        client_version: str = __version__,
        capabilities: ClientCapabilities | None = None,
        connector: Connector | None = None,
        negotiator: Negotiator | None = None,
        hub_config: HubConfig | None = None,
        stateful_reconnect: bool = True,
        event_buffer: int = DEFAULT_EVENT_BUFFER,
        websocket_engine: str = "wsproto",
        write_timeout: float | None = DEFAULT_WRITE_TIMEOUT,
        use_stored_token: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        access_token = token or api_key
        if access_token is None and use_stored_token:
            access_token = load_token(self.url)
        self.options = ConnectOptions(
            headers=headers or (), access_token=access_token, ssl_context=ssl_context,
            connect_timeout=connect_timeout,
        )
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        if reconnect is None:
            reconnect = ReconnectPolicy()
        elif not isinstance(reconnect, ReconnectPolicy):
            reconnect = ReconnectPolicy(tuple(reconnect))
        self.reconnect_policy = reconnect
        self.client_name = client_name
        self.client_version = client_version
        self.capabilities = capabilities
        self.hub_config = hub_config
        self.stateful_reconnect = stateful_reconnect
        self.write_timeout = write_timeout
        self.logger = logger
        self._connector: Connector = connector or engine_connector(websocket_engine)
        self._negotiator: Negotiator = negotiator or default_negotiator
        self.callbacks: dict[str, list[Callback]] = {}
        self._conn: _Connection | None = None
        self._token = ""
        """The connection token of the current session (a reattach presents it)."""
        self._rejoined: anyio.Event | None = None
        """Set once a fresh connection's rejoin settled (rejoined, or ``chatLost``)."""
        self._outcome: NegotiateOutcome | None = None
        self._requests: dict[str, tuple[_Waiter, bool]] = {}
        self._waiters: list[_Waiter] = []
        self._subscribers: list[_EventQueue] = []
        self._welcomed = anyio.Event()
        self._version_warned = False
        self._finished = anyio.Event()
        self._closing = False
        self._reconnecting: anyio.CancelScope | None = None
        """The scope of a reconnect in progress (backoff, negotiate, open): close()
        cancels it, so no new connection is opened (and served) after close()."""
        self._running = False
        self._close_error: BaseException | None = None
        self._ready_session: str | None = None
        self._active_chat_id: str | None = None
        self._pinned_session: str | None = None
        self._event_buffer = event_buffer
        self._dispatch: deque[ServerMessage | ConnectionEvent] = deque()
        self._dispatch_wake = anyio.Event()
        self._dispatch_room: anyio.Event | None = None
        self._dispatch_open = False
        self._tg: TaskGroup | None = None
        self._tg_outer: TaskGroup | None = None

    # -- state -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True from ``connect()`` until the connection is over for good."""
        return self._running

    @property
    def session(self) -> VoxtaClientSession | None:
        """The sans-IO session of the current connection (chat state, welcome)."""
        return self._conn.session if self._conn else None

    @property
    def welcome(self) -> Welcome | None:
        """The current connection's ``welcome`` (server version, user), or None before it
        arrived or when not connected."""
        return self._conn.session.welcome if self._conn else None

    @property
    def api_version(self) -> str | None:
        """``welcome.apiVersion`` of the current connection (e.g. ``"2025-11"``), or None
        before ``welcome``. Any version is accepted; one not in ``KNOWN_API_VERSIONS`` is
        logged once per client as a WARNING (API 2025-11 §1.2)."""
        welcome = self.welcome
        return welcome.api_version if welcome is not None else None

    def _check_api_version(self, welcome: Welcome) -> None:
        if welcome.api_version in KNOWN_API_VERSIONS or self._version_warned:
            return
        self._version_warned = True
        self.logger.warning("server API version %r is not one this client was tested with "
                            "(%s); carrying on", welcome.api_version,
                            ", ".join(KNOWN_API_VERSIONS))

    @property
    def session_id(self) -> str | None:
        """The chat session calls default to (from ``chatStarted`` or auto-subscribe)."""
        chat = self._conn.session.chat if self._conn else None
        return (chat.session_id if chat else None) or self._pinned_session

    @property
    def chat_id(self) -> str | None:
        """The chat of the last ``chatStarted``, ``subscribe_to_chat()`` or auto-subscribe;
        kept across reconnects so the client can re-subscribe to it."""
        return self._active_chat_id

    @property
    def is_speaking(self) -> bool:
        """True from the server's ``speechPlaybackStart`` until its
        ``speechPlaybackComplete`` or ``interruptSpeech``; False when not connected."""
        return bool(self._conn and self._conn.session.chat.is_speaking)

    @property
    def is_thinking(self) -> bool:
        """True from ``replyGenerating``/``replyStart`` until ``replyEnd``,
        ``replyCancelled`` or ``interruptSpeech``; False when not connected."""
        return bool(self._conn and self._conn.session.chat.is_thinking)

    @property
    def last_message_id(self) -> str | None:
        """The message id of the latest ``replyStart``, ``speechPlaybackStart`` or
        ``update``; the speech playback calls default to it."""
        return self._conn.session.chat.last_message_id if self._conn else None

    # -- callbacks and events ----------------------------------------------------------

    def _subscribe(self, event_name: str, callback: Callback) -> None:
        """``on()`` after it checked the name (in ``TypedEvents``, generated)."""
        self.callbacks.setdefault(event_name, []).append(callback)

    def events(self) -> EventStream:
        """Every server message and client event, in order, from now on:

        ```python
        async for event in client.events(): ...
        ```

        Bounded: when this consumer falls ``event_buffer`` behind, dispatch (and then
        reading) waits, so a slow consumer applies backpressure instead of using memory.
        It ends when the connection is over for good.
        """
        stream = EventStream(self._event_buffer)
        self._subscribers.append(stream._queue)
        return stream

    async def _wait_matching(self, event_type: type[Any] | str,
                             predicate: Callable[[Any], bool] | None,
                             timeout: float | None) -> Any:  # noqa: ASYNC109
        """``wait_for()`` after it checked the name (in ``TypedEvents``, generated)."""
        def match(event: object) -> bool:
            if isinstance(event_type, str):
                ok = isinstance(event, (ServerMessage, *_CLIENT_EVENT_NAMES)) and event_name(
                    cast("Union[ServerMessage, ConnectionEvent]", event)) == event_type
            else:
                ok = isinstance(event, event_type)
            return ok and (predicate is None or bool(predicate(event)))

        waiter = _Waiter(match, chat_bound=_chat_bound(event_type))
        self._waiters.append(waiter)
        try:
            return await waiter.wait(timeout, f"wait_for({event_type!r})")
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    # -- lifecycle ---------------------------------------------------------------------

    async def login(self, *, label: str | None = None, scope: str = "role:app",
                    on_code: CodeCallback | None = None, timeout: float | None = 300.0,  # noqa: ASYNC109
                    store: bool = True) -> str:
        """Get an API key by device flow (API 2025-11 §3.6) and use it from the next
        connection on: ``on_code`` shows the user the code and URL; the key is checked
        and (``store``) kept for this URL. See `device_login()` in `voxta_proto.client.login`
        for the errors."""
        token = await device_login(self.url, label=label or self.client_name, scope=scope,
                                   on_code=on_code, timeout=timeout, options=self.options,
                                   store=store)
        self.options = dataclasses.replace(self.options, access_token=token)
        return token

    async def negotiate(self) -> tuple[str, dict[str, str]]:
        """Run SignalR negotiate; returns ``(connection_token, cookies)`` for ``connect``.

        Raises:
            NegotiationError, ConnectError, TransportTimeout: negotiate failed.
        """
        outcome = await self._negotiator(self.url + HUB_PATH, self.options,
                                         self.stateful_reconnect)
        self._outcome = outcome
        return outcome.result.connection_token, dict(outcome.cookies)

    async def connect(self, connection_token: str,
                      cookies: Mapping[str, str] | None = None) -> None:
        """Connect, authenticate, and run the connection (reconnecting as the policy
        says) until ``close()``; run it as a task, or use ``async with``.

        Raises:
            HandshakeRejected, ConnectError, ConnectionClosed, PeerTimeout: the first
                connect failed, or the connection ended and could not be restored.
        """
        self._begin()
        await self._run_begun(connection_token, cookies)

    async def _run_begun(self, connection_token: str,
                         cookies: Mapping[str, str] | None) -> None:
        """``connect`` after ``_begin``."""
        self._dispatch.clear()
        self._dispatch_open = True
        error: Exception | None = None
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._dispatch_loop)
                try:
                    await self._run(connection_token, cookies)
                except Exception as exc:  # re-raised below, outside the task group
                    error = exc
                finally:
                    self._close_error = error
                    self._fail_all(ConnectionClosed(str(error) if error else None))
                    conn, self._conn = self._conn, None
                    if conn is not None:
                        conn.driver.abort()
                        if conn.transport is not None:  # opened, never served
                            await close_quietly(conn.transport)
                    # No welcome (or rejoin) is coming: wake their waiters now, not after
                    # the task group, which waits for one of them (_announce_fresh).
                    self._welcomed.set()
                    if self._rejoined is not None:
                        self._rejoined.set()
                    # also when cancelled: the dispatcher drains, then ends
                    self._post(Closed(None if error is None else str(error)))
                    self._dispatch_open = False
                    self._dispatch_wake.set()
        finally:
            self._dispatch_open = False
            self._running = False
            self._tg = None
            self._finished.set()
            self._welcomed.set()
        if error is not None:
            raise error

    def _begin(self) -> None:
        """Mark the client running and reset the per-run state (synchronously, so a
        ``wait_until_welcome`` right after starting the task waits for this run)."""
        if self._running:
            raise LocalProtocolError("this client is already connected")
        self._running = True
        self._closing = False
        # Fresh events only when a previous run used them: a caller may already wait.
        if self._finished.is_set():
            self._finished = anyio.Event()
        if self._welcomed.is_set():
            self._welcomed = anyio.Event()
        self._close_error = None

    async def close(self) -> None:
        """Close gracefully: a SignalR Close, then WebSocket close 1000; ``connect()``
        then returns. Safe to call twice."""
        self._closing = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        conn = self._conn
        if conn is not None:
            if conn.session.state is not ClientState.CLOSED:
                try:
                    self._fail_requests(conn.session.close(now=anyio.current_time()))
                except VoxtaProtoError as exc:
                    self.logger.debug("could not queue Close: %s", exc)
            with anyio.CancelScope(shield=True):
                await conn.driver.close()
        if self._running:
            await self._finished.wait()

    async def __aenter__(self) -> VoxtaClient:
        """Negotiate, connect, authenticate and wait for ``welcome``.

        Raises:
            AuthenticationFailed: the server refused our ``authenticate``.
            HandshakeRejected, NegotiationError, TransportError, TimeoutError: connecting
                failed.
        """
        # The task group is entered here and left in __aexit__ (or below), in this task,
        # so its cancel scope nests inside any scope around ``async with``.
        tg = anyio.create_task_group()
        await tg.__aenter__()
        try:
            token, cookies = await self.negotiate()
            self._begin()
            tg.start_soon(self._connect_quietly, token, cookies)
            await self.wait_until_welcome()
        except BaseException as exc:
            self._closing = True
            tg.cancel_scope.cancel()  # the connect task drops its transport as it ends
            await _leave(tg, exc)
            raise
        self._tg_outer = tg
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        """``close()``, then leave the task group ``__aenter__`` entered; an exception
        from the ``async with`` body propagates unchanged."""
        tg, self._tg_outer = self._tg_outer, None
        try:
            await self.close()
        finally:
            if tg is not None:
                await _leave(tg, exc)

    async def _connect_quietly(self, token: str, cookies: Mapping[str, str]) -> None:
        """``connect`` for ``async with``: its error is re-raised by the waiting caller."""
        try:
            await self._run_begun(token, cookies)
        except Exception as exc:
            self.logger.debug("connection ended: %r", exc)

    async def wait_until_welcome(self, timeout: float | None = None  # noqa: ASYNC109
                                 ) -> Welcome:
        """Wait until the server's ``welcome`` (the client may then send anything) and
        return it.

        Args:
            timeout: seconds to wait; None uses ``connect_timeout``.

        Raises:
            TimeoutError: no ``welcome`` within ``timeout``.
            AuthenticationFailed: the server refused our ``authenticate``.
            ConnectionClosed: the connection ended before ``welcome``.
            VoxtaProtoError: any other error that ended the connection first (e.g.
                HandshakeRejected, ConnectError), re-raised as it is.
        """
        with anyio.fail_after(self.connect_timeout if timeout is None else timeout):
            await self._welcomed.wait()
        welcome = self.welcome
        if welcome is None:
            if isinstance(self._close_error, Exception):
                raise self._close_error
            raise ConnectionClosed("the connection ended before welcome")
        return welcome

    # -- connection loop ---------------------------------------------------------------

    def _ws_url(self, connection_token: str) -> str:
        base = self._outcome.base_url if self._outcome else self.url + HUB_PATH
        return build_websocket_url(base, connection_token=connection_token)

    def _options(self, cookies: Mapping[str, str] | None) -> ConnectOptions:
        options = self.options
        if self._outcome is not None:
            options = self._outcome.connect_options(options)
        if cookies:
            options = replace(options, cookies={**dict(options.cookie_items()), **cookies})
        return options

    def _new_session(self, stateful: bool, rejoin: ChatRef | None = None
                     ) -> VoxtaClientSession:
        config = self.hub_config or HubConfig()
        config = replace(config, stateful_reconnect=stateful)
        return VoxtaClientSession(
            now=anyio.current_time(), client=self.client_name,
            client_version=self.client_version, capabilities=self.capabilities,
            hub_config=config, handshake_version=2 if stateful else 1, rejoin=rejoin,
        )

    async def _open(self, connection_token: str, cookies: Mapping[str, str] | None,
                    session: VoxtaClientSession | None = None,
                    rejoin: ChatRef | None = None) -> _Connection:
        """Open a transport; with ``session`` reattach it (stateful), else handshake."""
        transport = await self._connector(self._ws_url(connection_token),
                                          options=self._options(cookies))
        old = self._conn
        if session is not None and old is not None and old.session is session:
            conn = _Connection(transport, session, old.driver, reattach=True)
        else:
            stateful = bool(self.stateful_reconnect and self._outcome
                            and self._outcome.result.use_stateful_reconnect)
            session = self._new_session(stateful, rejoin)
            session.start(now=anyio.current_time())
            conn = _Connection(transport, session, self._new_driver(session))
        self._token = connection_token
        self._conn = conn
        return conn

    def _new_driver(self, session: VoxtaClientSession) -> Driver[SessionEvent]:
        def on_events(events: list[SessionEvent]) -> None:
            conn = self._conn
            if conn is not None and conn.session is session:
                self._on_events(conn, events)
            else:  # a late batch from a replaced connection: only requests matter
                self._fail_requests(events)

        return Driver(
            session, on_events=on_events,
            alive=lambda: session.state is not ClientState.CLOSED,
            flow=self._flow, write_timeout=self.write_timeout,
        )

    async def _run(self, connection_token: str, cookies: Mapping[str, str] | None) -> None:
        conn = await self._open(connection_token, cookies)
        attempt = 0
        while True:
            lost = await self._serve(conn)
            if self._closing:
                return
            if lost is None:
                raise ConnectionClosed("the connection ended")
            if not lost.allow_reconnect and not lost.reattachable:
                if conn.session.authentication_error is not None:
                    raise AuthenticationFailed(conn.session.authentication_error)
                if conn.lost_in is ClientState.HANDSHAKING:  # the server refused it
                    raise HandshakeRejected(lost.error or "handshake refused")
                raise ConnectionClosed(lost.error, allow_reconnect=False)
            # Reconnect under the policy.
            old = conn
            while True:
                attempt += 1
                delay = self.reconnect_policy.delay(attempt)
                if delay is None:
                    raise ConnectionClosed(
                        f"gave up reconnecting after {attempt - 1} attempts: {lost.error}",
                        allow_reconnect=lost.allow_reconnect)
                await self._emit(Reconnecting(attempt, delay, lost.error))
                if self._is_closing():
                    return
                try:
                    with anyio.CancelScope() as self._reconnecting:  # close() cancels it
                        await anyio.sleep(delay)
                        conn = await self._reconnect(old, lost, cookies)
                except (TransportError, NegotiationError, HandshakeRejected, ProtocolError,
                        TimeoutError) as exc:
                    self.logger.warning("reconnect attempt %d failed: %s", attempt, exc)
                    # A network failure says nothing about the server's session: try to
                    # resume it again; only a refusal (404/409: it is gone) starts afresh.
                    lost = Disconnected(error=str(exc), allow_reconnect=True,
                                        reattachable=lost.reattachable
                                        and not isinstance(exc, HandshakeRejected))
                    continue
                finally:
                    self._reconnecting = None
                if self._is_closing():  # close() came while reconnecting: serve nothing
                    return
                attempt = 0
                break

    async def _reconnect(self, old: _Connection, lost: Disconnected,
                         cookies: Mapping[str, str] | None) -> _Connection:
        """Reattach the old session when it is reattachable (on the token of the
        connection it belongs to), else start a new one that authenticates again and
        rejoins our chat if the server still runs it (§3.7; ``chatLost`` if not)."""
        if lost.reattachable and old.session.state is ClientState.DETACHED:
            conn = await self._open(self._token, cookies, session=old.session)
            await self._emit(Reconnected(stateful=True))
            return conn
        if old.session.state is not ClientState.CLOSED:  # a failed reattach: give it up
            self._fail_requests(old.session.close(now=anyio.current_time(),
                                                  error="the session could not be resumed"))
        await self.negotiate()
        assert self._outcome is not None
        self._welcomed = anyio.Event()
        session_id = old.session.chat.session_id or self._pinned_session
        rejoin = None if session_id is None else ChatRef(session_id, self._active_chat_id)
        conn = await self._open(self._outcome.result.connection_token, cookies,
                                rejoin=rejoin)
        self._rejoined = None if rejoin is None else anyio.Event()
        assert self._tg is not None
        self._tg.start_soon(self._announce_fresh, self._rejoined)
        return conn

    async def _announce_fresh(self, rejoined: anyio.Event | None) -> None:
        """After a fresh reconnect: say reconnected once welcomed and the session has
        rejoined our chat (or reported it lost: ``chatLost`` comes first)."""
        try:
            await self.wait_until_welcome()
            if rejoined is not None:
                with anyio.fail_after(self.connect_timeout):
                    await rejoined.wait()
        except (VoxtaProtoError, TimeoutError) as exc:
            if not self._is_closing():
                self.logger.warning("no welcome after reconnecting: %s", exc)
            return
        if self._conn is not None:  # else the run ended meanwhile: nothing to announce
            await self._emit(Reconnected(stateful=False))

    async def _serve(self, conn: _Connection) -> Disconnected | None:
        """Run the driver on ``conn``'s transport; returns how it ended (None: closed by
        us or the session ended without a Disconnected)."""
        transport, conn.transport = conn.transport, None
        assert transport is not None
        ended = await conn.driver.run(transport, reattach=conn.reattach)
        lost = conn.lost
        if lost is not None:
            self.logger.warning("disconnected: %s", lost.error)
            return lost
        if ended is DriverState.LOST and not self._closing:
            return Disconnected(error="connection lost", allow_reconnect=True)
        return None

    def _is_closing(self) -> bool:
        """``close()`` was called (a method, so awaits don't fool mypy's narrowing)."""
        return self._closing

    # -- event handling ----------------------------------------------------------------

    def _on_events(self, conn: _Connection, events: list[SessionEvent]) -> None:
        """From the driver, once per batch (reader or timer task; never blocks): resolve
        requests and waiters at once, queue the rest for the dispatch task (which runs
        callbacks), and wake it once.

        Most events are plain server messages nobody waits for (a streamed reply): they
        go straight onto the dispatch queue, one type lookup each."""
        dispatch = self._dispatch
        queued = len(dispatch)
        plain = self._dispatch_open and not self._waiters
        for event in events:
            if plain and type(event) not in _BOOKKEEPING and isinstance(event, ServerMessage):
                dispatch.append(event)
            else:
                self._on_event(conn, event)
                plain = self._dispatch_open and not self._waiters
        if conn.lost is None:
            conn.lost_in = conn.session.state
        if self._rejoined is not None and not conn.session.rejoining:
            self._rejoined.set()
        if len(dispatch) != queued:
            self._dispatch_wake.set()

    def _on_event(self, conn: _Connection, event: SessionEvent) -> None:
        """One event that needs more than queueing: bookkeeping, waiters, requests."""
        if isinstance(event, ServerMessage):
            if isinstance(event, Welcome):
                self._check_api_version(event)
                self._welcomed.set()
            elif isinstance(event, ChatStarted):
                self._active_chat_id = event.chat_id
                self._pinned_session = event.session_id
            elif isinstance(event, ChatsSessionsUpdated):
                self._maybe_pin(conn, event)
            self._post(event, wake=False)
            if isinstance(event, (ChatStarted, ChatsSessionsUpdated)):
                pinned = self.session_id
                if pinned is not None and self._ready_session != pinned:
                    self._ready_session = pinned
                    self._post(Ready(pinned), wake=False)
        elif isinstance(event, RequestCompleted):
            entry = self._requests.pop(event.invocation_id, None)
            if entry is not None:
                entry[0].resolve(event.reply)
        elif isinstance(event, RequestFailed):
            self._request_failed(event)
        elif isinstance(event, Disconnected):
            conn.lost = event
        elif isinstance(event, ChatLost):
            self._chat_lost(event)
        else:
            self.logger.debug("ignoring %r", event)

    def _chat_lost(self, event: ChatLost) -> None:
        """§3.7: the chat we were in is gone after a fresh reconnect. Say so (``chatLost``)
        and fail at once every ``wait_for`` of a chat message: it would never come."""
        if self._pinned_session == event.session_id:
            self._pinned_session = None
        if self._ready_session == event.session_id:
            self._ready_session = None
        if event.chat_id is None or self._active_chat_id == event.chat_id:
            self._active_chat_id = None
        self.logger.warning("chat session %s is gone: %s", event.session_id, event.reason)
        self._post(event, wake=False)  # resolves wait_for("chatLost") first
        error = ChatGone(event.reason, session_id=event.session_id, chat_id=event.chat_id)
        for waiter in self._waiters:
            if waiter.chat_bound:
                waiter.resolve(error=error)

    def _maybe_pin(self, conn: _Connection, event: ChatsSessionsUpdated) -> None:
        """voxta-client's auto-pin: the first sessions update with sessions subscribes us
        to our chat (or the first one) when we have none."""
        if not event.sessions or self.session_id is not None:
            return
        target = next((s for s in event.sessions if s.chat_id == self._active_chat_id),
                      event.sessions[0])
        self._active_chat_id = target.chat_id
        self._pinned_session = target.session_id
        conn.session.send(SubscribeToChat(session_id=target.session_id),
                          now=anyio.current_time(), expect_reply=False)

    def _post(self, event: ServerMessage | ConnectionEvent, *, wake: bool = True) -> None:
        """Resolve matching waiters, then queue ``event`` for the dispatch task."""
        if self._waiters:
            for waiter in list(self._waiters):
                if waiter.match is not None and waiter.match(event):
                    waiter.resolve(event)
        if self._dispatch_open:
            self._dispatch.append(event)
            if wake:
                self._dispatch_wake.set()

    async def _emit(self, event: ServerMessage | ConnectionEvent) -> None:
        """``_post`` from a task that may wait for room (backpressure)."""
        self._post(event)
        waiting = self._flow()
        if waiting is not None:
            await waiting

    def _flow(self) -> Awaitable[None] | None:
        """The driver's backpressure: while ``event_buffer`` events wait for dispatch,
        the reader waits before its next read."""
        if len(self._dispatch) < self._event_buffer or not self._dispatch_open:
            return None
        return self._wait_for_room()

    async def _wait_for_room(self) -> None:
        while len(self._dispatch) >= self._event_buffer and self._dispatch_open:
            room = self._dispatch_room = anyio.Event()
            await room.wait()

    async def _dispatch_loop(self) -> None:
        """Runs callbacks and feeds ``events()``, so neither stalls the reader; what is
        queued is taken without a checkpoint per event (a synchronous callback with no
        ``events()`` consumer costs a name lookup and the call)."""
        queue = self._dispatch
        popleft = queue.popleft
        names = _EVENT_NAMES
        while True:
            if not queue:
                if not self._dispatch_open:
                    break
                self._dispatch_wake = wake = anyio.Event()
                if not queue and self._dispatch_open:
                    await wake.wait()
                continue
            event = popleft()
            room = self._dispatch_room
            if room is not None and len(queue) < self._event_buffer:
                self._dispatch_room = None
                room.set()
            name = names.get(type(event)) or event_name(event)
            callbacks = self.callbacks.get(name)
            if callbacks:
                arg: object = event.session_id if type(event) is Ready else event
                for callback in list(callbacks):
                    try:
                        result = callback(arg)
                        if result is not None and inspect.isawaitable(result):
                            await result
                    except Exception:
                        self.logger.exception("callback %r for %r failed", callback, name)
            if self._subscribers:
                for subscriber in list(self._subscribers):
                    if subscriber.closed:
                        self._subscribers.remove(subscriber)
                    else:
                        await subscriber.put(event)
        room = self._dispatch_room
        if room is not None:
            room.set()
        for subscriber in self._subscribers:
            subscriber.close()
        self._subscribers.clear()

    def _request_failed(self, event: RequestFailed) -> None:
        """Fail the waiting request: ConnectionClosed when the connection ended first,
        else InvocationError with the server's error."""
        entry = self._requests.pop(event.invocation_id, None)
        if entry is None:
            if event.error and not event.connection_ended:
                self.logger.warning("%s failed: %s", type(event.request).__name__, event.error)
            return
        name = type(event.request).__name__
        entry[0].resolve(error=ConnectionClosed(f"{name}: {event.error}")
                         if event.connection_ended
                         else InvocationError(event.invocation_id, event.error))

    def _fail_requests(self, events: list[SessionEvent]) -> None:
        for event in events:
            if isinstance(event, RequestFailed):
                self._request_failed(event)

    def _fail_all(self, error: BaseException) -> None:
        for waiter, _ in self._requests.values():
            waiter.resolve(error=error)
        self._requests.clear()
        for waiter in self._waiters:
            waiter.resolve(error=error)

    # -- sending -----------------------------------------------------------------------

    async def send(self, message: ClientMessage, *, wait: bool = True,
                   timeout: float | None = None,  # noqa: ASYNC109
                   ) -> ServerMessage | None:
        """Send any client message (§4); with ``wait``, return the server's answer (its
        paired reply message, or None when only the Completion answers).

        Raises:
            ConnectionClosed: not connected.
            InvocationError: the server failed the request.
            TimeoutError: no answer within ``timeout`` (default ``request_timeout``).
        """
        conn = self._conn
        if conn is not None and conn.session.state in _WELCOMING:
            # A fresh reconnect is authenticating: wait for its welcome, as a request
            # during a stateful reattach waits in the replay buffer.
            await self.wait_until_welcome()
            conn = self._conn
        if conn is None or conn.session.state in _NOT_USABLE:
            raise ConnectionClosed("not connected: call connect() or use `async with`")
        waiter = _Waiter()
        invocation_id = conn.session.send(message, now=anyio.current_time(),
                                          expect_reply=wait)
        if invocation_id is not None:
            self._requests[invocation_id] = (waiter, True)
        # The writer task writes it; a lost connection fails the request (or, with
        # stateful reconnect, the replay after the reattach sends it again).
        conn.driver.transmit()
        if invocation_id is None:
            return None
        try:
            result = await waiter.wait(self.request_timeout if timeout is None else timeout,
                                       type(message).__name__)
        finally:
            self._requests.pop(invocation_id, None)
            if not waiter.event.is_set():
                # Timed out or cancelled: the session stops waiting too, so a late (or
                # lost) answer never resolves a later request of the same type.
                conn.session.forget(invocation_id)
        return cast("Union[ServerMessage, None]", result)

    # -- audio input -------------------------------------------------------------------

    async def open_audio_input(self, session_id: str | None = None, sample_rate: int = 16000,
                               channels: int = 1, bits_per_sample: int = 16,
                               buffer_milliseconds: int = 30,
                               content_type: str = "audio/pcm") -> AudioInputStream:
        """Open ``/ws/audio/input/stream?sessionId=`` and send the stream spec; then
        ``await stream.send(pcm_chunk)`` and ``await stream.aclose()`` (or ``async with``)."""
        target = self._session(session_id)
        url = build_websocket_url(self.url + AUDIO_INPUT_PATH, connection_token=None)
        url += ("&" if "?" in url else "?") + "sessionId=" + target
        transport = await self._connector(url, options=self._options(None))
        spec = {"contentType": content_type, "sampleRate": sample_rate, "channels": channels,
                "bitsPerSample": bits_per_sample, "bufferMilliseconds": buffer_milliseconds}
        try:
            await transport.send(json.dumps(spec))
        except BaseException:
            await transport.aclose(1011)
            raise
        return AudioInputStream(transport)



_WELCOMING = frozenset({ClientState.NEW, ClientState.HANDSHAKING, ClientState.AUTHENTICATING})
_NOT_USABLE = _WELCOMING | {ClientState.CLOSED}


def _chat_bound(event_type: type[Any] | str) -> bool:
    """A ``wait_for`` of a server message that belongs to a chat session (it has a
    ``session_id``): it fails at once with ChatGone when that chat is lost."""
    kind = SERVER_MESSAGE_TYPES.get(event_type) if isinstance(event_type, str) else event_type
    fields = getattr(kind, "__struct_fields__", ())
    return "session_id" in fields


async def _leave(tg: TaskGroup, exc: BaseException | None) -> None:
    """Exit ``tg`` (entered by ``__aenter__``) in this task: with a cancellation passed
    in, so the cancel scopes unwind in order; else with none, so the caller's error is
    re-raised as it is, not inside an exception group (the connect task ended already,
    or ends now, and keeps its own errors)."""
    if exc is None or isinstance(exc, Exception):
        await tg.__aexit__(None, None, None)
    else:
        await tg.__aexit__(type(exc), exc, exc.__traceback__)
