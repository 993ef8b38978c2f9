"""VoxtaClient against the bundled MockVoxtaServer, in memory and over loopback, under
asyncio and trio: every public method, reconnect (stateful and plain), errors, events."""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from voxta_mock import MockVoxtaServer
from voxta_mock.expectations import FaultAnswer
from voxta_mock.faults import FaultPlan
from voxta_proto.client import Closed, Ready, Reconnected, Reconnecting, VoxtaClient
from voxta_proto.errors import (
    AuthenticationFailed,
    ConnectionClosed,
    HandshakeRejected,
    LocalProtocolError,
    TransportError,
)
from voxta_proto.hub.negotiate import build_websocket_url
from voxta_proto.hub_client import engine_connector
from voxta_proto.transports import ConnectOptions, MessageTransport, connect_websocket
from voxta_proto.voxta.client_messages import LoadCharactersList, Send, TypingStart
from voxta_proto.voxta.server_messages import (
    CharactersListLoaded,
    ChatPaused,
    ChatStarted,
    ReplyChunk,
    ReplyEnd,
    ServerMessage,
    Welcome,
)

pytestmark = pytest.mark.anyio

Factory = Callable[..., VoxtaClient]


@pytest.fixture(params=["memory", "loopback"])
def via(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
async def mock(via: str, voxta_mock_config: dict[str, Any]) -> AsyncIterator[MockVoxtaServer]:
    options = {"host": "127.0.0.1", "reply_delay": 0.01, **voxta_mock_config, "port": 0,
               "listen": via == "loopback"}
    async with MockVoxtaServer(**options) as server:
        yield server


@pytest.fixture
def make_client(mock: MockVoxtaServer, via: str) -> Factory:
    """Clients of ``mock``: real negotiate and WebSockets, or the mock's in-memory ones."""
    def make(**kwargs: Any) -> VoxtaClient:
        if via == "loopback":
            return VoxtaClient(mock.url, **kwargs)
        return VoxtaClient("http://mock.memory", connector=mock.memory_connector,
                           negotiator=mock.negotiate_memory, **kwargs)
    return make


async def started_chat(client: VoxtaClient) -> ChatStarted:
    characters = await client.load_characters_list()
    return await client.start_chat(characters[0].id)


async def reply_to(client: VoxtaClient, text: str) -> ReplyEnd:
    """Send ``text`` and wait for the end of the reply (waiting registered first)."""
    async with anyio.create_task_group() as tg:
        end: list[ReplyEnd] = []

        async def wait() -> None:
            end.append(await client.wait_for(ReplyEnd, timeout=15))

        tg.start_soon(wait)
        await anyio.lowlevel.checkpoint()
        await client.send_message(text)
    return end[0]


# ------------------------------------------------------------------------- every method


async def test_every_public_method(make_client: Factory, mock: MockVoxtaServer) -> None:
    with anyio.fail_after(30):
        async with make_client() as client:
            assert client.running
            assert isinstance(client.welcome, Welcome)
            assert isinstance(await client.authenticate(), Welcome)
            await client.register_app("tests")
            characters = await client.load_characters_list()
            assert characters
            assert isinstance(await client.load_scenarios_list(), tuple)
            assert isinstance(await client.load_chats_list(characters[0].id), tuple)
            started = await client.start_chat(characters[0].id,
                                              contexts=[{"text": "It is raining."}])
            assert client.session_id == started.session_id
            assert client.chat_id == started.chat_id
            await client.subscribe_to_chat(started.session_id, started.chat_id)
            await reply_to(client, "hello")
            assert client.last_message_id is not None
            assert not client.is_thinking
            assert not client.is_speaking
            await client.typing_start()
            await client.typing_end(sent=True)
            await client.trigger_action("wave", {"speed": 2})
            assert isinstance(await client.request_suggestions(), tuple)
            await client.character_speech_request(characters[0].id, text="Hi")
            await client.speech_playback_start()
            await client.speech_playback_complete()
            await client.update_message(client._message(None), "edited")
            await client.inspect(started.session_id)
            await client.inspect_audio_input(True)
            await client.update_context(started.session_id, "tests",
                                        contexts=[{"text": "x"}], set_flags=["f"])
            paused = await client.pause()
            assert isinstance(paused, ChatPaused)
            assert paused.paused
            await client.pause(pause=False)
            await client.interrupt()
            await client.retry()
            await client.wait_for(ReplyEnd, timeout=15)
            await client.revert()
            await client.add_chat_participant(characters[1].id)
            await client.remove_chat_participant(characters[1].id)
            # any client message through the one typed send(): with and without waiting
            listed = await client.send(LoadCharactersList())
            assert isinstance(listed, CharactersListLoaded)
            assert await client.send(TypingStart(session_id=started.session_id),
                                     wait=False) is None
            await client.delete_message(client._message(None))
            async with await client.open_audio_input(sample_rate=24000) as audio:
                await audio.send(b"\x01\x00" * 240)
                await audio.send(b"")  # nothing to send: no frame
            resumed = await client.resume_chat(started.chat_id)
            assert resumed.chat_id == started.chat_id
            await client.stop_chat(started.chat_id)
    stream = mock.audio_streams[-1]  # the chat requests after it gave the server time
    assert stream.session_id == started.session_id
    assert stream.spec is not None
    assert stream.spec["sampleRate"] == 24000
    assert stream.spec["channels"] == 1
    assert (stream.frames, stream.bytes) == (1, 480)


@pytest.mark.parametrize("call", [
    lambda c: c.send_message("hi"), lambda c: c.interrupt(), lambda c: c.retry(),
    lambda c: c.revert(), lambda c: c.pause(), lambda c: c.typing_start(),
    lambda c: c.typing_end(), lambda c: c.request_suggestions(),
    lambda c: c.character_speech_request("x"), lambda c: c.add_chat_participant("x"),
    lambda c: c.remove_chat_participant("x"), lambda c: c.update_message("m", "t"),
    lambda c: c.delete_message("m"), lambda c: c.trigger_action("a"),
    lambda c: c.speech_playback_start(message_id="m"), lambda c: c.open_audio_input(),
    lambda c: c.update_context("", "key"),
], ids=lambda _: "")
async def test_session_scoped_call_without_session_raises(
        make_client: Factory, call: Callable[[VoxtaClient], Awaitable[object]]) -> None:
    with anyio.fail_after(15):
        async with make_client() as client:
            with pytest.raises(LocalProtocolError, match="no active chat session"):
                await call(client)
            # a clear error, and the connection still works
            assert await client.load_characters_list()


async def test_connect_task_pattern(make_client: Factory) -> None:
    """voxta-client's ``task = create_task(client.connect(token, cookies))``."""
    client = make_client()
    closed: list[Closed] = []
    client.on("close", closed.append)
    with anyio.fail_after(15):
        token, cookies = await client.negotiate()
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.connect, token, cookies)
            await client.wait_until_welcome()
            await started_chat(client)
            await reply_to(client, "hello")
            await client.close()
    assert not client.running
    assert closed == [Closed(None)]
    with pytest.raises(ConnectionClosed):
        await client.load_characters_list()


# ----------------------------------------------------------------------------- reconnect


@pytest.mark.voxta_mock(stateful_reconnect=True,
                        connection_faults={0: FaultPlan(drop_after_chunks=1)})
async def test_stateful_reconnect_loses_nothing(make_client: Factory,
                                                mock: MockVoxtaServer) -> None:
    chunks: list[ReplyChunk] = []
    reconnected: list[Reconnected] = []
    client = make_client()
    client.on("replyChunk", chunks.append)
    client.on("reconnected", reconnected.append)
    with anyio.fail_after(30):
        async with client:
            session = client.session
            assert session is not None
            assert session.hub.stateful_reconnect
            started = await started_chat(client)
            end = await reply_to(client, "tell me a joke")
            # the same session resumed: no new handshake, no new authenticate
            assert client.session is session
            assert client.session_id == started.session_id
            assert await client.load_scenarios_list() is not None
            await anyio.sleep(0.05)  # let the dispatcher catch up
    assert reconnected == [Reconnected(stateful=True)]
    reply = [c for c in chunks if c.message_id == end.message_id]
    # every chunk exactly once and in order: each starts where the last ended (plus
    # the space between words), from the first to the one the reply ended with
    assert reply[0].start_index == 0
    assert len(reply) >= 2
    for before, after in itertools.pairwise(reply):
        assert after.start_index - before.end_index in (0, 1)


@pytest.mark.voxta_mock(stateful_reconnect=True)
async def test_reattach_takes_over_a_transport_the_server_still_holds(
        make_client: Factory, mock: MockVoxtaServer) -> None:
    """A reattach for a connection whose transport the server has not seen drop: the
    server gives that transport up for the new one; the newest attempt wins."""
    reconnected: list[Reconnected] = []
    client = make_client()
    client.on("reconnected", reconnected.append)
    with anyio.fail_after(20):
        async with client:
            session = client.session
            started = await started_chat(client)
            assert client._outcome is not None
            intruder = await mock.connect_memory(client._outcome.result.connection_token)
            # the intruder is offered the resume (a Sequence first), then loses the
            # connection to the client's own reattach and is closed
            first = await intruder.receive()
            assert isinstance(first, str)
            assert first.startswith('{"type":9,')

            async def drain() -> None:
                while True:
                    await intruder.receive()

            with pytest.raises(TransportError):
                await drain()
            await reply_to(client, "still the same chat?")
            assert client.session is session
            assert client.session_id == started.session_id
            await intruder.aclose()
    assert reconnected == [Reconnected(stateful=True)]


@pytest.mark.voxta_mock(stateful_reconnect=True,
                        connection_faults={0: FaultPlan(drop_after_chunks=1)})
async def test_expired_stateful_session_falls_back_to_a_fresh_connection(
        make_client: Factory, mock: MockVoxtaServer) -> None:
    """The server gave up waiting for the reattach (404): the client connects afresh,
    and the requests the old session still owed fail with ConnectionClosed."""
    mock.hub_config = replace(mock.hub_config, reattach_timeout=0.2)
    reconnecting: list[Reconnecting] = []
    client = make_client(reconnect=(0.5, 0.0))
    client.on("reconnecting", reconnecting.append)
    with anyio.fail_after(30):
        async with client:
            first = client.session
            reconnected = client.wait_for(Reconnected, timeout=15)
            failed: list[ConnectionClosed] = []
            async with anyio.create_task_group() as tg:
                async def chat() -> None:
                    try:
                        await started_chat(client)  # the drop hits its greeting...
                        await client.send_message("hello")  # ...so this waits, detached
                    except ConnectionClosed as exc:
                        failed.append(exc)
                tg.start_soon(chat)
                event = await reconnected
            assert len(failed) == 1
            assert "could not be resumed" in str(failed[0])
            assert event == Reconnected(stateful=False)
            assert client.session is not first
            assert await client.load_characters_list()
    assert [r.attempt for r in reconnecting] == [1, 2]


@pytest.mark.voxta_mock(stateful_reconnect=True, preseed_session=True,
                        connection_faults={0: FaultPlan(drop_after_chunks=1)})
async def test_without_stateful_reconnect_the_drop_loses_chunks_and_resubscribes(
        make_client: Factory) -> None:
    """The contrast: a client that does not ask for stateful reconnect reconnects
    afresh (negotiate, handshake, authenticate), re-subscribes, and misses chunks."""
    chunks: list[ReplyChunk] = []
    ready = anyio.Event()
    client = make_client(stateful_reconnect=False)
    client.on("replyChunk", chunks.append)
    client.on("ready", lambda _: ready.set())
    with anyio.fail_after(30):
        async with client:
            await ready.wait()
            pinned = client.session_id
            first = client.session
            reconnected = client.wait_for(Reconnected, timeout=15)
            async with anyio.create_task_group() as tg:
                async def send() -> None:
                    # answered before the drop, or failed by it with ConnectionClosed
                    with contextlib.suppress(ConnectionClosed):
                        await client.send_message("hello")
                tg.start_soon(send)
                event = await reconnected
            assert event == Reconnected(stateful=False)
            assert client.session is not first  # a new session: authenticated again
            assert client.session_id == pinned  # and subscribed again to the same chat
            assert client.session is not None
            assert client.session.chat.session_id == pinned
            await reply_to(client, "again")
    by_message: dict[str, list[ReplyChunk]] = {}
    for chunk in chunks:
        by_message.setdefault(chunk.message_id, []).append(chunk)
    lost, again = list(by_message.values())[-2:]
    assert len(lost) < len(again)  # the dropped reply lost its tail; the next is whole


@pytest.mark.voxta_mock(connection_faults={
    0: FaultPlan(close_after_authenticate="restarting", allow_reconnect=True)})
async def test_server_close_with_allow_reconnect(make_client: Factory) -> None:
    reconnected = anyio.Event()
    reconnecting: list[object] = []
    client = make_client()
    client.on("reconnecting", reconnecting.append)
    client.on("reconnected", lambda _: reconnected.set())
    with anyio.fail_after(30):
        async with client:
            await reconnected.wait()
            await started_chat(client)
            await reply_to(client, "hi")
    assert len(reconnecting) == 1


@pytest.mark.voxta_mock(connection_faults={0: FaultPlan(close_after_authenticate="go away")})
async def test_server_close_without_reconnect_ends_connect(make_client: Factory) -> None:
    client = make_client()
    closed: list[Closed] = []
    client.on("close", closed.append)
    with anyio.fail_after(15):
        token, cookies = await client.negotiate()
        with pytest.raises(ConnectionClosed, match="go away"):
            await client.connect(token, cookies)
    assert not client.running
    assert closed == [Closed("go away")]


@pytest.mark.voxta_mock(stateful_reconnect=True)
async def test_reattach_with_unknown_or_finished_token_is_refused(
        mock: MockVoxtaServer, make_client: Factory, via: str) -> None:
    with anyio.fail_after(15):
        async with make_client() as client:
            assert client._outcome is not None
            token = client._outcome.result.connection_token
        with pytest.raises(HandshakeRejected) as refused:
            await mock.connect_memory("no-such-token")
        assert refused.value.status_code == 404
        while mock._conns:  # noqa: ASYNC110 - the server notices the end of the connection
            await anyio.sleep(0.01)
        with pytest.raises(HandshakeRejected):
            await mock.connect_memory(token)  # that connection is over
        if via == "loopback":  # the same over HTTP: 404, not a reattach
            for stale in (token, "no-such-token"):
                url = build_websocket_url(mock.hub_url, connection_token=stale)
                with pytest.raises(HandshakeRejected) as refused:
                    await connect_websocket(url)
                assert refused.value.status_code == 404


async def test_the_client_exits_after_the_server_drops_the_connection(
        make_client: Factory, mock: MockVoxtaServer) -> None:
    """The server aborts the connection (no close frame) right after a send it answered,
    then the client exits: ``__aexit__`` used to hang when the reader saw the drop only
    after close() had begun (every time in memory on asyncio, now and then elsewhere:
    hence a few rounds)."""
    for _ in range(5):
        mock.expectations.add(Send, fault=FaultAnswer(kind="drop"))
        with anyio.fail_after(10):
            async with make_client(reconnect=()) as client:
                await started_chat(client)
                assert mock.state().connections
                await client.send_message("bye")
                while mock.state().connections:  # noqa: ASYNC110 (server state, no event)
                    await anyio.sleep(0.01)
        assert not client.running


@pytest.mark.voxta_mock(connection_faults={0: FaultPlan(drop_after_chunks=1)})
async def test_close_while_reconnecting_ends_the_client(mock: MockVoxtaServer,
                                                        via: str) -> None:
    """close() while the client reconnects (here: while it opens the new transport):
    the new connection used to be served anyway, so ``__aexit__`` waited forever."""
    opened = 0
    reconnecting = anyio.Event()
    base = mock.memory_connector if via == "memory" else engine_connector("wsproto")

    async def connector(url: str, *, options: ConnectOptions) -> MessageTransport:
        nonlocal opened
        opened += 1
        if opened == 2:
            reconnecting.set()
            await anyio.sleep(0.2)
        return await base(url, options=options)

    if via == "memory":
        client = VoxtaClient("http://mock.memory", connector=connector,
                             negotiator=mock.negotiate_memory)
    else:
        client = VoxtaClient(mock.url, connector=connector)
    with anyio.fail_after(10):
        async with client:
            characters = await client.load_characters_list()
            with contextlib.suppress(ConnectionClosed):  # its greeting drops the connection
                await client.start_chat(characters[0].id)
            await reconnecting.wait()
    assert not client.running
    assert opened == 2


@pytest.mark.voxta_mock(connection_faults={0: FaultPlan(drop_after_chunks=1),
                                           1: FaultPlan(silent_after_handshake=True)})
async def test_close_before_the_reconnect_is_welcomed_ends_the_client(
        mock: MockVoxtaServer, via: str) -> None:
    """close() after a fresh reconnect opened its connection, before ``welcome``: the
    task that announces the reconnect used to wait for that welcome until
    ``connect_timeout``, holding up ``__aexit__``."""
    opened = 0
    served = anyio.Event()
    base = mock.memory_connector if via == "memory" else engine_connector("wsproto")

    async def connector(url: str, *, options: ConnectOptions) -> MessageTransport:
        nonlocal opened
        opened += 1
        transport = await base(url, options=options)
        if opened == 2:
            served.set()
        return transport

    if via == "memory":
        client = VoxtaClient("http://mock.memory", connector=connector,
                             negotiator=mock.negotiate_memory, connect_timeout=30)
    else:
        client = VoxtaClient(mock.url, connector=connector, connect_timeout=30)
    with anyio.fail_after(10):
        async with client:
            characters = await client.load_characters_list()
            with contextlib.suppress(ConnectionClosed):  # its greeting drops the connection
                await client.start_chat(characters[0].id)
            await served.wait()
            await anyio.sleep(0.05)  # the new connection runs, and gets no welcome
    assert not client.running
    assert opened == 2


# ------------------------------------------------------------------------------- errors


@pytest.mark.voxta_mock(faults=FaultPlan(refuse_handshake="Handshake was canceled."))
async def test_refused_handshake_raises_handshake_rejected(make_client: Factory) -> None:
    # Told apart by the session's state, not by the words of the server's error.
    with anyio.fail_after(15), pytest.raises(HandshakeRejected, match="canceled"):
        async with make_client(reconnect=()):
            pass  # pragma: no cover


@pytest.mark.voxta_mock(faults=FaultPlan(refuse_authenticate=True))
async def test_authentication_failure_raises_from_async_with(make_client: Factory) -> None:
    client = make_client()
    closed: list[Closed] = []
    client.on("close", closed.append)
    with anyio.fail_after(15), pytest.raises(AuthenticationFailed, match="authentication"):
        async with client:
            pass  # pragma: no cover
    assert not client.running
    assert len(closed) == 1
    # the same from connect(), the voxta-client way
    with anyio.fail_after(15):
        token, cookies = await client.negotiate()
        with pytest.raises(AuthenticationFailed, match="authenticationRequired"):
            await client.connect(token, cookies)
    assert len(closed) == 2


async def test_outer_timeout_while_connecting_leaves_the_client_usable(
        mock: MockVoxtaServer, via: str, make_client: Factory) -> None:
    """A ``fail_after`` around ``async with`` that fires during negotiate or before
    welcome: a clean TimeoutError (no corrupted cancel scopes on trio), and the same
    client connects afterwards."""
    client = make_client()
    for limit in (0.0, 0.001, 0.005, 0.02):
        with pytest.raises(TimeoutError), anyio.fail_after(limit):
            async with client:
                await anyio.sleep(10)
        assert not client.running
    with anyio.fail_after(15):
        async with client:
            assert await client.load_characters_list()


async def test_an_error_in_the_body_comes_out_as_it_is(make_client: Factory) -> None:
    """Not wrapped in an exception group (trio's task groups would)."""
    client = make_client()
    with anyio.fail_after(15), pytest.raises(KeyError, match="from the body"):
        async with client:
            raise KeyError("from the body")
    assert not client.running


@pytest.mark.voxta_mock(faults=FaultPlan(latency=0.3))
async def test_pending_request_fails_promptly_on_close(make_client: Factory) -> None:
    errors: list[BaseException] = []
    with anyio.fail_after(20):
        async with make_client(request_timeout=60) as client, anyio.create_task_group() as tg:
            async def load() -> None:
                try:
                    await client.load_characters_list()
                except ConnectionClosed as exc:
                    errors.append(exc)

            tg.start_soon(load)
            await anyio.sleep(0.05)
            assert client.session is not None
            assert client.session.pending_requests
            with anyio.fail_after(5):
                await client.close()
    assert len(errors) == 1
    assert "LoadCharactersList" in str(errors[0])


@pytest.mark.voxta_mock(connection_faults={0: FaultPlan(drop_after_chunks=1)})
async def test_pending_request_fails_on_connection_loss(make_client: Factory) -> None:
    """Without reconnect, a request in flight when the connection drops raises
    ConnectionClosed at once (not at its timeout)."""
    with anyio.fail_after(20):
        async with make_client(reconnect=(), request_timeout=60,
                               stateful_reconnect=False) as client:
            async def chat() -> None:
                # the drop hits the greeting or the reply: a request or the wait fails
                await started_chat(client)
                await client.send_message("hello")
                await client.wait_for(ReplyEnd, timeout=15)

            with pytest.raises(ConnectionClosed):
                await chat()


# ------------------------------------------------------------------- callbacks and events


async def test_raising_callbacks_are_logged_and_do_not_kill_the_connection(
        make_client: Factory, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def sync_boom(_: ServerMessage) -> None:
        calls.append("sync")
        raise RuntimeError("sync callback bug")

    async def async_boom(_: ServerMessage) -> None:
        calls.append("async")
        await anyio.lowlevel.checkpoint()
        raise ValueError("async callback bug")

    client = make_client()
    client.on("chatStarted", sync_boom)
    client.on("chatStarted")(async_boom)
    with anyio.fail_after(20), caplog.at_level(logging.ERROR, logger="voxta_proto.client"):
        async with client:
            await started_chat(client)
            await reply_to(client, "still there?")
            assert client.running
    assert calls[:2] == ["sync", "async"]  # in order (the mock sends chatStarted twice)
    texts = [r.exc_text or "" for r in caplog.records]
    assert any("RuntimeError: sync callback bug" in t for t in texts)
    assert any("ValueError: async callback bug" in t for t in texts)


async def test_events_iterator_is_bounded(make_client: Factory) -> None:
    """A consumer that does not read holds the client back at ``event_buffer`` events
    (nothing piles up); once it reads, every event arrives, in order."""
    with anyio.fail_after(30):
        async with make_client(event_buffer=2) as client:
            started = await started_chat(client)
            await anyio.sleep(0.2)  # the greeting is over
            stream = client.events()
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.send_message, "hello")
                await anyio.sleep(0.3)
                assert len(stream._queue.items) == 2  # bounded, though more is due
                seen: list[str] = []
                async for event in stream:
                    seen.append(type(event).__name__)
                    if isinstance(event, ReplyEnd):
                        break
            await stream.aclose()
    assert "ReplyChunk" in seen
    assert seen[-1] == "ReplyEnd"
    assert started.session_id


async def test_wait_for_predicate_and_timeout(make_client: Factory) -> None:
    with anyio.fail_after(20):
        async with make_client() as client:
            await started_chat(client)
            async with anyio.create_task_group() as tg:
                later: list[ReplyChunk] = []

                async def wait() -> None:
                    later.append(await client.wait_for(
                        "replyChunk", lambda chunk: chunk.start_index > 0, timeout=15))

                tg.start_soon(wait)
                await anyio.lowlevel.checkpoint()
                await client.send_message("hello")
            assert later[0].start_index > 0
            with pytest.raises(TimeoutError, match="wait_for"):
                await client.wait_for(ReplyChunk, lambda c: c.start_index < 0, timeout=0.05)
            with pytest.raises(TimeoutError):  # a Ready came, but not for this session
                await client.wait_for(Ready, lambda r: r.session_id == "other", timeout=0.05)
