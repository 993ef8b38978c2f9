"""Client playback of the server's speech (``audioOutput: "Url"``, API 2025-11 §3.1).

The server's foreground queue waits for the client's ``speechPlaybackComplete`` after
every reply; a client that forgets it stalls the chat. `SpeechPlayback` keeps
those rules so an app only plays bytes:

```python
client = VoxtaClient(url, capabilities=playback_capabilities())
async with client, SpeechPlayback(client) as speech:
    async for clip in speech:
        await play(clip.audio)      # the clip has ended when the loop asks for the next
```

It fetches every chunk's audio as soon as the chunk arrives (in parallel, with the
client's token), hands the clips over in chunk order, waits ``audioGapMs`` after the
previous clip ended, sends ``speechPlaybackStart`` when a clip's turn comes (duration 0
for a chunk without audio, a ``silence:N`` placeholder, which is never fetched, or a
failed download) and exactly one ``speechPlaybackComplete`` per reply: after its last
clip, at once when it had none, and at once after an interrupt.
"""

from __future__ import annotations

import io
import logging
import wave
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urljoin

import anyio
import anyio.abc
import msgspec.structs

from voxta_proto.errors import TransportError, VoxtaProtoError
from voxta_proto.transports.http import http_request
from voxta_proto.voxta.client_messages import (
    ClientMessage,
    ClientSpeechPlaybackComplete,
    ClientSpeechPlaybackStart,
)
from voxta_proto.voxta.enums import AudioOutputCapability
from voxta_proto.voxta.server_messages import (
    InterruptSpeech,
    ReplyCancelled,
    ReplyChunk,
    ReplyEnd,
    ReplyStart,
    SpeechRecognitionStart,
)
from voxta_proto.voxta.shapes import ClientCapabilities

if TYPE_CHECKING:
    from voxta_proto.client.connection import VoxtaClient
    from voxta_proto.client.events import EventStream

__all__ = [
    "DEFAULT_AUDIO_TYPES",
    "SILENCE_PREFIX",
    "SpeechClip",
    "SpeechPlayback",
    "playback_capabilities",
    "silence_ms",
]

logger = logging.getLogger("voxta_proto.client")

DEFAULT_AUDIO_TYPES = ("audio/x-wav", "audio/wav")
"""What the helper advertises by default: WAV, whose duration it can read."""
SILENCE_PREFIX = "silence:"
"""``audioUrl`` of a chunk from a server without TTS: a placeholder, never fetched."""

MAX_REMEMBERED = 1024
"""Completed replies remembered, so a late ``replyEnd`` never completes one twice."""

Fetcher = Callable[[str], Awaitable[bytes]]


def playback_capabilities(content_types: tuple[str, ...] = DEFAULT_AUDIO_TYPES,
                          base: ClientCapabilities | None = None) -> ClientCapabilities:
    """Capabilities that ask for audio URLs (``audioOutput: "Url"``): advertise them
    only when the app really plays audio of these types."""
    return msgspec.structs.replace(base or ClientCapabilities(),
                                   audio_output=AudioOutputCapability.URL,
                                   accepted_audio_content_types=content_types)


def silence_ms(audio_url: str) -> int | None:
    """The length of a ``silence:N`` placeholder (probably ms; no source says), else
    None. A malformed number counts as 0: still a placeholder, never a URL."""
    if not audio_url.startswith(SILENCE_PREFIX):
        return None
    number = audio_url[len(SILENCE_PREFIX):]
    return int(number) if number.isdigit() else 0


def wav_duration(audio: bytes) -> float | None:
    """Seconds of a WAV clip, or None when it is not one this can read."""
    try:
        with wave.open(io.BytesIO(audio), "rb") as wav:
            rate = wav.getframerate()
            return wav.getnframes() / rate if rate else None
    except (wave.Error, EOFError):
        return None


@dataclass(eq=False)
class _Reply:
    session_id: str
    message_id: str
    queued: int = 0
    """Clips not yet played (or skipped)."""
    ended: bool = False
    dropped: bool = False
    completed: bool = False


@dataclass(eq=False)
class SpeechClip:
    """One chunk's audio, handed to the app when its turn comes."""

    session_id: str
    message_id: str
    start_index: int
    end_index: int
    is_narration: bool
    audio_url: str
    gap_ms: int
    audio: bytes | None = None
    """The fetched bytes; None for no audio (empty URL, placeholder, failed download)."""
    error: str | None = None
    """Why the download failed."""
    duration: float | None = None
    """Seconds, when the clip is WAV (sent in ``speechPlaybackStart``)."""
    stopped: anyio.Event = field(default_factory=anyio.Event)
    """Set when the clip must stop at once (interrupt): a player should watch it."""
    _fetched: anyio.Event = field(default_factory=anyio.Event)
    _scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    _reply: _Reply | None = None


class SpeechPlayback:
    """Plays replies' audio by the rules of API 2025-11 §3.1; iterate for the clips.

    Args:
        client: a connected client that advertised ``audioOutput: "Url"`` (see
            `playback_capabilities()`).
        accept: the ``Accept`` header of downloads.
        fetch: downloads one absolute URL (default: GET with the client's token;
            non-2xx is a failure).
        barge_in: stop playback when the user starts speaking
            (``speechRecognitionStart``), as the Minecraft app does.
    """

    def __init__(self, client: VoxtaClient, *, accept: str = "audio/x-wav",
                 fetch: Fetcher | None = None, barge_in: bool = False) -> None:
        self.client = client
        self.accept = accept
        self.barge_in = barge_in
        self._fetch = fetch or self._http_fetch
        self._replies: dict[str, _Reply] = {}
        self._done: dict[str, None] = {}  # completed replies, oldest first
        self._queue: deque[SpeechClip] = deque()
        self._wake = anyio.Event()
        self._current: SpeechClip | None = None
        self._last_end: float | None = None
        self._closed = False
        self._tg: anyio.abc.TaskGroup | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> SpeechPlayback:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        events = self.client.events()
        self._tg.start_soon(self._read, events)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> bool | None:
        """Stop: complete every reply that entered playback and was not completed yet."""
        assert self._tg is not None
        self._close()
        with anyio.CancelScope(shield=True):
            for reply in list(self._replies.values()):
                await self._complete(reply)
        self._tg.cancel_scope.cancel()
        return await self._tg.__aexit__(exc_type, exc, tb)

    def __aiter__(self) -> SpeechPlayback:
        return self

    async def __anext__(self) -> SpeechClip:
        """The next clip with audio, at its turn; the previous one has ended now."""
        await self._finish_current()
        while True:
            while not self._queue:
                if self._closed:
                    raise StopAsyncIteration
                self._wake = anyio.Event()
                await self._wake.wait()
            clip = self._queue[0]
            await clip._fetched.wait()
            if not self._queue or self._queue[0] is not clip:
                continue  # dropped by an interrupt while downloading
            self._queue.popleft()
            if self._last_end is not None and clip.gap_ms > 0:
                await anyio.sleep_until(self._last_end + clip.gap_ms / 1000)
                if clip._reply is not None and clip._reply.dropped:
                    continue
            await self._send(ClientSpeechPlaybackStart(
                session_id=clip.session_id, message_id=clip.message_id,
                start_index=clip.start_index, end_index=clip.end_index,
                duration=clip.duration or 0.0, is_narration=clip.is_narration))
            if clip.audio is None:
                await self._clip_done(clip)
                continue
            self._current = clip
            return clip

    @property
    def speaking(self) -> bool:
        """True while a reply is in playback tracking (not yet completed)."""
        return bool(self._replies)

    # -- interrupts --------------------------------------------------------------------

    async def send_message(self, text: str, session_id: str | None = None) -> None:
        """Send a user message, first interrupting a reply still playing (explicit
        ``interrupt``, as Unity does, whatever the chat's InterruptOnUserMessage setting:
        API 2025-11 §6.16)."""
        if self.speaking:
            await self.interrupt(session_id)
        await self.client.send_message(text, session_id)

    async def interrupt(self, session_id: str | None = None) -> None:
        """The user interrupts: send ``interrupt``, stop the clip playing, drop queued
        ones, and complete every active reply now."""
        await self.client.interrupt(session_id)
        for reply in list(self._replies.values()):
            if session_id is None or reply.session_id == session_id:
                await self._drop(reply, now=True)

    # -- internals ---------------------------------------------------------------------

    def _close(self) -> None:
        self._closed = True
        self._wake.set()

    async def _read(self, events: EventStream) -> None:
        try:
            async for event in events:
                if isinstance(event, ReplyStart):
                    self._reply(event.session_id, event.message_id)
                elif isinstance(event, ReplyChunk):
                    self._chunk(event)
                elif isinstance(event, ReplyEnd):
                    reply = self._reply(event.session_id, event.message_id)
                    reply.ended = True
                    await self._maybe_complete(reply)
                elif isinstance(event, (InterruptSpeech, ReplyCancelled)):
                    reply = self._reply(event.session_id, event.message_id)
                    if isinstance(event, ReplyCancelled):
                        reply.ended = True
                    await self._drop(reply)
                elif isinstance(event, SpeechRecognitionStart) and self.barge_in:
                    for reply in list(self._replies.values()):
                        await self._drop(reply, now=True)
        finally:
            self._close()

    def _reply(self, session_id: str, message_id: str) -> _Reply:
        reply = self._replies.get(message_id)
        if reply is None:
            reply = _Reply(session_id, message_id)
            if message_id in self._done:  # late events of a completed reply
                reply.completed = reply.dropped = True
            else:
                self._replies[message_id] = reply
        return reply

    def _chunk(self, chunk: ReplyChunk) -> None:
        reply = self._reply(chunk.session_id, chunk.message_id)
        if reply.dropped or reply.completed:
            return
        clip = SpeechClip(chunk.session_id, chunk.message_id, chunk.start_index,
                          chunk.end_index, chunk.is_narration, chunk.audio_url,
                          chunk.audio_gap_ms or 0, _reply=reply)
        reply.queued += 1
        self._queue.append(clip)
        if not chunk.audio_url or silence_ms(chunk.audio_url) is not None:
            clip._fetched.set()
        else:
            assert self._tg is not None
            self._tg.start_soon(self._download, clip)
        self._wake.set()

    async def _download(self, clip: SpeechClip) -> None:
        url = urljoin(self.client.url + "/", clip.audio_url)
        with clip._scope:
            try:
                clip.audio = await self._fetch(url)
                clip.duration = wav_duration(clip.audio)
            except (VoxtaProtoError, OSError, ValueError) as exc:
                clip.error = str(exc) or type(exc).__name__
                logger.warning("speech download %s failed: %s", clip.audio_url, clip.error)
        clip._fetched.set()

    async def _http_fetch(self, url: str) -> bytes:
        response = await http_request("GET", url, headers=[("Accept", self.accept)],
                                      options=self.client.options)
        if not 200 <= response.status < 300:
            raise TransportError(f"HTTP {response.status}")
        return response.body

    async def _finish_current(self) -> None:
        clip, self._current = self._current, None
        if clip is not None:
            self._last_end = anyio.current_time()
            await self._clip_done(clip)

    async def _clip_done(self, clip: SpeechClip) -> None:
        reply = clip._reply
        if reply is not None and not reply.dropped:
            reply.queued -= 1
            await self._maybe_complete(reply)

    async def _maybe_complete(self, reply: _Reply) -> None:
        if reply.ended and (reply.dropped or reply.queued == 0):
            await self._complete(reply)

    async def _drop(self, reply: _Reply, *, now: bool = False) -> None:
        """Stop the reply's audio and downloads; complete it ``now``, or when it has
        ended (else at its ``replyEnd``, as for ``interruptSpeech``)."""
        if reply.completed:
            return
        reply.dropped = True
        for clip in [c for c in self._queue if c._reply is reply]:
            self._queue.remove(clip)
            clip._scope.cancel()
        current = self._current
        if current is not None and current._reply is reply:
            current.stopped.set()
        self._wake.set()
        if now or reply.ended or self._closed:
            await self._complete(reply)

    async def _complete(self, reply: _Reply) -> None:
        if reply.completed:
            return
        reply.completed = True
        self._replies.pop(reply.message_id, None)
        self._done[reply.message_id] = None
        if len(self._done) > MAX_REMEMBERED:
            del self._done[next(iter(self._done))]
        await self._send(ClientSpeechPlaybackComplete(session_id=reply.session_id,
                                                      message_id=reply.message_id))

    async def _send(self, message: ClientMessage) -> None:
        try:
            await self.client.send(message, wait=False)
        except VoxtaProtoError as exc:  # the connection ended: nothing to acknowledge to
            logger.debug("could not send %s: %s", type(message).__name__, exc)

