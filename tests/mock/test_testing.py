"""The test assertions: what a failing test prints, checked in a real pytest run."""

from __future__ import annotations

import pytest

from voxta_mock.expectations import Expectations
from voxta_mock.journal import Journal
from voxta_mock.testing import assert_received, verify_expectations
from voxta_proto.voxta import Send, StopChat

pytest_plugins = ["pytester"]

SUITE = '''
import pytest

from voxta_mock.expectations import Expectations
from voxta_mock.journal import Journal
from voxta_mock.testing import verify_expectations
from voxta_proto.voxta import Send, StopChat


@pytest.fixture
def mock():
    journal = Journal(clock=lambda: 0.0)
    expectations = Expectations()
    yield journal, expectations
    verify_expectations(expectations, journal)   # what the plugin does at teardown


def test_met(mock):
    journal, expectations = mock
    expectations.add(Send, text="hi")
    message = Send(session_id="s1", text="hi")
    journal.record_received("c1", message)
    assert expectations.match("c1", "s1", message) is not None


def test_unmet(mock):
    journal, expectations = mock
    expectations.add(Send, text="bye")
    expectations.add(StopChat, optional=True)
    journal.record_received("c1", Send(session_id="s1", text="hi"))
'''


def test_an_unmet_expectation_fails_the_test_naming_it_and_listing_what_came(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_unmet*",
        "*1 expectation(s) of the mock were not met:",
        "*exp-1: Send(text='bye') expected once, matched 0 times",
        "*the mock received 1 hub message(s):",
        '*#1 send [[]connection c1, session s1[]] {"$type":"send","sessionId":"s1","text":"hi"}',
    ])
    assert "StopChat" not in result.stdout.str()  # optional: not reported


def received(*messages: Send | StopChat) -> Journal:
    journal = Journal(clock=lambda: 0.0)
    for index, message in enumerate(messages):
        journal.record_received(f"c{index % 2}", message)
    return journal


def test_assert_received_returns_the_first_match() -> None:
    journal = received(Send(session_id="s1", text="a"), Send(session_id="s1", text="hi"))
    assert assert_received(journal, Send, text="hi").text == "hi"
    assert assert_received(journal, "send", session_id="s1") == Send(session_id="s1", text="a")

    class Server:
        def __init__(self, journal: Journal) -> None:
            self.journal = journal

    assert assert_received(Server(journal), Send, connection="c1").text == "hi"


def test_assert_received_shows_the_closest_messages_field_by_field() -> None:
    journal = received(Send(session_id="s1", text="hello"), StopChat(),
                       Send(session_id="s2", text="hi"), Send(session_id="s1", text="yo"))
    with pytest.raises(AssertionError) as failure:
        assert_received(journal, Send, text="hi", session_id="s1")
    assert str(failure.value) == "\n".join([
        "no received message matches Send(text='hi') in session 's1'",
        "closest of 2 received message(s):",
        "  #4 send [connection c1, session s1]",
        "      text: expected 'hi', got 'yo'",
        "  #1 send [connection c0, session s1]",
        "      text: expected 'hi', got 'hello'",
    ])
    with pytest.raises(AssertionError) as failure:
        assert_received(journal, Send, text="hi", do_reply=False)
    assert str(failure.value) == "\n".join([
        "no received message matches Send(text='hi', do_reply=False)",
        "closest of 4 received message(s):",
        "  #3 send [connection c0, session s2]",
        "      do_reply: expected False, got None",
        "  #4 send [connection c1, session s1]",
        "      text: expected 'hi', got 'yo'",
        "      do_reply: expected False, got None",
        "  #1 send [connection c0, session s1]",
        "      text: expected 'hi', got 'hello'",
        "      do_reply: expected False, got None",
    ])


def test_assert_received_scoped_to_a_session_and_with_nothing_received() -> None:
    journal = received(StopChat(session_id="s2"))
    with pytest.raises(AssertionError) as failure:
        assert_received(journal, Send, session_id="s1")
    assert str(failure.value) == "\n".join([
        "no received message matches Send() in session 's1'",
        "the mock received 1 hub message(s):",
        '  #1 stopChat [connection c0, session s2] {"$type":"stopChat","sessionId":"s2"}',
    ])
    with pytest.raises(AssertionError, match=r"(?s)matches Send.*received no hub messages"):
        assert_received(Journal(clock=lambda: 0.0), Send)
    with pytest.raises(AssertionError, match="type: expected Send, got stopChat"):
        assert_received(journal, Send)


def test_verify_expectations_passes_when_all_are_met() -> None:
    expectations = Expectations()
    expectations.add(Send, optional=True)
    verify_expectations(expectations)
    expectations.add(StopChat)
    with pytest.raises(AssertionError, match="exp-2: StopChat"):
        verify_expectations(expectations)
