"""ChatSessions: the session model rules of reference §3, without behaviour."""

from __future__ import annotations

import pytest

from voxta_proto.voxta import ChatParticipantInfo
from voxta_proto.voxta.server import CHAT_ALREADY_OPEN, ChatAlreadyOpen, ChatSessions

USER = ChatParticipantInfo(id="u", name="User")
APEX = (ChatParticipantInfo(id="a", name="Apex"),)


def test_open_route_subscribe_and_close() -> None:
    sessions = ChatSessions[str]()
    record = sessions.open("s1", "c1", "owner", user=USER, characters=APEX)
    assert sessions.owned_by("owner") is record
    assert sessions.for_chat("c1") is record
    assert sessions.subscribe("s1", "sub") is record
    assert sessions.subscribe("s1", "owner") is record  # the owner is not a subscriber
    assert record.audience == ("owner", "sub")
    assert sessions.executor("sub", "s1") == "owner"  # forwarded to the owner
    assert sessions.executor("sub", "nope") is None
    assert [i.session_id for i in sessions.infos()] == ["s1"]
    assert sessions.close("s1") is record
    assert len(sessions) == 0
    assert sessions.owned_by("owner") is None


def test_a_chat_is_open_in_one_session_only() -> None:
    sessions = ChatSessions[str]()
    sessions.open("s1", "c1", "a", user=USER, characters=APEX)
    with pytest.raises(ChatAlreadyOpen, match=CHAT_ALREADY_OPEN):
        sessions.open("s2", "c1", "b", user=USER, characters=APEX)


def test_a_connection_owns_one_session() -> None:
    sessions = ChatSessions[str]()
    sessions.open("s1", "c1", "a", user=USER, characters=APEX)
    with pytest.raises(ValueError, match="at most one"):
        sessions.open("s2", "c2", "a", user=USER, characters=APEX)


def test_dropping_a_connection_closes_what_it_owns_and_unsubscribes_it() -> None:
    sessions = ChatSessions[str]()
    sessions.open("s1", "c1", "a", user=USER, characters=APEX)
    sessions.open("s2", "c2", "b", user=USER, characters=APEX)
    sessions.subscribe("s2", "a")
    closed = sessions.drop_connection("a")
    assert closed is not None
    assert closed.session_id == "s1"
    remaining = sessions.get("s2")
    assert remaining is not None
    assert remaining.subscribers == set()
    assert sessions.drop_connection("nobody") is None
