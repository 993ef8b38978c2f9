"""The 39 messages a Voxta client sends (protocol reference §4); pure data, no I/O.

Each one travels as the single argument of a ``SendMessage`` invocation. Fields the
reference marks required have no default (leaving one out makes the real server fail the
call at argument binding); every other field is ``None`` by default and then left out of
the JSON, so the server applies its own default. Unknown fields in incoming JSON are
ignored, as the server does. Three ``$type`` strings also name server messages of a
different shape; their client classes are ``ClientUpdate``,
``ClientSpeechPlaybackStart`` and ``ClientSpeechPlaybackComplete``.
"""

from __future__ import annotations

from typing import Union

import msgspec

from voxta_proto.voxta.base import VoxtaMessage
from voxta_proto.voxta.enums import ChatMessageRole, Lenient
from voxta_proto.voxta.shapes import (
    ActionInvocationArgument,
    AppForm,
    Base64FileData,
    Base64UrlAttachment,
    ChatVersionedResourceReference,
    ClientCapabilities,
    ContextDefinition,
    DependencyInfo,
    GenerateConstraintRequest,
    ScenarioActionDefinition,
    ScenarioEventDefinition,
)

__all__ = [
    "AddChatParticipant",
    "AnyClientMessage",
    "AppTriggerComplete",
    "Authenticate",
    "CharacterSpeechRequest",
    "ClientMessage",
    "ClientSpeechPlaybackComplete",
    "ClientSpeechPlaybackStart",
    "ClientUpdate",
    "DeleteChat",
    "DeleteMessage",
    "DeployResource",
    "FulfillUserInteractionRequest",
    "Inspect",
    "InspectAudioInput",
    "Interrupt",
    "ListResources",
    "LoadCharactersList",
    "LoadChatsList",
    "LoadScenariosList",
    "PauseChat",
    "RegisterApp",
    "RemoveChatParticipant",
    "RequestSuggestions",
    "ResumeChat",
    "Retry",
    "Revert",
    "RunScript",
    "Send",
    "Speak",
    "StartChat",
    "StopChat",
    "SubscribeToChat",
    "TriggerAction",
    "TriggerScriptEvent",
    "TypingEnd",
    "TypingStart",
    "UnsubscribeFromChat",
    "UpdateChat",
    "UpdateContext",
    "UpdateDocument",
]


class ClientMessage(VoxtaMessage, frozen=True, gc=False):
    """Base of the messages a client sends as the argument of ``SendMessage``."""


# --- connection and discovery (not tied to a session) --------------------------------


class Authenticate(ClientMessage, tag="authenticate", frozen=True, gc=False):
    """Identify the app and its capabilities; must be the first Voxta message sent."""

    client: str
    """App identifier, e.g. ``MyApp``; scenario lists are filtered by it."""
    scope: tuple[str, ...]
    """Requested roles, usually ``("role:app",)``; see ``AuthScope``."""
    capabilities: ClientCapabilities
    client_version: str | None = None


class RegisterApp(ClientMessage, tag="registerApp", frozen=True, gc=False):
    """Describe the app to the Voxta UI (label, icon, settings forms); no reply."""

    client_version: str | None = None
    label: str | None = None
    icon_base64_url: str | None = msgspec.field(name="iconBase64Url", default=None)
    """A ``data:image/png;base64,...`` URL."""
    configuration_form: AppForm | None = None
    character_form: AppForm | None = None
    scenario_form: AppForm | None = None
    script_snippets: tuple[msgspec.Raw, ...] | None = None
    """Helpers for the scenario editor; opaque objects."""


class LoadCharactersList(ClientMessage, tag="loadCharactersList", frozen=True, gc=False):
    """Ask for the character list (answered by ``charactersListLoaded``)."""


class LoadScenariosList(ClientMessage, tag="loadScenariosList", frozen=True, gc=False):
    """Ask for the scenarios this app may use (answered by ``scenariosListLoaded``)."""


class LoadChatsList(ClientMessage, tag="loadChatsList", frozen=True, gc=False):
    """Ask for the chats of a character (answered by ``chatsListLoaded``)."""

    character_id: str
    """The empty GUID lists nothing."""
    scenario_id: str | None = None
    """Only chats of this scenario; when absent, only chats without a scenario."""


class DeleteChat(ClientMessage, tag="deleteChat", frozen=True, gc=False):
    """Delete a chat, closing it first if it is the caller's current one."""

    chat_id: str


class SubscribeToChat(ClientMessage, tag="subscribeToChat", frozen=True, gc=False):
    """Join a running session's group to receive (and drive) its traffic."""

    session_id: str


class UnsubscribeFromChat(ClientMessage, tag="unsubscribeFromChat", frozen=True, gc=False):
    """Leave a session's group; no reply."""

    session_id: str


class InspectAudioInput(ClientMessage, tag="inspectAudioInput", frozen=True, gc=False):
    """Start (or replace) a microphone check: audio levels and/or a test transcription."""

    audio_frames: bool | None = None
    """Stream ``audioFrame`` messages (server default: false)."""
    speech_to_text: bool | None = None
    """Run speech recognition (server default: false)."""
    culture: str | None = None
    """Server default: ``en-US``."""


class ListResources(ClientMessage, tag="listResources", frozen=True, gc=False):
    """Ask which of these resources the server has (answered by ``listResourcesResult``)."""

    resources: tuple[ChatVersionedResourceReference, ...]


class DeployResource(ClientMessage, tag="deployResource", frozen=True, gc=False):
    """Upload a resource package (answered by ``deployResourceResult``)."""

    id: str
    data: Base64FileData
    thumbnail: Base64FileData | None = None


class FulfillUserInteractionRequest(
    ClientMessage, tag="fulfillUserInteractionRequest", frozen=True, gc=False
):
    """Tell the server the user did what a ``userInteractionRequest`` asked."""

    request_id: str


# --- chat lifecycle ------------------------------------------------------------------


class StartChat(ClientMessage, tag="startChat", frozen=True, gc=False):
    """Start a chat session owned by this connection (a new chat, or ``chat_id``)."""

    character_id: str | None = None
    """Main character; needed unless ``character_ids`` or an existing ``chat_id`` is given."""
    character_ids: tuple[str, ...] | None = None
    """Characters of a multi-character chat (overrides ``character_id``)."""
    scenario_id: str | None = None
    chat_id: str | None = None
    """Open this chat; not allowed together with ``ephemeral``."""
    roles: dict[str, str] | None = None
    """Scenario role name to character id."""
    dependencies: tuple[DependencyInfo, ...] | None = None
    ephemeral: bool | None = None
    """Do not persist the chat (server default: false)."""
    use_chat_memory: bool | None = None
    context_key: str | None = None
    contexts: tuple[ContextDefinition, ...] | None = None
    actions: tuple[ScenarioActionDefinition, ...] | None = None
    events: tuple[ScenarioEventDefinition, ...] | None = None
    set_flags: tuple[str, ...] | None = None
    enable_roles: dict[str, bool] | None = None
    title: str | None = None
    """Newer servers only."""
    disable_services: tuple[str, ...] | None = None
    """Newer servers only."""


class ResumeChat(ClientMessage, tag="resumeChat", frozen=True, gc=False):
    """Open an existing chat in a new session owned by this connection."""

    chat_id: str
    """The empty GUID resumes the user's ephemeral chat."""
    context_key: str | None = None
    contexts: tuple[ContextDefinition, ...] | None = None
    actions: tuple[ScenarioActionDefinition, ...] | None = None
    events: tuple[ScenarioEventDefinition, ...] | None = None
    set_flags: tuple[str, ...] | None = None
    enable_roles: dict[str, bool] | None = None


class StopChat(ClientMessage, tag="stopChat", frozen=True, gc=False):
    """Stop the session this connection owns (a no-op if it owns none)."""

    session_id: str | None = None
    """If given, it must be the caller's own session."""


class PauseChat(ClientMessage, tag="pauseChat", frozen=True, gc=False):
    """Pause or resume a session; resuming asks the character for a reply at once."""

    session_id: str
    pause: bool


class UpdateChat(ClientMessage, tag="updateChat", frozen=True, gc=False):
    """Rename a chat."""

    session_id: str
    title: str | None = None
    """``""`` clears the title."""


# --- messaging -----------------------------------------------------------------------


class Send(ClientMessage, tag="send", frozen=True, gc=False):
    """User input: text (or a slash command), attachments, or a request to continue."""

    session_id: str
    text: str | None = None
    """``""`` or ``"*"`` without attachments lets the character continue; a leading ``/``
    makes a slash command; text wholly in ``[...]`` becomes an event."""
    attachments: tuple[Base64UrlAttachment, ...] | None = None
    do_reply: bool | None = None
    """False stores the message without a reply (server default: true)."""
    do_continue: bool | None = None
    """False stores the message without any continuation (server default: true)."""
    do_user_action_inference: bool | None = None
    do_character_action_inference: bool | None = None
    role: Lenient[ChatMessageRole] | None = None
    """``User`` (the default), ``Event``, or ``Undefined`` together with ``trigger_event``."""
    character_id: str | None = None
    """Which character answers."""
    character_response_prefix: str | None = None
    """Text the reply must start with."""
    trigger_event: str | None = None
    use_story_writer: bool | None = None
    generate_constraint_request: GenerateConstraintRequest | None = None


class ClientUpdate(ClientMessage, tag="update", frozen=True, gc=False):
    """Edit a stored message; no text (on a message without attachments) deletes it."""

    session_id: str
    message_id: str
    text: str | None = None


class DeleteMessage(ClientMessage, tag="deleteMessage", frozen=True, gc=False):
    """Delete a stored message."""

    session_id: str
    message_id: str


class Revert(ClientMessage, tag="revert", frozen=True, gc=False):
    """Delete the messages after ``message_id`` (default: the last user message onwards)."""

    session_id: str
    message_id: str | None = None


class Retry(ClientMessage, tag="retry", frozen=True, gc=False):
    """Regenerate the last reply (or resubmit the last user message)."""

    session_id: str


class Interrupt(ClientMessage, tag="interrupt", frozen=True, gc=False):
    """Stop the reply being generated and/or the speech being played."""

    session_id: str


class TypingStart(ClientMessage, tag="typingStart", frozen=True, gc=False):
    """The user started typing (only scenario scripts see it)."""

    session_id: str


class TypingEnd(ClientMessage, tag="typingEnd", frozen=True, gc=False):
    """The user stopped typing (only scenario scripts see it)."""

    session_id: str
    sent: bool
    """Whether the typing ended with a sent message."""


class CharacterSpeechRequest(ClientMessage, tag="characterSpeechRequest", frozen=True,
                             gc=False):
    """Make a character say exactly ``text``, streamed and spoken like a reply."""

    session_id: str
    text: str
    character_id: str | None = None
    """Default: the main character."""


class Speak(ClientMessage, tag="speak", frozen=True, gc=False):
    """Stream (and speak) a stored message again."""

    session_id: str
    message_id: str | None = None
    """Default: the last assistant, event or note message."""


class RequestSuggestions(ClientMessage, tag="requestSuggestions", frozen=True, gc=False):
    """Ask for reply suggestions for the user (answered by ``suggestions``)."""

    session_id: str
    prefix: str | None = None
    count: int | None = None


class UpdateDocument(ClientMessage, tag="updateDocument", frozen=True, gc=False):
    """Create or change a chat document (answered by ``documentUpdated``)."""

    session_id: str
    document_id: str | None = None
    title: str | None = None
    content: str | None = None


# --- context, actions, scripts -------------------------------------------------------


class UpdateContext(ClientMessage, tag="updateContext", frozen=True, gc=False):
    """Replace the contexts, actions, events under a key, set flags, toggle roles."""

    session_id: str
    context_key: str | None = None
    """The namespace these items live under (server default: ``Main``)."""
    contexts: tuple[ContextDefinition, ...] | None = None
    """Replaces every context under the key; ``()`` clears, None leaves them alone."""
    actions: tuple[ScenarioActionDefinition, ...] | None = None
    events: tuple[ScenarioEventDefinition, ...] | None = None
    set_flags: tuple[str, ...] | None = None
    """``name`` sets, ``!name`` clears, ``group.value`` sets an enum-style flag."""
    enable_roles: dict[str, bool] | None = None
    variables: dict[str, msgspec.Raw] | None = None
    """Script variables, any JSON (newer servers only)."""


class TriggerAction(ClientMessage, tag="triggerAction", frozen=True, gc=False):
    """Run a registered action directly, as if inferred from ``message_id``."""

    session_id: str
    message_id: str
    """Must name a message of the chat, or the server does nothing."""
    value: str
    """The action's name."""
    arguments: tuple[ActionInvocationArgument, ...] | None = None


class TriggerScriptEvent(ClientMessage, tag="triggerScriptEvent", frozen=True, gc=False):
    """Fire a named event in the scenario script."""

    session_id: str
    name: str
    arguments: tuple[ActionInvocationArgument, ...] | None = None


class RunScript(ClientMessage, tag="runScript", frozen=True, gc=False):
    """Run script text in the session's script engine."""

    session_id: str
    script: str


class AppTriggerComplete(ClientMessage, tag="appTriggerComplete", frozen=True, gc=False):
    """Acknowledge a queued ``appTrigger`` (one that carried a ``triggerId``)."""

    session_id: str
    trigger_id: str


class Inspect(ClientMessage, tag="inspect", frozen=True, gc=False):
    """Turn the inspector (contexts, memories, execution reports) on or off."""

    session_id: str
    enabled: bool


# --- participants --------------------------------------------------------------------


class AddChatParticipant(ClientMessage, tag="addChatParticipant", frozen=True, gc=False):
    """Bring a character into the chat."""

    session_id: str
    character_id: str
    role: str | None = None
    """Scenario role name."""


class RemoveChatParticipant(ClientMessage, tag="removeChatParticipant", frozen=True,
                            gc=False):
    """Take a character out of the chat."""

    session_id: str
    character_id: str


# --- speech playback acknowledgements ------------------------------------------------


class ClientSpeechPlaybackStart(ClientMessage, tag="speechPlaybackStart", frozen=True,
                                gc=False):
    """The client started playing the clip of one reply chunk."""

    session_id: str
    message_id: str
    start_index: int
    """Copied from the ``replyChunk``."""
    end_index: int
    """Copied from the ``replyChunk``."""
    duration: float | None = None
    """Clip length in seconds (0 when unknown)."""
    is_narration: bool | None = None


class ClientSpeechPlaybackComplete(ClientMessage, tag="speechPlaybackComplete", frozen=True,
                                   gc=False):
    """The client finished playing a reply's audio (the server waits for this)."""

    session_id: str
    message_id: str


AnyClientMessage = Union[
    Authenticate,
    RegisterApp,
    LoadCharactersList,
    LoadScenariosList,
    LoadChatsList,
    DeleteChat,
    SubscribeToChat,
    UnsubscribeFromChat,
    InspectAudioInput,
    ListResources,
    DeployResource,
    FulfillUserInteractionRequest,
    StartChat,
    ResumeChat,
    StopChat,
    PauseChat,
    UpdateChat,
    Send,
    ClientUpdate,
    DeleteMessage,
    Revert,
    Retry,
    Interrupt,
    TypingStart,
    TypingEnd,
    CharacterSpeechRequest,
    Speak,
    RequestSuggestions,
    UpdateDocument,
    UpdateContext,
    TriggerAction,
    TriggerScriptEvent,
    RunScript,
    AppTriggerComplete,
    Inspect,
    AddChatParticipant,
    RemoveChatParticipant,
    ClientSpeechPlaybackStart,
    ClientSpeechPlaybackComplete,
]
"""Every client message; msgspec picks the class by ``$type``."""
