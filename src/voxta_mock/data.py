"""The mock's behaviour as plain data: who is there, what exists, what gets said.

Tests and users change the mock by changing data, not code: characters, scenarios,
existing chats, canned replies and keyword scripts. Data loads from JSON or TOML
(``tomllib`` needs Python 3.11+) with errors that name the file and the bad field.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import msgspec

__all__ = [
    "DEFAULT_DATA",
    "CharacterData",
    "ChatData",
    "DataError",
    "MessageData",
    "MockData",
    "ReplyScript",
    "ScenarioData",
    "UserData",
    "load_data",
]


class _Data(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base: unknown keys are errors, so a typo in a data file is reported, not ignored."""


class UserData(_Data, frozen=True):
    """The single user profile of the mock."""

    id: str = "11111111-1111-4111-8111-111111111111"
    name: str = "User"


class CharacterData(_Data, frozen=True):
    """A character; ``greeting`` is streamed when a new chat starts."""

    id: str
    name: str
    greeting: str | None = None
    description: str = ""
    culture: str = "en-US"
    tags: tuple[str, ...] = ()
    favorite: bool = False
    explicit_content: bool = False
    created: str = "2025-11-02T10:00:00+00:00"
    app_configuration: dict[str, dict[str, str]] = msgspec.field(default_factory=dict)
    """Values of apps' character forms, by app ``client`` name then field name (what
    the user filled in the Voxta UI); ``chatStarted`` carries the app's own ones."""


class ScenarioData(_Data, frozen=True):
    """A scenario; only what lists and ``chatStarted`` show."""

    id: str
    name: str
    chat_style: str = "Companion"
    chat_flow: str = "Chat"
    roles: tuple[str, ...] = ("main",)


class MessageData(_Data, frozen=True):
    """A stored message of an existing chat; ``sender_id`` defaults by role."""

    role: str
    text: str
    sender_id: str | None = None
    timestamp: str = "2025-12-29T11:00:00.0000000+00:00"


class ChatData(_Data, frozen=True):
    """An existing chat that ``resumeChat`` can open and ``loadChatsList`` lists."""

    id: str
    character_ids: tuple[str, ...]
    scenario_id: str | None = None
    title: str | None = None
    created: str = "2025-12-26T09:00:00+00:00"
    messages: tuple[MessageData, ...] = ()


class ReplyScript(_Data, frozen=True):
    """When a user message contains ``keyword`` (any case): reply with ``reply`` instead
    of a canned text, and/or emit an ``action``, an ``appTrigger`` (queued, with a
    ``triggerId`` the client acknowledges, when ``app_trigger_queued``) and a
    ``visionCaptureRequest`` for the ``vision_capture`` source (``Screen``, ``Eyes``)."""

    keyword: str
    reply: str | None = None
    action: str | None = None
    action_layer: str = "mock"
    app_trigger: str | None = None
    app_trigger_arguments: tuple[Any, ...] = ()
    app_trigger_queued: bool = False
    vision_capture: str | None = None


class MockData(_Data, frozen=True):
    """Everything the mock knows. ``assistant_id`` picks ``welcome.assistant``."""

    user: UserData = UserData()
    characters: tuple[CharacterData, ...] = ()
    scenarios: tuple[ScenarioData, ...] = ()
    chats: tuple[ChatData, ...] = ()
    replies: tuple[str, ...] = ("I hear you.",)
    scripts: tuple[ReplyScript, ...] = ()
    suggestions: tuple[str, ...] = ("Tell me more.", "What do you think?", "Let's move on.")
    assistant_id: str | None = None
    server_version: str = "1.2.1"
    api_version: str = "2025-11"

    def __post_init__(self) -> None:
        if not self.characters:
            raise ValueError("at least one character is required")
        ids = [c.id for c in self.characters]
        if len(set(ids)) != len(ids):
            raise ValueError("character ids must be unique")
        if self.assistant_id is not None and self.assistant_id not in ids:
            raise ValueError(f"assistant_id {self.assistant_id!r} is not a character id")
        scenario_ids = {s.id for s in self.scenarios}
        for chat in self.chats:
            missing = [c for c in chat.character_ids if c not in ids]
            if missing or not chat.character_ids:
                raise ValueError(f"chat {chat.id!r} names unknown characters {missing}")
            if chat.scenario_id is not None and chat.scenario_id not in scenario_ids:
                raise ValueError(f"chat {chat.id!r} names unknown scenario {chat.scenario_id!r}")
        if not self.replies:
            raise ValueError("replies must not be empty")
        sources = {"Screen", "Eyes", "Attachment", "Generated"}
        for script in self.scripts:
            if script.vision_capture is not None and script.vision_capture not in sources:
                raise ValueError(f"script {script.keyword!r}: vision_capture must be one of "
                                 f"{sorted(sources)}, not {script.vision_capture!r}")

    def character(self, character_id: str) -> CharacterData | None:
        """The character with that id (ids compare case-insensitively, as GUIDs do)."""
        folded = character_id.lower()
        return next((c for c in self.characters if c.id.lower() == folded), None)

    @property
    def assistant(self) -> CharacterData:
        """The character announced as ``welcome.assistant``."""
        return self.character(self.assistant_id or "") or self.characters[0]


DEFAULT_DATA = MockData(
    characters=(
        CharacterData(
            id="22222222-2222-4222-8222-222222222222", name="Apex",
            greeting="Hello there! I'm Apex. What shall we talk about?",
            description="A cheerful assistant.", tags=("assistant",), favorite=True,
        ),
        CharacterData(
            id="aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", name="Bea",
            greeting="Oh, hi. I was just reading.", description="A quiet bookworm.",
            tags=("companion",),
        ),
    ),
    scenarios=(ScenarioData(id="55555555-5555-4555-8555-555555555555", name="Default"),),
    chats=(
        ChatData(
            id="44444444-4444-4444-8444-444444444444",
            character_ids=("22222222-2222-4222-8222-222222222222",),
            scenario_id="55555555-5555-4555-8555-555555555555",
            title="Earlier chat",
            messages=(
                MessageData(role="Assistant", text="Hello there! I'm Apex."),
                MessageData(role="User", text="Hi Apex."),
                MessageData(role="Assistant", text="Nice to see you again."),
            ),
        ),
    ),
    replies=(
        "That is a good question. Let me think about it for a moment. I would say yes.",
        "Why did the AI cross the road? To get to the dataset on the other side.",
        "I hear you. Tell me more about it, I am listening.",
        "Interesting! I had not thought of that before. What made you think of it?",
    ),
    scripts=(
        ReplyScript(keyword="wave", reply="*waves back* Hello!", action="wave",
                    action_layer="emotes"),
        ReplyScript(keyword="forest", reply="The trees are so green here.",
                    app_trigger="Emote", app_trigger_arguments=("🌳", "#00ff00")),
    ),
    assistant_id="22222222-2222-4222-8222-222222222222",
)
"""The built-in data: two characters (Apex is the assistant), one scenario, one chat."""


class DataError(ValueError):
    """A data file could not be read or is not valid mock data; the message says why."""


def load_data(path: str | Path) -> MockData:
    """Read mock data from a ``.json`` or ``.toml`` file.

    Raises:
        DataError: unreadable file, unknown extension, bad syntax, or invalid content
            (the message names the file and the offending field).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read data file {path}: {exc.strerror or exc}") from None
    try:
        if suffix == ".json":
            return msgspec.json.decode(raw, type=MockData)
        if suffix == ".toml":
            try:
                tomllib: Any = importlib.import_module("tomllib")
            except ModuleNotFoundError:
                raise DataError(f"{path}: TOML data files need Python 3.11+; use JSON") from None
            try:
                table = tomllib.loads(raw.decode("utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise DataError(f"{path}: invalid TOML: {exc}") from None
            return msgspec.convert(table, type=MockData)
    except msgspec.ValidationError as exc:
        raise DataError(f"{path}: invalid mock data: {exc}") from None
    except msgspec.DecodeError as exc:
        raise DataError(f"{path}: invalid JSON: {exc}") from None
    raise DataError(f"{path}: unknown data file type {suffix!r}; use .json or .toml")
