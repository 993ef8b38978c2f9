"""SpeechPlayback against the mock: audio URLs fetched with the token, in order, with
``audioGapMs``; placeholders never fetched; one ``speechPlaybackComplete`` per reply,
also after an interrupt (API 2025-11 §3.1)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from voxta_mock import MockVoxtaServer
from voxta_proto.client import VoxtaClient
from voxta_proto.client.audio_output import (
    SpeechClip,
    SpeechPlayback,
    playback_capabilities,
    silence_ms,
    wav_duration,
)
from voxta_proto.errors import TransportError
from voxta_proto.voxta import ChatFlow, ChatFlowStates, InterruptSpeech
from voxta_proto.voxta.client_messages import (
    ClientMessage,
    ClientSpeechPlaybackComplete,
    ClientSpeechPlaybackStart,
)

pytestmark = pytest.mark.anyio

APEX = "22222222-2222-4222-8222-222222222222"
TOKEN = "secret-token"
LONG = "Tell me a long story about the sea, please, with many words in it."


@asynccontextmanager
async def playing_client(server: MockVoxtaServer, monkeypatch: pytest.MonkeyPatch,
                         sent: list[ClientMessage], **kwargs: Any,
                         ) -> AsyncIterator[tuple[VoxtaClient, SpeechPlayback]]:
    """A client that advertises playback, with every message it sends recorded."""
    client = VoxtaClient(server.url, token=server.auth_token,
                         capabilities=playback_capabilities())
    original = client.send

    async def spy(message: ClientMessage, **options: Any) -> Any:
        sent.append(message)
        return await original(message, **options)

    monkeypatch.setattr(client, "send", spy)
    async with client, SpeechPlayback(client, **kwargs) as speech:
        yield client, speech


def completions(sent: list[ClientMessage]) -> list[str]:
    return [m.message_id for m in sent if isinstance(m, ClientSpeechPlaybackComplete)]


def starts(sent: list[ClientMessage]) -> list[ClientSpeechPlaybackStart]:
    return [m for m in sent if isinstance(m, ClientSpeechPlaybackStart)]


async def idle(client: VoxtaClient) -> None:
    await client.wait_for(ChatFlow, lambda f: f.state is ChatFlowStates.WAITING_FOR_USER_INPUT,
                          timeout=10)


def idle_event(client: VoxtaClient) -> anyio.Event:
    """Set by the next ``chatFlow WaitingForUserInput``, registered before the action that
    causes it (``wait_for`` after the action could miss it)."""
    event = anyio.Event()

    def on_flow(flow: ChatFlow) -> None:
        if flow.state is ChatFlowStates.WAITING_FOR_USER_INPUT:
            event.set()

    client.on("chatFlow", on_flow)
    return event


def test_placeholders_and_wav_durations() -> None:
    assert silence_ms("silence:680") == 680
    assert silence_ms("silence:x") == 0
    assert silence_ms("/api/tts/gens/abc") is None
    assert wav_duration(b"not a wav") is None


@pytest.mark.voxta_mock(speech=True, auth_token=TOKEN, audio_gap_ms=150, reply_delay=0.01)
async def test_reply_audio_is_fetched_in_order_with_gaps_and_completed_once(
        voxta_mock_server: MockVoxtaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[ClientMessage] = []
    clips: list[tuple[SpeechClip, float]] = []
    ends: list[float] = []
    with anyio.fail_after(20):
        async with playing_client(voxta_mock_server, monkeypatch, sent) as (client, speech):
            async def play() -> None:
                async for clip in speech:
                    clips.append((clip, anyio.current_time()))
                    await anyio.sleep(0.01)  # "playing"
                    ends.append(anyio.current_time())

            async with anyio.create_task_group() as tg:
                tg.start_soon(play)
                await client.start_chat(APEX)
                await idle(client)  # the greeting: the mock waits for our completion
                await client.send_message(LONG)
                await idle(client)
                tg.cancel_scope.cancel()
    replies = [m.message_id for m in sent if isinstance(m, ClientSpeechPlaybackComplete)]
    assert len(replies) == 2
    assert len(set(replies)) == 2
    assert len(clips) >= 3
    for clip, _ in clips:
        assert clip.audio is not None
        assert clip.audio.startswith(b"RIFF")
        assert clip.duration is not None
        assert clip.duration > 0
    last = [c for c, _ in clips if c.message_id == replies[1]]
    assert [c.start_index for c in last] == sorted(c.start_index for c in last)
    assert len(last) >= 2
    # audioGapMs: each later clip of a reply starts >= 150 ms after the previous ended.
    for (clip, started), previous_end in zip(clips[1:], ends, strict=False):
        if clip.gap_ms:
            assert started - previous_end >= 0.15 - 0.005
    assert [s.duration for s in starts(sent)] == [c.duration for c, _ in clips]


@pytest.mark.voxta_mock(silence_placeholders=True, reply_delay=0.0)
async def test_silence_placeholders_are_never_fetched_and_still_acknowledged(
        voxta_mock_server: MockVoxtaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[ClientMessage] = []
    fetched: list[str] = []
    yielded: list[SpeechClip] = []

    async def fetch(url: str) -> bytes:
        fetched.append(url)
        return b""

    with anyio.fail_after(20):
        async with playing_client(voxta_mock_server, monkeypatch, sent,
                                  fetch=fetch) as (client, speech):
            async def play() -> None:
                async for clip in speech:
                    yielded.append(clip)

            async with anyio.create_task_group() as tg:
                tg.start_soon(play)
                await client.start_chat(APEX)
                await idle(client)  # hangs without our completion
                await client.send_message("hello there")
                await idle(client)
                tg.cancel_scope.cancel()
    assert fetched == []
    assert yielded == []
    assert len(completions(sent)) == 2
    assert starts(sent)
    assert all(s.duration == 0 for s in starts(sent))


@pytest.mark.voxta_mock(speech=True, reply_delay=0.05)
async def test_a_user_interrupt_completes_the_reply_once(
        voxta_mock_server: MockVoxtaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[ClientMessage] = []
    stopped: list[SpeechClip] = []
    with anyio.fail_after(20):
        async with playing_client(voxta_mock_server, monkeypatch, sent) as (client, speech):
            first = anyio.Event()

            async def play() -> None:
                async for clip in speech:
                    first.set()
                    await clip.stopped.wait()  # a long clip, until stopped
                    stopped.append(clip)

            async with anyio.create_task_group() as tg:
                tg.start_soon(play)
                await client.start_chat(APEX)
                await first.wait()
                flow = idle_event(client)
                await speech.interrupt()
                await flow.wait()
                await anyio.sleep(0.3)  # any late replyEnd/chunks of that reply arrive
                tg.cancel_scope.cancel()
    assert len(stopped) == 1
    assert completions(sent) == [stopped[0].message_id]


@pytest.mark.voxta_mock(speech=True, reply_delay=0.0)
async def test_the_servers_interrupt_speech_stops_and_completes_once(
        voxta_mock_server: MockVoxtaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reply has fully arrived and is playing; a plain ``client.interrupt()`` makes the
    server send ``interruptSpeech`` for it, which stops the clip and completes the reply."""
    sent: list[ClientMessage] = []
    stopped: list[SpeechClip] = []
    with anyio.fail_after(20):
        async with playing_client(voxta_mock_server, monkeypatch, sent) as (client, speech):
            playing = anyio.Event()

            async def play() -> None:
                async for clip in speech:
                    playing.set()
                    await clip.stopped.wait()
                    stopped.append(clip)

            async with anyio.create_task_group() as tg:
                tg.start_soon(play)
                await client.start_chat(APEX)
                await playing.wait()
                seen: list[InterruptSpeech] = []
                client.on("interruptSpeech", seen.append)
                flow = idle_event(client)
                await client.interrupt()
                await flow.wait()
                [interrupted] = seen
                await anyio.sleep(0.2)
                tg.cancel_scope.cancel()
    assert [c.message_id for c in stopped] == [interrupted.message_id]
    assert completions(sent) == [interrupted.message_id]


@pytest.mark.voxta_mock(speech=True, reply_delay=0.0)
async def test_a_failed_download_still_gets_its_start_and_the_completion(
        voxta_mock_server: MockVoxtaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[ClientMessage] = []
    yielded: list[SpeechClip] = []

    async def fetch(url: str) -> bytes:
        raise TransportError(f"refused: {url}")

    with anyio.fail_after(20):
        async with playing_client(voxta_mock_server, monkeypatch, sent,
                                  fetch=fetch) as (client, speech):
            async def play() -> None:
                async for clip in speech:
                    yielded.append(clip)

            async with anyio.create_task_group() as tg:
                tg.start_soon(play)
                await client.start_chat(APEX)
                await idle(client)  # the greeting was acknowledged though nothing played
                tg.cancel_scope.cancel()
    assert yielded == []
    assert starts(sent)
    assert all(s.duration == 0 for s in starts(sent))
    assert len(completions(sent)) == 1


@pytest.mark.voxta_mock(speech=True, reply_delay=0.0)
async def test_sending_while_speaking_interrupts_first(
        voxta_mock_server: MockVoxtaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[ClientMessage] = []
    with anyio.fail_after(20):
        async with playing_client(voxta_mock_server, monkeypatch, sent) as (client, speech):
            playing = anyio.Event()

            async def play() -> None:
                async for clip in speech:
                    playing.set()
                    with anyio.move_on_after(0.01):
                        await clip.stopped.wait()

            async with anyio.create_task_group() as tg:
                tg.start_soon(play)
                speaking = [speech.speaking]
                await client.start_chat(APEX)
                await playing.wait()
                speaking.append(speech.speaking)
                idle_flows: list[ChatFlow] = []
                second = anyio.Event()

                def on_flow(flow: ChatFlow) -> None:
                    if flow.state is ChatFlowStates.WAITING_FOR_USER_INPUT:
                        idle_flows.append(flow)
                        if len(idle_flows) == 2:
                            second.set()

                client.on("chatFlow", on_flow)
                await speech.send_message("hello again")
                await second.wait()  # after the interrupt, and after the new reply's ack
                tg.cancel_scope.cancel()
    assert speaking == [False, True]
    kinds = [type(m).__name__ for m in sent]
    first_complete = kinds.index("ClientSpeechPlaybackComplete")
    assert kinds.index("Interrupt") < first_complete < kinds.index("Send")
    assert len(completions(sent)) == len(set(completions(sent))) == 2
