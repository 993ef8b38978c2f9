"""Objects nested inside Voxta messages (protocol reference §6 and the §5 tables); no I/O.

Conventions shared with the messages: camelCase on the wire, GUIDs and timestamps kept as
the strings the server wrote (lowercase hyphenated GUIDs; ISO-8601 ``DateTimeOffset`` with
seven fractional digits, which ``datetime`` could not keep), optional fields ``None`` and
omitted, sequences as tuples. JSON whose shape the reference leaves open stays
``msgspec.Raw``; msgspec cannot mix ``Raw`` with ``None`` in a union, so an optional ``Raw``
field is ``msgspec.UNSET`` when absent (and also left out). Polymorphic objects
(``base64`` file data, ``base64Url`` attachments) carry their own ``$type``.
"""

from __future__ import annotations

import msgspec

from voxta_proto.voxta.base import VoxtaShape
from voxta_proto.voxta.enums import (
    AudioInputCapability,
    AudioOutputCapability,
    ChatFlowModes,
    ChatMessageRole,
    ChatResourceKind,
    ChatStyles,
    ComputerVisionSource,
    FunctionArgumentType,
    FunctionInvocation,
    FunctionTiming,
    Lenient,
    ModuleRuntimeStatus,
    VisionCaptureCapability,
)

__all__ = [
    "ActionEffect",
    "ActionInvocationArgument",
    "AppForm",
    "AppFormField",
    "AudioInputSpecifications",
    "Base64FileData",
    "Base64UrlAttachment",
    "CharactersListItem",
    "ChatAugmentation",
    "ChatContext",
    "ChatListItem",
    "ChatMessage",
    "ChatMessageAttachment",
    "ChatParticipantInfo",
    "ChatResourceInformation",
    "ChatResourceStatusInformation",
    "ChatServiceInfo",
    "ChatSessionInfo",
    "ChatVersionedResourceReference",
    "ClientCapabilities",
    "ContextDefinition",
    "ContextKeyEntry",
    "ControlGroupEntry",
    "DependencyInfo",
    "FlagInfo",
    "FunctionArgumentDefinition",
    "FunctionKeyEntry",
    "GenerateConstraintRequest",
    "MemoryItem",
    "ModuleRuntimeInstance",
    "ModuleServiceConfiguration",
    "RecognizedWord",
    "ScenarioActionDefinition",
    "ScenarioEventDefinition",
    "ScenarioInfo",
    "ScenarioRole",
    "ScenarioRoleState",
    "ScriptLogEntry",
    "ServiceListItem",
    "ServiceSettingsListItem",
    "ServiceTypeConfiguration",
    "ServicesConfigurationsSet",
    "SpeechRepair",
    "ToolEntry",
]


# --- sent by clients -----------------------------------------------------------------


class ClientCapabilities(VoxtaShape, frozen=True, gc=False):
    """What the client can do with audio and images; decides speech and vision modes."""

    audio_input: Lenient[AudioInputCapability] | None = None
    """``WebSocketStream`` when the client can stream microphone audio."""
    audio_output: Lenient[AudioOutputCapability] | None = None
    """``Url``: TTS URLs in ``replyChunk.audioUrl`` plus playback acks; ``LocalFile``:
    the server writes audio files into ``audio_folder``."""
    audio_folder: str | None = None
    """Where the server writes audio files; needed with ``LocalFile``."""
    accepted_audio_content_types: tuple[str, ...] | None = None
    vision_capture: Lenient[VisionCaptureCapability] | None = None
    vision_sources: tuple[Lenient[ComputerVisionSource], ...] | None = None
    features: tuple[str, ...] | None = None
    """Newer servers only."""


class AppFormField(VoxtaShape, frozen=True, gc=False):
    """One field of an [`AppForm`][voxta_proto.voxta.shapes.AppForm] (API 2025-11 §3.4).

    One class for every kind, so a kind this catalog has not seen still decodes (its
    other properties are not kept): ``kind`` is the field's ``$type``, ``bool`` and
    ``asset`` are the kinds the official apps use. The user's values come back as
    ``chatStarted.characters[i].appConfiguration[name]``, always strings.
    """

    kind: str = msgspec.field(name="$type")
    """``bool``, ``asset``, ..."""
    name: str
    """The key of the value in ``appConfiguration``."""
    label: str | None = None
    text: str | None = None
    """Help text under the label."""
    default_value: str | bool | int | float | None = None
    """``false`` for a ``bool`` field in the Minecraft app."""
    content_types: tuple[str, ...] | None = None
    """``asset`` fields: accepted types, e.g. ``["image/*"]``."""
    none_label: str | None = None
    """``asset`` fields: what the UI shows when nothing is chosen."""


class AppForm(VoxtaShape, frozen=True, gc=False):
    """A settings form an app registers for the Voxta UI."""

    fields: tuple[AppFormField, ...]


class Base64FileData(VoxtaShape, tag_field="$type", tag="base64", frozen=True, gc=False):
    """A file sent inline as base64 (the only file form ``deployResource`` accepts)."""

    name: str
    """File name, e.g. ``character.voxpkg``."""
    base64_data: str = msgspec.field(name="base64Data")


class Base64UrlAttachment(VoxtaShape, tag_field="$type", tag="base64Url", frozen=True,
                          gc=False):
    """An image attached to a ``send``, as a data URL."""

    base64_url: str = msgspec.field(name="base64Url")
    """``data:image/png;base64,...``"""
    source: Lenient[ComputerVisionSource] | None = None
    file_name: str | None = None
    label: str | None = None


class ChatVersionedResourceReference(VoxtaShape, frozen=True, gc=False):
    """Names a resource (and optionally a version) to look up with ``listResources``."""

    kind: Lenient[ChatResourceKind]
    id: str
    version: str | None = None


class DependencyInfo(VoxtaShape, frozen=True, gc=False):
    """A resource an app needs before a chat can start."""

    kind: Lenient[ChatResourceKind]
    id: str
    version: str | None = None


class ActionInvocationArgument(VoxtaShape, frozen=True, gc=False):
    """One named argument of an action or script event; values are always strings."""

    name: str
    value: str


class GenerateConstraintRequest(VoxtaShape, frozen=True, gc=False):
    """Limits on the length of the reply a ``send`` asks for."""

    max_new_tokens: int | None = None
    max_sentences: int | None = None
    allow_multiple_lines: bool | None = None
    include_chat_history: bool | None = None
    """Declared by the Minecraft app, never sent by it (API 2025-11 §6.11)."""


class ContextDefinition(VoxtaShape, frozen=True, gc=False):
    """A piece of text the app adds to the prompt (may use ``{{ char }}`` templates)."""

    text: str
    id: str | None = None
    name: str | None = None
    disabled: bool | None = None
    """Disabled items are dropped by the server."""
    flags_filter: str | None = None
    role_filter: str | None = None
    apply_to: str | int | None = None
    """A ``PromptCategories`` value: comma-joined names or a number."""
    position: str | None = None
    """``Context`` or ``System`` (newer servers only)."""


class FunctionArgumentDefinition(VoxtaShape, frozen=True, gc=False):
    """Declares one argument of an action the model may fill in."""

    name: str
    type: Lenient[FunctionArgumentType]
    description: str | None = None
    required: bool | None = None
    items_type: Lenient[FunctionArgumentType] | None = None
    """Item type of an ``Array`` argument (newer servers only)."""
    choices: tuple[str, ...] | None = None
    """Allowed values (newer servers only)."""


class ActionEffect(VoxtaShape, frozen=True, gc=False):
    """What happens when an action or scenario event fires."""

    set_flags: tuple[str, ...] | None = None
    clear_flags: tuple[str, ...] | None = None
    """Declared by the Minecraft app only (API 2025-11 §6.11)."""
    script: str | None = None
    effect: str | None = None
    instructions: str | None = None
    note: str | None = None
    secret: str | None = None
    trigger: str | None = None
    contexts: tuple[ContextDefinition, ...] | None = None
    event: str | None = None
    story: str | None = None
    max_sentences: int | None = None
    max_tokens: int | None = None


class ScenarioActionDefinition(VoxtaShape, frozen=True, gc=False):
    """An action the model can pick during action inference (or the app can trigger)."""

    name: str
    description: str | None = None
    short_description: str | None = None
    layer: str | None = None
    """Actions are inferred per layer; one result per layer and reply."""
    arguments: tuple[FunctionArgumentDefinition, ...] | None = None
    timing: Lenient[FunctionTiming] | None = None
    """When to infer it; the server's default is after the assistant message."""
    cancel_reply: bool | None = None
    disabled: bool | None = None
    once: bool | None = None
    flags_filter: str | None = None
    match_filter: tuple[str, ...] | None = None
    role_filter: str | None = None
    effect: ActionEffect | None = None
    final_layer: bool | None = None
    activates: tuple[str, ...] | None = None
    """Layers to evaluate after this action was chosen."""
    flatten_condition: str | None = None
    client_metadata: dict[str, str] | None = None
    id: str | None = None


class ScenarioEventDefinition(VoxtaShape, frozen=True, gc=False):
    """A scenario event that fires on its timing when its conditions hold."""

    name: str
    timing: Lenient[FunctionTiming] | None = None
    cancel_reply: bool | None = None
    description: str | None = None
    disabled: bool | None = None
    once: bool | None = None
    flags_filter: str | None = None
    match_filter: tuple[str, ...] | None = None
    role_filter: str | None = None
    effect: ActionEffect | None = None
    client_metadata: dict[str, str] | None = None
    id: str | None = None
    evaluate_next_event: bool | None = None
    probability: float | None = None
    min_messages_count: int | None = None
    max_messages_count: int | None = None
    min_chat_time_seconds: int | None = None
    max_chat_time_seconds: int | None = None
    since_flag: str | None = None


class AudioInputSpecifications(VoxtaShape, frozen=True, gc=False):
    """First (text) frame of the microphone WebSocket: the PCM format that follows."""

    sample_rate: int
    channels: int
    bits_per_sample: int
    content_type: str | None = None
    buffer_milliseconds: int | None = None


# --- sent by the server --------------------------------------------------------------


class ChatParticipantInfo(VoxtaShape, frozen=True, gc=False):
    """A user, character or narrator taking part in a chat."""

    id: str
    name: str
    thumbnail_url: str | None = None
    """Relative to the server origin."""
    scenario_role: str | None = None
    app_configuration: dict[str, str] | None = None
    """Values of the app's ``characterForm``, by field name."""


class ChatMessageAttachment(VoxtaShape, frozen=True, gc=False):
    """An image stored with a chat message."""

    id: str
    source: Lenient[ComputerVisionSource]
    content_type: str | None = None
    url: str | None = None
    description: str | None = None
    file_name: str | None = None
    label: str | None = None
    width: int | None = None
    height: int | None = None
    prompt: str | None = None


class ChatMessage(VoxtaShape, frozen=True, gc=False):
    """One stored message of a chat's history."""

    message_id: str
    role: Lenient[ChatMessageRole]
    sender_id: str
    text: str
    timestamp: str
    tokens: int
    index: int
    """1-based position in the history."""
    conversation_index: int
    chat_time: int
    """Chat-clock milliseconds."""
    name: str | None = None
    summarized_by: str | None = None
    """Id of the summary this message was folded into."""
    attachments: tuple[ChatMessageAttachment, ...] | None = None


class CharactersListItem(VoxtaShape, frozen=True, gc=False):
    """A character as listed by ``charactersListLoaded``."""

    id: str
    name: str
    app_controlled: bool
    date_created: str
    date_created_ago: str
    """Humanized, e.g. ``2 months ago``."""
    date_modified: str
    date_modified_ago: str
    culture: str
    explicit_content: bool
    favorite: bool
    hidden: bool
    scenario_only: bool
    version: str | None = None
    thumbnail_url: str | None = None
    creator: str | None = None
    creator_notes: str | None = None
    """A short excerpt (at most 80 characters)."""
    imported_from: str | None = None
    tags: tuple[str, ...] | None = None
    package_id: str | None = None
    package_name: str | None = None
    package_version: str | None = None


class ScenarioRole(VoxtaShape, frozen=True, gc=False):
    """A role a scenario defines for its characters."""

    name: str
    description: str | None = None
    default_character_id: str | None = None


class ScenarioInfo(VoxtaShape, frozen=True, gc=False):
    """A scenario as listed by ``scenariosListLoaded`` or used by a chat."""

    id: str
    name: str
    chat_flow: Lenient[ChatFlowModes]
    chat_style: Lenient[ChatStyles]
    roles: tuple[ScenarioRole, ...]
    thumbnail_url: str | None = None
    package_id: str | None = None
    package_name: str | None = None
    package_version: str | None = None
    client: str | None = None
    """The app this scenario is limited to; None means every app."""
    app_configuration: dict[str, str] | None = None


class ChatSessionInfo(VoxtaShape, frozen=True, gc=False):
    """A running chat session of the user, as listed by ``chatsSessionsUpdated``."""

    session_id: str
    chat_id: str
    user: ChatParticipantInfo
    characters: tuple[ChatParticipantInfo, ...]


class ChatListItem(VoxtaShape, frozen=True, gc=False):
    """A chat as listed by ``chatsListLoaded``."""

    id: str
    created: str
    """Humanized and relative, e.g. ``3 days ago``."""


class ChatResourceInformation(VoxtaShape, frozen=True, gc=False):
    """What the server knows about a resource asked for with ``listResources``."""

    kind: Lenient[ChatResourceKind]
    id: str
    version: str | None = None
    name: str | None = None
    status: str | None = None


class ChatResourceStatusInformation(VoxtaShape, frozen=True, gc=False):
    """A missing (or outdated) dependency reported by ``missingResourcesError``."""

    kind: Lenient[ChatResourceKind]
    id: str
    version: str | None = None
    status: str | None = None


class ModuleRuntimeInstance(VoxtaShape, frozen=True, gc=False):
    """A running instance of a server module."""

    id: str
    name: str
    label: str
    status: Lenient[ModuleRuntimeStatus]
    created_at: str


class ModuleServiceConfiguration(VoxtaShape, frozen=True, gc=False):
    """Per-module settings inside a service type configuration."""

    service_settings_id: str | None = None


class ServiceTypeConfiguration(VoxtaShape, frozen=True, gc=False):
    """How one service type is configured in a configuration set."""

    enabled: bool
    use_client_capability: bool
    modules: dict[str, ModuleServiceConfiguration]
    """Keyed by module id."""
    default_service_id: str | None = None
    use_settings_of: str | None = None


class ServicesConfigurationsSet(VoxtaShape, frozen=True, gc=False):
    """A named set of service choices (the profile's default or an alternative)."""

    id: str
    name: str
    is_default: bool
    services: dict[str, ServiceTypeConfiguration]
    """Keyed by ``ServiceTypes`` name; kept as strings so new service types still decode."""


class ServiceSettingsListItem(VoxtaShape, frozen=True, gc=False):
    """A saved settings preset of a service."""

    id: str
    label: str


class ServiceListItem(VoxtaShape, frozen=True, gc=False):
    """A service module available for one service type."""

    id: str
    name: str
    required: bool
    single: bool
    service_label: str
    enabled: bool
    score: int
    pricing: int
    hosting: int
    service_settings_list: tuple[ServiceSettingsListItem, ...]
    augmentations: tuple[str, ...]
    needs_install: bool
    logo: str | None = None
    user_label: str | None = None


class ChatServiceInfo(VoxtaShape, frozen=True, gc=False):
    """The service a running chat uses for one purpose."""

    service_name: str
    service_id: str


class ChatAugmentation(VoxtaShape, frozen=True, gc=False):
    """An augmentation active in a chat."""

    service_id: str
    augmentation_key: str


class ScenarioRoleState(VoxtaShape, frozen=True, gc=False):
    """Who plays a scenario role and whether it is enabled."""

    enabled: bool
    character_id: str | None = None


class FlagInfo(VoxtaShape, frozen=True, gc=False):
    """A flag currently set in a session, with when it was set and when it expires."""

    name: str
    message_chat_time: int | None = None
    message_index: int | None = None
    expire_chat_time: int | None = None
    expire_index: int | None = None


class ContextKeyEntry(VoxtaShape, frozen=True, gc=False):
    """A context item in effect, as the inspector shows it."""

    context_key: str
    text: str
    name: str | None = None
    flags_filter: str | None = None
    role_filter: str | None = None


class FunctionKeyEntry(VoxtaShape, frozen=True, gc=False):
    """An action or button-timed event in effect, under the key that registered it."""

    context_key: str
    name: str
    once: bool
    layer: str | None = None
    """Events shown as buttons have no layer."""
    description: str | None = None
    flags_filter: str | None = None
    role_filter: str | None = None
    timing: Lenient[FunctionTiming] | None = None
    disabled_flags_filter: str | None = None
    """API 2025-11."""
    invocation: Lenient[FunctionInvocation] | None = None
    """API 2025-11."""
    client_metadata: dict[str, str] | None = None
    """API 2025-11: the ``clientMetadata`` the app registered with the action."""
    watched_variables: tuple[str, ...] | None = None
    """API 2025-11."""


class ToolEntry(VoxtaShape, frozen=True, gc=False):
    """A tool in effect in a session (``contextUpdated.tools``, API 2025-11)."""

    name: str
    description: str | None = None
    source: str | None = None


class ControlGroupEntry(VoxtaShape, frozen=True, gc=False):
    """A group of scenario controls (``contextUpdated.controls``, API 2025-11)."""

    context_key: str
    title: str | None = None
    controls: tuple[msgspec.Raw, ...] | None = None
    """Polymorphic control definitions whose shape is not published; kept undecoded."""


class ChatContext(VoxtaShape, frozen=True, gc=False):
    """The ``context`` of ``chatStarted``: a ``contextUpdated`` body without ``$type``."""

    session_id: str
    flags: tuple[FlagInfo, ...]
    roles: dict[str, ScenarioRoleState]
    """Keyed by scenario role name."""
    buttons: tuple[FunctionKeyEntry, ...]
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


class MemoryItem(VoxtaShape, frozen=True, gc=False):
    """A memory of a character, listed while the inspector is enabled."""

    id: str
    text: str
    keywords: tuple[str, ...]


class ScriptLogEntry(VoxtaShape, frozen=True, gc=False):
    """One log line of a scenario script run."""

    level: str
    message: str


class SpeechRepair(VoxtaShape, frozen=True, gc=False):
    """``speechRecognitionEnd.repair``: how the server repaired doubtful words."""

    action: str
    doubtful_words: tuple[str, ...] | None = None


class RecognizedWord(VoxtaShape, frozen=True, gc=False):
    """A word of a speech recognition result (newer servers only)."""

    text: str
    confidence: float | None = None
