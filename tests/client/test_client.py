"""VoxtaClient against the in-memory server: handshake, requests, events, reconnect."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from voxta_proto.client import (
    Closed,
    Ready,
    Reconnected,
    Reconnecting,
    VoxtaClient,
    event_name,
)
from voxta_proto.errors import ConnectionClosed, LocalProtocolError
from voxta_proto.voxta.client_messages import (
    AddChatParticipant,
    Authenticate,
    CharacterSpeechRequest,
    ClientSpeechPlaybackComplete,
    ClientSpeechPlaybackStart,
    ClientUpdate,
    DeleteMessage,
    Inspect,
    InspectAudioInput,
    Interrupt,
    RegisterApp,
    RemoveChatParticipant,
    Retry,
    Revert,
    Send,
    StopChat,
    SubscribeToChat,
    TriggerAction,
    TypingEnd,
    TypingStart,
    UpdateContext,
)
from voxta_proto.voxta.server_messages import (
    ChatStarted,
    ReplyChunk,
    ReplyEnd,
    ServerMessage,
    Welcome,
)

from .mini_server import CHAT_ID, SESSION_ID, MiniServer

pytestmark = pytest.mark.anyio


def make_client(server: MiniServer, **kwargs: Any) -> VoxtaClient:
    return VoxtaClient("http://voxta.test", connector=server.connector,
                       negotiator=server.negotiator, **kwargs)


@asynccontextmanager
async def connected(server: MiniServer, **kwargs: Any) -> AsyncIterator[VoxtaClient]:
    async with make_client(server, **kwargs) as client:
        yield client


async def test_async_with_authenticates_and_waits_for_welcome(mini_server: MiniServer) -> None:
    with anyio.fail_after(5):
        async with connected(mini_server) as client:
            was_running = client.running
            assert isinstance(client.welcome, Welcome)
            assert isinstance(mini_server.received[0], Authenticate)
        assert was_running
        assert not client.running
    # graceful close: SignalR Close, then WebSocket close 1000
    assert mini_server.connections[0].close_code == 1000
    assert any('"type":7' in str(m) for m in mini_server.connections[0]._peer.sent)  # type: ignore[union-attr]


async def test_start_chat_send_message_and_typed_stream(mini_server: MiniServer) -> None:
    chunks: list[ReplyChunk] = []
    ready: list[str] = []
    with anyio.fail_after(5):
        async with connected(mini_server) as client:
            client.on("replyChunk", chunks.append)

            @client.on("ready")
            async def on_ready(session_id: str) -> None:
                ready.append(session_id)

            started = await client.start_chat("22222222-2222-4222-8222-222222222222",
                                              contexts=[{"text": "It is raining."}])
            assert isinstance(started, ChatStarted)
            assert client.session_id == SESSION_ID
            end = client.wait_for(ReplyEnd)
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.send_message, "Tell me a story")
                await end
            assert client.last_message_id is not None
            await anyio.sleep(0.01)
    assert "".join(c.text for c in chunks) == "Once upon a time."
    assert ready == [SESSION_ID]
    send = next(m for m in mini_server.received if isinstance(m, Send))
    assert send.do_reply
    assert send.do_user_action_inference
    assert send.session_id == SESSION_ID


async def test_list_loaders_return_lists(mini_server: MiniServer) -> None:
    with anyio.fail_after(5):
        async with connected(mini_server) as client:
            characters = await client.load_characters_list()
            scenarios = await client.load_scenarios_list()
            chats = await client.load_chats_list(characters[0].id)
            assert characters
            assert isinstance(scenarios, tuple)
            assert isinstance(chats, tuple)
            with pytest.raises(ValueError, match="character_id"):
                await client.load_chats_list()


async def test_session_scoped_call_without_session_raises(mini_server: MiniServer) -> None:
    with anyio.fail_after(5):
        async with connected(mini_server) as client:
            with pytest.raises(LocalProtocolError, match="no active chat session"):
                await client.send_message("hi")
            with pytest.raises(LocalProtocolError):
                await client.interrupt()


async def test_every_method_sends_its_message(mini_server: MiniServer) -> None:
    with anyio.fail_after(5):
        async with connected(mini_server) as client:
            await client.register_app()
            await client.resume_chat(CHAT_ID)
            await client.subscribe_to_chat(SESSION_ID, CHAT_ID)
            await client.add_chat_participant("c2")
            await client.remove_chat_participant("c2")
            await client.update_message("m1", "edited")
            await client.delete_message("m1")
            await client.trigger_action("wave", {"speed": 2, "who": "me"})
            await client.interrupt()
            await client.retry()
            await client.revert()
            paused = await client.pause()
            assert paused.paused
            await client.typing_start()
            await client.typing_end(sent=True)
            assert isinstance(await client.request_suggestions(), tuple)
            await client.character_speech_request("c1", text="hello")
            await client.speech_playback_start(message_id="m1", start_index=0, end_index=5)
            await client.speech_playback_complete(message_id="m1")
            await client.inspect(SESSION_ID)
            await client.inspect_audio_input(True)
            await client.update_context(SESSION_ID, "app", contexts=[{"text": "x"}],
                                        set_flags=["f"], enable_roles={"narrator": True})
            welcome = await client.authenticate()
            assert isinstance(welcome, Welcome)
            await client.stop_chat(CHAT_ID)
    kinds = {type(m) for m in mini_server.received}
    for kind in (RegisterApp, SubscribeToChat, AddChatParticipant, RemoveChatParticipant,
                 ClientUpdate, DeleteMessage, TriggerAction, Interrupt, Retry, Revert,
                 TypingStart, TypingEnd, CharacterSpeechRequest, ClientSpeechPlaybackStart,
                 ClientSpeechPlaybackComplete, Inspect, InspectAudioInput, UpdateContext,
                 StopChat):
        assert kind in kinds, kind
    action = next(m for m in mini_server.received if isinstance(m, TriggerAction))
    assert action.arguments is not None
    assert {(a.name, a.value) for a in action.arguments} == {("speed", "2"), ("who", "me")}
    stop = next(m for m in mini_server.received if isinstance(m, StopChat))
    assert stop.session_id == SESSION_ID


async def test_callback_errors_are_logged_and_slow_callbacks_do_not_stall_requests(
        mini_server: MiniServer, caplog: pytest.LogCaptureFixture) -> None:
    release = anyio.Event()
    with anyio.fail_after(5):
        async with connected(mini_server) as client:
            def boom(_: object) -> None:
                raise RuntimeError("callback bug")

            async def slow(_: object) -> None:
                await release.wait()

            client.on("chatStarted", boom)
            client.on("chatStarted", slow)
            with caplog.at_level(logging.ERROR, logger="voxta_proto.client"):
                await client.start_chat("c1")
                # the slow callback has not returned, but requests still complete
                assert len(await client.load_characters_list()) >= 1
                await anyio.sleep(0.01)
            release.set()
    assert any("callback bug" in (r.exc_text or "") for r in caplog.records)


async def test_events_iterator_is_typed(mini_server: MiniServer) -> None:
    seen: list[str] = []
    with anyio.fail_after(5):
        async with connected(mini_server, event_buffer=2) as client, \
                anyio.create_task_group() as tg:
                async def consume() -> None:
                    async for event in client.events():
                        assert isinstance(event, (ServerMessage, Ready))
                        seen.append(event_name(event))
                        if isinstance(event, ReplyEnd):
                            return
                tg.start_soon(consume)
                await anyio.lowlevel.checkpoint()
                await client.start_chat("c1")
                await client.send_message("hi")
    started = seen.index("chatStarted")
    assert seen[started + 1] == "ready"
    assert seen[-1] == "replyEnd"
    assert "replyChunk" in seen


async def test_connect_task_pattern(mini_server: MiniServer) -> None:
    client = make_client(mini_server)
    closed: list[Closed] = []
    client.on("close", closed.append)
    with anyio.fail_after(5):
        token, cookies = await client.negotiate()
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.connect, token, cookies)
            await client.wait_until_welcome()
            await client.start_chat("c1")
            await client.close()
    assert not client.running
    assert closed
    assert closed[0].error is None
    with pytest.raises(ConnectionClosed):
        await client.load_characters_list()


async def test_reconnects_after_drop_mid_reply_and_resubscribes(mini_server: MiniServer) -> None:
    events: list[object] = []
    with anyio.fail_after(10):
        async with connected(mini_server) as client:
            client.on("reconnecting", events.append)
            client.on("reconnected", events.append)
            await client.start_chat("c1")
            mini_server.drop_during_reply = True
            mini_server.chat_survives = True  # §3.7: rejoined only while the server has it
            reconnected = client.wait_for("reconnected")
            await client.send_message("hi")
            await reconnected
            assert isinstance(events[0], Reconnecting)
            assert events[0].delay == 0
            assert mini_server.negotiations == 2
            assert isinstance(mini_server.received[-1], SubscribeToChat)
            assert client.session_id == SESSION_ID
            # the client works again after reconnecting
            assert await client.load_characters_list()
    assert isinstance(events[-1], Reconnected)
    assert not events[-1].stateful


async def test_server_close_with_allow_reconnect(mini_server: MiniServer) -> None:
    with anyio.fail_after(10):
        async with connected(mini_server) as client:
            await client.start_chat("c1")
            reconnected = client.wait_for(Reconnected)
            await mini_server.close_all(allow_reconnect=True)
            await reconnected
            assert len(mini_server.sessions) == 2
            assert await client.load_scenarios_list() is not None


async def test_server_close_without_reconnect_ends_connect(mini_server: MiniServer) -> None:
    client = make_client(mini_server)
    with anyio.fail_after(5):
        token, cookies = await client.negotiate()
        async with anyio.create_task_group() as tg:
            async def run() -> None:
                with pytest.raises(ConnectionClosed, match="server restarting"):
                    await client.connect(token, cookies)
            tg.start_soon(run)
            await client.wait_until_welcome()
            await mini_server.close_all(allow_reconnect=False)
    assert not client.running


async def test_server_timeout_then_reconnect_policy_gives_up(mini_server: MiniServer) -> None:
    from voxta_proto.hub import HubConfig

    client = make_client(mini_server, reconnect=(), hub_config=HubConfig(
        keepalive_interval=0.05, peer_timeout=0.2))
    with anyio.fail_after(5):
        token, cookies = await client.negotiate()
        async with anyio.create_task_group() as tg:
            async def run() -> None:
                with pytest.raises(ConnectionClosed, match="sent nothing"):
                    await client.connect(token, cookies)
            tg.start_soon(run)
            await client.wait_until_welcome()
            mini_server.silent = True
    # the client sent keep-alive pings while waiting
    sent = [str(m) for m in mini_server.connections[0]._peer.sent]  # type: ignore[union-attr]
    assert any('"type":6' in m for m in sent)


async def test_open_audio_input(mini_server: MiniServer) -> None:
    with anyio.fail_after(5):
        async with connected(mini_server) as client:
            await client.start_chat("c1")
            async with await client.open_audio_input() as stream:
                await stream.send(b"\x00\x01" * 480)
            await anyio.sleep(0.01)
    url, spec, pcm = mini_server.audio[:3]
    assert isinstance(url, str)
    assert url.endswith(f"/ws/audio/input/stream?sessionId={SESSION_ID}")
    assert '"sampleRate": 16000' in str(spec)
    assert '"channels": 1' in str(spec)
    assert pcm == b"\x00\x01" * 480
