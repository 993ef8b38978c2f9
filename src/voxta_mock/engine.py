"""The mock's brain, without I/O: client requests in, timed server messages out.

[`MockEngine.handle()`][voxta_mock.engine.MockEngine.handle] returns a generator of
[`Step`][voxta_mock.engine.Step]s for one request:
[`Emit`][voxta_mock.engine.Emit] (send a message to some connections),
[`Complete`][voxta_mock.engine.Complete] (answer the
request's invocation) and [`Wait`][voxta_mock.engine.Wait] (pause before the next step, for
streaming). The I/O layer runs the steps up to the first ``Wait`` at once and plays the rest later;
a test just iterates. Steps are computed when they are reached, so an ``interrupt`` that
arrives mid-reply is seen by the stream it cuts short. Everything is deterministic for a
given seed and clock.
"""

from __future__ import annotations

import io
import random
import time
import uuid
import wave
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final, Union

import msgspec

from voxta_mock.data import DEFAULT_DATA, CharacterData, ChatData, MockData, ScenarioData
from voxta_proto.voxta import (
    Action,
    ActionInvocationArgument,
    AddChatParticipant,
    AnyClientMessage,
    AppTrigger,
    AppTriggerComplete,
    AudioOutputCapability,
    Authenticate,
    CharactersListItem,
    CharactersListLoaded,
    CharacterSpeechRequest,
    ChatClosed,
    ChatContext,
    ChatFlow,
    ChatFlowModes,
    ChatFlowStates,
    ChatListItem,
    ChatLoadingMessage,
    ChatMessage,
    ChatMessageRole,
    ChatParticipantInfo,
    ChatParticipantsUpdated,
    ChatPaused,
    ChatServiceInfo,
    ChatSessionError,
    ChatsListLoaded,
    ChatsSessionsUpdated,
    ChatStarted,
    ChatStarting,
    ChatStyles,
    ChatUpdated,
    ClientSpeechPlaybackComplete,
    ClientSpeechPlaybackStart,
    ClientUpdate,
    ComputerVisionSource,
    Configuration,
    ContextUpdated,
    DeleteChat,
    DeleteMessage,
    DeployResource,
    DeployResourceResult,
    DocumentUpdated,
    ErrorMessage,
    FlagInfo,
    FulfillUserInteractionRequest,
    Inspect,
    InspectAudioInput,
    InspectorEnabled,
    Interrupt,
    InterruptSpeech,
    ListResources,
    ListResourcesResult,
    LoadCharactersList,
    LoadChatsList,
    LoadScenariosList,
    MemoryUpdated,
    ModuleRuntimeInstances,
    PauseChat,
    RegisterApp,
    RemoveChatParticipant,
    ReplyCancelled,
    ReplyChunk,
    ReplyEnd,
    ReplyGenerating,
    ReplyStart,
    RequestSuggestions,
    ResumeChat,
    Retry,
    Revert,
    RunScript,
    ScenarioActionDefinition,
    ScenarioInfo,
    ScenarioRole,
    ScenariosListLoaded,
    Send,
    ServerMessage,
    ServicesConfigurationsSet,
    Speak,
    SpeechPlaybackComplete,
    SpeechPlaybackStart,
    StartChat,
    StopChat,
    SubscribeToChat,
    Suggestions,
    TriggerAction,
    TriggerScriptEvent,
    TypingEnd,
    TypingStart,
    UnsubscribeFromChat,
    Update,
    UpdateChat,
    UpdateContext,
    UpdateDocument,
    VisionCaptureRequest,
    Welcome,
)
from voxta_proto.voxta.server import ChatAlreadyOpen, ChatSessions

__all__ = [
    "EMPTY_ID",
    "UI_CONNECTION",
    "AppTriggerRecord",
    "Complete",
    "Emit",
    "MockEngine",
    "Step",
    "VisionRequest",
    "Wait",
]

EMPTY_ID: Final = "00000000-0000-0000-0000-000000000000"
UI_CONNECTION: Final = "voxta-ui"
"""The virtual connection that owns a pre-seeded session (it has no transport)."""
MAX_CLIPS: Final = 10_000
"""TTS clips kept for fetching; older unfetched ones are forgotten."""
MAX_PENDING: Final = 1_000
"""Unanswered vision requests and queued app triggers kept per engine; the oldest go."""
TRIGGER_POLL: Final = 0.02
"""Seconds between checks for an app trigger's acknowledgement while a command waits."""
MS_PER_CHARACTER: Final = 20
"""Length of the mock's speech: 20 ms per character, at most 2 s a clip."""


@dataclass(frozen=True)
class Emit:
    """Send ``message`` to each connection in ``to`` (unknown ones are skipped)."""

    to: tuple[str, ...]
    message: ServerMessage


@dataclass(frozen=True)
class Complete:
    """Send the request's Completion now (with ``error`` on failure)."""

    error: str | None = None


@dataclass(frozen=True)
class Wait:
    """Pause this request's remaining steps for ``seconds``."""

    seconds: float


Step = Union[Emit, Complete, Wait]


@dataclass
class VisionRequest:
    """A ``visionCaptureRequest`` the engine sent, and how the client answered it."""

    request_id: str
    session_id: str
    source: ComputerVisionSource
    state: str = "pending"
    """``pending``, then ``uploaded`` (REST ``send``) or ``cancelled`` (REST ``DELETE``)."""


@dataclass
class AppTriggerRecord:
    """A queued ``appTrigger`` (one with a ``triggerId``) and whether it was acknowledged."""

    trigger_id: str
    session_id: str
    name: str
    sent_at: float
    """When it was sent, on the engine's clock."""
    completed: bool = False
    timed_out: bool = False
    """The session stopped waiting for the acknowledgement (``app_trigger_timeout``)."""

    @property
    def pending(self) -> bool:
        """Still holding the session's command queue."""
        return not (self.completed or self.timed_out)


def _steps(*steps: Step) -> Iterator[Step]:
    return iter(steps)


def _forget_oldest(records: dict[str, Any]) -> None:
    while len(records) > MAX_PENDING:
        del records[next(iter(records))]


def _form_value(value: object) -> str:
    """A form default as the server sends values: strings, .NET's ``True``/``False``."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


_QUEUED_COMMANDS: Final = (Send, Retry, CharacterSpeechRequest, Speak, TriggerAction)
"""Session commands the server runs on its foreground queue, which a queued trigger holds."""


@dataclass
class _Msg:
    message_id: str
    role: ChatMessageRole
    sender_id: str
    text: str
    timestamp: str
    chat_time: int


@dataclass
class _Chat:
    id: str
    character_ids: list[str]
    scenario_id: str | None
    title: str | None
    created: str
    messages: list[_Msg] = field(default_factory=list)
    last_session: str | None = None


@dataclass
class _Stream:
    """A reply being streamed; ``done`` stops its generator at the next step."""

    message_id: str
    sender_id: str
    role: ChatMessageRole
    text: str
    narration: bool
    sent_to: int = 0
    """Characters of ``text`` already sent in chunks."""
    done: bool = False


@dataclass
class _Live:
    """A running session's state beyond the registry: flags, contexts, the chat clock."""

    session_id: str
    chat: _Chat
    services_set_id: str
    started: float
    clock_base: int
    flags: dict[str, FlagInfo] = field(default_factory=dict)
    actions: dict[str, tuple[ScenarioActionDefinition, ...]] = field(default_factory=dict)
    paused: bool = False
    stream: _Stream | None = None
    playback: str | None = None
    """Client playback: the reply whose ``speechPlaybackComplete`` the session awaits."""
    variables: dict[str, msgspec.Raw] = field(default_factory=dict)
    """Script variables set by ``updateContext.variables``."""


@dataclass
class _Conn:
    authenticated: bool = False
    client: str = ""
    audio_output: AudioOutputCapability | None = None
    app: RegisterApp | None = None
    """The connection's last ``registerApp``."""


class MockEngine:
    """A whole mock Voxta server's behaviour (every connection and session), sans-IO.

    Args:
        data: characters, scenarios, chats, replies and scripts.
        seed: makes ids and replies reproducible.
        reply_delay: seconds between streamed chunks (0: no waits at all).
        clock: wall-clock seconds, for timestamps and the chat clock.
        preseed_session: start a session owned by a virtual UI connection, so clients
            that only subscribe (``voxta-client``) become ready.
        words_per_chunk: how long a ``replyChunk`` is at most.
        speech: text-to-speech on. Sessions whose owner authenticated with
            ``audioOutput: "Url"`` then get client playback (reference §8.3, §12): every
            ``replyChunk`` has an ``audioUrl`` (a WAV from
            [`tts_audio()`][voxta_mock.engine.MockEngine.tts_audio]), the client's
            ``speechPlaybackStart``/``speechPlaybackComplete`` are echoed, and the session
            waits for the latter before ``chatFlow WaitingForUserInput``. Off (the
            default), or for other clients, speech is disabled: ``audioUrl: ""`` and the
            server completes playback itself.
        silence_placeholders: the other way a server without TTS behaves (API 2025-11
            §3.1, §6.3): ``audioUrl`` is ``silence:N`` (N ms, never fetched) for
            ``audioOutput: "Url"`` owners, who must then acknowledge playback as with
            speech. Ignored when ``speech`` is on.
        audio_gap_ms: written as ``replyChunk.audioGapMs`` on every chunk but a reply's
            first, when the chunk has audio (a URL or a placeholder).
        app_trigger_timeout: seconds a queued ``appTrigger`` holds the session's command
            queue (``send``, ``retry``, ...) when the client never acknowledges it.
    """

    def __init__(
        self,
        data: MockData = DEFAULT_DATA,
        *,
        seed: int = 0,
        reply_delay: float = 0.03,
        clock: Callable[[], float] = time.time,
        preseed_session: bool = False,
        words_per_chunk: int = 6,
        speech: bool = False,
        silence_placeholders: bool = False,
        audio_gap_ms: int | None = None,
        app_trigger_timeout: float = 10.0,
    ) -> None:
        self.data = data
        """Characters, scenarios, replies, scripts; the admin API may replace it."""
        self.seed: Final = seed
        self.reply_delay = reply_delay
        self.words_per_chunk = max(1, words_per_chunk)
        self.speech = speech
        self.silence_placeholders = silence_placeholders
        self.audio_gap_ms = audio_gap_ms
        self.app_trigger_timeout = app_trigger_timeout
        self.vision_requests: dict[str, VisionRequest] = {}
        """Every vision capture request sent (the newest
        [`MAX_PENDING`][voxta_mock.engine.MAX_PENDING]), by id."""
        self.app_triggers: dict[str, AppTriggerRecord] = {}
        """Every queued app trigger sent (the newest
        [`MAX_PENDING`][voxta_mock.engine.MAX_PENDING]), by trigger id."""
        self._app_config: dict[tuple[str, str], dict[str, str]] = {}
        self._clips: dict[str, str] = {}
        self._clock = clock
        self._rng = random.Random(seed)
        self.sessions: Final = ChatSessions[str]()
        self._live: dict[str, _Live] = {}
        self._conns: dict[str, _Conn] = {}
        self._chats: dict[str, _Chat] = {}
        self._services_id = self._new_id()
        self._textgen_id = self._new_id()
        for chat in data.chats:
            self._chats[chat.id] = self._load_chat(chat)
        if preseed_session:
            self._conns[UI_CONNECTION] = _Conn(True, "Voxta.Client.Web")
            for _ in self._open_session(UI_CONNECTION, self._new_chat([data.assistant.id], None),
                                        greet=False):
                pass

    # -- connections -------------------------------------------------------------------

    def connect(self, connection: str) -> None:
        """A client connection opened (before its handshake)."""
        self._conns[connection] = _Conn()

    def disconnect(self, connection: str) -> Iterator[Step]:
        """A connection went away: its session closes (reference §8.13)."""
        self._conns.pop(connection, None)
        record = self.sessions.owned_by(connection)
        if record is not None:
            yield from self._close_session(record.session_id)
        self.sessions.drop_connection(connection)

    @property
    def connections(self) -> tuple[str, ...]:
        """Known connections, the virtual UI one included."""
        return tuple(self._conns)

    def stored_chats(self) -> tuple[tuple[str, tuple[str, ...], str | None, int], ...]:
        """Every stored chat as ``(id, character ids, title, message count)``."""
        return tuple((c.id, tuple(c.character_ids), c.title, len(c.messages))
                     for c in self._chats.values())

    def live_session(self, session_id: str) -> bool:
        """Whether that session runs."""
        return session_id in self._live

    # -- requests ----------------------------------------------------------------------

    def handle(self, connection: str, message: AnyClientMessage) -> Iterator[Step]:
        """React to one valid client message (the session layer checked it already)."""
        conn = self._conns.setdefault(connection, _Conn())
        if isinstance(message, Authenticate):
            conn.authenticated = True
            conn.client = message.client
            conn.audio_output = message.capabilities.audio_output
            yield from self._welcome(connection)
            yield Complete()
            return
        simple = self._connection_level(connection, message)
        if simple is not None:
            yield from simple
            return
        session_id: str | None = getattr(message, "session_id", None)
        if isinstance(message, StopChat):
            yield from self._stop(connection, message)
            return
        if isinstance(message, SubscribeToChat):
            yield from self._subscribe(connection, message.session_id)
            yield Complete()
            return
        if isinstance(message, UnsubscribeFromChat):
            self.sessions.unsubscribe(message.session_id, connection)
            yield Complete()
            return
        # Session messages: completion first, effects after (the chat's command queue).
        yield Complete()
        live = self._live.get(session_id or "")
        if live is None:
            return  # unknown session: the real server logs and ignores it
        yield from self._session_message(live, message)

    # -- connection-level --------------------------------------------------------------

    def _connection_level(self, connection: str,
                          message: AnyClientMessage) -> Iterator[Step] | None:
        to = (connection,)
        if isinstance(message, RegisterApp):
            self._conns[connection].app = message
            return _steps(Complete())
        if isinstance(message, (InspectAudioInput, FulfillUserInteractionRequest)):
            return _steps(Complete())
        if isinstance(message, LoadCharactersList):
            return _steps(Emit(to, CharactersListLoaded(
                characters=tuple(self._list_item(c) for c in self.data.characters))),
                Complete())
        if isinstance(message, LoadScenariosList):
            return _steps(Emit(to, ScenariosListLoaded(
                scenarios=tuple(self._scenario_info(s) for s in self.data.scenarios))),
                Complete())
        if isinstance(message, LoadChatsList):
            # As the real server: the character's chats; of the given scenario, or without
            # one when none (or the empty GUID) is given. The empty GUID lists nothing.
            scenario = message.scenario_id if message.scenario_id != EMPTY_ID else None
            chats = [c for c in self._chats.values()
                     if message.character_id in c.character_ids
                     and (c.scenario_id or None) == (scenario or None)]
            chats.sort(key=lambda c: c.created, reverse=True)
            return _steps(Emit(to, ChatsListLoaded(
                chats=tuple(ChatListItem(id=c.id, created=c.created) for c in chats))),
                Complete())
        if isinstance(message, DeleteChat):
            if self.sessions.for_chat(message.chat_id) is None:
                self._chats.pop(message.chat_id, None)
            return _steps(Complete())
        if isinstance(message, ListResources):
            return _steps(Emit(to, ListResourcesResult(resources=())), Complete())
        if isinstance(message, DeployResource):
            return _steps(Emit(to, DeployResourceResult(
                success=False, id=message.id, error="The mock server cannot deploy resources")),
                Complete())
        if isinstance(message, (StartChat, ResumeChat)):
            return self._start(connection, message)
        return None

    def _welcome(self, connection: str) -> Iterator[Step]:
        to = (connection,)
        assistant = self.data.assistant
        yield Emit(to, Welcome(
            voxta_server_version=self.data.server_version, api_version=self.data.api_version,
            user=self._user(), assistant=ChatParticipantInfo(id=assistant.id, name=assistant.name)))
        yield Emit(to, ModuleRuntimeInstances(instances=()))
        yield Emit(to, Configuration(
            configurations=(ServicesConfigurationsSet(
                id=self._services_id, name="Default", is_default=True, services={}),),
            services={}, feature_flags=()))
        if len(self.sessions):
            yield Emit(to, ChatsSessionsUpdated(sessions=self.sessions.infos()))

    # -- chat lifecycle ----------------------------------------------------------------

    def _start(self, connection: str, message: StartChat | ResumeChat) -> Iterator[Step]:
        yield Complete()  # startChat/resumeChat are fire-and-forget
        to = (connection,)
        chat_id = message.chat_id
        if isinstance(message, StartChat) and chat_id is None:
            ids = list(message.character_ids or ())
            if message.character_id:
                ids.insert(0, message.character_id)
            scenario = message.scenario_id
            if not ids and scenario is None:
                yield Emit(to, ErrorMessage(message="No character or scenario was specified"))
                return
            if not ids:
                ids = [self.data.assistant.id]
            unknown = [i for i in ids if self.data.character(i) is None]
            if unknown:
                yield Emit(to, ErrorMessage(message=f"Character {unknown[0]} not found"))
                return
            chat = self._new_chat([self.data.character(i).id for i in ids  # type: ignore[union-attr]
                                   ], scenario)
            greet = True
        else:
            if isinstance(message, StartChat) and message.ephemeral:
                yield Emit(to, ErrorMessage(message="Cannot resume an ephemeral chat"))
                return
            found = self._chats.get(chat_id or "")
            if found is None:
                yield Emit(to, ErrorMessage(message=f"Chat {chat_id} not found"))
                return
            chat = found
            greet = False
        yield from self._open_session(connection, chat, greet=greet,
                                      set_flags=message.set_flags or ())

    def _open_session(self, connection: str, chat: _Chat, *, greet: bool,
                      set_flags: Sequence[str] = ()) -> Iterator[Step]:
        to: tuple[str, ...] = (connection,)
        previous = self.sessions.owned_by(connection)
        if previous is not None:
            yield from self._close_session(previous.session_id)
        session_id = self._new_id()
        style = self._chat_style(chat)
        yield Emit(to, ChatStarting(session_id=session_id, chat_id=chat.id, chat_style=style,
                                    services_configurations_set_id=self._services_id,
                                    title=chat.title))
        for text, progress in (("Loading scenario...", 0), ("Loading characters...", 50),
                               ("Chat session ready!", 100)):
            yield Emit(to, ChatLoadingMessage(session_id=session_id, text=text,
                                              progress=progress))
        try:
            self.sessions.open(session_id, chat.id, connection, user=self._user(),
                               characters=self._participants(chat))
        except ChatAlreadyOpen as exc:
            yield Emit(to, ChatSessionError(session_id=session_id, message=str(exc), retry=False))
            yield Emit(to, ErrorMessage(message=str(exc)))
            return
        base = chat.messages[-1].chat_time if chat.messages else 0
        live = _Live(session_id, chat, self._services_id, self._clock(), base)
        self._live[session_id] = live
        chat.last_session = self._timestamp()
        for flag in set_flags:
            self._set_flag(live, flag)
        yield Emit(self._everyone(), ChatsSessionsUpdated(sessions=self.sessions.infos()))
        yield Emit(to, self._chat_started(live))
        first = self.data.character(chat.character_ids[0])
        if greet and first is not None and first.greeting:
            yield from self._stream(live, first.id, first.greeting)
        elif chat.messages and chat.messages[-1].role is ChatMessageRole.USER:
            yield from self._reply(live, chat.messages[-1].text)
        else:
            yield Emit(self._audience(live), ChatFlow(
                session_id=session_id, state=ChatFlowStates.WAITING_FOR_USER_INPUT))

    def _close_session(self, session_id: str) -> Iterator[Step]:
        live = self._live.pop(session_id, None)
        record = self.sessions.get(session_id)
        audience = record.audience if record else ()
        if live is not None and live.stream is not None:
            live.stream.done = True
        self.sessions.close(session_id)
        for request in self.vision_requests.values():
            if request.session_id == session_id and request.state == "pending":
                request.state = "cancelled"
        for trigger in self.app_triggers.values():
            if trigger.session_id == session_id and trigger.pending:
                trigger.timed_out = True  # nothing waits for it any more
        if live is not None:
            yield Emit(audience, ChatClosed(session_id=session_id, chat_id=live.chat.id))
            yield Emit(self._everyone(), ChatsSessionsUpdated(sessions=self.sessions.infos()))

    def _stop(self, connection: str, message: StopChat) -> Iterator[Step]:
        own = self.sessions.owned_by(connection)
        if message.session_id and (own is None or own.session_id != message.session_id):
            if message.session_id in self.sessions:
                yield Complete(error="An unexpected error occurred invoking 'SendMessage' on "
                               "the server. InvalidOperationException: You can only stop "
                               "your own chat session")
                return
            yield Complete()
            return
        if own is not None:
            yield from self._close_session(own.session_id)
        yield Complete()

    def _subscribe(self, connection: str, session_id: str) -> Iterator[Step]:
        to = (connection,)
        live = self._live.get(session_id)
        if live is None or self.sessions.subscribe(session_id, connection) is None:
            yield Emit(to, ChatClosed(session_id=session_id, chat_id=EMPTY_ID))
            return
        yield Emit(to, self._chat_started(live))
        yield Emit(to, self._context_updated(live))

    # -- session messages --------------------------------------------------------------

    def _session_message(self, live: _Live, message: AnyClientMessage) -> Iterator[Step]:
        sid = live.session_id
        if isinstance(message, _QUEUED_COMMANDS):
            yield from self._await_app_triggers(sid)
            if self._live.get(sid) is not live:
                return  # the session closed while the command waited
        group = self._audience(live)
        if isinstance(message, Send):
            yield from self._send(live, message)
        elif isinstance(message, Interrupt):
            yield from self._interrupt(live)
        elif isinstance(message, AppTriggerComplete):
            record = self.app_triggers.get(message.trigger_id)
            if record is not None and record.session_id == sid:  # else: nothing, as the server
                record.completed = True
        elif isinstance(message, (TypingStart, TypingEnd, TriggerScriptEvent, RunScript)):
            return
        elif isinstance(message, ClientSpeechPlaybackStart):
            yield Emit(group, SpeechPlaybackStart(session_id=sid, message_id=message.message_id,
                                                  start_index=message.start_index,
                                                  duration=message.duration or 0.0))
        elif isinstance(message, ClientSpeechPlaybackComplete):
            # Relayed like the start, whichever reply it names (late, repeated or unknown
            # ones too, API 2025-11 §3.1); only the awaited one ends the turn.
            yield Emit(group, SpeechPlaybackComplete(session_id=sid,
                                                     message_id=message.message_id))
            if live.playback is not None and live.playback == message.message_id:
                live.playback = None
                yield Emit(group, ChatFlow(session_id=sid,
                                           state=ChatFlowStates.WAITING_FOR_USER_INPUT))
        elif isinstance(message, PauseChat):
            live.paused = message.pause
            yield Emit(group, ChatPaused(session_id=sid, paused=message.pause))
            if not message.pause:
                yield from self._reply(live, "")
        elif isinstance(message, Retry):
            yield from self._interrupt(live, idle=False)
            last_user = self._last_index(live, ChatMessageRole.USER)
            yield from self._delete_from(live, last_user + 1)
            prompt = live.chat.messages[last_user].text if last_user >= 0 else ""
            yield from self._reply(live, prompt)
        elif isinstance(message, Revert):
            yield from self._interrupt(live, idle=False)
            yield from self._revert(live, message.message_id)
        elif isinstance(message, ClientUpdate):
            msg = self._find(live, message.message_id)
            if msg is not None and message.text is not None:
                msg.text = message.text
                yield Emit(group, self._update(live, msg))
        elif isinstance(message, DeleteMessage):
            index = next((i for i, m in enumerate(live.chat.messages)
                          if m.message_id == message.message_id), None)
            if index is not None:
                gone = live.chat.messages.pop(index)
                yield Emit(group, self._update(live, gone, deleted=True, index=index))
        elif isinstance(message, UpdateContext):
            yield from self._update_context(live, message)
        elif isinstance(message, TriggerAction):
            msg = self._find(live, message.message_id)
            if msg is not None:
                yield Emit(group, Action(session_id=sid, value=message.value, role=msg.role,
                                         sender_id=msg.sender_id, arguments=message.arguments))
        elif isinstance(message, (AddChatParticipant, RemoveChatParticipant)):
            yield from self._participant(live, message)
        elif isinstance(message, RequestSuggestions):
            count = message.count or len(self.data.suggestions)
            yield Emit(group, Suggestions(session_id=sid,
                                          suggestions=self.data.suggestions[:count]))
        elif isinstance(message, CharacterSpeechRequest):
            sender = message.character_id or live.chat.character_ids[0]
            yield from self._interrupt(live, idle=False)
            yield from self._stream(live, sender, message.text)
        elif isinstance(message, Speak):
            msg = self._find(live, message.message_id) if message.message_id else (
                live.chat.messages[-1] if live.chat.messages else None)
            if msg is not None:
                yield from self._stream(live, msg.sender_id, msg.text, existing=msg)
        elif isinstance(message, Inspect):
            yield Emit(group, InspectorEnabled(session_id=sid, timestamp=self._timestamp(),
                                               enabled=message.enabled))
        elif isinstance(message, UpdateChat):
            if message.title is not None:
                live.chat.title = message.title
                yield Emit(group, ChatUpdated(session_id=sid, chat_id=live.chat.id,
                                              title=message.title))
        elif isinstance(message, UpdateDocument):
            yield Emit(group, DocumentUpdated(
                session_id=sid, document_id=message.document_id or self._new_id(),
                title=message.title, content=message.content,
                title_tokens=len((message.title or "").split()),
                content_tokens=len((message.content or "").split())))

    def _send(self, live: _Live, message: Send) -> Iterator[Step]:
        group = self._audience(live)
        sid = live.session_id
        yield from self._interrupt(live, idle=False)  # a new message cuts a running reply
        text = message.text or ""
        command = self._slash_command(live, text)
        if command is not None:
            yield from command
            return
        role = ChatMessageRole.EVENT if text.startswith("[") and text.endswith("]") else (
            message.role or ChatMessageRole.USER)
        last = live.chat.messages[-1] if live.chat.messages else None
        if last is not None and last.role is ChatMessageRole.USER and role is ChatMessageRole.USER:
            last.text = f"{last.text}\n{text}"  # unanswered user messages merge into one
            msg = last
        else:
            msg = self._append(live, role, self.data.user.id, text)
        yield Emit(group, self._update(live, msg))
        yield Emit(group, ChatFlow(session_id=sid, state=ChatFlowStates.PROCESSING_USER_MESSAGE))
        if message.do_reply is False or message.do_continue is False or live.paused:
            yield Emit(group, ChatFlow(session_id=sid,
                                       state=ChatFlowStates.WAITING_FOR_USER_INPUT))
            return
        yield from self._reply(live, msg.text,
                               infer=message.do_character_action_inference is not False)

    def _slash_command(self, live: _Live, text: str) -> Iterator[Step] | None:
        if not text.startswith("/"):
            return None
        name, _, rest = text[1:].partition(" ")
        name = name.rstrip(":").lower()
        roles = {"note": ChatMessageRole.NOTE, "secret": ChatMessageRole.SECRET,
                 "instructions": ChatMessageRole.INSTRUCTIONS, "event": ChatMessageRole.EVENT}
        group = self._audience(live)

        def run() -> Iterator[Step]:
            if name not in roles:
                yield Emit(group, ChatSessionError(
                    session_id=live.session_id, message=f"Command {name} is not supported",
                    retry=False))
                return
            msg = self._append(live, roles[name], self.data.user.id, rest)
            yield Emit(group, self._update(live, msg))
            if name == "event":
                yield from self._reply(live, rest)

        return run()

    def _revert(self, live: _Live, message_id: str | None) -> Iterator[Step]:
        messages = live.chat.messages
        if message_id is None:
            start = self._last_index(live, ChatMessageRole.USER)
            if start >= 0:
                yield from self._delete_from(live, start)
            return
        index = next((i for i, m in enumerate(messages) if m.message_id == message_id), None)
        if index is None:
            return
        yield from self._delete_from(live, index + 1)
        if messages[index].role is ChatMessageRole.USER:
            yield from self._reply(live, messages[index].text)

    def _delete_from(self, live: _Live, start: int) -> Iterator[Step]:
        group = self._audience(live)
        removed = live.chat.messages[start:]
        del live.chat.messages[start:]
        for offset, msg in enumerate(removed):
            yield Emit(group, self._update(live, msg, deleted=True, index=start + offset))

    def _update_context(self, live: _Live, message: UpdateContext) -> Iterator[Step]:
        key = message.context_key or ""
        if message.actions is not None:
            live.actions[key] = message.actions
        for flag in message.set_flags or ():
            self._set_flag(live, flag)
        live.variables.update(message.variables or {})
        supplied = (message.contexts, message.actions, message.events, message.set_flags,
                    message.enable_roles, message.variables)
        if all(part is None for part in supplied):
            return
        for character_id in live.chat.character_ids:
            yield Emit(self._audience(live), MemoryUpdated(
                session_id=live.session_id, character_id=character_id, memories=()))
        yield Emit(self._audience(live), self._context_updated(live))

    def _participant(self, live: _Live,
                     message: AddChatParticipant | RemoveChatParticipant) -> Iterator[Step]:
        character = self.data.character(message.character_id)
        ids = live.chat.character_ids
        if character is None:
            yield Emit(self._audience(live), ChatSessionError(
                session_id=live.session_id, message=f"Character {message.character_id} not found",
                retry=False))
            return
        if isinstance(message, AddChatParticipant):
            if character.id in ids:
                return
            ids.append(character.id)
            event = f"{character.name} joined the chat."
        else:
            if character.id not in ids or len(ids) == 1:
                return  # removing a non-participant is ignored
            ids.remove(character.id)
            event = f"{character.name} left the chat."
        participants = self._participants(live.chat)
        self.sessions.set_characters(live.session_id, participants)
        yield Emit(self._audience(live), ChatParticipantsUpdated(
            session_id=live.session_id, characters=participants))
        yield from self._stream(live, EMPTY_ID, event, role=ChatMessageRole.EVENT,
                                narration=True, finish=False)

    # -- replies -----------------------------------------------------------------------

    def _reply(self, live: _Live, prompt: str, *, infer: bool = True) -> Iterator[Step]:
        """A character's answer to ``prompt``: scripted on a keyword, else canned."""
        group = self._audience(live)
        yield Emit(group, ChatFlow(session_id=live.session_id,
                                   state=ChatFlowStates.PROCESSING_ASSISTANT_REPLY))
        script = next((s for s in self.data.scripts
                       if s.keyword and s.keyword.lower() in prompt.lower()), None)
        if script is not None and script.reply is not None:
            text = script.reply
        else:
            pick = random.Random(f"{self.seed}:{live.session_id}:{len(live.chat.messages)}")
            text = pick.choice(self.data.replies)
        sender = live.chat.character_ids[0]
        extras: list[ServerMessage] = []
        stream_id = self._new_id()
        if script is not None and script.action:
            extras.append(Action(session_id=live.session_id, value=script.action,
                                 layer=script.action_layer, context_key="_scenario",
                                 role=ChatMessageRole.ASSISTANT, sender_id=sender))
        if infer:
            extras.extend(self._infer_actions(live, prompt, sender))
        if script is not None and script.app_trigger:
            extras.append(self._app_trigger(
                live.session_id, script.app_trigger, script.app_trigger_arguments,
                sender=sender, message_id=stream_id, queued=script.app_trigger_queued))
        if script is not None and script.vision_capture:
            extras.append(self._vision_request(live.session_id,
                                               ComputerVisionSource(script.vision_capture)))
        yield from self._stream(live, sender, text, extras=extras, message_id=stream_id)

    def _infer_actions(self, live: _Live, prompt: str, sender: str) -> list[ServerMessage]:
        """One action per layer of the context's actions: the one named in the prompt,
        else ``value: ""`` (nothing chosen), layers in name order."""
        layers: dict[str, list[tuple[str, ScenarioActionDefinition]]] = {}
        for key, actions in live.actions.items():
            for action in actions:
                layers.setdefault(action.layer or "", []).append((key, action))
        out: list[ServerMessage] = []
        for layer in sorted(layers)[:5]:
            chosen = next(((k, a) for k, a in layers[layer] if a.name.lower() in prompt.lower()),
                          None)
            key = chosen[0] if chosen else layers[layer][0][0]
            arguments = None
            if chosen and chosen[1].arguments:
                arguments = tuple(ActionInvocationArgument(name=arg.name, value=(arg.choices or
                                  ("",))[0]) for arg in chosen[1].arguments if arg.required)
            out.append(Action(session_id=live.session_id, value=chosen[1].name if chosen else "",
                              layer=layer or None, context_key=key or None,
                              role=ChatMessageRole.ASSISTANT, sender_id=sender,
                              arguments=arguments or None))
        return out

    def _chunks(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of each chunk: runs of ``words_per_chunk`` words, split at spaces."""
        words: list[tuple[int, int]] = []
        position = 0
        for word in text.split(" "):
            if word:
                words.append((position, position + len(word)))
            position += len(word) + 1
        if not words:
            return [(0, len(text))]
        n = self.words_per_chunk
        return [(group[0][0], group[-1][1]) for group in
                (words[i:i + n] for i in range(0, len(words), n))]

    def _stream(self, live: _Live, sender: str, text: str, *,
                role: ChatMessageRole = ChatMessageRole.ASSISTANT, narration: bool = False,
                extras: Sequence[ServerMessage] = (), finish: bool = True,
                existing: _Msg | None = None, message_id: str | None = None) -> Iterator[Step]:
        """replyGenerating, replyStart, replyChunk x n, replyEnd, then the speech-disabled
        completion and ``chatFlow WaitingForUserInput``; with a ``Wait`` between chunks."""
        sid = live.session_id
        speaks = self._client_playback(live)
        stream = _Stream(existing.message_id if existing else message_id or self._new_id(),
                         sender, role, text, narration)
        live.stream = stream
        mid = stream.message_id
        if existing is None:
            yield Emit(self._audience(live), ReplyGenerating(
                session_id=sid, message_id=mid, sender_id=sender, role=role,
                is_narration=narration))
        yield Emit(self._audience(live), ReplyStart(
            session_id=sid, message_id=mid, sender_id=sender, chat_time=self._chat_time(live)))
        for number, (start, end) in enumerate(self._chunks(text)):
            if self.reply_delay > 0:
                yield Wait(self.reply_delay)
            if stream.done:
                return
            stream.sent_to = end
            yield Emit(self._audience(live), ReplyChunk(
                session_id=sid, message_id=mid, sender_id=sender, text=text[start:end],
                start_index=start, end_index=end,
                audio_url=self._audio_url(text[start:end]) if speaks else "",
                is_narration=narration,
                audio_gap_ms=self.audio_gap_ms if speaks and number else None))
        if stream.done:
            return
        stream.done = True
        live.stream = None
        msg = existing or self._append(live, role, sender, text, message_id=mid)
        index = live.chat.messages.index(msg) + 1 if msg in live.chat.messages else -1
        yield Emit(self._audience(live), ReplyEnd(
            session_id=sid, message_id=mid, sender_id=sender, tokens=self._tokens(text),
            message_index=index, conversation_index=index))
        for extra in extras:
            yield Emit(self._audience(live), extra)
        if finish and speaks:
            live.playback = mid  # the client's speechPlaybackComplete ends the turn
            return
        if finish:
            yield Emit(self._audience(live), SpeechPlaybackComplete(session_id=sid,
                                                                    message_id=mid))
            yield Emit(self._audience(live), ChatFlow(
                session_id=sid, state=ChatFlowStates.WAITING_FOR_USER_INPUT))

    def _interrupt(self, live: _Live, *, idle: bool = True) -> Iterator[Step]:
        """Cut the running stream short (reference §8.4); with ``idle``, end with
        ``chatFlow WaitingForUserInput`` even when nothing ran."""
        stream = live.stream
        live.stream = None
        sid = live.session_id
        group = self._audience(live)
        if live.playback is not None:  # the client is playing a finished reply's audio
            yield Emit(group, InterruptSpeech(session_id=sid, message_id=live.playback))
            live.playback = None
        if stream is not None and not stream.done:
            stream.done = True
            if stream.sent_to == 0:
                yield Emit(group, ReplyEnd(session_id=sid, message_id=stream.message_id,
                                           sender_id=stream.sender_id, tokens=0,
                                           message_index=-1, conversation_index=-1))
                yield Emit(group, ReplyCancelled(session_id=sid, message_id=stream.message_id))
            else:
                partial = stream.text[:stream.sent_to]
                msg = self._append(live, stream.role, stream.sender_id, partial,
                                   message_id=stream.message_id)
                index = live.chat.messages.index(msg) + 1
                yield Emit(group, ReplyEnd(session_id=sid, message_id=stream.message_id,
                                           sender_id=stream.sender_id,
                                           tokens=self._tokens(partial), message_index=index,
                                           conversation_index=index))
                yield Emit(group, SpeechPlaybackComplete(session_id=sid,
                                                         message_id=stream.message_id))
            if not idle:
                return
        if idle:
            yield Emit(group, ChatFlow(session_id=sid,
                                       state=ChatFlowStates.WAITING_FOR_USER_INPUT))

    # -- speech ------------------------------------------------------------------------

    def _client_playback(self, live: _Live) -> bool:
        record = self.sessions.get(live.session_id)
        owner = self._conns.get(record.owner) if record is not None else None
        return ((self.speech or self.silence_placeholders) and owner is not None
                and owner.audio_output is AudioOutputCapability.URL)

    def _audio_url(self, text: str) -> str:
        """A TTS clip URL, or without speech a ``silence:N`` placeholder of its length."""
        if not self.speech:
            return f"silence:{min(len(text) * MS_PER_CHARACTER, 2_000)}"
        clip = self._new_id()
        self._clips[clip] = text
        while len(self._clips) > MAX_CLIPS:  # never fetched: forget the oldest
            del self._clips[next(iter(self._clips))]
        return f"/api/tts/gens/{clip}"

    def tts_audio(self, clip: str) -> bytes | None:
        """The WAV of ``/api/tts/gens/{clip}`` (silence, 20 ms per character, at most
        2 s), or None for an unknown clip. Like the real server's nonces, a clip can be
        fetched once."""
        text = self._clips.pop(clip, None)
        if text is None:
            return None
        samples = min(len(text) * MS_PER_CHARACTER * 16, 32_000)  # 16 kHz mono PCM16
        out = io.BytesIO()
        with wave.open(out, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(16_000)
            wav.writeframes(bytes(samples * 2))
        return out.getvalue()

    # -- app flows (API 2025-11 §3.3-3.5) -----------------------------------------------

    def request_vision_capture(
        self, session_id: str, source: ComputerVisionSource = ComputerVisionSource.SCREEN,
    ) -> tuple[str, Iterator[Step]]:
        """Ask the session's owner for an image (``visionCaptureRequest``), as a script or
        the UI would; the answer arrives over REST
        ([`answer_vision_request()`][voxta_mock.engine.MockEngine.answer_vision_request]).

        Returns:
            The request id and the steps that send the request.

        Raises:
            KeyError: no such running session.
        """
        live = self._live[session_id]
        message = self._vision_request(session_id, source)
        return message.vision_capture_request_id, _steps(Emit(self._owner(live), message))

    def answer_vision_request(self, request_id: str, session_id: str | None, *,
                              uploaded: bool) -> str | None:
        """Record the client's upload (``uploaded``) or cancel of a vision request.

        Returns:
            None when accepted, else why not (unknown request, another session's, or one
            already answered), for the REST layer's error body.
        """
        request = self.vision_requests.get(request_id)
        if request is None:
            return f"Vision capture request {request_id} not found"
        if session_id is not None and session_id != request.session_id:
            return f"Vision capture request {request_id} belongs to another session"
        if request.state != "pending":
            return f"Vision capture request {request_id} was already {request.state}"
        request.state = "uploaded" if uploaded else "cancelled"
        return None

    def queue_app_trigger(self, session_id: str, name: str, arguments: Sequence[object] = (),
                          *, scenario_role: str | None = None) -> tuple[str, Iterator[Step]]:
        """Send a queued ``appTrigger`` (with a ``triggerId``) to the session, as a scenario
        script does; the client's ``appTriggerComplete`` marks it completed in
        [`app_triggers`][voxta_mock.engine.MockEngine.app_triggers].

        Returns:
            The trigger id and the steps that send the trigger.

        Raises:
            KeyError: no such running session.
            TypeError: an argument is not JSON-encodable.
        """
        live = self._live[session_id]
        trigger = self._app_trigger(session_id, name, arguments, sender=live.chat.character_ids[0],
                                    queued=True, scenario_role=scenario_role)
        assert trigger.trigger_id is not None
        return trigger.trigger_id, _steps(Emit(self._audience(live), trigger))

    def set_app_configuration(self, character_id: str, client: str,
                              values: dict[str, str]) -> None:
        """What the user filled into app ``client``'s character form for that character
        (replaces the data's values); sent on the next ``chatStarted``."""
        self._app_config[(character_id.lower(), client)] = dict(values)

    def app_configuration(self, character_id: str, client: str) -> dict[str, str] | None:
        """A character's form values for one app: the form's defaults, then the data's
        values, then
        [`set_app_configuration()`][voxta_mock.engine.MockEngine.set_app_configuration]'s; None when
        there are none."""
        values: dict[str, str] = {}
        for conn in self._conns.values():
            form = conn.app.character_form if conn.app is not None else None
            if conn.client == client and form is not None:
                values.update({f.name: _form_value(f.default_value) for f in form.fields
                               if f.default_value is not None})
        character = self.data.character(character_id)
        if character is not None:
            values.update(character.app_configuration.get(client, {}))
        values.update(self._app_config.get((character_id.lower(), client), {}))
        return values or None

    def _configured_participants(self, live: _Live) -> tuple[ChatParticipantInfo, ...]:
        """The chat's characters, each with the owner app's ``appConfiguration``."""
        record = self.sessions.get(live.session_id)
        owner = self._conns.get(record.owner) if record is not None else None
        if owner is None:
            return self._participants(live.chat)
        return tuple(
            msgspec.structs.replace(p, app_configuration=self.app_configuration(p.id,
                                                                                owner.client))
            for p in self._participants(live.chat))

    def _vision_request(self, session_id: str,
                        source: ComputerVisionSource) -> VisionCaptureRequest:
        request = VisionRequest(self._new_id(), session_id, source)
        self.vision_requests[request.request_id] = request
        _forget_oldest(self.vision_requests)
        return VisionCaptureRequest(session_id=session_id,
                                    vision_capture_request_id=request.request_id, source=source)

    def _app_trigger(self, session_id: str, name: str, arguments: Sequence[object], *,
                     sender: str, queued: bool, message_id: str | None = None,
                     scenario_role: str | None = None) -> AppTrigger:
        trigger_id = None
        if queued:
            trigger_id = self._new_id()
            self.app_triggers[trigger_id] = AppTriggerRecord(trigger_id, session_id, name,
                                                             self._clock())
            _forget_oldest(self.app_triggers)
        return AppTrigger(
            session_id=session_id, name=name, sender_id=sender, message_id=message_id,
            arguments=tuple(msgspec.Raw(msgspec.json.encode(a)) for a in arguments),
            trigger_id=trigger_id, scenario_role=scenario_role)

    def _await_app_triggers(self, session_id: str) -> Iterator[Step]:
        """Hold a command while a queued trigger of the session waits for its
        ``appTriggerComplete``, at most ``app_trigger_timeout`` after it was sent (API
        2025-11 §3.5: the server's foreground queue waits for the acknowledgement)."""
        while True:
            waiting = [t for t in self.app_triggers.values()
                       if t.session_id == session_id and t.pending]
            if not waiting:
                return
            now = self._clock()
            for trigger in waiting:
                if now - trigger.sent_at >= self.app_trigger_timeout:
                    trigger.timed_out = True
            if all(not t.pending for t in waiting):
                return
            yield Wait(TRIGGER_POLL)

    def _owner(self, live: _Live) -> tuple[str, ...]:
        record = self.sessions.get(live.session_id)
        return (record.owner,) if record is not None else ()

    # -- helpers -----------------------------------------------------------------------

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _timestamp(self) -> str:
        moment = datetime.fromtimestamp(self._clock(), tz=timezone.utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"

    def _chat_time(self, live: _Live) -> int:
        return live.clock_base + max(0, int((self._clock() - live.started) * 1000))

    @staticmethod
    def _tokens(text: str) -> int:
        return max(1, (len(text) + 3) // 4) if text else 0

    def _user(self) -> ChatParticipantInfo:
        return ChatParticipantInfo(id=self.data.user.id, name=self.data.user.name)

    def _everyone(self) -> tuple[str, ...]:
        return tuple(k for k, c in self._conns.items() if c.authenticated)

    def _audience(self, live: _Live) -> tuple[str, ...]:
        record = self.sessions.get(live.session_id)
        return record.audience if record is not None else ()

    def _participants(self, chat: _Chat) -> tuple[ChatParticipantInfo, ...]:
        out = []
        for character_id in chat.character_ids:
            character = self.data.character(character_id)
            if character is not None:
                out.append(ChatParticipantInfo(id=character.id, name=character.name))
        return tuple(out)

    def _chat_style(self, chat: _Chat) -> ChatStyles:
        scenario = next((s for s in self.data.scenarios if s.id == chat.scenario_id), None)
        return ChatStyles(scenario.chat_style) if scenario else ChatStyles.COMPANION

    def _scenario_info(self, scenario: ScenarioData) -> ScenarioInfo:
        return ScenarioInfo(id=scenario.id, name=scenario.name,
                            chat_flow=ChatFlowModes(scenario.chat_flow),
                            chat_style=ChatStyles(scenario.chat_style),
                            roles=tuple(ScenarioRole(name=r) for r in scenario.roles))

    @staticmethod
    def _list_item(character: CharacterData) -> CharactersListItem:
        return CharactersListItem(
            id=character.id, name=character.name, app_controlled=False,
            date_created=character.created, date_created_ago="2 months ago",
            date_modified=character.created, date_modified_ago="2 months ago",
            culture=character.culture, explicit_content=character.explicit_content,
            favorite=character.favorite, hidden=False, scenario_only=False,
            tags=character.tags or None)

    def _context_fields(self, live: _Live) -> dict[str, object]:
        return {"session_id": live.session_id, "flags": tuple(live.flags.values()),
                "roles": {}, "buttons": (), "characters": self._participants(live.chat)}

    def _context_updated(self, live: _Live) -> ContextUpdated:
        return ContextUpdated(**self._context_fields(live),  # type: ignore[arg-type]
                              variables=dict(live.variables) or None)

    def _chat_started(self, live: _Live) -> ChatStarted:
        chat = live.chat
        scenario = next((s for s in self.data.scenarios if s.id == chat.scenario_id), None)
        return ChatStarted(
            session_id=live.session_id, chat_id=chat.id, chat_style=self._chat_style(chat),
            user=self._user(), characters=self._configured_participants(live),
            services={"textGen": ChatServiceInfo(service_name="Mock",
                                                 service_id=self._textgen_id)},
            services_configurations_set_id=live.services_set_id, augmentations=(),
            messages=tuple(self._chat_message(m, i) for i, m in enumerate(chat.messages)),
            context=ChatContext(**self._context_fields(live),  # type: ignore[arg-type]
                                variables=dict(live.variables) or None),
            title=chat.title, scenario=self._scenario_info(scenario) if scenario else None)

    def _chat_message(self, msg: _Msg, position: int) -> ChatMessage:
        """``msg`` at 0-based ``position`` of its chat (the wire's indices are 1-based)."""
        index = position + 1
        return ChatMessage(message_id=msg.message_id, role=msg.role, sender_id=msg.sender_id,
                           text=msg.text, timestamp=msg.timestamp, tokens=self._tokens(msg.text),
                           index=index, conversation_index=index, chat_time=msg.chat_time)

    def _update(self, live: _Live, msg: _Msg, *, deleted: bool = False,
                index: int | None = None) -> Update:
        if index is None:
            index = live.chat.messages.index(msg) + 1  # 1-based, as on the wire
        return Update(session_id=live.session_id, message_id=msg.message_id,
                      sender_id=msg.sender_id, role=msg.role, timestamp=msg.timestamp,
                      index=0 if deleted else index, conversation_index=0 if deleted else index,
                      chat_time=0 if deleted else msg.chat_time,
                      tokens=0 if deleted else self._tokens(msg.text),
                      text=None if deleted else msg.text)

    def _append(self, live: _Live, role: ChatMessageRole, sender: str, text: str, *,
                message_id: str | None = None) -> _Msg:
        msg = _Msg(message_id or self._new_id(), role, sender, text, self._timestamp(),
                   self._chat_time(live))
        live.chat.messages.append(msg)
        return msg

    @staticmethod
    def _find(live: _Live, message_id: str) -> _Msg | None:
        return next((m for m in live.chat.messages if m.message_id == message_id), None)

    @staticmethod
    def _last_index(live: _Live, role: ChatMessageRole) -> int:
        for index in range(len(live.chat.messages) - 1, -1, -1):
            if live.chat.messages[index].role is role:
                return index
        return -1

    def _set_flag(self, live: _Live, flag: str) -> None:
        if flag.startswith("!"):
            live.flags.pop(flag[1:], None)
        elif flag:
            live.flags[flag] = FlagInfo(name=flag, message_index=len(live.chat.messages),
                                        message_chat_time=self._chat_time(live))

    def _new_chat(self, character_ids: list[str], scenario_id: str | None) -> _Chat:
        chat = _Chat(self._new_id(), character_ids, scenario_id, None, self._timestamp())
        self._chats[chat.id] = chat
        return chat

    def _load_chat(self, data: ChatData) -> _Chat:
        chat = _Chat(data.id, list(data.character_ids), data.scenario_id, data.title,
                     data.created)
        for position, message in enumerate(data.messages):
            role = ChatMessageRole(message.role)
            sender = message.sender_id or (self.data.user.id if role is ChatMessageRole.USER
                                           else data.character_ids[0])
            chat.messages.append(_Msg(self._new_id(), role, sender, message.text,
                                      message.timestamp, position * 10_000))
        return chat

    # -- REST (reference §2.4) ----------------------------------------------------------

    def _chat_item(self, chat: _Chat) -> dict[str, object]:
        item: dict[str, object] = {
            "id": chat.id, "createdTimestamp": chat.created, "favorite": False,
            "created": chat.created,
            "characters": [msgspec.to_builtins(p) for p in self._participants(chat)],
        }
        if chat.title:
            item["title"] = chat.title
        if chat.last_session:
            item["lastSessionTimestamp"] = chat.last_session
        if chat.scenario_id:
            item["scenarioId"] = chat.scenario_id
        return item

    def chats_json(self, character_id: str | None = None) -> bytes:
        """The ``GET /api/chats`` body, newest first."""
        chats = sorted(self._chats.values(), key=lambda c: c.created, reverse=True)
        return msgspec.json.encode({"chats": [
            self._chat_item(c) for c in chats
            if not character_id or character_id in c.character_ids]})

    def create_chat(self, character_ids: Sequence[str], scenario_id: str | None = None,
                    *, ephemeral: bool = False) -> bytes:
        """``POST /api/chats``: a new chat, as its ``ChatItem`` body.

        Raises:
            ValueError: no or unknown characters, or an unknown scenario (the text says
                which).
        """
        if not character_ids:
            raise ValueError("At least one character is required")
        ids = []
        for character_id in character_ids:
            character = self.data.character(character_id)
            if character is None:
                raise ValueError(f"Character {character_id} not found")
            ids.append(character.id)
        if scenario_id is not None and all(s.id != scenario_id for s in self.data.scenarios):
            raise ValueError(f"Scenario {scenario_id} not found")
        chat = self._new_chat(ids, scenario_id)
        if ephemeral:  # listed nowhere; the item is still returned
            self._chats.pop(chat.id, None)
        return msgspec.json.encode(self._chat_item(chat))

    def character_json(self, character_id: str) -> bytes | None:
        """``GET /api/characters/{id}``: the character with ``appConfiguration`` keyed by
        app ``client`` name, then field (API 2025-11 §3.4), or None when unknown."""
        character = self.data.character(character_id)
        if character is None:
            return None
        clients = set(character.app_configuration)
        clients.update(c for (cid, c) in self._app_config if cid == character.id.lower())
        clients.update(conn.client for conn in self._conns.values()
                       if conn.app is not None and conn.app.character_form is not None)
        configuration = {c: self.app_configuration(character.id, c) for c in sorted(clients)}
        body = msgspec.to_builtins(self._list_item(character))
        body["appConfiguration"] = {c: v for c, v in configuration.items() if v}
        return msgspec.json.encode(body)

    def chat_summary(self, chat_id: str) -> bytes | None:
        """``GET /api/chats/{chatId}/summary``, or None for an unknown chat."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return None
        last = chat.messages[-10:]
        offset = len(chat.messages) - len(last)
        body: dict[str, object] = {
            "chatId": chat.id,
            "lastUpdated": chat.messages[-1].timestamp if chat.messages else chat.created,
            "lastMessages": [msgspec.to_builtins(self._chat_message(m, offset + i))
                             for i, m in enumerate(last)],
        }
        scenario = next((s for s in self.data.scenarios if s.id == chat.scenario_id), None)
        if scenario is not None:
            body["scenario"] = msgspec.to_builtins(self._scenario_info(scenario))
        return msgspec.json.encode(body)
