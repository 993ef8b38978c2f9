"""The plugin as a new user meets it: the testing guide's first test, run as written in a
separate pytest with no conftest, no marker, neither trio nor pytest-timeout; and an
unmet expectation failing a test with a message that says what came instead."""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

GUIDE = Path(__file__).parents[2] / "docs" / "guides" / "testing.md"
BARE = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:timeout",
        "-p", "no:hypothesispytest", "-W", "error")
"""What a plain ``pip install voxta-proto pytest`` has: none of our dev plugins."""


@pytest.fixture
def fresh(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project dir where ``import trio`` fails, as without ``voxta-proto[trio]``."""
    plugins = {e.name: e.value for e in entry_points(group="pytest11")}
    if plugins.get("voxta_mock") != "voxta_mock.pytest_plugin":
        pytest.skip("voxta-proto is not installed here, so its pytest11 entry point is not")
    pytester.makepyfile(trio="raise ImportError('trio is not installed in this project')")
    return pytester


def first_test_of_the_guide() -> str:
    match = re.search(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.DOTALL)
    assert match is not None
    return match.group(1)


def test_the_guides_first_test_runs_as_written(fresh: pytest.Pytester) -> None:
    code = first_test_of_the_guide()
    assert len(code.strip().splitlines()) <= 10
    assert "voxta_client" in code
    assert "assert_received" in code
    fresh.makepyfile(test_hello=code)
    result = fresh.runpytest_subprocess(*BARE, "-v", timeout=120)
    result.assert_outcomes(passed=1)  # asyncio only: trio cannot be imported
    result.stdout.fnmatch_lines(["*test_my_client_says_hello*asyncio*PASSED*"])


def test_the_guides_first_test_fails_when_the_client_sends_something_else(
        fresh: pytest.Pytester) -> None:
    fresh.makepyfile(test_hello=first_test_of_the_guide().replace(
        'send_message("Hello there")', 'send_message("Goodbye")'))
    result = fresh.runpytest_subprocess(*BARE, timeout=120)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no received message matches Send(text='Hello there')*",
                                 "*text: expected 'Hello there', got 'Goodbye'*"])


UNMET = '''
from voxta_proto.voxta import Send, StopChat


async def test_unmet(voxta_memory_client, voxta_memory_server):
    voxta_memory_server.expectations.add(Send, text="bye")
    voxta_memory_server.expectations.add(StopChat, optional=True)
    characters = await voxta_memory_client.load_characters_list()
    await voxta_memory_client.start_chat(characters[0].id)
    await voxta_memory_client.send_message("hi")


async def test_met(voxta_client, voxta_mock_server):
    voxta_mock_server.expectations.add(Send, text="hi", passthrough=True)
    characters = await voxta_client.load_characters_list()
    await voxta_client.start_chat(characters[0].id)
    await voxta_client.send_message("hi")
'''


def test_an_unmet_expectation_fails_the_test_listing_what_was_received(
        fresh: pytest.Pytester) -> None:
    fresh.makepyfile(test_suite=UNMET)
    result = fresh.runpytest_subprocess(*BARE, timeout=120)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*FAILED*test_unmet*",
    ])
    result.stdout.fnmatch_lines([
        "*1 expectation(s) of the mock were not met:",
        "*exp-1: Send(text='bye') expected once, matched 0 times",
        "*the mock received * hub message(s)*",
        '*send [[]connection *, session *[]] {"$type":"send",*"text":"hi"*',
    ])
    assert "StopChat" not in result.stdout.str()
    assert "ERROR" not in result.stdout.str()  # a failure of the test, not of teardown
