"""The API reference pages cover what the code offers (``nox -s docs`` checks they build)."""

from __future__ import annotations

import re
from pathlib import Path

from voxta_mock.__main__ import _parser
from voxta_proto.client import VoxtaClient

DOCS = Path(__file__).resolve().parents[2] / "docs"
CLIENT_PAGE = DOCS / "reference" / "client.md"
MOCK_PAGE = DOCS / "reference" / "mock.md"

GROUPS = ["Connection Lifecycle", "Session Management", "Interaction", "UI & Presence",
          "Discovery", "Debugging"]
"""The groups of the ``voxta-client`` reference, in its order."""

OVERVIEW = "(overview)"
CLASS = "voxta_proto.client.VoxtaClient"


def _client_groups() -> dict[str, list[str]]:
    """Section heading → the VoxtaClient members its mkdocstrings directives render."""
    groups: dict[str, list[str]] = {OVERVIEW: []}
    section = OVERVIEW
    in_members = False
    for line in CLIENT_PAGE.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
            groups.setdefault(section, [])
            in_members = False
        elif line.startswith(":::"):
            target = line[3:].strip()
            in_members = target == CLASS
            if target.startswith(CLASS + "."):
                groups[section].append(target[len(CLASS) + 1:])
        elif in_members and re.match(r"^ {8}- ", line):
            name = line.split("- ", 1)[1].split("#", 1)[0].strip().strip("\"'")
            groups[section].append(name)
    return groups


def _public_members() -> set[str]:
    """``async with`` (``__aenter__``, ``__aexit__``) is described in prose instead; the
    seed API is inherited from ``VoxtaApi``."""
    return {name for cls in VoxtaClient.__mro__[:-1] for name in vars(cls)
            if not name.startswith("_")}


def test_client_page_has_the_voxta_client_groups_in_order() -> None:
    headings = [h for h in _client_groups() if h in GROUPS]
    assert headings == GROUPS


def test_every_public_client_member_is_in_exactly_one_group() -> None:
    groups = _client_groups()
    placed = [(name, group) for group, names in groups.items() for name in names]
    seen: dict[str, str] = {}
    for name, group in placed:
        assert name not in seen, f"{name} is in both {seen[name]!r} and {group!r}"
        seen[name] = group
    public = _public_members()
    assert public - set(seen) == set(), "public VoxtaClient members the page leaves out"
    assert set(seen) - public == set(), "the page names members VoxtaClient lacks"


def test_mock_page_documents_every_cli_option() -> None:
    page = MOCK_PAGE.read_text(encoding="utf-8")
    options = {opt for action in _parser()._actions for opt in action.option_strings
               if opt.startswith("--") and opt != "--help"}
    assert options, "the voxta-mock parser has no options?"
    missing = sorted(opt for opt in options if f"`{opt}" not in page)
    assert missing == [], f"voxta-mock options missing from {MOCK_PAGE.name}"
