"""``voxta chat`` driven as a real program with piped stdin (and ``--message``).

Without ``--url`` every run starts its own embedded mock; the ``--url`` tests point the
program at a :class:`MockVoxtaServer` running in this test process.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import anyio
import pytest

from voxta_mock import DEFAULT_DATA, MockVoxtaServer
from voxta_mock.__main__ import _parser as mock_parser
from voxta_proto import VoxtaClient, __version__
from voxta_proto.cli import main
from voxta_proto.cli.chat import find_character
from voxta_proto.cli_defaults import MOCK_REPLY_DELAY, MOCK_SEED
from voxta_proto.voxta.shapes import CharactersListItem

from .programs import ENV, VOXTA, run_voxta

pytestmark = pytest.mark.network

REPLIES = DEFAULT_DATA.replies
GREETING = DEFAULT_DATA.characters[0].greeting or "(Apex has a greeting)"


def assert_one_error_line(stderr: str, *fragments: str) -> None:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("voxta: error: ")]
    assert len(errors) == 1, stderr
    assert lines[-1] == errors[0], stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def in_order(text: str, *parts: str) -> None:
    """Each part occurs in ``text``, after the one before it."""
    position = 0
    for part in parts:
        found = text.find(part, position)
        assert found >= 0, f"{part!r} missing after position {position} in:\n{text}"
        position = found + len(part)


# -- --message ---------------------------------------------------------------------------


def test_message_prints_the_reply_and_exits_zero() -> None:
    result = run_voxta("chat", "--seed", "7", "--message", "Hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() in ([reply] for reply in REPLIES)
    assert GREETING not in result.stdout  # only the reply to our message
    assert "Started the bundled mock Voxta server at http://127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr


def test_messages_play_in_turn_with_actions_and_app_triggers_on_stderr() -> None:
    result = run_voxta("chat", "-m", "wave at me", "-m", "the forest", "--reply-delay", "0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["*waves back* Hello!", "The trees are so green here."]
    in_order(result.stderr, "[action] Apex: wave [layer emotes]",
             '[app trigger] Emote("🌳", "#00ff00")')


def test_message_with_a_character_and_the_trio_backend() -> None:
    result = run_voxta("chat", "--backend", "trio", "--character", "bea", "-m", "wave")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "*waves back* Hello!\n"
    assert "[action] Bea: wave" in result.stderr


def test_unknown_character_is_one_line() -> None:
    result = run_voxta("chat", "--character", "Nobody", "-m", "hi")
    assert result.returncode == 2
    assert_one_error_line(result.stderr, "'Nobody'", "Apex, Bea")


# -- piped conversation ------------------------------------------------------------------


def test_piped_turns_and_commands() -> None:
    script = "\n".join([
        "wave at me", "/retry", "/revert", "the forest", "/characters", "/characters 2",
        "hello Bea", "/new", "/help", "/bogus", "/quit", "never sent",
    ]) + "\n"
    result = run_voxta("chat", "--seed", "3", "--reply-delay", "0.01", stdin=script)
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    in_order(
        out,
        "Started the bundled mock Voxta server at http://127.0.0.1:",
        "Chatting with Apex",
        "[chat started with Apex]",
        "Apex is thinking…", f"Apex: {GREETING}\n",
        "You: wave at me", "Apex: *waves back* Hello!\n", "[action] Apex: wave [layer emotes]",
        # /retry: the reply goes and a new one comes, with its action again
        "You: /retry", "[removed] Apex: *waves back* Hello!", "Apex: *waves back* Hello!\n",
        "[action] Apex: wave",
        # /revert: our message and the reply go
        "You: /revert", "[removed] You: wave at me", "[removed] Apex: *waves back* Hello!",
        "You: the forest", "Apex: The trees are so green here.\n",
        '[app trigger] Emote("🌳", "#00ff00")',
        "You: /characters", " * 1. Apex", "   2. Bea",
        "You: /characters 2", "[chat started with Bea]", "Bea: Oh, hi. I was just reading.\n",
        "You: hello Bea", "Bea: ",
        "You: /new", "[chat started with Bea]", "Bea: Oh, hi. I was just reading.\n",
        "You: /help", "/retry", "/revert", "/interrupt", "/characters", "/new", "/quit",
        "You: /bogus", "[unknown command /bogus; /help lists them]",
        "You: /quit",
    )
    assert "never sent" not in out
    assert any(f"Bea: {reply}\n" in out for reply in REPLIES)


def test_piped_interrupt_stops_the_reply() -> None:
    # Slow chunks; /interrupt waits for the reply's first chunk, then cuts it short.
    result = run_voxta("chat", "--seed", "1", "--reply-delay", "1.5",
                       stdin="tell me something\n/interrupt\n")
    assert result.returncode == 0, result.stderr
    in_order(result.stdout, "You: tell me something", "Apex: ", "You: /interrupt",
             "[Apex's reply was interrupted]")
    assert not any(reply in result.stdout for reply in REPLIES)


def test_end_of_input_quits_cleanly() -> None:
    result = run_voxta("chat", "--reply-delay", "0", stdin="")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert f"Apex: {GREETING}" in result.stdout  # the greeting played out first


# -- connection errors -------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(("url", "status", "fragments"), [
    ("notaurl", 2, ("bad --url 'notaurl'", "http://")),
    ("ftp://example.com", 2, ("bad --url",)),
    ("http://", 2, ("no host name",)),
    ("http://127.0.0.1:99999", 2, ("bad --url",)),
    ("http://127.0.0.1:{closed}", 1, ("cannot connect to http://127.0.0.1:", "refused")),
])
def test_bad_url_is_one_line_and_a_failure(url: str, status: int,
                                           fragments: tuple[str, ...]) -> None:
    result = run_voxta("chat", "--url", url.format(closed=closed_port()), "-m", "hi",
                       stdin="hello\n")
    assert result.returncode == status
    assert result.stdout == ""
    assert_one_error_line(result.stderr, *fragments)


def test_mock_options_need_the_embedded_mock() -> None:
    result = run_voxta("chat", "--url", "http://127.0.0.1:5384", "--seed", "1")
    assert result.returncode == 2
    assert_one_error_line(result.stderr, "--seed")


async def run_against(*args: str, env: dict[str, str] | None = None,
                      code: str | None = None) -> tuple[int, str, str]:
    """Run ``voxta ARGS`` (or ``python -c code ARGS``) without blocking the event loop
    the in-process server runs on."""
    command = [sys.executable, *(("-c", code) if code else VOXTA), *args]
    with anyio.fail_after(90):
        result = await anyio.run_process(command, env=env or ENV, check=False)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


@pytest.mark.anyio
async def test_bad_token_is_one_line_and_a_good_one_chats() -> None:
    async with MockVoxtaServer(port=0, auth_token="s3cret", reply_delay=0) as server:
        status, out, err = await run_against("chat", "--url", server.url, "--token", "wrong",
                                              "-m", "hi")
        assert status == 1
        assert out == ""
        assert_one_error_line(err, f"cannot connect to {server.url}", "401",
                              "--token / VOXTA_API_KEY")

        status, out, err = await run_against("chat", "--url", server.url, "-m", "hi")
        assert status == 1
        assert_one_error_line(err, "401",
                              "pass a valid --token, set VOXTA_API_KEY or run voxta login")

        # The token from the environment; and --url never loads the mock package.
        code = ("import sys\nfrom voxta_proto.cli import main\nstatus = main(sys.argv[1:])\n"
                "print('mock loaded:', 'voxta_mock' in sys.modules)\nsys.exit(status)\n")
        status, out, err = await run_against(
            "chat", "--url", server.url, "-m", "wave", code=code,
            env={**ENV, "VOXTA_API_KEY": "s3cret"})
        assert status == 0, err
        assert out.splitlines() == ["*waves back* Hello!", "mock loaded: False"]
        assert "bundled mock" not in err


@pytest.mark.anyio
async def test_server_going_away_ends_the_chat_with_one_line() -> None:
    read_end, write_end = os.pipe()  # a stdin that never ends: only an error ends the chat
    try:
        with anyio.fail_after(90):
            async with MockVoxtaServer(port=0, reply_delay=0) as server:
                process = await anyio.open_process(
                    [sys.executable, *VOXTA, "chat", "--url", server.url, "--no-reconnect"],
                    stdin=read_end, env=ENV)
                assert process.stdout is not None
                assert process.stderr is not None
                out = b""
                async for chunk in process.stdout:
                    out += chunk
                    if b"[chat started with Apex]" in out:
                        break
            # The server stopped under the running chat.
            async with process:
                err = b"".join([chunk async for chunk in process.stderr])
                status = await process.wait()
    finally:
        os.close(read_end)
        os.close(write_end)
    assert status == 1
    assert_one_error_line(err.decode(), "the connection closed")


@pytest.mark.anyio
async def test_a_character_speaking_elsewhere_shows_as_a_state() -> None:
    """Another client of the chat (the Voxta UI, say) plays the greeting's audio: the
    server relays its speechPlaybackStart, and the chat shows the character speaking."""
    read_end, write_end = os.pipe()  # a stdin that stays open while we watch
    try:
        with anyio.fail_after(90):
            async with MockVoxtaServer(port=0, reply_delay=0) as server:
                process = await anyio.open_process(
                    [sys.executable, *VOXTA, "chat", "--url", server.url], stdin=read_end,
                    env=ENV)
                assert process.stdout is not None
                out = b""
                async with process:
                    async for chunk in process.stdout:
                        out += chunk
                        if GREETING.encode() in out:
                            break
                    assert b"is speaking" not in out
                    async with VoxtaClient(server.url) as player:
                        # It subscribes to the running chat by itself, maybe before any
                        # wait_for() could start: poll the state it ends in.
                        while player.session_id is None or player.chat_id is None:  # noqa: ASYNC110
                            await anyio.sleep(0.05)
                        started = await player.subscribe_to_chat(player.session_id,
                                                                 player.chat_id)
                        greeting = started.messages[-1].message_id
                        await player.speech_playback_start(message_id=greeting)
                        async for chunk in process.stdout:
                            out += chunk
                            if b"Apex is speaking" in out:
                                break
                    process.terminate()
    finally:
        os.close(read_end)
        os.close(write_end)
    assert b"Apex is speaking" in out, out


# -- the entry points ------------------------------------------------------------------------


def test_the_voxta_script_and_python_m_run_the_same_main() -> None:
    (script,) = entry_points(group="console_scripts", name="voxta")
    assert script.load() is main
    result = run_voxta("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"voxta {__version__}"


def test_the_readme_opens_with_the_chat_command() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    first = re.findall(r"```sh\n(.*?)\n```", readme, re.S)[0]
    assert first == ("python3 -m venv .venv && .venv/bin/pip install -e . && "
                     ".venv/bin/voxta chat")


def test_no_command_is_a_usage_error() -> None:
    result = run_voxta()
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def character(name: str, id_: str) -> CharactersListItem:
    return CharactersListItem(
        id=id_, name=name, app_controlled=False, date_created="", date_created_ago="",
        date_modified="", date_modified_ago="", culture="en-US", explicit_content=False,
        favorite=False, hidden=False, scenario_only=False)


@pytest.mark.parametrize(("wanted", "expected"), [
    ("Bea", "Bea"), ("bea", "Bea"), ("  APEX ", "Apex"), ("AAAA-1", "Bea"), ("b", "Bea"),
    ("2", "Bea"), ("1", "Apex"), ("Al", "Alba"), ("A", None), ("3", "Alba"), ("4", None),
    ("0", None), ("", None), ("Zed", None),
])
def test_find_character(wanted: str, expected: str | None) -> None:
    characters = (character("Apex", "2222-1"), character("Bea", "aaaa-1"),
                  character("Alba", "3333-1"))
    found = find_character(characters, wanted)
    assert (found.name if found else None) == expected


# -- the newcomer's paths (issue 17) -----------------------------------------------------


def test_a_message_that_gets_no_reply_ends_at_once() -> None:
    """``/note`` is stored by the server and answered by no reply: no 120 s wait."""
    result = run_voxta("chat", "-m", "/note hello", "--reply-timeout", "30", timeout=25)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_a_note_then_a_message_is_one_reply() -> None:
    result = run_voxta("chat", "-m", "/note the user likes tea", "-m", "Hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() in ([reply] for reply in REPLIES)


def test_an_unsupported_server_command_is_one_error_line() -> None:
    result = run_voxta("chat", "-m", "/rollback")
    assert result.returncode == 1
    assert_one_error_line(result.stderr, "Command rollback is not supported")


def test_trio_backend_without_trio_says_how_to_get_it() -> None:
    # As if trio were not installed: find_spec finds no trio.
    code = ("import importlib.util, sys\n"
            "real = importlib.util.find_spec\n"
            "importlib.util.find_spec = lambda n, *a: None if n == 'trio' else real(n, *a)\n"
            "from voxta_proto.cli import main\n"
            "sys.exit(main(['chat', '--backend', 'trio', '-m', 'hi']))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, env=ENV, check=False)
    assert result.returncode == 2
    assert_one_error_line(result.stderr, "--backend trio needs the trio package",
                          "pip install 'voxta-proto[trio]'")


def test_chat_and_voxta_mock_share_their_defaults() -> None:
    mock = mock_parser().parse_args([])
    assert (mock.seed, mock.reply_delay) == (MOCK_SEED, MOCK_REPLY_DELAY)
    # voxta chat's mock, unseeded, says what voxta-mock --seed 0 says: the same replies.
    chat = run_voxta("chat", "-m", "Hello")
    seeded = run_voxta("chat", "-m", "Hello", "--seed", str(MOCK_SEED))
    assert chat.returncode == seeded.returncode == 0
    assert chat.stdout == seeded.stdout
    help_text = run_voxta("chat", "--help").stdout
    assert f"default {MOCK_SEED}, as voxta-mock" in " ".join(help_text.split())
    assert f"default {MOCK_REPLY_DELAY:g}, as voxta-mock" in " ".join(help_text.split())


def test_voxta_mock_help_shows_defaults_and_version() -> None:
    run = [sys.executable, "-m", "voxta_mock"]
    shown = subprocess.run([*run, "--help"], capture_output=True, text=True, env=ENV,
                           timeout=30, check=False).stdout
    flat = " ".join(shown.split())
    for fragment in ("--port PORT", "(default: 5384)", "--reply-delay SECONDS",
                     "--log-level LEVEL", "(default: WARNING)", "--seed N"):
        assert fragment in flat, fragment
    version = subprocess.run([*run, "--version"], capture_output=True, text=True, env=ENV,
                             timeout=30, check=False)
    assert version.stdout.strip() == f"voxta-mock {__version__}"


@pytest.mark.anyio
async def test_a_lost_connection_is_said_once_without_library_logs() -> None:
    """The chat reports the drop itself; the client's log records ("disconnected: ...",
    "reconnect attempt 1 failed") would say it again, over the prompt."""
    read_end, write_end = os.pipe()  # a stdin that stays open
    try:
        with anyio.fail_after(60):
            async with MockVoxtaServer(port=0, reply_delay=0) as server:
                process = await anyio.open_process(
                    [sys.executable, *VOXTA, "chat", "--url", server.url], stdin=read_end,
                    env=ENV)
                assert process.stdout is not None
                assert process.stderr is not None
                out = b""
                async for chunk in process.stdout:
                    out += chunk
                    if b"[chat started with Apex]" in out:
                        break
            async with process:  # the server is gone: the chat reconnects, and fails
                sent = False
                async for chunk in process.stdout:
                    out += chunk
                    if b"[connection lost" in out and not sent:
                        os.write(write_end, b"hello\n")  # while it is down
                        sent = True
                    if b"attempt 2" in out and b"failed" in out:
                        break
                process.terminate()
                err = b"".join([chunk async for chunk in process.stderr])
                await process.wait()
    finally:
        os.close(read_end)
        os.close(write_end)
    text = (out + err).decode()
    assert "[connection lost; reconnecting in 0 s, attempt 1]" in text
    assert "disconnected:" not in text
    assert "reconnect attempt" not in text
    assert "[error] sending failed: not connected to the server right now" in text
    assert "connect()" not in text  # advice about the library's API, not for chat users
