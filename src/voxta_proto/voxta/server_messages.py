"""The messages a Voxta server sends (protocol reference §5, newer ones included); no I/O.

Each one travels as the single argument of a ``ReceiveMessage`` invocation. Fields the
server always writes (ids, numbers, booleans, enums, the strings and lists the reference
shows without ``?``) have no default and are required on decode; the rest default to
``None`` (``msgspec.UNSET`` for undecoded ``Raw`` JSON) and are omitted when unset, as the
server omits nulls. Fields marked newer in the
reference are always optional, so older servers still decode. Unknown fields are ignored.
``Update``, ``SpeechPlaybackStart`` and ``SpeechPlaybackComplete`` share their ``$type``
with differently shaped client messages; the server ``error`` message is
``ErrorMessage``.
"""

from __future__ import annotations

from typing import Final, Union

import msgspec

from voxta_proto.voxta.base import VoxtaMessage
from voxta_proto.voxta.enums import (
    ChatFlowStates,
    ChatMessageRole,
    ChatStyles,
    ComputerVisionSource,
    DownloadStatus,
    FunctionTiming,
    Lenient,
)
from voxta_proto.voxta.shapes import (
    ActionInvocationArgument,
    CharactersListItem,
    ChatAugmentation,
    ChatContext,
    ChatListItem,
    ChatMessage,
    ChatMessageAttachment,
    ChatParticipantInfo,
    ChatResourceInformation,
    ChatResourceStatusInformation,
    ChatServiceInfo,
    ChatSessionInfo,
    ContextKeyEntry,
    ControlGroupEntry,
    FlagInfo,
    FunctionKeyEntry,
    MemoryItem,
    ModuleRuntimeInstance,
    RecognizedWord,
    ScenarioInfo,
    ScenarioRoleState,
    ScriptLogEntry,
    ServiceListItem,
    ServicesConfigurationsSet,
    SpeechRepair,
    ToolEntry,
)

__all__ = [
    "Action",
    "AnimationPlay",
    "AnyServerMessage",
    "AppTrigger",
    "AudioFrame",
    "AuthenticationRequired",
    "CURRENT_API_VERSION",
    "CharactersListLoaded",
    "ChatClosed",
    "ChatConfiguration",
    "ChatFlow",
    "ChatLoadingMessage",
    "ChatParticipantsUpdated",
    "ChatPaused",
    "ChatSessionError",
    "ChatStarted",
    "ChatStarting",
    "ChatUpdated",
    "ChatsListLoaded",
    "ChatsSessionsUpdated",
    "CloseUserInteractionRequest",
    "Configuration",
    "ContextUpdated",
    "DeployResourceResult",
    "DocumentUpdated",
    "DownloadProgress",
    "ErrorMessage",
    "InspectorActionExecuted",
    "InspectorEnabled",
    "InspectorScenarioEventExecuted",
    "InspectorScriptExecuted",
    "InterruptSpeech",
    "KNOWN_API_VERSIONS",
    "ListResourcesResult",
    "MemoryUpdated",
    "MissingResourcesError",
    "ModuleRuntimeInstances",
    "RecordingRequest",
    "RecordingStatus",
    "ReplyCancelled",
    "ReplyChunk",
    "ReplyEnd",
    "ReplyGenerating",
    "ReplyStart",
    "ReplyThink",
    "ReplyThinking",
    "ScenariosListLoaded",
    "ServerMessage",
    "SpeechPlaybackComplete",
    "SpeechPlaybackStart",
    "SpeechRecognitionEnd",
    "SpeechRecognitionPartial",
    "SpeechRecognitionStart",
    "Suggestions",
    "Update",
    "UserInteractionRequest",
    "VisionCaptureRequest",
    "WakeWordStatus",
    "Welcome",
]


KNOWN_API_VERSIONS: Final = ("2025-08", "2025-11")
"""``welcome.apiVersion`` values this catalog was written against: 1.2.x servers send
``2025-08``, servers on the newer model ``2025-11``. Another value is no reason to refuse
a server (nothing publishes a compatibility range); a client warns once and carries on."""
CURRENT_API_VERSION: Final = "2025-11"
"""The newest API version this catalog knows; what the mock announces by default."""


class ServerMessage(VoxtaMessage, frozen=True, gc=False):
    """Base of the messages the server sends as the argument of ``ReceiveMessage``."""


# --- connection level (no sessionId) -------------------------------------------------


class Welcome(ServerMessage, tag="welcome", frozen=True, gc=False):
    """Authentication succeeded: server version, API version and the user's profile."""

    voxta_server_version: str = msgspec.field(name="voxtaServerVersion")
    """E.g. ``1.2.1``."""
    api_version: str
    """``2025-08`` from 1.2.x servers, ``2025-11`` from the newest model."""
    user: ChatParticipantInfo
    voxta_server_commit: str | None = None
    """Newer servers only."""
    characters: tuple[ChatParticipantInfo, ...] | None = None
    """Declared by the Minecraft app only; doubtful (API 2025-11 §2.2)."""
    registered_client_version: str | None = None
    """The version this app sent in an earlier ``registerApp``."""
    favorite: ChatParticipantInfo | None = None
    """The profile's assistant character."""
    assistant: ChatParticipantInfo | None = None
    """The profile's work character; a common default for ``startChat``."""


class AuthenticationRequired(ServerMessage, tag="authenticationRequired", frozen=True,
                             gc=False):
    """The user has no usable profile or credentials; nothing else follows."""


class ErrorMessage(ServerMessage, tag="error", frozen=True, gc=False):
    """A failure outside any session (e.g. a chat that could not start)."""

    message: str
    code: str | None = None
    """Service error code, for service failures."""
    service_name: str | None = None
    details: str | None = None
    retry: bool = True
    """Whether retrying makes sense (API 2025-11; the model's default is true, and
    the encoder leaves a true value out)."""


class ModuleRuntimeInstances(ServerMessage, tag="moduleRuntimeInstances", frozen=True,
                             gc=False):
    """The server's running module instances."""

    instances: tuple[ModuleRuntimeInstance, ...]


class Configuration(ServerMessage, tag="configuration", frozen=True, gc=False):
    """The profile's service configuration sets, available services and feature flags."""

    configurations: tuple[ServicesConfigurationsSet, ...]
    services: dict[str, tuple[ServiceListItem, ...]]
    """Keyed by ``ServiceTypes`` name (``None`` for modules without a definition)."""
    feature_flags: tuple[str, ...]


class DownloadProgress(ServerMessage, tag="downloadProgress", frozen=True, gc=False):
    """Progress of a server-side download."""

    id: str
    target: str
    status: Lenient[DownloadStatus]
    percent: float


class ChatsSessionsUpdated(ServerMessage, tag="chatsSessionsUpdated", frozen=True,
                           gc=False):
    """The full, current list of the user's running chat sessions (possibly empty)."""

    sessions: tuple[ChatSessionInfo, ...]


class CharactersListLoaded(ServerMessage, tag="charactersListLoaded", frozen=True,
                           gc=False):
    """Answer to ``loadCharactersList``."""

    characters: tuple[CharactersListItem, ...]


class ScenariosListLoaded(ServerMessage, tag="scenariosListLoaded", frozen=True, gc=False):
    """Answer to ``loadScenariosList``, sorted by name."""

    scenarios: tuple[ScenarioInfo, ...]


class ChatsListLoaded(ServerMessage, tag="chatsListLoaded", frozen=True, gc=False):
    """Answer to ``loadChatsList``, newest first."""

    chats: tuple[ChatListItem, ...]


class ListResourcesResult(ServerMessage, tag="listResourcesResult", frozen=True, gc=False):
    """Answer to ``listResources``."""

    resources: tuple[ChatResourceInformation, ...]


class DeployResourceResult(ServerMessage, tag="deployResourceResult", frozen=True,
                           gc=False):
    """Answer to ``deployResource``."""

    success: bool
    id: str
    error: str | None = None
    version: str | None = None
    name: str | None = None


class MissingResourcesError(ServerMessage, tag="missingResourcesError", frozen=True,
                            gc=False):
    """A chat did not start because dependencies are missing; deploy them and retry."""

    resources: tuple[ChatResourceStatusInformation, ...]


class UserInteractionRequest(ServerMessage, tag="userInteractionRequest", frozen=True,
                             gc=False):
    """A module needs the user to do something, e.g. open a URL to sign in."""

    request_id: str
    message: str
    module_id: str | None = None
    url: str | None = None


class CloseUserInteractionRequest(ServerMessage, tag="closeUserInteractionRequest",
                                  frozen=True, gc=False):
    """A user interaction request is no longer needed."""

    request_id: str


class SpeechRecognitionStart(ServerMessage, tag="speechRecognitionStart", frozen=True,
                             gc=False):
    """The server started hearing speech."""


class SpeechRecognitionPartial(ServerMessage, tag="speechRecognitionPartial", frozen=True,
                               gc=False):
    """Transcript so far of the speech being recognized."""

    text: str


class SpeechRecognitionEnd(ServerMessage, tag="speechRecognitionEnd", frozen=True,
                           gc=False):
    """Final transcript; a client usually sends non-empty ``text`` on as a ``send``."""

    text: str | None = None
    """Absent when nothing usable was heard."""
    reason: str | None = None
    """A `SpeechRecognitionEndReason` value, or another name a newer server sends
    (``EndOfSpeech``); a plain string so an unlisted one never fails the message."""
    words: tuple[RecognizedWord, ...] | None = None
    """Newer servers only."""
    doubtful_confidence: float | None = None
    """Newer servers only."""
    unusable_confidence: float | None = None
    """Newer servers only."""
    repair: SpeechRepair | None = None
    """Newer servers only."""
    misheard_words_enabled: bool | None = None
    """Newer servers only."""
    misheard_words_suppression: str | None = None
    """Newer servers only; ``"None"`` by default in the 1.11 model."""


class AudioFrame(ServerMessage, tag="audioFrame", frozen=True, gc=False):
    """Microphone level sample for ``inspectAudioInput`` (at most ten per second)."""

    rms: float
    voice_activity: bool
    listening: bool | None = None
    """Newer servers only."""
    noise_floor_rms: float | None = None
    """Newer servers only."""
    threshold_rms: float | None = None
    """Newer servers only."""
    run_held_open: bool | None = None
    """Newer servers only."""


# --- chat lifecycle (session group) --------------------------------------------------


class ChatStarting(ServerMessage, tag="chatStarting", frozen=True, gc=False):
    """First message of a start or resume; the first place the new session id shows up."""

    session_id: str
    chat_id: str
    chat_style: Lenient[ChatStyles]
    services_configurations_set_id: str
    title: str | None = None


class ChatLoadingMessage(ServerMessage, tag="chatLoadingMessage", frozen=True, gc=False):
    """One loading step of a starting session."""

    session_id: str
    text: str
    progress: float
    """0 to 100."""


class ChatStarted(ServerMessage, tag="chatStarted", frozen=True, gc=False):
    """The session is ready: participants, services, full history and context."""

    session_id: str
    chat_id: str
    chat_style: Lenient[ChatStyles]
    user: ChatParticipantInfo
    characters: tuple[ChatParticipantInfo, ...]
    services: dict[str, ChatServiceInfo]
    """Keyed by purpose (``textGen``, ``textToSpeech``, ...); absent means disabled."""
    services_configurations_set_id: str
    augmentations: tuple[ChatAugmentation, ...]
    messages: tuple[ChatMessage, ...]
    context: ChatContext
    title: str | None = None
    narrator: ChatParticipantInfo | None = None
    scenario: ScenarioInfo | None = None
    """Only when the chat uses a real scenario."""


class ChatConfiguration(ServerMessage, tag="chatConfiguration", frozen=True, gc=False):
    """A session's services and participants (declared; 1.2.x does not send it alone)."""

    session_id: str
    chat_id: str
    services: dict[str, ChatServiceInfo]
    services_configurations_set_id: str
    user: ChatParticipantInfo
    characters: tuple[ChatParticipantInfo, ...]
    augmentations: tuple[ChatAugmentation, ...]
    narrator: ChatParticipantInfo | None = None
    scenario: ScenarioInfo | None = None


class ChatPaused(ServerMessage, tag="chatPaused", frozen=True, gc=False):
    """The session was paused or resumed."""

    session_id: str
    paused: bool


class ChatUpdated(ServerMessage, tag="chatUpdated", frozen=True, gc=False):
    """The chat's title changed."""

    session_id: str
    chat_id: str
    title: str
    """``""`` when the chat has no title."""


class ChatClosed(ServerMessage, tag="chatClosed", frozen=True, gc=False):
    """The session ended (stopped, replaced or its owner left)."""

    session_id: str
    chat_id: str
    """The empty GUID when answering ``subscribeToChat`` for an unknown session."""


class ChatFlow(ServerMessage, tag="chatFlow", frozen=True, gc=False):
    """The conversation loop moved to a new state."""

    session_id: str
    state: Lenient[ChatFlowStates]


class ChatParticipantsUpdated(ServerMessage, tag="chatParticipantsUpdated", frozen=True,
                              gc=False):
    """The full new list of characters in the chat."""

    session_id: str
    characters: tuple[ChatParticipantInfo, ...]


class ContextUpdated(ServerMessage, tag="contextUpdated", frozen=True, gc=False):
    """Flags, roles, buttons and characters in effect changed."""

    session_id: str
    flags: tuple[FlagInfo, ...]
    roles: dict[str, ScenarioRoleState]
    """Keyed by scenario role name."""
    buttons: tuple[FunctionKeyEntry, ...]
    """Events with ``Button`` timing whose conditions hold."""
    characters: tuple[ChatParticipantInfo, ...]
    contexts: tuple[ContextKeyEntry, ...] | None = None
    """Only while the inspector is enabled."""
    actions: tuple[FunctionKeyEntry, ...] | None = None
    """Only while the inspector is enabled."""
    variables: dict[str, msgspec.Raw] | None = None
    """API 2025-11: scenario script variables, each value undecoded JSON."""
    tools: tuple[ToolEntry, ...] | None = None
    """API 2025-11."""
    tool_permissions_apply: bool | None = None
    """API 2025-11; meaning not documented."""
    controls: tuple[ControlGroupEntry, ...] | None = None
    """API 2025-11: control groups (the wire name is ``controls``)."""


class MemoryUpdated(ServerMessage, tag="memoryUpdated", frozen=True, gc=False):
    """A character's memories (empty unless the inspector is enabled)."""

    session_id: str
    character_id: str
    memories: tuple[MemoryItem, ...]


class DocumentUpdated(ServerMessage, tag="documentUpdated", frozen=True, gc=False):
    """A chat document, on session start and after ``updateDocument``."""

    session_id: str
    document_id: str
    title_tokens: int
    content_tokens: int
    title: str | None = None
    content: str | None = None


class RecordingRequest(ServerMessage, tag="recordingRequest", frozen=True, gc=False):
    """Start or stop streaming microphone audio to the server."""

    session_id: str
    enabled: bool


class RecordingStatus(ServerMessage, tag="recordingStatus", frozen=True, gc=False):
    """Server-side transcription started or stopped."""

    session_id: str
    enabled: bool


class WakeWordStatus(ServerMessage, tag="wakeWordStatus", frozen=True, gc=False):
    """Wake-word detection state."""

    session_id: str
    enabled: bool
    stand_by: bool


class VisionCaptureRequest(ServerMessage, tag="visionCaptureRequest", frozen=True,
                           gc=False):
    """Capture an image and upload it over REST under this request id."""

    session_id: str
    vision_capture_request_id: str
    source: Lenient[ComputerVisionSource]


# --- messages and replies (session group) --------------------------------------------


class Update(ServerMessage, tag="update", frozen=True, gc=False):
    """A stored message was created, changed or (when ``text`` is absent) deleted."""

    session_id: str
    message_id: str
    sender_id: str
    """User, character or narrator id; the empty GUID for system and secret messages."""
    role: Lenient[ChatMessageRole]
    timestamp: str
    index: int
    """1-based position in the history; 0 for a deletion."""
    conversation_index: int
    chat_time: int
    tokens: int
    text: str | None = None
    """None means the message was deleted."""
    summarized_by: str | None = None
    attachments: tuple[ChatMessageAttachment, ...] | None = None


class ReplyGenerating(ServerMessage, tag="replyGenerating", frozen=True, gc=False):
    """A reply is being prepared; ``message_id`` is the id it will have."""

    session_id: str
    message_id: str
    sender_id: str
    role: Lenient[ChatMessageRole]
    is_narration: bool
    thinking_speech_url: str | None = None


class ReplyThink(ServerMessage, tag="replyThink", frozen=True, gc=False):
    """Streamed reasoning text of a thinking model."""

    session_id: str
    message_id: str
    sender_id: str
    text: str


class ReplyThinking(ReplyThink, tag="replyThinking", frozen=True, gc=False):
    """``replyThinking``, a name one source gives the reasoning stream; decoded as a
    [`ReplyThink`][voxta_proto.voxta.server_messages.ReplyThink] (a subclass, so ``isinstance(m,
    ReplyThink)`` holds)."""


class ReplyStart(ServerMessage, tag="replyStart", frozen=True, gc=False):
    """The reply's text is about to stream."""

    session_id: str
    message_id: str
    sender_id: str
    chat_time: int


class ReplyChunk(ServerMessage, tag="replyChunk", frozen=True, gc=False):
    """One piece (about a sentence) of a streaming reply, with its audio URL."""

    session_id: str
    message_id: str
    sender_id: str
    text: str
    start_index: int
    """Offset of ``text`` in the final message."""
    end_index: int
    """Offset just past ``text`` (exclusive)."""
    audio_url: str
    """Relative TTS URL, or ``""`` when there is no speech."""
    is_narration: bool
    audio_gap_ms: int | None = msgspec.field(name="audioGapMs", default=None)
    """Minimum pause before this clip, in milliseconds."""
    affect: str | None = None
    """Affect label for lip sync (newer servers only; values not documented)."""
    affect_carried: bool | None = None
    """Newer servers only; meaning not documented."""
    speech_line_id: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    """API 2025-11 (Voxta.Model 1.11); its type is not published, so it stays raw JSON."""


class ReplyEnd(ServerMessage, tag="replyEnd", frozen=True, gc=False):
    """The reply finished streaming and was saved (indices are -1 if nothing was)."""

    session_id: str
    message_id: str
    sender_id: str
    tokens: int
    message_index: int
    conversation_index: int


class ReplyCancelled(ServerMessage, tag="replyCancelled", frozen=True, gc=False):
    """The reply was aborted before it produced any text."""

    session_id: str
    message_id: str


class SpeechPlaybackStart(ServerMessage, tag="speechPlaybackStart", frozen=True, gc=False):
    """A client's playback start, relayed to the session group."""

    session_id: str
    message_id: str
    start_index: int
    duration: float
    """Seconds."""


class SpeechPlaybackComplete(ServerMessage, tag="speechPlaybackComplete", frozen=True,
                             gc=False):
    """A reply's audio finished playing (relayed, or sent by the server without speech)."""

    session_id: str
    message_id: str


class InterruptSpeech(ServerMessage, tag="interruptSpeech", frozen=True, gc=False):
    """Stop playing the audio of this reply now."""

    session_id: str
    message_id: str


class Action(ServerMessage, tag="action", frozen=True, gc=False):
    """An action was chosen by inference or triggered; ``value == ""`` means none was."""

    session_id: str
    value: str
    """The action's name."""
    role: Lenient[ChatMessageRole]
    """``Assistant`` for character actions, ``User`` for user actions and events."""
    sender_id: str
    layer: str | None = None
    context_key: str | None = None
    """The key the action was registered under (``_scenario`` for scenario actions)."""
    scenario_role: str | None = None
    arguments: tuple[ActionInvocationArgument, ...] | None = None


class AppTrigger(ServerMessage, tag="appTrigger", frozen=True, gc=False):
    """A scenario script asked the app to do something (``chat.appTrigger(name, ...)``)."""

    session_id: str
    name: str
    sender_id: str
    arguments: tuple[msgspec.Raw, ...] | None = None
    """Positional arguments, any JSON values; decode them with ``msgspec.json.decode``."""
    message_id: str | None = None
    trigger_id: str | None = None
    """Set for queued triggers, which wait for ``appTriggerComplete``."""
    scenario_role: str | None = None


class Suggestions(ServerMessage, tag="suggestions", frozen=True, gc=False):
    """Answer to ``requestSuggestions``."""

    session_id: str
    suggestions: tuple[str, ...]


class AnimationPlay(ServerMessage, tag="animationPlay", frozen=True, gc=False):
    """Play an animation (newer servers only)."""

    session_id: str
    animation_id: str
    url: str
    content_type: str
    frame_count: int
    fps: int
    file_name: str | None = None
    label: str | None = None


# --- errors and inspector (session group) --------------------------------------------


class ChatSessionError(ServerMessage, tag="chatSessionError", frozen=True, gc=False):
    """Something failed inside a session; the session stays alive."""

    session_id: str
    message: str
    retry: bool = True
    """Whether retrying makes sense; absent means true, the model's default (the encoder
    leaves a true value out)."""
    code: str | None = None
    service_name: str | None = None
    details: str | None = None


class InspectorEnabled(ServerMessage, tag="inspectorEnabled", frozen=True, gc=False):
    """The inspector was turned on or off."""

    session_id: str
    timestamp: str
    enabled: bool


class InspectorScriptExecuted(ServerMessage, tag="inspectorScriptExecuted", frozen=True,
                              gc=False):
    """Inspector report: a scenario script ran."""

    session_id: str
    timestamp: str
    name: str
    logs: tuple[ScriptLogEntry, ...]
    triggered_by_message_id: str | None = None


class InspectorScenarioEventExecuted(ServerMessage, tag="inspectorScenarioEventExecuted",
                                     frozen=True, gc=False):
    """Inspector report: a scenario event fired."""

    session_id: str
    timestamp: str
    name: str
    timing: Lenient[FunctionTiming]
    triggered_by_message_id: str | None = None


class InspectorActionExecuted(ServerMessage, tag="inspectorActionExecuted", frozen=True,
                              gc=False):
    """Inspector report: an action ran."""

    session_id: str
    timestamp: str
    name: str
    timing: Lenient[FunctionTiming]
    triggered_by_message_id: str | None = None
    layer: str | None = None


AnyServerMessage = Union[
    Welcome,
    AuthenticationRequired,
    ErrorMessage,
    ModuleRuntimeInstances,
    Configuration,
    DownloadProgress,
    ChatsSessionsUpdated,
    CharactersListLoaded,
    ScenariosListLoaded,
    ChatsListLoaded,
    ListResourcesResult,
    DeployResourceResult,
    MissingResourcesError,
    UserInteractionRequest,
    CloseUserInteractionRequest,
    SpeechRecognitionStart,
    SpeechRecognitionPartial,
    SpeechRecognitionEnd,
    AudioFrame,
    ChatStarting,
    ChatLoadingMessage,
    ChatStarted,
    ChatConfiguration,
    ChatPaused,
    ChatUpdated,
    ChatClosed,
    ChatFlow,
    ChatParticipantsUpdated,
    ContextUpdated,
    MemoryUpdated,
    DocumentUpdated,
    RecordingRequest,
    RecordingStatus,
    WakeWordStatus,
    VisionCaptureRequest,
    Update,
    ReplyGenerating,
    ReplyThink,
    ReplyThinking,
    ReplyStart,
    ReplyChunk,
    ReplyEnd,
    ReplyCancelled,
    SpeechPlaybackStart,
    SpeechPlaybackComplete,
    InterruptSpeech,
    Action,
    AppTrigger,
    Suggestions,
    AnimationPlay,
    ChatSessionError,
    InspectorEnabled,
    InspectorScriptExecuted,
    InspectorScenarioEventExecuted,
    InspectorActionExecuted,
]
"""Every server message; msgspec picks the class by ``$type``."""
