"""A small in-test Voxta server over ``memory_transport_pair()``, built from the sans-IO
``VoxtaServerSession`` and the catalog's test vectors, with a few faults to inject."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import msgspec
from anyio.abc import TaskGroup

from voxta_proto.errors import TransportError
from voxta_proto.hub import HubConfig
from voxta_proto.hub.negotiate import NegotiateResult
from voxta_proto.transports import (
    ConnectOptions,
    MemoryTransport,
    NegotiateOutcome,
    memory_transport_pair,
)
from voxta_proto.voxta import decode_server_message
from voxta_proto.voxta.client_messages import (
    Authenticate,
    ClientMessage,
    LoadCharactersList,
    LoadChatsList,
    LoadScenariosList,
    PauseChat,
    RequestSuggestions,
    ResumeChat,
    Send,
    StartChat,
    SubscribeToChat,
)
from voxta_proto.voxta.server import ClientRequest, VoxtaServerSession
from voxta_proto.voxta.server_messages import ServerMessage

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "server_messages.jsonl"
SESSION_ID = "33333333-3333-4333-8333-333333333333"
CHAT_ID = "44444444-4444-4444-8444-444444444444"


def _samples() -> dict[str, ServerMessage]:
    out: dict[str, ServerMessage] = {}
    for line in VECTORS.read_bytes().splitlines():
        if line.strip():
            message = decode_server_message(line)
            assert isinstance(message, ServerMessage)
            tag = type(message).__struct_config__.tag
            assert isinstance(tag, str)
            out.setdefault(tag, message)
    return out


SAMPLES = _samples()


def sample(tag: str, **changes: Any) -> ServerMessage:
    """A sample server message of this ``$type``, with fields changed."""
    return msgspec.structs.replace(SAMPLES[tag], **changes)


@dataclass
class MiniServer:
    """Answers requests like Voxta; ``received`` records every client message."""

    tg: TaskGroup
    stateful: bool = False
    hub_config: HubConfig = field(default_factory=HubConfig)
    received: list[ClientMessage] = field(default_factory=list)
    audio: list[str | bytes] = field(default_factory=list)
    connections: list[MemoryTransport] = field(default_factory=list)
    sessions: list[VoxtaServerSession] = field(default_factory=list)
    negotiations: int = 0
    drop_during_reply: bool = False
    """Hang up (no close frame) after the first reply chunk of the next ``send``."""
    silent: bool = False
    """Send nothing at all (not even pings): tests the client's server timeout."""
    reply_chunks: tuple[str, ...] = ("Once upon", " a time.")
    swallow: set[str] = field(default_factory=set)
    """``$type``s of replies to lose once each (the Completion still goes out)."""
    chat_survives: bool = False
    """List the chat (``SESSION_ID``) in a ``chatsSessionsUpdated`` before ``welcome``,
    as Voxta does while another connection still runs it (§3.7)."""

    async def negotiator(self, url: str, options: ConnectOptions,
                         stateful: bool) -> NegotiateOutcome:
        self.negotiations += 1
        result = NegotiateResult(
            negotiate_version=1, connection_id=f"c{self.negotiations}",
            connection_token=f"token-{self.negotiations}", available_transports=(),
            use_stateful_reconnect=stateful and self.stateful)
        return NegotiateOutcome(base_url=url, result=result)

    async def connector(self, url: str, *, options: ConnectOptions) -> MemoryTransport:
        client, server = memory_transport_pair()
        self.connections.append(server)
        if "/ws/audio/input/stream" in url:
            self.tg.start_soon(self._audio, server, url)
        elif self.stateful and self.sessions and self.sessions[-1].hub.state.name == "DETACHED":
            self.tg.start_soon(self._reattach, server, self.sessions[-1])
        else:
            session = VoxtaServerSession(now=anyio.current_time(), hub_config=self.hub_config
                                         if not self.stateful else HubConfig(
                                             stateful_reconnect=True))
            self.sessions.append(session)
            self.tg.start_soon(self._serve, server, session)
        return client

    async def _audio(self, transport: MemoryTransport, url: str) -> None:
        self.audio.append(url)
        try:
            while True:
                self.audio.append(await transport.receive())
        except TransportError:
            pass
        finally:
            with anyio.CancelScope(shield=True):
                await transport.aclose()

    async def _flush(self, transport: MemoryTransport, session: VoxtaServerSession) -> None:
        for item in session.data_to_send():
            await transport.send(item.decode())

    async def _reattach(self, transport: MemoryTransport, session: VoxtaServerSession) -> None:
        await transport.send(session.hub.reattach(now=anyio.current_time()).decode())
        await self._serve(transport, session)

    async def _serve(self, transport: MemoryTransport, session: VoxtaServerSession) -> None:
        try:
            while True:
                deadline = session.next_deadline()
                data: str | bytes | None = None
                with anyio.CancelScope(deadline=math.inf if deadline is None else deadline):
                    data = await transport.receive()
                now = anyio.current_time()
                if data is None:
                    session.handle_timer(now=now)
                    if self.silent:
                        session.data_to_send()
                    await self._flush(transport, session)
                    continue
                raw = data.encode() if isinstance(data, str) else data
                for event in session.receive_data(raw, now=now):
                    if (isinstance(event, ClientRequest)
                            and await self._answer(transport, session, event)):
                        return
                if self.silent:
                    session.data_to_send()
                await self._flush(transport, session)
        except TransportError:
            session.receive_eof(now=anyio.current_time())
        finally:
            with anyio.CancelScope(shield=True):
                await transport.aclose()

    async def _answer(self, transport: MemoryTransport, session: VoxtaServerSession,
                      request: ClientRequest) -> bool:
        """Act on one request; True when the connection was dropped."""
        message = request.message
        self.received.append(message)
        now = anyio.current_time()
        replies: list[ServerMessage] = []
        if isinstance(message, Authenticate):
            replies = [SAMPLES["welcome"]]
            if self.chat_survives:
                info = SAMPLES["chatsSessionsUpdated"].sessions[0]  # type: ignore[attr-defined]
                replies.insert(0, sample("chatsSessionsUpdated", sessions=(
                    msgspec.structs.replace(info, session_id=SESSION_ID, chat_id=CHAT_ID),)))
        elif isinstance(message, (StartChat, ResumeChat, SubscribeToChat)):
            replies = [sample("chatStarted", session_id=SESSION_ID, chat_id=CHAT_ID)]
        elif isinstance(message, LoadCharactersList):
            replies = [SAMPLES["charactersListLoaded"]]
        elif isinstance(message, LoadScenariosList):
            replies = [SAMPLES["scenariosListLoaded"]]
        elif isinstance(message, LoadChatsList):
            replies = [SAMPLES["chatsListLoaded"]]
        elif isinstance(message, PauseChat):
            replies = [sample("chatPaused", paused=message.pause)]
        elif isinstance(message, RequestSuggestions):
            replies = [sample("suggestions", session_id=message.session_id)]
        if request.invocation_id is not None:
            session.complete(request.invocation_id, now=now)
        for reply in replies:
            tag = type(reply).__struct_config__.tag
            if tag in self.swallow:
                self.swallow.discard(tag)
                continue
            session.send(reply, now=now)
        if isinstance(message, Send) and message.do_reply:
            start = SAMPLES["replyStart"]
            session.send(start, now=now)
            index = 0
            for i, text in enumerate(self.reply_chunks):
                session.send(sample("replyChunk", text=text, start_index=index,
                                    end_index=index + len(text)), now=now)
                index += len(text)
                if i == 0 and self.drop_during_reply:
                    self.drop_during_reply = False
                    await self._flush(transport, session)
                    await transport.aclose(1006)
                    session.receive_eof(now=now)
                    return True
            session.send(SAMPLES["replyEnd"], now=now)
        return False

    async def close_all(self, *, allow_reconnect: bool) -> None:
        """A server Close (with ``allowReconnect``) on the newest connection."""
        session, transport = self.sessions[-1], self.connections[-1]
        session.close(now=anyio.current_time(), error="server restarting",
                      allow_reconnect=allow_reconnect)
        await self._flush(transport, session)
        await transport.aclose(1000)
