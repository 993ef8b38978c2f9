"""Request matching that cannot go stale (issue 14): ``forget`` and the Completion-ordered
reply rules of ``voxta_proto.voxta.session``. A hand-driven server writes the frames, so
each test states exactly what the wire carried and in which order."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from voxta_proto.voxta.client_messages import LoadCharactersList, RequestSuggestions
from voxta_proto.voxta.server_messages import CharactersListLoaded, Suggestions
from voxta_proto.voxta.session import (
    ClientState,
    RequestCompleted,
    RequestFailed,
    SessionEvent,
    VoxtaClientSession,
)

SESSION = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"


def frame(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\x1e"


def message(body: dict[str, Any]) -> bytes:
    return frame({"type": 1, "target": "ReceiveMessage", "arguments": [body]})


def completion(invocation_id: str, error: str | None = None) -> bytes:
    body: dict[str, Any] = {"type": 3, "invocationId": invocation_id}
    if error is not None:
        body["error"] = error
    return frame(body)


def characters_for(invocation_id: str) -> bytes:
    """A list reply that says which request it answers (the protocol itself does not)."""
    return message({"$type": "charactersListLoaded",
                    "characters": [{"id": SESSION, "name": f"for {invocation_id}",
                                    "appControlled": False, "dateCreated": "d",
                                    "dateCreatedAgo": "now", "dateModified": "d",
                                    "dateModifiedAgo": "now", "culture": "en-US",
                                    "explicitContent": False, "favorite": False,
                                    "hidden": False, "scenarioOnly": False}]})


def suggestions_for(invocation_id: str) -> bytes:
    return message({"$type": "suggestions", "suggestions": [f"for {invocation_id}"],
                    "sessionId": SESSION})


def ready_client() -> VoxtaClientSession:
    client = VoxtaClientSession(now=0.0)
    client.start(now=0.0)
    client.receive_data(b"{}\x1e", now=0.0)
    client.receive_data(message({"$type": "welcome", "voxtaServerVersion": "1",
                                 "apiVersion": "2025-11", "user": {"id": "u", "name": "U"}})
                        + completion("0"), now=0.0)
    client.data_to_send()
    assert client.state is ClientState.READY
    assert client.pending_requests == {}
    return client


def answered(events: list[SessionEvent]) -> dict[str, str]:
    """invocation id → whom its reply says it answers, for every RequestCompleted."""
    out = {}
    for event in events:
        if isinstance(event, RequestCompleted):
            reply = event.reply
            if isinstance(reply, CharactersListLoaded):
                out[event.invocation_id] = reply.characters[0].name.removeprefix("for ")
            elif isinstance(reply, Suggestions):
                out[event.invocation_id] = reply.suggestions[0].removeprefix("for ")
            else:
                raise AssertionError(event)
    return out


def test_a_lost_answer_does_not_shift_the_next_answers() -> None:
    """The issue's case: the first answer is lost; the next four arrive and each reaches
    its own request, even before the lost one is forgotten (the old session gave each
    answer to the oldest pending request, so all five timed out or got the wrong one)."""
    client = ready_client()
    ids = [client.send(LoadCharactersList(), now=0.0) for _ in range(5)]
    assert all(ids)
    wire = b"".join(characters_for(i) + completion(i) for i in ids[1:] if i)
    events = client.receive_data(wire, now=0.0)
    assert answered(events) == {i: i for i in ids[1:]}
    assert list(client.pending_requests) == [ids[0]]
    assert ids[0] is not None
    assert client.forget(ids[0])
    assert client.pending_requests == {}
    assert client.forget(ids[0]) is False


def test_a_lost_reply_with_its_completion_does_not_shift_the_next_answers() -> None:
    client = ready_client()
    first, second = (client.send(LoadCharactersList(), now=0.0) for _ in range(2))
    assert first
    assert second
    events = client.receive_data(completion(first) + characters_for(second)
                                 + completion(second), now=0.0)
    assert answered(events) == {second: second}
    assert list(client.pending_requests) == [first]


def test_a_late_answer_to_a_forgotten_request_never_resolves_a_later_one() -> None:
    client = ready_client()
    first = client.send(LoadCharactersList(), now=0.0)
    assert first
    assert client.forget(first)
    second = client.send(LoadCharactersList(), now=0.0)
    assert second
    late = client.receive_data(characters_for(first) + completion(first), now=0.0)
    assert [type(e) for e in late] == [CharactersListLoaded]  # a plain message, no outcome
    assert list(client.pending_requests) == [second]
    events = client.receive_data(characters_for(second) + completion(second), now=0.0)
    assert answered(events) == {second: second}
    assert client.pending_requests == {}
    assert client._pending == {}
    assert client._held == []


def test_a_forgotten_request_whose_answer_never_comes_leaves_no_placeholder() -> None:
    client = ready_client()
    first = client.send(LoadCharactersList(), now=0.0)
    second = client.send(LoadCharactersList(), now=0.0)
    assert first
    assert second
    assert client.forget(first)
    client.receive_data(characters_for(second) + completion(second), now=0.0)
    assert client._pending == {}


def test_a_forgotten_request_reports_nothing_when_its_error_or_the_end_comes() -> None:
    client = ready_client()
    first = client.send(LoadCharactersList(), now=0.0)
    second = client.send(LoadCharactersList(), now=0.0)
    assert first
    assert second
    assert client.forget(first)
    assert client.receive_data(completion(first, "boom"), now=0.0) == []
    assert client.forget(second)
    assert not [e for e in client.close(now=0.0) if isinstance(e, RequestFailed)]


def test_queued_requests_lost_answer_then_forgotten_then_more_of_the_same_type() -> None:
    """requestSuggestions is answered after its Completion: once the caller forgot the
    one whose answer was lost, each later request gets its own answer."""
    client = ready_client()
    lost = client.send(RequestSuggestions(session_id=SESSION), now=0.0)
    assert lost
    client.receive_data(completion(lost), now=0.0)  # the suggestions never come
    assert client.forget(lost)
    assert client.pending_requests == {}
    ids = [client.send(RequestSuggestions(session_id=SESSION), now=0.0) for _ in range(4)]
    wire = b"".join(completion(i) for i in ids if i)
    wire += b"".join(suggestions_for(i) for i in ids if i)
    assert answered(client.receive_data(wire, now=0.0)) == {i: i for i in ids if i}


# -- a property: never another request's answer ------------------------------------------

FATES = st.sampled_from(["answered", "answered", "reply lost", "all lost", "late"])


@settings(max_examples=300, deadline=None)
@given(fates=st.lists(FATES, min_size=1, max_size=12),
       forget_at=st.lists(st.integers(0, 40), max_size=12),
       split=st.integers(1, 6), concurrent=st.booleans())
def test_list_requests_never_get_another_requests_answer(
    fates: list[str], forget_at: list[int], split: int, concurrent: bool
) -> None:
    """Requests answered in order, some answers lost, some late (the reply after its
    Completion), requests forgotten at random steps, bytes cut at random: a request only
    ever completes with its own reply, at most once, and every answered one that was not
    forgotten completes. Concurrent requests (all sent first) are answered in the usual
    order only: a late inline reply while a later request is in flight cannot be told
    from that request's own (see the session's module docstring)."""
    if concurrent:
        fates = ["answered" if fate == "late" else fate for fate in fates]
    client = ready_client()
    ids: list[str] = []
    steps: list[tuple[int, bytes]] = []  # (how many requests are sent by then, bytes)
    for index, fate in enumerate(fates):
        invocation_id = str(index + 1)
        ids.append(invocation_id)
        sent_by = len(fates) if concurrent else index + 1
        if fate == "answered":
            wire = [characters_for(invocation_id), completion(invocation_id)]
        elif fate == "reply lost":
            wire = [completion(invocation_id)]
        elif fate == "late":
            wire = [completion(invocation_id), characters_for(invocation_id)]
        else:
            wire = []
        steps += [(sent_by, part) for part in wire]
    steps.append((len(fates), b""))
    forgotten: set[str] = set()
    events: list[SessionEvent] = []
    sent = 0
    for step_no, (sent_by, step) in enumerate(steps):
        while sent < sent_by:
            assert client.send(LoadCharactersList(), now=0.0) == ids[sent]
            sent += 1
        for index, at in enumerate(forget_at):
            invocation_id = ids[(index * 7 + at) % sent]
            if at == step_no and client.forget(invocation_id):
                forgotten.add(invocation_id)
        for start in range(0, len(step), split * 17):
            events += client.receive_data(step[start:start + split * 17], now=0.0)
    outcomes = [e for e in events if isinstance(e, (RequestCompleted, RequestFailed))]
    done = answered(events)
    assert len({e.invocation_id for e in outcomes}) == len(outcomes)  # at most once
    assert all(key == value for key, value in done.items())  # never another's answer
    assert not forgotten & set(done)  # a forgotten request reports nothing
    for invocation_id, fate in zip(ids, fates, strict=True):
        if fate in ("answered", "late") and invocation_id not in forgotten:
            assert invocation_id in done
