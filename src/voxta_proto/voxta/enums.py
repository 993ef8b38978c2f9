"""The Voxta enumerations (protocol reference §7) and how they cross the wire; no I/O.

The server writes enum values as PascalCase names and reads them case-insensitively, or
as integers (the Unity SDK sends ``role: 3``). Here every enum is an `enum.Enum`
whose values are the wire names, so msgspec encodes names. Decoding accepts:

* any capitalisation of a name, through `VoxtaEnum._missing_()` (msgspec calls it);
* an integer, because catalog fields are annotated ``Lenient[SomeEnum]``: at runtime that
  is ``SomeEnum | int``, and the struct's ``__post_init__`` swaps the integer for the
  member (see `voxta_proto.voxta.base`). Type checkers see plain ``SomeEnum``, which
  is what the attribute holds once the struct exists.

Where the reference gives numbers they equal the declaration index, so the index is the
number for every enum; unknown numbers are rejected. ``PromptCategories`` is a flag enum
sent as comma-joined names; fields holding it stay ``str | int``.
"""

from __future__ import annotations

import enum
import functools
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, Union

__all__ = [
    "AudioInputCapability",
    "AudioOutputCapability",
    "AuthScope",
    "ChatFlowModes",
    "ChatFlowStates",
    "ChatMessageRole",
    "ChatResourceKind",
    "ChatStyles",
    "ComputerVisionSource",
    "DownloadStatus",
    "FunctionArgumentType",
    "FunctionInvocation",
    "FunctionTiming",
    "Lenient",
    "ModuleRuntimeStatus",
    "PromptCategories",
    "ServiceTypes",
    "SpeechRecognitionEndReason",
    "VisionCaptureCapability",
    "VoxtaEnum",
]

E = TypeVar("E", bound=enum.Enum)


class VoxtaEnum(enum.Enum):
    """Base of the catalog's enums: values are wire names; names and numbers both parse.

    ``SomeEnum("assistant")`` and ``SomeEnum(2)`` return the member whose name matches
    without regard to case, or whose declaration index is 2.
    """

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, str):
            return _folded_names(cls).get(value.casefold())
        if isinstance(value, int) and not isinstance(value, bool):
            members = _members(cls)
            if 0 <= value < len(members):
                return members[value]
        return None

    @property
    def number(self) -> int:
        """The integer the server accepts for this member (its declaration index)."""
        return _members(type(self)).index(self)


@functools.cache
def _members(cls: type[VoxtaEnum]) -> tuple[VoxtaEnum, ...]:
    return tuple(cls)


@functools.cache
def _folded_names(cls: type[VoxtaEnum]) -> dict[str, VoxtaEnum]:
    return {member.value.casefold(): member for member in cls}


if TYPE_CHECKING:
    Lenient = Annotated[E, "also decodes from the member's number"]
    """``Lenient[SomeEnum]`` is ``SomeEnum`` for type checkers."""
else:

    class _LenientAlias:
        """``Lenient[SomeEnum]`` is ``SomeEnum | int`` at runtime, so msgspec takes both."""

        def __getitem__(self, enum_type: type[VoxtaEnum]) -> Any:
            return Union[enum_type, int]

        def __repr__(self) -> str:
            return "Lenient"

    Lenient = _LenientAlias()


class ChatMessageRole(VoxtaEnum):
    """Who or what a chat message belongs to."""

    UNDEFINED = "Undefined"
    SYSTEM = "System"
    ASSISTANT = "Assistant"
    USER = "User"
    SUMMARY = "Summary"
    EVENT = "Event"
    INSTRUCTIONS = "Instructions"
    NOTE = "Note"
    SECRET = "Secret"
    INFER = "Infer"
    """Newer servers only."""
    TOOL = "Tool"
    """Newer servers only."""


class ChatFlowStates(VoxtaEnum):
    """The state of a session's conversation loop, as reported by ``chatFlow``."""

    UNDEFINED = "Undefined"
    WAITING_FOR_USER_INPUT = "WaitingForUserInput"
    PROCESSING_ASSISTANT_REPLY = "ProcessingAssistantReply"
    PROCESSING_USER_MESSAGE = "ProcessingUserMessage"
    SELECTING_SPEAKER = "SelectingSpeaker"


class ChatStyles(VoxtaEnum):
    """The tone a chat is run in."""

    COMPANION = "Companion"
    ROLEPLAY = "Roleplay"
    STORYTELLING = "Storytelling"
    ASSISTANT = "Assistant"
    UNDEFINED = "Undefined"


class ChatFlowModes(VoxtaEnum):
    """How a scenario drives the conversation."""

    CHAT = "Chat"
    STORY = "Story"


class FunctionTiming(VoxtaEnum):
    """When an action or scenario event is evaluated."""

    AFTER_USER_MESSAGE = "AfterUserMessage"
    BEFORE_ASSISTANT_MESSAGE = "BeforeAssistantMessage"
    AFTER_ASSISTANT_MESSAGE = "AfterAssistantMessage"
    MANUAL = "Manual"
    BUTTON = "Button"
    AFTER_ANY_MESSAGE = "AfterAnyMessage"


class FunctionArgumentType(VoxtaEnum):
    """The value type of an action argument."""

    UNDEFINED = "Undefined"
    STRING = "String"
    INTEGER = "Integer"
    DOUBLE = "Double"
    BOOLEAN = "Boolean"
    ARRAY = "Array"
    VOID = "Void"
    """Newer servers only."""


class ComputerVisionSource(VoxtaEnum):
    """Where an image comes from."""

    UNDEFINED = "Undefined"
    ATTACHMENT = "Attachment"
    EYES = "Eyes"
    SCREEN = "Screen"
    GENERATED = "Generated"


class ChatResourceKind(VoxtaEnum):
    """The kind of a deployable resource (character, scenario, package, ...)."""

    UNKNOWN = "Unknown"
    CHARACTER = "Character"
    STAGES = "Stages"
    SCENARIO = "Scenario"
    MEMORY_BOOK = "MemoryBook"
    PACKAGE = "Package"
    CHAT = "Chat"
    COLLECTION = "Collection"


class ServiceTypes(VoxtaEnum):
    """Kinds of server services; used as the (string) keys of service maps."""

    TEXT_GEN = "TextGen"
    ACTION_INFERENCE = "ActionInference"
    SUMMARIZATION = "Summarization"
    TEXT_TO_SPEECH = "TextToSpeech"
    SPEECH_TO_TEXT = "SpeechToText"
    AUDIO_INPUT = "AudioInput"
    AUDIO_OUTPUT = "AudioOutput"
    AUDIO_PIPELINE = "AudioPipeline"
    WAKE_WORD = "WakeWord"
    VISION_CAPTURE = "VisionCapture"
    COMPUTER_VISION = "ComputerVision"
    CHAT_AUGMENTATIONS = "ChatAugmentations"
    MEMORY = "Memory"
    IMAGE_GEN = "ImageGen"
    NONE = "None"
    ACTION_INFERENCE_RESOLUTION = "ActionInferenceResolution"
    """Seen in one listing only."""


class AudioInputCapability(VoxtaEnum):
    """Whether the client can stream microphone audio to the server."""

    NONE = "None"
    WEB_SOCKET_STREAM = "WebSocketStream"
    DISABLED = "Disabled"
    """Added by the 1.11 model (API 2025-11); servers built before it may reject it, so
    send ``None`` unless you must say ``Disabled``. Declared last: its number is unknown."""


class AudioOutputCapability(VoxtaEnum):
    """How the client wants to receive speech."""

    NONE = "None"
    URL = "Url"
    LOCAL_FILE = "LocalFile"
    DISABLED = "Disabled"
    """Added by the 1.11 model; see
    [`AudioInputCapability.DISABLED`][voxta_proto.voxta.enums.AudioInputCapability.DISABLED]."""


class VisionCaptureCapability(VoxtaEnum):
    """Whether the client can answer vision capture requests."""

    NONE = "None"
    POST_IMAGE = "PostImage"
    DISABLED = "Disabled"
    """Added by the 1.11 model; see
    [`AudioInputCapability.DISABLED`][voxta_proto.voxta.enums.AudioInputCapability.DISABLED]."""


class SpeechRecognitionEndReason(VoxtaEnum):
    """Why a speech recognition pass ended: the values the reference lists.

    ``speechRecognitionEnd.reason`` stays a plain string, because servers send others
    (``EndOfSpeech`` in the Unity SDK's samples); compare it with a member's ``value``.
    """

    UNDEFINED = "Undefined"
    COMPLETE = "Complete"
    INCOMPLETE = "Incomplete"
    REJECTED = "Rejected"
    EMPTY = "Empty"


class FunctionInvocation(VoxtaEnum):
    """How an action in ``contextUpdated`` is invoked (API 2025-11)."""

    ACTION_INFERENCE = "ActionInference"
    TOOL_CALLING = "ToolCalling"


class ModuleRuntimeStatus(VoxtaEnum):
    """Lifecycle state of a server module instance."""

    UNDEFINED = "Undefined"
    STARTING = "Starting"
    RUNNING = "Running"
    SHUTTING_DOWN = "ShuttingDown"


class DownloadStatus(VoxtaEnum):
    """Progress state of a server-side download."""

    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"


class AuthScope(enum.Enum):
    """The scopes a client may ask for in ``authenticate.scope`` (a list of plain strings).

    The field itself stays ``str``: the server answers unknown scopes with its own error,
    not a binding failure. Use ``AuthScope.APP.value``.
    """

    APP = "role:app"
    PROVIDER = "role:provider"
    INSPECTOR = "role:inspector"
    USER = "role:user"
    ADMIN = "role:admin"


class PromptCategories(enum.IntFlag):
    """Which prompts a context item applies to; a flag enum (numbers from the newer model).

    On the wire it is a comma-joined list of names (``"Replies, Memory"``) or a number;
    [`parse()`][voxta_proto.voxta.enums.PromptCategories.parse] reads either and
    [`to_wire()`][voxta_proto.voxta.enums.PromptCategories.to_wire] writes the names.
    """

    UNDEFINED = 0
    REPLIES = 1
    ACTION_INFERENCE = 2
    SUMMARIZATION = 4
    IMAGE_GEN = 8
    MEMORY = 16
    STORIES = 32
    COMPUTER_VISION = 64
    ANIMATION_GEN = 128
    ALL = 255

    @classmethod
    def parse(cls, value: str | int) -> PromptCategories:
        """Read the wire form: an integer, or names joined by commas in any case.

        Raises:
            ValueError: a name is not a category.
        """
        if isinstance(value, int):
            return cls(value)
        result = cls.UNDEFINED
        for part in value.split(","):
            name = part.strip()
            if not name:
                continue
            member = _PROMPT_CATEGORY_NAMES.get(name.casefold())
            if member is None:
                raise ValueError(f"{name!r} is not a PromptCategories name")
            result |= member
        return result

    def to_wire(self) -> str:
        """The names of the set flags joined by ``", "``, as .NET writes them."""
        if self in (PromptCategories.ALL, PromptCategories.UNDEFINED):
            return _PROMPT_CATEGORY_WIRE[self]
        return ", ".join(
            wire
            for member, wire in _PROMPT_CATEGORY_WIRE.items()
            if member not in (PromptCategories.ALL, PromptCategories.UNDEFINED)
            and self & member == member
        )


_PROMPT_CATEGORY_WIRE: dict[PromptCategories, str] = {
    PromptCategories.UNDEFINED: "Undefined",
    PromptCategories.REPLIES: "Replies",
    PromptCategories.ACTION_INFERENCE: "ActionInference",
    PromptCategories.SUMMARIZATION: "Summarization",
    PromptCategories.IMAGE_GEN: "ImageGen",
    PromptCategories.MEMORY: "Memory",
    PromptCategories.STORIES: "Stories",
    PromptCategories.COMPUTER_VISION: "ComputerVision",
    PromptCategories.ANIMATION_GEN: "AnimationGen",
    PromptCategories.ALL: "All",
}
_PROMPT_CATEGORY_NAMES: dict[str, PromptCategories] = {
    wire.casefold(): member for member, wire in _PROMPT_CATEGORY_WIRE.items()
}
