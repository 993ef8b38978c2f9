"""The protocol support matrix page stays true to the catalog, the client and the mock."""

from __future__ import annotations

import inspect
import re

import pytest

from voxta_mock import DEFAULT_DATA, Emit, MockEngine
from voxta_proto.client import VoxtaClient
from voxta_proto.voxta import (
    CLIENT_MESSAGE_TYPES,
    SERVER_MESSAGE_TYPES,
    AnyClientMessage,
    Authenticate,
    ChatStarted,
    ClientCapabilities,
    Inspect,
    Interrupt,
    LoadCharactersList,
    LoadChatsList,
    LoadScenariosList,
    PauseChat,
    RequestSuggestions,
    Send,
    StartChat,
    StopChat,
    UpdateChat,
    UpdateDocument,
)

from . import support_matrix

ROW = re.compile(r"^\| `(?P<tag>[^`]+)` \| (?P<catalog>[^|]+) \| (?P<client>[^|]+) \| "
                 r"(?P<mock>[^|]+) \|")


def _table(section: str) -> dict[str, dict[str, str]]:
    """The rows of one table of the committed page, read without the generator."""
    text = support_matrix.PAGE.read_text(encoding="utf-8")
    part = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, dict[str, str]] = {}
    for line in part.splitlines():
        match = ROW.match(line)
        if match and match["tag"] != "$type":  # not the header
            assert match["tag"] not in rows, f"{match['tag']} appears twice"
            rows[match["tag"]] = {k: v.strip() for k, v in match.groupdict().items()}
    return rows


def test_committed_page_is_the_generated_one() -> None:
    committed = support_matrix.PAGE.read_text(encoding="utf-8")
    assert committed == support_matrix.render(), (
        "docs/protocol/support-matrix.md is stale: run python tests/docs/support_matrix.py")


@pytest.mark.parametrize(("section", "registry"), [
    ("Client messages", CLIENT_MESSAGE_TYPES),
    ("Server messages", SERVER_MESSAGE_TYPES),
])
def test_rows_are_exactly_the_catalog(section: str, registry: dict[str, type]) -> None:
    rows = _table(section)
    assert set(rows) - set(registry) == set(), "rows for messages the catalog lacks"
    assert set(registry) - set(rows) == set(), "catalog messages without a row"
    for tag, row in rows.items():
        assert f"[`{registry[tag].__name__}`]" in row["catalog"]


def test_client_methods_named_in_the_matrix_exist() -> None:
    named = {m for row in _table("Client messages").values()
             for m in re.findall(r"`(\w+)\(\)`", row["client"])}
    named |= {m for row in _table("Server messages").values()
              for m in re.findall(r"`(\w+)\(\)`", row["client"])}
    assert named, "the matrix names no client method"
    for name in named:
        method = getattr(VoxtaClient, name, None)
        assert method is not None, f"VoxtaClient has no {name}()"
        assert inspect.iscoroutinefunction(method), f"{name}() is not a coroutine"


def test_client_facts_follow_the_code() -> None:
    """Spot checks that the AST walk reads what the client really does."""
    facts = support_matrix.client_facts()
    assert facts.sends["Send"] == ["send_message"]
    assert "Authenticate" in facts.automatic
    assert "authenticate" in facts.sends["Authenticate"]
    assert set(facts.returns["ChatStarted"]) >= {"start_chat", "resume_chat"}


def test_mock_handling_follows_the_code() -> None:
    handling = support_matrix.mock_handling()
    assert handling["Send"] == support_matrix.HANDLED
    assert handling["TypingStart"] == support_matrix.NO_EFFECT
    assert handling["RegisterApp"] == support_matrix.HANDLED  # keeps the forms
    assert handling["InspectAudioInput"] == support_matrix.COMPLETION_ONLY


def test_every_new_field_row_names_a_real_catalog_field() -> None:
    rows = _section_lines("API 2025-11 fields")
    assert len(rows) == len(support_matrix.NEW_FIELDS)
    for cls_name, wire, _ in support_matrix.NEW_FIELDS:
        assert support_matrix._field(cls_name, wire).encode_name == wire
    with pytest.raises(LookupError):
        support_matrix._field("ReplyChunk", "controlGroups")


def test_every_flow_row_names_mock_api_that_exists() -> None:
    assert len(_section_lines("API 2025-11 flows")) == len(support_matrix.FLOWS)
    assert not support_matrix._mock_api_exists("MockEngine.no_such_thing")
    assert not support_matrix._mock_api_exists("PUT /api/device/code")


def test_the_client_column_names_client_api_that_exists() -> None:
    for flow in support_matrix.FLOWS:
        assert flow[0] in support_matrix.CLIENT_FLOWS
    assert support_matrix._client_api_exists("SpeechPlayback.interrupt")
    assert not support_matrix._client_api_exists("VoxtaClient.no_such_thing")
    with pytest.raises(LookupError):
        support_matrix._client_text("x", ("NoSuchHelper",), "test")
    assert "— |" not in "\n".join(_section_lines("API 2025-11 flows"))


def _section_lines(section: str) -> list[str]:
    text = support_matrix.PAGE.read_text(encoding="utf-8")
    part = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return [line for line in part.splitlines()
            if line.startswith("| ") and not line.startswith(("| Message", "| Flow"))]


def _run(engine: MockEngine, connection: str, message: AnyClientMessage) -> list[str]:
    return [type(step.message).__name__ for step in engine.handle(connection, message)
            if isinstance(step, Emit)]


def test_what_the_mock_sends_in_a_conversation_is_marked_as_emitted() -> None:
    """Drive the sans-IO engine through a conversation: every server message it sends
    must be marked "emits" (so "never sent" is never a false claim)."""
    engine = MockEngine(DEFAULT_DATA, reply_delay=0.0)
    engine.connect("c")
    apex = DEFAULT_DATA.characters[0].id
    sent: list[str] = []
    sent += _run(engine, "c", Authenticate(client="docs", scope=("role:app",),
                                           capabilities=ClientCapabilities()))
    for request in (LoadCharactersList(), LoadScenariosList(),
                    LoadChatsList(character_id=apex)):
        sent += _run(engine, "c", request)
    started = [s.message for s in engine.handle("c", StartChat(character_id=apex))
               if isinstance(s, Emit)]
    sent += [type(m).__name__ for m in started]
    session = next(m.session_id for m in started if isinstance(m, ChatStarted))
    for message in (Send(session_id=session, text="please wave"),
                    Send(session_id=session, text="a forest walk"),
                    RequestSuggestions(session_id=session),
                    PauseChat(session_id=session, pause=True),
                    PauseChat(session_id=session, pause=False),
                    Inspect(session_id=session, enabled=True),
                    UpdateChat(session_id=session, title="Renamed"),
                    UpdateDocument(session_id=session, title="Notes", content="x"),
                    Interrupt(session_id=session),
                    StopChat(session_id=session)):
        sent += _run(engine, "c", message)
    rows = _table("Server messages")
    by_class = {SERVER_MESSAGE_TYPES[tag].__name__: row for tag, row in rows.items()}
    assert {"Welcome", "ReplyChunk", "Action", "AppTrigger", "ChatClosed"} <= set(sent)
    for name in sorted(set(sent)):
        assert by_class[name]["mock"] == "emits", f"the mock sends {name}"
