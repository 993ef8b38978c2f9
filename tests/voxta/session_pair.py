"""Test helpers for the Voxta session layer: a client and a server session wired in memory.

``SessionPair`` moves every ``data_to_send()`` item of one side into the other side's
``receive_data``, on a manual clock, and records what each side reported together with a
snapshot of its state. ``Script`` is a tiny Voxta server written the way
``VOXTA_PROTOCOL.md`` §8 shows the real one answering: it reacts to ``ClientRequest``
events with ``send`` and ``complete``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from voxta_proto.hub import HubConfig
from voxta_proto.voxta.client_messages import (
    AppTriggerComplete,
    Authenticate,
    ClientMessage,
    Interrupt,
    LoadCharactersList,
    LoadChatsList,
    LoadScenariosList,
    PauseChat,
    ResumeChat,
    Retry,
    Revert,
    Send,
    StartChat,
    StopChat,
    SubscribeToChat,
    TriggerAction,
    UpdateContext,
)
from voxta_proto.voxta.codec import decode_server_message
from voxta_proto.voxta.server import (
    SERVER_TRANSITIONS,
    ClientRequest,
    ServerEvent,
    ServerState,
    VoxtaServerSession,
)
from voxta_proto.voxta.server_messages import (
    Action,
    AppTrigger,
    CharactersListLoaded,
    ChatClosed,
    ChatFlow,
    ChatLoadingMessage,
    ChatPaused,
    ChatsListLoaded,
    ChatsSessionsUpdated,
    ChatStarted,
    ChatStarting,
    ContextUpdated,
    ErrorMessage,
    ReplyCancelled,
    ReplyChunk,
    ReplyEnd,
    ReplyGenerating,
    ReplyStart,
    ScenariosListLoaded,
    ServerMessage,
    SpeechPlaybackComplete,
    Update,
    Welcome,
)
from voxta_proto.voxta.session import (
    CLIENT_TRANSITIONS,
    ChatRef,
    ChatState,
    ClientState,
    SessionEvent,
    VoxtaClientSession,
)

__all__ = [
    "ASSISTANT_MESSAGE",
    "CHARACTER",
    "CHAT",
    "SESSION",
    "USER",
    "USER_MESSAGE",
    "ClientStep",
    "Script",
    "SessionPair",
    "make",
    "of_type",
    "records",
    "table_allows",
]

USER = "11111111-1111-4111-8111-111111111111"
CHARACTER = "22222222-2222-4222-8222-222222222222"
SESSION = "33333333-3333-4333-8333-333333333333"
CHAT = "44444444-4444-4444-8444-444444444444"
GREETING = "55555555-5555-4555-8555-555555555555"
CONFIG_SET = "66666666-6666-4666-8666-666666666666"
SERVICE = "77777777-7777-4777-8777-777777777777"
USER_MESSAGE = "88888888-8888-4888-8888-888888888888"
ASSISTANT_MESSAGE = "99999999-9999-4999-8999-999999999999"
RETRIED_MESSAGE = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
TIMESTAMP = "2025-12-29T11:04:42.7828357+00:00"
EMPTY_GUID = "00000000-0000-0000-0000-000000000000"

M = TypeVar("M", bound=ServerMessage)
T = TypeVar("T")


def make(kind: type[M], **fields: Any) -> M:
    """A server message of ``kind`` from its wire fields (camelCase), through the decoder."""
    tag = kind.__struct_config__.tag
    message = decode_server_message(json.dumps({"$type": tag, **fields}).encode())
    assert isinstance(message, kind), message
    return message


def of_type(events: Iterable[object], kind: type[T]) -> list[T]:
    """The events of one type, in order."""
    return [event for event in events if isinstance(event, kind)]


def records(item: bytes) -> list[bytes]:
    """The SignalR records of one transport message, separator included."""
    return [part + b"\x1e" for part in item.split(b"\x1e")[:-1]]


def table_allows(table: Mapping[tuple[Any, type[object]], Any], before: Any, after: Any) -> bool:
    """Whether a move ``before`` → ``after`` is a row of a transition table."""
    return before is after or any(
        state is before and target is after for (state, _), target in table.items()
    )


@dataclasses.dataclass(frozen=True)
class ClientStep:
    """One event the client reported, with its state right after the record that caused it."""

    event: SessionEvent
    chat: ChatState
    state: ClientState


PARTICIPANT = {"id": CHARACTER, "name": "Apex"}
USER_INFO = {"id": USER, "name": "User"}


def _session_info(session_id: str, chat_id: str) -> dict[str, Any]:
    return {"sessionId": session_id, "chatId": chat_id, "user": USER_INFO,
            "characters": [PARTICIPANT]}


class Script:
    """The server's logic, as §8 shows it; one flag per variant the tests need."""

    def __init__(self) -> None:
        self.server: VoxtaServerSession | None = None
        self.now = 0.0
        self.running: dict[str, str] = {}
        """Sessions running for this user: session id → chat id."""
        self.lists_before_completion = True
        """§8.7: the ``*Loaded`` message precedes the Completion (False: it follows)."""
        self.hold_reply = False
        """Stop a streamed reply after ``replyStart`` (to interrupt it)."""
        self.chunks = ("Why did the AI cross?", " To get to the dataset.")
        self.handled: list[ClientRequest] = []

    # -- plumbing ------------------------------------------------------------------------

    def _send(self, message: ServerMessage) -> None:
        assert self.server is not None
        self.server.send(message, now=self.now)

    def _done(self, request: ClientRequest, error: str | None = None) -> None:
        assert self.server is not None
        if request.invocation_id is not None:
            self.server.complete(request.invocation_id, now=self.now, error=error)

    def __call__(self, request: ClientRequest) -> None:
        self.handled.append(request)
        message = request.message
        handler = getattr(self, "on_" + type(message).__name__, None)
        if handler is None:
            self._done(request)
        else:
            handler(request, message)

    # -- §8.1 ----------------------------------------------------------------------------

    def on_Authenticate(self, request: ClientRequest, message: Authenticate) -> None:
        self._send(make_welcome())
        self._send(make_any("moduleRuntimeInstances", instances=[]))
        if self.running:
            self._send_sessions()
        self._done(request)

    def _send_sessions(self) -> None:

        self._send(make(ChatsSessionsUpdated, sessions=[
            _session_info(session_id, chat_id) for session_id, chat_id in self.running.items()
        ]))

    # -- §8.2, §8.11 ---------------------------------------------------------------------

    def on_StartChat(self, request: ClientRequest, message: StartChat) -> None:

        self._done(request)  # fire-and-forget on the server: completion first
        if message.character_id is None and not message.character_ids:
            self._send(make(ErrorMessage, message="A character is required to start a chat"))
            return
        self._start(message.chat_id or CHAT, history=False)

    def on_ResumeChat(self, request: ClientRequest, message: ResumeChat) -> None:
        self._done(request)
        self._start(message.chat_id, history=True)

    def _start(self, chat_id: str, *, history: bool) -> None:

        self._send(make(ChatStarting, chatId=chat_id, chatStyle="Companion",
                        servicesConfigurationsSetId=CONFIG_SET, sessionId=SESSION))
        self._send(make(ChatLoadingMessage, text="Loading scenario...", progress=0,
                        sessionId=SESSION))
        self._send(make(ChatLoadingMessage, text="Chat session ready!", progress=100,
                        sessionId=SESSION))
        self.running[SESSION] = chat_id
        self._send_sessions()
        self._send(make_chat_started(chat_id, history=history))
        if not history:
            self._stream(GREETING, ("Hello there!",))
        self._send(make(ChatFlow, state="WaitingForUserInput", sessionId=SESSION))

    # -- §8.3 - §8.5 ---------------------------------------------------------------------

    def _stream(self, message_id: str, chunks: Iterable[str], *, hold: bool = False) -> None:

        self._send(make(ReplyGenerating, messageId=message_id, senderId=CHARACTER,
                        role="Assistant", isNarration=False, sessionId=SESSION))
        self._send(make(ReplyStart, messageId=message_id, senderId=CHARACTER, chatTime=16010,
                        sessionId=SESSION))
        if hold:
            return
        start = 0
        for text in chunks:
            self._send(make(ReplyChunk, messageId=message_id, senderId=CHARACTER,
                            startIndex=start, endIndex=start + len(text), text=text,
                            audioUrl="", isNarration=False, sessionId=SESSION))
            start += len(text)
        self._send(make(ReplyEnd, messageId=message_id, senderId=CHARACTER, tokens=14,
                        messageIndex=3, conversationIndex=3, sessionId=SESSION))
        self._send(make(SpeechPlaybackComplete, messageId=message_id, sessionId=SESSION))

    def on_Send(self, request: ClientRequest, message: Send) -> None:

        self._done(request)
        self._send(make_update(USER_MESSAGE, role="User", sender=USER, text=message.text))
        self._send(make(ChatFlow, state="ProcessingUserMessage", sessionId=SESSION))
        if message.do_reply is False:
            self._send(make(ChatFlow, state="WaitingForUserInput", sessionId=SESSION))
            return
        self._send(make(ChatFlow, state="ProcessingAssistantReply", sessionId=SESSION))
        self._stream(ASSISTANT_MESSAGE, self.chunks, hold=self.hold_reply)
        if not self.hold_reply:
            self._send(make(ChatFlow, state="WaitingForUserInput", sessionId=SESSION))

    def on_Interrupt(self, request: ClientRequest, message: Interrupt) -> None:

        self._done(request)
        self._send(make(ReplyEnd, messageId=ASSISTANT_MESSAGE, senderId=CHARACTER, tokens=0,
                        messageIndex=-1, conversationIndex=-1, sessionId=SESSION))
        self._send(make(ReplyCancelled, messageId=ASSISTANT_MESSAGE, sessionId=SESSION))
        self._send(make(ChatFlow, state="WaitingForUserInput", sessionId=SESSION))

    def on_Retry(self, request: ClientRequest, message: Retry) -> None:

        self._done(request)
        self._send(make_update(ASSISTANT_MESSAGE, role="Assistant", sender=CHARACTER, text=None))
        self._send(make(ChatFlow, state="ProcessingAssistantReply", sessionId=SESSION))
        self._stream(RETRIED_MESSAGE, ("Another one.",))
        self._send(make(ChatFlow, state="WaitingForUserInput", sessionId=SESSION))

    def on_Revert(self, request: ClientRequest, message: Revert) -> None:
        self._done(request)
        self._send(make_update(RETRIED_MESSAGE, role="Assistant", sender=CHARACTER, text=None))
        self._send(make_update(USER_MESSAGE, role="User", sender=USER, text=None))

    # -- §8.9, §8.10 ---------------------------------------------------------------------

    def on_UpdateContext(self, request: ClientRequest, message: UpdateContext) -> None:

        self._done(request)
        flags = [{"name": flag, "messageIndex": 3, "messageChatTime": 16010}
                 for flag in message.set_flags or ()]
        self._send(make(ContextUpdated, flags=flags, roles={}, buttons=[],
                        characters=[PARTICIPANT], sessionId=SESSION))

    def on_TriggerAction(self, request: ClientRequest, message: TriggerAction) -> None:

        self._done(request)
        self._send(make(Action, value=message.value, layer="game", role="Assistant",
                        senderId=CHARACTER, sessionId=SESSION))
        self._send(make(AppTrigger, name="Emote", arguments=["🌳", "#00ff00"],
                        messageId=message.message_id, senderId=CHARACTER, triggerId="t-1",
                        sessionId=SESSION))

    def on_AppTriggerComplete(self, request: ClientRequest, message: AppTriggerComplete) -> None:
        self._done(request)

    def on_PauseChat(self, request: ClientRequest, message: PauseChat) -> None:

        self._done(request)
        self._send(make(ChatPaused, paused=message.pause, sessionId=SESSION))

    # -- §8.7, §8.13, §8.14 --------------------------------------------------------------

    def _list(self, request: ClientRequest, reply: ServerMessage) -> None:
        if self.lists_before_completion:
            self._send(reply)
            self._done(request)
        else:
            self._done(request)
            self._send(reply)

    def on_LoadCharactersList(self, request: ClientRequest, message: LoadCharactersList) -> None:

        self._list(request, make(CharactersListLoaded, characters=[{
            "id": CHARACTER, "name": "Apex", "appControlled": False,
            "dateCreated": "2025-11-02T10:00:00+00:00", "dateCreatedAgo": "2 months ago",
            "dateModified": "2025-11-02T10:00:00+00:00", "dateModifiedAgo": "2 months ago",
            "culture": "en-US", "explicitContent": False, "favorite": True, "hidden": False,
            "scenarioOnly": False, "tags": ["assistant"]}]))

    def on_LoadScenariosList(self, request: ClientRequest, message: LoadScenariosList) -> None:

        self._list(request, make(ScenariosListLoaded, scenarios=[{
            "id": CONFIG_SET, "name": "Default", "chatFlow": "Chat", "chatStyle": "Companion",
            "roles": [{"name": "main"}]}]))

    def on_LoadChatsList(self, request: ClientRequest, message: LoadChatsList) -> None:

        chats = [] if message.character_id == EMPTY_GUID else [
            {"id": CHAT, "created": "3 days ago"}]
        self._list(request, make(ChatsListLoaded, chats=chats))

    def on_SubscribeToChat(self, request: ClientRequest, message: SubscribeToChat) -> None:

        chat_id = self.running.get(message.session_id)
        if chat_id is None:
            self._send(make(ChatClosed, chatId=EMPTY_GUID, sessionId=message.session_id))
        else:
            self._send(make_chat_started(chat_id, history=True))
            self._send(make(ContextUpdated, flags=[], roles={}, buttons=[],
                            characters=[PARTICIPANT], sessionId=message.session_id))
        self._done(request)

    def on_StopChat(self, request: ClientRequest, message: StopChat) -> None:

        chat_id = self.running.pop(SESSION, None)
        if chat_id is not None:
            self._send(make(ChatClosed, chatId=chat_id, sessionId=SESSION))
            self._send_sessions()
        self._done(request)


def make_any(type_name: str, **fields: Any) -> ServerMessage:
    message = decode_server_message(json.dumps({"$type": type_name, **fields}).encode())
    assert isinstance(message, ServerMessage), message
    return message


def make_welcome() -> ServerMessage:
    return make(Welcome, voxtaServerVersion="1.2.1", apiVersion="2025-11", user=USER_INFO,
                assistant=PARTICIPANT)


def make_chat_started(chat_id: str, *, history: bool) -> ServerMessage:
    messages = [{"messageId": USER_MESSAGE, "role": "User", "senderId": USER, "text": "Hi",
                 "timestamp": TIMESTAMP, "tokens": 1, "index": 0, "conversationIndex": 0,
                 "chatTime": 0}] if history else []
    return make(ChatStarted, chatId=chat_id, chatStyle="Companion", user=USER_INFO,
                characters=[PARTICIPANT],
                services={"textGen": {"serviceName": "Mock", "serviceId": SERVICE}},
                servicesConfigurationsSetId=CONFIG_SET, augmentations=[], messages=messages,
                context={"flags": [], "roles": {}, "buttons": [], "characters": [PARTICIPANT],
                         "sessionId": SESSION},
                sessionId=SESSION)


def make_update(message_id: str, *, role: str, sender: str, text: str | None) -> ServerMessage:
    fields: dict[str, Any] = {
        "messageId": message_id, "senderId": sender, "tokens": 0, "index": 2,
        "conversationIndex": 2, "chatTime": 15234, "role": role, "timestamp": TIMESTAMP,
        "sessionId": SESSION,
    }
    if text is not None:
        fields["text"] = text
    return make(Update, **fields)


class SessionPair:
    """A ``VoxtaClientSession`` and a ``VoxtaServerSession`` back to back, one manual clock.

    Every transport message is recorded (``to_server``, ``to_client``); the client is fed
    one record at a time so ``client_log`` can tell its state after each message. Every
    state change of both sides is checked against their transition tables.
    """

    def __init__(
        self,
        *,
        script: Script | None = None,
        client_hub: HubConfig | None = None,
        server_hub: HubConfig | None = None,
        refuse_handshake: str | None = None,
        handshake_version: int = 1,
        rejoin: ChatRef | None = None,
    ) -> None:
        self.now = 0.0
        self.client = VoxtaClientSession(now=0.0, hub_config=client_hub,
                                         handshake_version=handshake_version, rejoin=rejoin)
        self.server = VoxtaServerSession(now=0.0, hub_config=server_hub,
                                         refuse_handshake=refuse_handshake)
        self.script = script if script is not None else Script()
        self.script.server = self.server
        self.to_server: list[bytes] = []
        self.to_client: list[bytes] = []
        self.client_log: list[ClientStep] = []
        self.server_events: list[ServerEvent] = []
        self.client_states: list[ClientState] = [self.client.state]
        self.server_states: list[ServerState] = [self.server.state]

    # -- views ---------------------------------------------------------------------------

    @property
    def client_events(self) -> list[SessionEvent]:
        return [step.event for step in self.client_log]

    def mark(self) -> int:
        """Where the client log is now; pass it to ``since``."""
        return len(self.client_log)

    def since(self, mark: int) -> list[SessionEvent]:
        return [step.event for step in self.client_log[mark:]]

    # -- driving ---------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.script.now = self.now

    def connect(self) -> None:
        """Handshake, authenticate, welcome: the client is READY."""
        self.client.start(now=self.now)
        self.check_states()
        self.pump()

    def send(self, message: ClientMessage, *, expect_reply: bool = True) -> str | None:
        invocation_id = self.client.send(message, now=self.now, expect_reply=expect_reply)
        self.pump()
        return invocation_id

    def pump(self, *, answer: bool = True) -> None:
        """Move bytes both ways until neither side has anything left to send."""
        while True:
            moved = False
            for item in self.client.data_to_send():
                moved = True
                self.to_server.append(item)
                self.deliver_to_server(item, answer=answer)
            for item in self.server.data_to_send():
                moved = True
                self.to_client.append(item)
                for record in records(item):
                    self.deliver_to_client(record)
            if not moved:
                return

    def deliver_to_server(self, data: bytes, *, answer: bool = True) -> list[ServerEvent]:
        events = self.server.receive_data(data, now=self.now)
        self.check_states()
        self.server_events.extend(events)
        if answer:
            for event in events:
                if isinstance(event, ClientRequest):
                    self.script(event)
        return events

    def deliver_to_client(self, data: bytes) -> list[SessionEvent]:
        events = self.client.receive_data(data, now=self.now)
        self.log(events)
        return events

    def client_timer(self) -> list[SessionEvent]:
        events = self.client.handle_timer(now=self.now)
        self.log(events)
        return events

    def server_timer(self) -> list[ServerEvent]:
        events = self.server.handle_timer(now=self.now)
        self.check_states()
        self.server_events.extend(events)
        return events

    def log(self, events: list[SessionEvent]) -> None:
        self.check_states()
        for event in events:
            self.client_log.append(ClientStep(event, dataclasses.replace(self.client.chat),
                                              self.client.state))

    def check_states(self) -> None:
        client, server = self.client.state, self.server.state
        assert table_allows(CLIENT_TRANSITIONS, self.client_states[-1], client), (
            f"client moved {self.client_states[-1]} -> {client} outside CLIENT_TRANSITIONS")
        assert table_allows(SERVER_TRANSITIONS, self.server_states[-1], server), (
            f"server moved {self.server_states[-1]} -> {server} outside SERVER_TRANSITIONS")
        if client is not self.client_states[-1]:
            self.client_states.append(client)
        if server is not self.server_states[-1]:
            self.server_states.append(server)
