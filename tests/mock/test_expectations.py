"""Expectations on their own: matching, counts, order, optional, JSON, and unmet ones."""

from __future__ import annotations

import re

import msgspec
import pytest

from voxta_mock.expectations import ExpectationError, Expectations, FaultAnswer
from voxta_proto.voxta import AppTrigger, ChatSessionError, Send, StopChat

ERROR = ChatSessionError(session_id="s1", message="nope", retry=False)


def send(text: str, session_id: str = "s1") -> Send:
    return Send(session_id=session_id, text=text)


def test_once_answers_one_match_then_lets_the_engine_handle_the_rest() -> None:
    ex = Expectations()
    once = ex.add(Send, text="hi", reply=[ERROR])
    assert ex.match("c1", "s1", send("hello")) is None
    assert ex.match("c1", "s1", send("hi")) is once
    assert ex.match("c1", "s1", send("hi")) is None
    assert once.matched == 1
    assert once.reply == (ERROR,)
    assert ex.unmet() == []


def test_n_times_and_every_time() -> None:
    ex = Expectations()
    twice = ex.add("send", times=2)
    always = ex.add(StopChat, times=None)
    assert [ex.match("c", None, send("a")) for _ in range(3)] == [twice, twice, None]
    assert ex.unmet() == [always]  # every time still means at least once
    for _ in range(5):
        assert ex.match("c", None, StopChat()) is always
    assert always.matched == 5
    assert ex.unmet() == []


def test_field_tests_values_regexes_and_predicates() -> None:
    ex = Expectations()
    by_regex = ex.add(Send, text=re.compile(r"\bweather\b"), times=None)
    by_predicate = ex.add(Send, session_id=lambda s: s.startswith("vip"), times=None)
    assert ex.match("c", None, send("the weather today")) is by_regex
    assert ex.match("c", None, send("hey", session_id="vip-1")) is by_predicate
    assert ex.match("c", None, send("hey")) is None


def test_ordered_expectations_match_only_in_their_order() -> None:
    ex = Expectations()
    first = ex.add(Send, text="one", ordered=True)
    second = ex.add(Send, text="two", ordered=True, times=2)
    third = ex.add(Send, text="three", ordered=True)
    assert ex.match("c", None, send("two")) is None  # too early
    assert ex.match("c", None, send("three")) is None
    assert ex.match("c", None, send("one")) is first
    assert ex.match("c", None, send("two")) is second
    assert ex.match("c", None, send("three")) is None  # second wants two matches
    assert ex.match("c", None, send("two")) is second
    assert ex.match("c", None, send("three")) is third
    assert ex.unmet() == []


def test_an_optional_ordered_step_can_be_skipped_but_not_revisited() -> None:
    ex = Expectations()
    maybe = ex.add(Send, text="maybe", ordered=True, optional=True)
    then = ex.add(Send, text="then", ordered=True)
    assert ex.match("c", None, send("then")) is then
    assert ex.match("c", None, send("maybe")) is None  # passed over
    assert ex.unmet() == []
    assert maybe.matched == 0


def test_ordered_every_time_stops_once_a_later_step_matched() -> None:
    ex = Expectations()
    loop = ex.add(Send, text="again", ordered=True, times=None)
    done = ex.add(Send, text="done", ordered=True)
    assert ex.match("c", None, send("done")) is None
    assert ex.match("c", None, send("again")) is loop
    assert ex.match("c", None, send("again")) is loop
    assert ex.match("c", None, send("done")) is done
    assert ex.match("c", None, send("again")) is None


def test_unordered_ones_are_free_while_an_ordered_chain_waits() -> None:
    ex = Expectations()
    ex.add(Send, text="a", ordered=True)
    free = ex.add(StopChat)
    assert ex.match("c", None, StopChat()) is free


def test_unmet_names_required_ones_and_remove_and_clear() -> None:
    ex = Expectations()
    required = ex.add(Send, text="hi", times=3)
    ex.add(Send, text="x", optional=True)
    ex.match("c", None, send("hi"))
    assert ex.unmet() == [required]
    assert required.describe() == ("exp-1: Send(text='hi') expected 3 times, "
                                   "matched 1 time")
    assert ex.remove(required.id)
    assert not ex.remove(required.id)
    assert ex.unmet() == []
    ex.clear()
    assert len(ex) == 0
    assert ex.add(Send).id == "exp-3"  # ids are never reused


def test_times_below_one_is_refused() -> None:
    with pytest.raises(ExpectationError, match="times"):
        Expectations().add(Send, times=0)


def test_json_expectations_with_replies_and_faults() -> None:
    ex = Expectations()
    body = {"match": {"type": "send", "fields": {"text": {"regex": "^trigger"}}},
            "reply": [{"$type": "appTrigger", "sessionId": "s1", "name": "Wave",
                       "senderId": "ch", "triggerId": "t1", "arguments": [1, "x"]}],
            "fault": {"kind": "close", "error": "bye", "allowReconnect": True},
            "times": None, "optional": True}
    added = ex.add_json(msgspec.json.encode(body))
    assert ex.match("c", "s1", send("trigger it")) is added
    (trigger,) = added.reply
    assert isinstance(trigger, AppTrigger)
    assert trigger.trigger_id == "t1"
    assert added.fault == FaultAnswer(kind="close", error="bye", allow_reconnect=True)
    listed = ex.to_json()["expectations"][0]
    assert listed["matched"] == 1
    assert listed["times"] is None
    assert listed["reply"][0]["$type"] == "appTrigger"
    assert listed["fault"] == {"kind": "close", "error": "bye", "allowReconnect": True}
    assert listed["match"] == body["match"]


@pytest.mark.parametrize(("body", "why"), [
    (b"{", "invalid expectation"),
    (b'{"reply": []}', "missing required field `match`"),
    (b'{"match": {"type": "send"}, "extra": 1}', "unknown field `extra`"),
    (b'{"match": {"type": "send", "fields": {"text": {"regex": "["}}}}', "match: field"),
    (b'{"match": {"type": "send"}, "reply": [{"$type": "nope"}]}',
     "reply\\[0\\]: unknown server message type 'nope'"),
    (b'{"match": {"type": "send"}, "reply": [{"$type": "appTrigger"}]}',
     "reply\\[0\\]: invalid 'appTrigger'"),
    (b'{"match": {"type": "send"}, "fault": {"kind": "explode"}}', "invalid expectation"),
    (b'{"match": {"type": "send"}, "times": 0}', "times must be >= 1"),
])
def test_bad_json_expectations_say_what_is_wrong(body: bytes, why: str) -> None:
    with pytest.raises(ExpectationError, match=why):
        Expectations().add_json(body)
