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


CASES = [
    # (example and arguments, what its output must contain)
    (["quickstart.py"],
     ["No chat running: starting one with Apex", "Hello there! I'm Apex.",
      "Why did the AI cross the road? To get to the dataset"]),  # words spaced apart
    (["asyncio_chat.py", "Hello", "please wave"],
     ["Chatting with Apex", "Hello there! I'm Apex.",  # the greeting streamed
      "*waves back* Hello!", "[action wave on layer emotes]"]),  # the "wave" script
    (["trio_chat.py", "--character", "Bea", "a forest walk"],
     ["Chatting with Bea", "Oh, hi. I was just reading.", "The trees are so green here.",
      "[app trigger Emote]"]),
    (["sans_io_blocking_tcp.py", "please wave"],
     ["Chatting with Apex", "Hello there! I'm Apex.", "*waves back* Hello!"]),
    *[(["sans_io_anyio.py", "--backend", backend],
       ["Chatting with Apex", "Hello there! I'm Apex.",
        "Why did the AI cross the road?"])  # seed 0's answer to "Hello!"
      for backend in ("asyncio", "trio")],
    (["sans_io_socketpair.py"], ["closed cleanly: client is CLOSED, server is CLOSED"]),
    *[(["app_triggers.py", "--backend", backend],
       ["lights set to #ffaa00 at 60%", "playing the jazz playlist",
        "acknowledged queued triggers: SetLights"])
      for backend in ("asyncio", "trio")],
    *[(["speech_playback.py", "--backend", backend],
       ["Chatting with Apex", "clip 0-33: 0.66 s of audio", "> Tell me about the sea.",
        "played 5 clip(s); every reply acknowledged"])
      for backend in ("asyncio", "trio")],
    (["speech_playback.py", "--no-tts"], ["played 0 clip(s); every reply acknowledged"]),
    *[(["vision_capture.py", "--backend", backend],
       ["> Take a look at this.", "[Screen capture requested: uploading 71 bytes]",
        "mock stored 71 bytes of image/png (capture.png) for source Screen"])
      for backend in ("asyncio", "trio")],
    (["vision_capture.py", "--blind"], ["[Screen capture requested: cancelling]",
                                        "cancelled"]),
    *[(["device_login.py", "--backend", backend],
       ["/device and enter the code ", "Logged in; the key works",
        "Connected as User (API 2025-11)"])
      for backend in ("asyncio", "trio")],
    *[(["app_forms.py", "--backend", backend],
       ["Server API version 2025-11",
        "Apex: glow=False, skin=urn:voxta:resources:characters:"])
      for backend in ("asyncio", "trio")],
    *[(["hub_client.py", "--backend", backend, "--protocol", protocol],
       ["Add(2, 3) = 5", "Divide(1, 0) failed:", "division by zero", "Countdown(3): [3, 2, 1]",
        f"Ask: the client said 'yes, tea?' (in {protocol})",
        "reattached 1 time(s) over 2 sockets; echoes in order and complete: True"])
      for backend in ("asyncio", "trio") for protocol in ("json", "messagepack")],
]


@pytest.mark.parametrize(("command", "expected"), CASES,
                         ids=[" ".join(command) for command, _ in CASES])
def test_example_runs(command: list[str], expected: list[str]) -> None:
    out = run(str(EXAMPLES / command[0]), *command[1:])
    for text in expected:
        assert text in out
    assert "no handler for" not in out


def test_quickstart_against_a_separate_voxta_mock(tmp_path: Path) -> None:
    """Its docstring's hint: a ``voxta-mock`` with no chat running, then with one."""
    for preseed in ([], ["--preseed-session"]):
        mock = subprocess.Popen([sys.executable, "-m", "voxta_mock", "--port", "0", *preseed],
                                cwd=ROOT, env=ENV, stdout=subprocess.PIPE, text=True)
        try:
            assert mock.stdout is not None
            url = mock.stdout.readline().split()[-1]
            out = run(str(EXAMPLES / "quickstart.py"), "--url", url)
        finally:
            mock.terminate()
            mock.wait(10)
            assert mock.stdout is not None
            mock.stdout.close()
        assert ("No chat running" in out) is not bool(preseed)
        assert "Connected! Session ID: " in out
        assert "To get to the dataset on the other side." in out  # seed 0, as in-process


def test_the_bot_test_suite_runs_without_pytest_timeout_or_trio(tmp_path: Path) -> None:
    """``pip install -e . pytest`` and nothing else: pytest-timeout is off (``-p
    no:timeout``), and ``import trio`` fails (a stand-in package that raises)."""
    fake = tmp_path / "no_trio" / "trio"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('trio is not installed')\n")
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(fake.parent), ENV["PYTHONPATH"]]),
           "HYPOTHESIS_NO_PLUGINS": "1"}  # trio's hypothesis entry point would import it
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "examples/bot_testing", "-q", "-p", "no:timeout",
         "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=100, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout


def test_the_bot_test_suite_passes() -> None:
    out = run("-m", "pytest", str(EXAMPLES / "bot_testing"), "-q", "-p", "no:cacheprovider",
              "-p", "no:randomly", timeout=100)
    assert "10 passed" in out
