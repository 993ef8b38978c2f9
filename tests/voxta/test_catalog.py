"""The catalog's shape: the full list of ``$type``\\ s, class names, struct options, the
field policy (required means no default, optional means None), enums and their numbers,
and the integer-to-enum normalizer."""

from __future__ import annotations

import enum
import importlib
import inspect
from collections.abc import Iterator
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest

import voxta_proto.voxta as catalog
from voxta_proto.voxta import (
    CLIENT_MESSAGE_TYPES,
    SERVER_MESSAGE_TYPES,
    Action,
    AudioInputCapability,
    AudioOutputCapability,
    AuthScope,
    Base64FileData,
    Base64UrlAttachment,
    ChatFlowModes,
    ChatFlowStates,
    ChatMessageRole,
    ChatResourceKind,
    ChatSessionError,
    ChatStyles,
    ClientCapabilities,
    ClientMessage,
    ComputerVisionSource,
    DownloadStatus,
    ErrorMessage,
    FunctionArgumentType,
    FunctionInvocation,
    FunctionTiming,
    ModuleRuntimeStatus,
    PromptCategories,
    RegisterApp,
    ReplyChunk,
    Send,
    ServerMessage,
    ServiceTypes,
    SpeechRecognitionEndReason,
    Update,
    VisionCaptureCapability,
    VoxtaEnum,
    VoxtaMessage,
    VoxtaShape,
    Welcome,
)
from voxta_proto.voxta.base import has_enum_normalizer

# §4 of the protocol reference: the 39 client -> server discriminators.
EXPECTED_CLIENT_TYPES = {
    "authenticate": "Authenticate",
    "registerApp": "RegisterApp",
    "loadCharactersList": "LoadCharactersList",
    "loadScenariosList": "LoadScenariosList",
    "loadChatsList": "LoadChatsList",
    "deleteChat": "DeleteChat",
    "subscribeToChat": "SubscribeToChat",
    "unsubscribeFromChat": "UnsubscribeFromChat",
    "inspectAudioInput": "InspectAudioInput",
    "listResources": "ListResources",
    "deployResource": "DeployResource",
    "fulfillUserInteractionRequest": "FulfillUserInteractionRequest",
    "startChat": "StartChat",
    "resumeChat": "ResumeChat",
    "stopChat": "StopChat",
    "pauseChat": "PauseChat",
    "updateChat": "UpdateChat",
    "send": "Send",
    "update": "ClientUpdate",
    "deleteMessage": "DeleteMessage",
    "revert": "Revert",
    "retry": "Retry",
    "interrupt": "Interrupt",
    "typingStart": "TypingStart",
    "typingEnd": "TypingEnd",
    "characterSpeechRequest": "CharacterSpeechRequest",
    "speak": "Speak",
    "requestSuggestions": "RequestSuggestions",
    "updateDocument": "UpdateDocument",
    "updateContext": "UpdateContext",
    "triggerAction": "TriggerAction",
    "triggerScriptEvent": "TriggerScriptEvent",
    "runScript": "RunScript",
    "appTriggerComplete": "AppTriggerComplete",
    "inspect": "Inspect",
    "addChatParticipant": "AddChatParticipant",
    "removeChatParticipant": "RemoveChatParticipant",
    "speechPlaybackStart": "ClientSpeechPlaybackStart",
    "speechPlaybackComplete": "ClientSpeechPlaybackComplete",
}

# §5 of the protocol reference: the 53 server -> client discriminators plus animationPlay.
EXPECTED_SERVER_TYPES = {
    "welcome": "Welcome",
    "authenticationRequired": "AuthenticationRequired",
    "error": "ErrorMessage",
    "moduleRuntimeInstances": "ModuleRuntimeInstances",
    "configuration": "Configuration",
    "downloadProgress": "DownloadProgress",
    "chatsSessionsUpdated": "ChatsSessionsUpdated",
    "charactersListLoaded": "CharactersListLoaded",
    "scenariosListLoaded": "ScenariosListLoaded",
    "chatsListLoaded": "ChatsListLoaded",
    "listResourcesResult": "ListResourcesResult",
    "deployResourceResult": "DeployResourceResult",
    "missingResourcesError": "MissingResourcesError",
    "userInteractionRequest": "UserInteractionRequest",
    "closeUserInteractionRequest": "CloseUserInteractionRequest",
    "speechRecognitionStart": "SpeechRecognitionStart",
    "speechRecognitionPartial": "SpeechRecognitionPartial",
    "speechRecognitionEnd": "SpeechRecognitionEnd",
    "audioFrame": "AudioFrame",
    "chatStarting": "ChatStarting",
    "chatLoadingMessage": "ChatLoadingMessage",
    "chatStarted": "ChatStarted",
    "chatConfiguration": "ChatConfiguration",
    "chatPaused": "ChatPaused",
    "chatUpdated": "ChatUpdated",
    "chatClosed": "ChatClosed",
    "chatFlow": "ChatFlow",
    "chatParticipantsUpdated": "ChatParticipantsUpdated",
    "contextUpdated": "ContextUpdated",
    "memoryUpdated": "MemoryUpdated",
    "documentUpdated": "DocumentUpdated",
    "recordingRequest": "RecordingRequest",
    "recordingStatus": "RecordingStatus",
    "wakeWordStatus": "WakeWordStatus",
    "visionCaptureRequest": "VisionCaptureRequest",
    "update": "Update",
    "replyGenerating": "ReplyGenerating",
    "replyThink": "ReplyThink",
    "replyThinking": "ReplyThinking",  # alias of replyThink (API 2025-11 addendum §5)
    "replyStart": "ReplyStart",
    "replyChunk": "ReplyChunk",
    "replyEnd": "ReplyEnd",
    "replyCancelled": "ReplyCancelled",
    "speechPlaybackStart": "SpeechPlaybackStart",
    "speechPlaybackComplete": "SpeechPlaybackComplete",
    "interruptSpeech": "InterruptSpeech",
    "action": "Action",
    "appTrigger": "AppTrigger",
    "suggestions": "Suggestions",
    "animationPlay": "AnimationPlay",
    "chatSessionError": "ChatSessionError",
    "inspectorEnabled": "InspectorEnabled",
    "inspectorScriptExecuted": "InspectorScriptExecuted",
    "inspectorScenarioEventExecuted": "InspectorScenarioEventExecuted",
    "inspectorActionExecuted": "InspectorActionExecuted",
}

ALL_MESSAGE_CLASSES = [*CLIENT_MESSAGE_TYPES.values(), *SERVER_MESSAGE_TYPES.values()]


def _struct_classes() -> Iterator[type[msgspec.Struct]]:
    """Every Struct class of the catalog: the messages and every shape they reach."""
    seen: set[type] = set()
    pending: list[Any] = [mi.type_info(cls) for cls in ALL_MESSAGE_CLASSES]
    while pending:
        info = pending.pop()
        if isinstance(info, mi.StructType):
            if info.cls not in seen:
                seen.add(info.cls)
                yield info.cls
                pending.extend(f.type for f in info.fields)
        elif isinstance(info, mi.UnionType):
            pending.extend(info.types)
        elif isinstance(info, (mi.VarTupleType, mi.ListType)):
            pending.append(info.item_type)
        elif isinstance(info, mi.DictType):
            pending.append(info.value_type)


def class_id(cls: type) -> str:
    return cls.__name__


STRUCT_CLASSES = sorted(_struct_classes(), key=lambda cls: cls.__name__)


def test_client_types_are_exactly_the_39_of_the_reference() -> None:
    assert len(EXPECTED_CLIENT_TYPES) == 39
    assert {t: cls.__name__ for t, cls in CLIENT_MESSAGE_TYPES.items()} == EXPECTED_CLIENT_TYPES


def test_server_types_are_exactly_those_of_the_reference() -> None:
    assert len(EXPECTED_SERVER_TYPES) == 55  # 54 + the replyThinking alias
    assert {t: cls.__name__ for t, cls in SERVER_MESSAGE_TYPES.items()} == EXPECTED_SERVER_TYPES


def test_only_three_types_are_shared_between_directions() -> None:
    shared = set(CLIENT_MESSAGE_TYPES) & set(SERVER_MESSAGE_TYPES)
    assert shared == {"update", "speechPlaybackStart", "speechPlaybackComplete"}


def test_registries_hold_the_right_base_classes_and_are_read_only() -> None:
    assert all(issubclass(cls, ClientMessage) for cls in CLIENT_MESSAGE_TYPES.values())
    assert all(issubclass(cls, ServerMessage) for cls in SERVER_MESSAGE_TYPES.values())
    with pytest.raises(TypeError):
        CLIENT_MESSAGE_TYPES["x"] = Send  # type: ignore[index]


def test_every_class_is_exported_from_the_package() -> None:
    bases: list[type] = [VoxtaMessage, VoxtaShape, ClientMessage, ServerMessage]
    for cls in [*STRUCT_CLASSES, *bases]:
        assert getattr(catalog, cls.__name__) is cls
        assert cls.__name__ in catalog.__all__
    assert sorted(catalog.__all__) == sorted(set(catalog.__all__))
    assert all(hasattr(catalog, name) for name in catalog.__all__)


@pytest.mark.parametrize("cls", STRUCT_CLASSES, ids=lambda cls: cls.__name__)
def test_struct_options(cls: type[msgspec.Struct]) -> None:
    config = cls.__struct_config__
    assert config.frozen
    assert not config.gc
    assert config.omit_defaults
    assert not config.forbid_unknown_fields
    assert issubclass(cls, (VoxtaMessage, VoxtaShape))
    doc = inspect.getdoc(cls)
    assert doc
    assert doc != inspect.getdoc(cls.__mro__[1])
    if issubclass(cls, VoxtaMessage):
        assert config.tag_field == "$type"
        assert isinstance(config.tag, str)


def _allows_none(info: mi.Type) -> bool:
    return isinstance(info, mi.NoneType) or (
        isinstance(info, mi.UnionType) and any(isinstance(t, mi.NoneType) for t in info.types)
    )


DEFAULT_TRUE_FIELDS = {(ChatSessionError, "retry"), (ErrorMessage, "retry")}
"""The only other default: ``retry`` is true in the server's model when absent."""


@pytest.mark.parametrize("cls", STRUCT_CLASSES, ids=lambda cls: cls.__name__)
def test_field_policy(cls: type[msgspec.Struct]) -> None:
    """Required fields have no default and no None; optional ones default to None (or
    UNSET for Raw, which msgspec cannot union with None); no other default exists but
    :data:`DEFAULT_TRUE_FIELDS`."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    for field, struct_field in zip(info.fields, msgspec.structs.fields(cls), strict=True):
        if field.required:
            assert not _allows_none(field.type), field.name
        elif (cls, field.name) in DEFAULT_TRUE_FIELDS:
            assert struct_field.default is True, field.name
        elif isinstance(field.type, mi.RawType):
            assert struct_field.default is msgspec.UNSET, field.name
        else:
            assert struct_field.default is None, field.name
            assert _allows_none(field.type), field.name


@pytest.mark.parametrize(
    ("cls", "attribute", "wire_name"),
    [
        (Welcome, "voxta_server_version", "voxtaServerVersion"),
        (RegisterApp, "icon_base64_url", "iconBase64Url"),
        (ReplyChunk, "audio_gap_ms", "audioGapMs"),
        (Base64UrlAttachment, "base64_url", "base64Url"),
        (Base64FileData, "base64_data", "base64Data"),
        (Send, "do_character_action_inference", "doCharacterActionInference"),
        (ClientCapabilities, "accepted_audio_content_types", "acceptedAudioContentTypes"),
    ],
)
def test_tricky_wire_names(cls: type[msgspec.Struct], attribute: str, wire_name: str) -> None:
    names = {f.name: f.encode_name for f in msgspec.structs.fields(cls)}
    assert names[attribute] == wire_name


def test_polymorphic_shapes_carry_their_type() -> None:
    attachment = Base64UrlAttachment(base64_url="data:image/png;base64,AA==")
    assert msgspec.json.encode(attachment) == (
        b'{"$type":"base64Url","base64Url":"data:image/png;base64,AA=="}'
    )
    data = Base64FileData(name="a.voxpkg", base64_data="AA==")
    assert msgspec.json.encode(data) == b'{"$type":"base64","name":"a.voxpkg","base64Data":"AA=="}'


@pytest.mark.parametrize(
    "module",
    ["__init__", "base", "enums", "shapes", "client_messages", "server_messages", "codec"],
)
def test_module_docstrings_say_no_io(module: str) -> None:
    name = "voxta_proto.voxta" + ("" if module == "__init__" else f".{module}")
    doc = importlib.import_module(name).__doc__
    assert doc is not None
    assert "no I/O" in doc.split("\n\n")[0]


# --- enums -------------------------------------------------------------------------------

# §7 of the protocol reference, in declaration order (the number is the index).
EXPECTED_ENUMS: dict[type[enum.Enum], list[str]] = {
    ChatMessageRole: ["Undefined", "System", "Assistant", "User", "Summary", "Event",
                      "Instructions", "Note", "Secret", "Infer", "Tool"],
    ChatFlowStates: ["Undefined", "WaitingForUserInput", "ProcessingAssistantReply",
                     "ProcessingUserMessage", "SelectingSpeaker"],
    ChatStyles: ["Companion", "Roleplay", "Storytelling", "Assistant", "Undefined"],
    ChatFlowModes: ["Chat", "Story"],
    FunctionTiming: ["AfterUserMessage", "BeforeAssistantMessage", "AfterAssistantMessage",
                     "Manual", "Button", "AfterAnyMessage"],
    FunctionArgumentType: ["Undefined", "String", "Integer", "Double", "Boolean", "Array",
                           "Void"],
    ComputerVisionSource: ["Undefined", "Attachment", "Eyes", "Screen", "Generated"],
    ChatResourceKind: ["Unknown", "Character", "Stages", "Scenario", "MemoryBook", "Package",
                       "Chat", "Collection"],
    ServiceTypes: ["TextGen", "ActionInference", "Summarization", "TextToSpeech",
                   "SpeechToText", "AudioInput", "AudioOutput", "AudioPipeline", "WakeWord",
                   "VisionCapture", "ComputerVision", "ChatAugmentations", "Memory",
                   "ImageGen", "None", "ActionInferenceResolution"],
    AudioInputCapability: ["None", "WebSocketStream", "Disabled"],
    AudioOutputCapability: ["None", "Url", "LocalFile", "Disabled"],
    VisionCaptureCapability: ["None", "PostImage", "Disabled"],
    FunctionInvocation: ["ActionInference", "ToolCalling"],
    SpeechRecognitionEndReason: ["Undefined", "Complete", "Incomplete", "Rejected", "Empty"],
    ModuleRuntimeStatus: ["Undefined", "Starting", "Running", "ShuttingDown"],
    DownloadStatus: ["Pending", "InProgress", "Completed", "Failed"],
    AuthScope: ["role:app", "role:provider", "role:inspector", "role:user", "role:admin"],
}


def _upper_snake(pascal: str) -> str:
    out = "".join("_" + c if c.isupper() and i else c for i, c in enumerate(pascal))
    return out.upper()


@pytest.mark.parametrize("enum_type", list(EXPECTED_ENUMS), ids=class_id)
def test_enum_values_and_member_names(enum_type: type[enum.Enum]) -> None:
    assert [m.value for m in enum_type] == EXPECTED_ENUMS[enum_type]
    if issubclass(enum_type, VoxtaEnum):
        assert [m.name for m in enum_type] == [_upper_snake(v) for v in EXPECTED_ENUMS[enum_type]]


@pytest.mark.parametrize(
    "enum_type", [e for e in EXPECTED_ENUMS if issubclass(e, VoxtaEnum)], ids=class_id
)
def test_enum_accepts_any_case_and_numbers(enum_type: type[VoxtaEnum]) -> None:
    for number, member in enumerate(enum_type):
        assert enum_type(member.value.lower()) is member
        assert enum_type(member.value.upper()) is member
        assert enum_type(number) is member
        assert member.number == number
    for bad in (len(enum_type), -1, "Nope", ""):
        with pytest.raises(ValueError, match="is not a valid"):
            enum_type(bad)


def test_known_enum_numbers_from_the_reference() -> None:
    assert ChatMessageRole.USER.number == 3
    assert ChatMessageRole.SECRET.number == 8
    assert ChatMessageRole.TOOL.number == 10
    assert FunctionTiming.AFTER_ANY_MESSAGE.number == 5
    assert FunctionArgumentType.VOID.number == 6


def test_prompt_categories_wire_form() -> None:
    both = PromptCategories.REPLIES | PromptCategories.MEMORY
    assert PromptCategories.parse("Replies, Memory") == both
    assert PromptCategories.parse("replies,actioninference") == 3
    assert PromptCategories.parse(255) is PromptCategories.ALL
    assert PromptCategories.parse("") is PromptCategories.UNDEFINED
    assert (PromptCategories.REPLIES | PromptCategories.IMAGE_GEN).to_wire() == "Replies, ImageGen"
    assert PromptCategories.ALL.to_wire() == "All"
    assert PromptCategories.UNDEFINED.to_wire() == "Undefined"
    assert PromptCategories.COMPUTER_VISION.value == 64
    with pytest.raises(ValueError, match="Bogus"):
        PromptCategories.parse("Replies, Bogus")


# --- the normalizer ------------------------------------------------------------------------


def _has_lenient_enum(info: mi.Type) -> bool:
    if isinstance(info, mi.UnionType):
        kinds = {type(t) for t in info.types}
        if mi.EnumType in kinds and mi.IntType in kinds:
            return True
        return any(_has_lenient_enum(t) for t in info.types)
    if isinstance(info, mi.VarTupleType):
        return _has_lenient_enum(info.item_type)
    return False


@pytest.mark.parametrize("cls", STRUCT_CLASSES, ids=lambda cls: cls.__name__)
def test_normalizer_exactly_where_enums_are(cls: type[msgspec.Struct]) -> None:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    assert has_enum_normalizer(cls) == any(_has_lenient_enum(f.type) for f in info.fields)


def test_hot_messages_get_no_post_init() -> None:
    assert not hasattr(ReplyChunk, "__post_init__")


def test_construction_normalizes_numbers_and_names() -> None:
    update = Update(session_id="s", message_id="m", sender_id="u", role=3,  # type: ignore[arg-type]
                    timestamp="t", index=1, conversation_index=1, chat_time=0, tokens=0)
    assert update.role is ChatMessageRole.USER
    send = Send(session_id="s", role="event")  # type: ignore[arg-type]
    assert send.role is ChatMessageRole.EVENT
    caps = ClientCapabilities(vision_sources=(3, "eyes", ComputerVisionSource.ATTACHMENT))  # type: ignore[arg-type]
    assert caps.vision_sources == (
        ComputerVisionSource.SCREEN, ComputerVisionSource.EYES, ComputerVisionSource.ATTACHMENT
    )
    assert Send(session_id="s").role is None


@pytest.mark.parametrize(
    ("value", "error"), [(99, ValueError), ("Narrator", ValueError), (True, TypeError),
                         (2.0, TypeError)]
)
def test_construction_rejects_what_is_no_member(value: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        Action(session_id="s", value="v", role=value, sender_id="c")  # type: ignore[arg-type]


def test_decode_names_the_field_with_a_bad_number() -> None:
    with pytest.raises(msgspec.ValidationError, match="role: 99 is not a valid ChatMessageRole"):
        msgspec.json.decode(b'{"sessionId":"s","value":"v","role":99,"senderId":"c"}', type=Action)
