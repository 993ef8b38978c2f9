"""Every example runs, as a user would run it, against the bundled mock on loopback.

Each example starts its own mock server (port 0) when given no ``--url``; the bot's test
suite runs under pytest in a subprocess. Output is checked for what the mock's default
data makes the characters say, so a broken example cannot pass by printing nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
ENV = {**os.environ,
       "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                   os.environ.get("PYTHONPATH")]))}

pytestmark = pytest.mark.network


def run(*args: str, timeout: float = 60) -> str:
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True,
                            text=True, timeout=timeout, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_asyncio_chat() -> None:
    out = run(str(EXAMPLES / "asyncio_chat.py"), "Hello", "please wave")
    assert "Chatting with Apex" in out
    assert "Hello there! I'm Apex." in out  # the greeting streamed
    assert "*waves back* Hello!" in out  # the scripted reply to "wave"
    assert "[action wave on layer emotes]" in out


def test_trio_chat() -> None:
    out = run(str(EXAMPLES / "trio_chat.py"), "--character", "Bea", "a forest walk")
    assert "Chatting with Bea" in out
    assert "Oh, hi. I was just reading." in out
    assert "The trees are so green here." in out
    assert "[app trigger Emote]" in out


def test_sans_io_over_a_blocking_tcp_socket() -> None:
    out = run(str(EXAMPLES / "sans_io_blocking_tcp.py"), "please wave")
    assert "Chatting with Apex" in out
    assert "Hello there! I'm Apex." in out
    assert "*waves back* Hello!" in out


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sans_io_driven_on_anyio(backend: str) -> None:
    out = run(str(EXAMPLES / "sans_io_anyio.py"), "--backend", backend)
    assert "Chatting with Apex" in out
    assert "Hello there! I'm Apex." in out
    assert "Why did the AI cross the road?" in out  # seed 0's answer to "Hello!"


def test_sans_io_over_a_socketpair() -> None:
    out = run(str(EXAMPLES / "sans_io_socketpair.py"))
    assert "closed cleanly: client is CLOSED, server is CLOSED" in out


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_app_triggers(backend: str) -> None:
    out = run(str(EXAMPLES / "app_triggers.py"), "--backend", backend)
    assert "lights set to #ffaa00 at 60%" in out
    assert "playing the jazz playlist" in out
    assert "no handler for" not in out


def test_the_bot_test_suite_passes() -> None:
    out = run("-m", "pytest", str(EXAMPLES / "bot_testing"), "-q", "-p", "no:cacheprovider",
              "-p", "no:randomly", timeout=100)
    assert "10 passed" in out
