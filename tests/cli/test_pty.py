"""``voxta chat`` on a pseudo-terminal, as a person uses it: the numbered character
prompt, the thinking status, streaming, commands, Ctrl-C and Ctrl-D.

The program runs in its own session with the pty as its controlling terminal, so the
Ctrl-C byte (0x03) reaches it as SIGINT from the terminal, exactly as in a shell.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import pytest

from voxta_mock import DEFAULT_DATA

from .programs import VOXTA, PtyProgram

pytestmark = [
    pytest.mark.network,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX pseudo-terminals"),
]

EXIT_SIGINT = 130
CTRL_C = "\x03"
CTRL_D = "\x04"
PROMPT = r"you> $"
REPLIES = DEFAULT_DATA.replies


@pytest.fixture
def chat(request: pytest.FixtureRequest) -> Iterator[PtyProgram]:
    args: tuple[str, ...] = getattr(request, "param", ())
    program = PtyProgram([*VOXTA, "chat", "--seed", "1", *args])
    try:
        yield program
    finally:
        program.close()


def pick(chat: PtyProgram, answer: str) -> None:
    chat.expect(r"Characters:\n   1\. Apex  \(assistant\)\n   2\. Bea  \(companion\)\n")
    chat.expect(r"Pick a character \[1-2, Enter for 1\]: $")
    chat.send(answer + "\r")


@pytest.mark.parametrize("chat", [("--reply-delay", "1.5"),
                                  ("--reply-delay", "1.5", "--backend", "trio")],
                         indirect=True, ids=["asyncio", "trio"])
def test_ctrl_c_interrupts_the_reply_then_quits(chat: PtyProgram) -> None:
    chat.expect(r"Started the bundled mock Voxta server at http://127\.0\.0\.1:\d+")
    pick(chat, "2")
    chat.expect(r"\[chat started with Bea\]\n")
    chat.expect(r"Bea is thinking…")  # the status, replaced by the reply's first words
    chat.expect(r"Bea: Oh, hi\. I was just reading\.\n")
    chat.expect(PROMPT)

    chat.send("tell me a story\r")
    chat.expect(r"Bea is thinking…")
    chat.expect(r"Bea: \S+")          # streaming has begun: a chunk every 1.5 s
    chat.send(CTRL_C)
    chat.expect(r"\[interrupting the reply; press Ctrl-C again to quit\]\n")
    chat.expect(r"\[Bea's reply was interrupted\]\n")
    chat.expect(PROMPT)               # idle again, and still running
    assert chat.proc.poll() is None
    assert not any(reply in chat.text for reply in REPLIES)  # the reply was cut short

    chat.send("/characters\r")
    chat.expect(r"   1\. Apex  \(assistant\)\n \* 2\. Bea  \(companion\)\n")
    chat.expect(PROMPT)
    chat.send(CTRL_C)                 # nothing is running: Ctrl-C quits, as a shell expects
    assert chat.wait(60) == EXIT_SIGINT
    assert chat.text.endswith("\n")  # the shell's prompt starts on a line of its own
    assert "Traceback" not in chat.text


@pytest.mark.parametrize("chat", [("--reply-delay", "2.0")], indirect=True)
def test_second_ctrl_c_quits_even_while_a_reply_runs(chat: PtyProgram) -> None:
    pick(chat, "")                   # Enter: the default, Apex
    chat.expect(r"\[chat started with Apex\]\n")
    chat.expect(r"Apex: \S+")         # the greeting streams (slowly)
    chat.send(CTRL_C)
    chat.expect(r"\[interrupting the reply; press Ctrl-C again to quit\]\n")
    chat.send(CTRL_C)
    assert chat.wait(60) == EXIT_SIGINT
    assert "Traceback" not in chat.text


@pytest.mark.parametrize("chat", [("--reply-delay", "0.01")], indirect=True)
def test_typed_commands_and_ctrl_d(chat: PtyProgram) -> None:
    pick(chat, "apex")
    chat.expect(r"Apex: Hello there! I'm Apex\. What shall we talk about\?\n")
    chat.expect(PROMPT)
    chat.send("wave at me\r")
    chat.expect(r"Apex: \*waves back\* Hello!\n\[action\] Apex: wave \[layer emotes\]\n")
    chat.expect(PROMPT)
    chat.send("/revert\r")
    chat.expect(r"\[removed\] You: wave at me\n")
    chat.expect(r"\[removed\] Apex: \*waves back\* Hello!\n")
    chat.send("/help\r")
    chat.expect(r"/interrupt +stop the reply")
    chat.expect(PROMPT)
    chat.send(CTRL_D)
    assert chat.wait(60) == 0
    assert "Traceback" not in chat.text


def test_ctrl_d_at_the_character_prompt_quits(chat: PtyProgram) -> None:
    chat.expect(r"Pick a character \[1-2, Enter for 1\]: $")
    chat.send(CTRL_D)
    assert chat.wait(60) == 0
    assert "[chat started" not in chat.text


@pytest.mark.parametrize("chat", [("--reply-delay", "1.5", "--character", "apex")],
                         indirect=True)
def test_a_message_typed_during_a_reply_cuts_it_and_ctrl_c_stops_the_next(
        chat: PtyProgram) -> None:
    chat.expect(r"Apex: \S+")         # the greeting streams
    chat.send("hello\r")              # cuts it short...
    chat.expect(r"\[Apex's reply was interrupted\]\n")
    chat.expect(r"Apex is thinking…")  # ...and the answer to "hello" begins
    chat.expect(r"Apex: \S+")
    chat.send(CTRL_C)                 # a reply runs: Ctrl-C stops it, and does not quit
    chat.expect(r"\[interrupting the reply; press Ctrl-C again to quit\]\n")
    chat.expect(r"\[Apex's reply was interrupted\]\n")
    chat.expect(PROMPT)
    chat.send("/quit\r")
    assert chat.wait(60) == 0


def test_connecting_shows_a_status_and_ctrl_c_stops_it_with_130() -> None:
    """A server that accepts and never answers: the chat says what it waits for."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        chat = PtyProgram([*VOXTA, "chat", "--url", f"http://127.0.0.1:{port}"])
        try:
            chat.expect(rf"Connecting to http://127\.0\.0\.1:{port}…")
            chat.send(CTRL_C)
            assert chat.wait(60) == EXIT_SIGINT
            assert chat.text.endswith("\n")
            assert "Traceback" not in chat.text
        finally:
            chat.close()


def test_the_line_editor_edits_and_recalls_history() -> None:
    chat = PtyProgram([*VOXTA, "chat", "--seed", "1", "--reply-delay", "0",
                       "--character", "apex"])
    try:
        chat.expect(r"Apex: Hello there! I'm Apex\. What shall we talk about\?\n")
        chat.expect(PROMPT)
        # "at mx", Backspace, "e", Home, "wave ", End: the line is "wave at me".
        chat.send("at mx\x7fe" + "\x1b[H" + "wave " + "\x1b[F" + "\r")
        chat.expect(r"you> wave at me\n")     # the line as sent, with its prompt
        chat.expect(r"Apex: \*waves back\* Hello!\n")
        chat.expect(PROMPT)
        chat.send("\x1b[A")                  # Up: the last line again
        chat.expect(r"you> wave at me")
        chat.send("\x17\x17" + "hello\r")   # Ctrl-W twice: "wave hello"
        chat.expect(r"you> wave hello\n")
        chat.expect(r"Apex: \*waves back\* Hello!\n")  # "wave" still in it
        chat.expect(PROMPT)
        chat.send(CTRL_D)
        assert chat.wait(60) == 0
        assert "\x1b[A" not in chat.raw.decode().split("you> wave at me\r\n", 1)[0]
    finally:
        chat.close()


def test_typing_during_a_reply_stays_off_its_lines_and_replies_wrap() -> None:
    columns = 40
    chat = PtyProgram([*VOXTA, "chat", "--seed", "1", "--reply-delay", "0.4",
                       "--character", "apex"])
    chat.resize(columns)
    try:
        chat.expect(r"Apex: \S+ \S+")     # the greeting streams...
        chat.send("abc")                   # ...while we type (no Enter)
        chat.expect(r"about\?")            # the greeting's last words came after it
        chat.expect(r"you> abc$")
        screen = chat.screen(columns)
        start = next(i for i, line in enumerate(screen) if line.startswith("Apex: "))
        end = next(i for i in range(start, len(screen)) if screen[i].endswith("about?"))
        reply = " ".join(screen[start:end + 1])
        assert reply == "Apex: Hello there! I'm Apex. What shall we talk about?"
        assert len(screen[start:end + 1]) > 1   # it did wrap...
        assert all(len(line) <= columns for line in screen)
        words = set(reply.split())                 # ...between words
        assert all(set(line.split()) <= words for line in screen[start:end + 1])
        assert screen[end + 1] == "you> abc"       # the typed text on a line of its own
        chat.send("\x15/quit\r")
        assert chat.wait(60) == 0
    finally:
        chat.close()
