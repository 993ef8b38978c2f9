"""The journal on its own: what it records, its bounds, its queries and its JSON."""

from __future__ import annotations

import re

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxta_mock.journal import AudioEntry, Direction, HubEntry, Journal, RestEntry
from voxta_mock.matching import MessagePattern, PatternError
from voxta_proto.transports import HttpRequest, HttpResponse
from voxta_proto.voxta import (
    ChatSessionError,
    InvalidClientMessage,
    Send,
    StopChat,
    UnknownServerMessage,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.5
        return self.now


def journal(maxlen: int = 100) -> Journal:
    return Journal(clock=Clock(), maxlen=maxlen)


def test_hub_entries_carry_sequence_time_direction_and_session() -> None:
    j = journal()
    a = j.record_received("c1", Send(session_id="s1", text="hi"))
    b = j.record_sent("c1", ChatSessionError(session_id="s1", message="boom", retry=False))
    c = j.record_received("c2", StopChat(), session_id="s9")
    assert (a.seq, a.time, a.direction, a.session_id) == (1, 100.5, Direction.RECEIVED, "s1")
    assert (b.seq, b.time, b.direction, b.type_name) == (2, 101.0, Direction.SENT,
                                                         "chatSessionError")
    assert c.session_id == "s9"  # given by the server when the message has none
    assert list(j) == [a, b, c]


def test_received_and_sent_filter_by_class_name_session_connection_and_fields() -> None:
    j = journal()
    j.record_received("c1", Send(session_id="s1", text="hi"))
    j.record_received("c1", Send(session_id="s1", text="hello there"))
    j.record_received("c2", Send(session_id="s2", text="hi"))
    j.record_sent("c1", ChatSessionError(session_id="s1", message="x", retry=True))
    assert [m.text for m in j.received(Send)] == ["hi", "hello there", "hi"]
    assert len(j.received("send", session_id="s1")) == 2
    assert len(j.received(Send, connection="c2")) == 1
    assert [m.text for m in j.received(Send, text=re.compile("^hel"))] == ["hello there"]
    assert len(j.received(Send, text=lambda t: len(t) == 2)) == 2
    assert j.received(ChatSessionError) == []  # sent, not received
    assert [m.message for m in j.sent(ChatSessionError, retry=True)] == ["x"]
    assert j.received(Send, no_such_field=1) == []


def test_a_predicate_that_raises_counts_as_a_miss_not_an_error() -> None:
    j = journal()
    j.record_received("c1", Send(session_id="s1"))
    assert j.received(Send, text=lambda t: t.startswith("a")) == []  # text is None


def test_bounded_oldest_dropped_and_counted_and_clear_keeps_numbering() -> None:
    j = journal(maxlen=3)
    for i in range(5):
        j.record_received("c1", Send(session_id="s", text=str(i)))
    assert [m.text for m in j.received(Send)] == ["2", "3", "4"]
    assert j.dropped == 2
    assert j.maxlen == 3
    j.clear()
    assert (len(j), j.dropped, j.last_seq) == (0, 0, 5)
    assert j.record_received("c1", StopChat()).seq == 6
    with pytest.raises(ValueError, match="maxlen"):
        Journal(clock=Clock(), maxlen=0)


def test_rest_entries_keep_json_bodies_and_statuses() -> None:
    j = journal()
    request = HttpRequest(method="post", target="/api/chats?x=1&y=",
                          headers=(("content-type", "application/json"),),
                          body=b'{"characterIds": ["a"]}', client=("127.0.0.1", 5000))
    entry = j.record_rest(request, HttpResponse(201))
    assert isinstance(entry, RestEntry)
    assert (entry.method, entry.path, entry.query, entry.status) == (
        "POST", "/api/chats", (("x", "1"), ("y", "")), 201)
    assert entry.body == {"characterIds": ["a"]}
    assert entry.connection == "127.0.0.1:5000"
    binary = j.record_rest(HttpRequest(
        method="POST", target="/api/vision/requests/1/send",
        headers=(("content-type", "image/png"),), body=b"\x89PNG"), HttpResponse(204))
    assert binary.body is None
    assert binary.connection is None
    broken = j.record_rest(HttpRequest(method="POST", target="/x", body=b"{nope"),
                           HttpResponse(400))
    assert broken.body is None


def test_audio_entries_and_kind_filters() -> None:
    j = journal()
    j.record_audio("a1", session_id="s1", size=20, spec={"sampleRate": 16000}, binary=False)
    j.record_audio("a1", session_id="s1", size=3200, spec={"sampleRate": 16000})
    j.record_received("c1", Send(session_id="s1", text="hi"))
    j.record_rest(HttpRequest(method="GET", target="/api/chats"), HttpResponse(200))
    audio = j.entries(kind="audio")
    assert [type(e) for e in audio] == [AudioEntry, AudioEntry]
    assert [e.size for e in audio if isinstance(e, AudioEntry) and e.binary] == [3200]
    assert [type(e) for e in j.entries(kind="rest")] == [RestEntry]
    assert [type(e) for e in j.entries(session_id="s1")] == [AudioEntry, AudioEntry, HubEntry]
    assert [e.seq for e in j.entries(since=2)] == [3, 4]


def test_json_form_shows_hub_messages_as_on_the_wire() -> None:
    j = journal()
    j.record_received("c1", Send(session_id="s1", text="hi"))
    raw = msgspec.Raw(b'{"$type":"futureThing","x":1}')
    j.record_sent("c1", UnknownServerMessage("futureThing", raw))
    j.record_received("c1", InvalidClientMessage("send", msgspec.Raw(b'{"$type":"send"}'),
                                                 "missing sessionId"))
    body = msgspec.json.decode(msgspec.json.encode(j.to_json()))
    first, second, third = body["entries"]
    assert first == {"seq": 1, "time": 100.5, "direction": "received", "connection": "c1",
                     "sessionId": "s1", "kind": "hub", "type": "send",
                     "message": {"$type": "send", "sessionId": "s1", "text": "hi"}}
    assert second["message"] == {"$type": "futureThing", "x": 1}
    assert third["type"] == "send"
    assert third["error"] == "missing sessionId"
    assert (body["dropped"], body["lastSeq"]) == (0, 3)


def test_json_patterns_use_wire_names_and_regexes() -> None:
    pattern = MessagePattern.from_json({"type": "send", "fields": {
        "sessionId": "s1", "text": {"regex": "^h"}}})
    assert pattern.matches(Send(session_id="s1", text="hi"))
    assert not pattern.matches(Send(session_id="s1", text="yo"))
    assert not pattern.matches(Send(session_id="s2", text="hi"))
    assert not pattern.matches(StopChat(session_id="s1"))
    assert pattern.to_json() == {"type": "send", "fields": {"sessionId": "s1",
                                                            "text": {"regex": "^h"}}}
    assert MessagePattern(Send, {"text": "hi"}).to_json() == {"type": "send",
                                                              "fields": {"text": "hi"}}
    for bad, why in [([], "must be an object"), ({"type": 3}, "name string"),
                     ({"kind": "send"}, "unknown pattern keys"),
                     ({"fields": []}, "must be an object"),
                     ({"fields": {"text": {"regex": "("}}}, "invalid regex")]:
        with pytest.raises(PatternError, match=why):
            MessagePattern.from_json(bad)


@given(st.integers(min_value=1, max_value=20), st.lists(st.sampled_from("rsa"), max_size=60))
def test_any_traffic_keeps_the_newest_maxlen_entries_numbered_without_gaps(
        maxlen: int, kinds: list[str]) -> None:
    j = journal(maxlen)
    for kind in kinds:
        if kind == "r":
            j.record_received("c", StopChat())
        elif kind == "s":
            j.record_sent("c", ChatSessionError(session_id="s", message="m", retry=False))
        else:
            j.record_audio("c", session_id=None, size=1)
    kept = list(j)
    assert len(kept) == min(len(kinds), maxlen)
    assert j.dropped == max(0, len(kinds) - maxlen)
    assert [e.seq for e in kept] == list(range(len(kinds) - len(kept) + 1, len(kinds) + 1))
    assert [e.time for e in kept] == sorted(e.time for e in kept)
    assert j.last_seq == len(kinds)
