"""The terminal side of ``voxta chat``: drawing the transcript, and reading input lines.

[Screen][voxta_proto.cli.terminal.Screen] writes the transcript. On a terminal its last
line is a *footer*: the status ("Bea is thinking…") and the input line being edited, which
is erased before anything else is written and drawn again after it, so a streaming reply
and what you type never share a line; streamed replies wrap at word boundaries. On a pipe
or file every state change is a plain line of its own.

[LineReader][voxta_proto.cli.terminal.LineReader] reads stdin in a daemon thread with
``os.read`` (never through ``sys.stdin``'s buffer, whose lock a blocked reader would hold at
interpreter exit) and hands complete lines to the event loop through a blocking portal, so
it works the same under asyncio and trio and never keeps the process alive. On a terminal
[LineEditor][voxta_proto.cli.terminal.LineEditor] does the same with line editing and
history: the terminal stops echoing, and the editor shows the line in the screen's footer.
"""

from __future__ import annotations

import atexit
import codecs
import os
import re
import shutil
import threading
from contextlib import suppress
from typing import Any, TextIO

import anyio
from anyio.from_thread import BlockingPortal
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ["LineEditor", "LineReader", "Screen", "use_color"]

_ERASE_LINE = "\r\x1b[2K"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_TOKENS = re.compile(r"\s+|\S+")
_STYLES = {"bold": "1", "dim": "2", "italic": "3", "red": "31", "cyan": "36", "yellow": "33"}


def use_color(stream: TextIO) -> bool:
    """ANSI styles only on a terminal, and not when ``NO_COLOR`` is set or TERM is dumb."""
    return (_isatty(stream) and not os.environ.get("NO_COLOR")
            and os.environ.get("TERM") != "dumb")


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _visible(text: str) -> int:
    """Columns ``text`` takes (ANSI styles take none)."""
    return len(_ANSI.sub("", text))


class Screen:
    """One output stream of the chat.

    Args:
        out: where to write.
        tty: draw the footer (status and input line) and wrap replies (else every note
            is a line).
        color: use ANSI styles.
        status_lines: on a non-terminal, whether status notes are printed at all.
        width: columns to wrap replies at (default: the terminal's; 0: no wrapping).
    """

    def __init__(self, out: TextIO, *, tty: bool | None = None, color: bool | None = None,
                 status_lines: bool = True, width: int | None = None) -> None:
        self.out = out
        self.tty = _isatty(out) if tty is None else tty
        self.color = use_color(out) if color is None else color
        self.status_lines = status_lines
        self._width = width
        self._open = False        # text was written on the current line, no newline yet
        self._col = 0             # the open line's column
        self._soft = False        # the open line starts at a break we made (wrapping)
        self._stream: str | None = None  # the reply that owns the open line
        # The footer (terminal only): a status, then the prompt and the line being edited.
        self._status: str | None = None
        self._prompt = ""
        self._prompting = False   # show the prompt even with nothing typed
        self._buffer = ""
        self._cursor = 0
        self._drawn = False       # the footer is on screen
        self._below = False       # ...on a line of its own below the open line

    def style(self, text: str, *styles: str) -> str:
        if not self.color or not styles:
            return text
        codes = ";".join(_STYLES[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def width(self) -> int:
        if self._width is not None:
            return self._width
        try:
            return os.get_terminal_size(self.out.fileno()).columns
        except (AttributeError, ValueError, OSError):
            return shutil.get_terminal_size((0, 0)).columns

    # -- the footer ----------------------------------------------------------------------

    def _footer(self) -> tuple[str, int] | None:
        """The footer's text and the cursor's column in it, or None for no footer."""
        editing = self._prompting or bool(self._buffer)
        if self._status is None and not editing:
            return None
        head = ""
        if self._status is not None:
            head = self.style(self._status, "dim", "italic") + ("  " if editing else "")
        if not editing:
            return head, _visible(head)
        head += self.style(self._prompt, "bold")
        room = self.width() - _visible(head) - 1
        start = 0
        if room > 0 and len(self._buffer) > room:  # show the part around the cursor
            start = min(max(0, self._cursor - room), len(self._buffer) - room)
        shown = self._buffer[start:start + room] if room > 0 else self._buffer
        return head + shown, _visible(head) + self._cursor - start

    def _clear_footer(self) -> None:
        if not self._drawn:
            return
        self._write(_ERASE_LINE)
        if self._below:  # back to the end of the open line above
            self._write(f"\x1b[A\x1b[{self._col + 1}G")
        self._drawn = self._below = False

    def _draw_footer(self) -> None:
        footer = self._footer()
        if footer is None or not self.tty:
            return
        text, cursor = footer
        if self._open:
            self._write("\n")
            self._below = True
        self._write(text)
        if cursor != _visible(text):
            self._write(f"\x1b[{cursor + 1}G")
        self._drawn = True

    def edit(self, buffer: str, cursor: int) -> None:
        """The line being typed changed (the editor calls this)."""
        self._clear_footer()
        self._buffer, self._cursor = buffer, cursor
        self._draw_footer()

    def commit(self) -> None:
        """Enter: the typed line becomes part of the transcript, after its prompt."""
        self._clear_footer()
        self._end_line()
        self._write(self.style(self._prompt or "", "bold") + self._buffer + "\n")
        self._buffer, self._cursor = "", 0
        self._prompting = False
        self._status = None

    # -- the transcript ------------------------------------------------------------------

    def _end_line(self) -> None:
        if self._open:
            self._write("\n")
        self._open = False
        self._stream = None

    def settle(self) -> None:
        """Go to the start of a clean line: erase the footer, end an open line."""
        self._clear_footer()
        self._end_line()
        self._status = None
        self._prompting = False

    def line(self, text: str) -> None:
        """A line of its own, wrapped between words on a terminal (the footer, if any,
        is drawn again below it)."""
        self.settle()
        self._col, self._soft = 0, False
        self._wrapped(text)
        self._write("\n")
        self._draw_footer()

    def status(self, text: str) -> None:
        """A passing state ("thinking"): replaced by whatever comes next on a terminal."""
        if self.tty:
            self.settle()
            self._status = text
            self._draw_footer()
        elif self.status_lines:
            self.line(text)

    def prompt(self, text: str) -> None:
        """Show the input prompt (terminal only); output erases it until the next call."""
        if self.tty and not (self._prompting and self._prompt == text):
            self._clear_footer()
            self._end_line()
            self._prompt = text
            self._prompting = True
            self._draw_footer()

    def entered(self) -> None:
        """A line was read. With the editor its echo is already written (commit); else
        the terminal echoed it and moved the cursor to a fresh line."""
        if self.tty and not self._drawn:
            self._open = False
            self._stream = None

    def _wrapped(self, text: str) -> None:
        """Write ``text`` from column ``_col``, breaking lines between words (terminal
        only); spaces at a break are dropped, and a word wider than the screen is left
        to the terminal."""
        width = self.width() if self.tty else 0
        if width <= 1:
            self._write(text)
            self._col += _visible(text)
            return
        out = []
        for token in _TOKENS.findall(text):
            size = _visible(token)
            if token.isspace():
                if "\n" in token:
                    out.append("\n")
                    self._col, self._soft = 0, False
                elif self._soft:
                    continue
                elif self._col + size >= width:
                    out.append("\n")
                    self._col, self._soft = 0, True
                else:
                    out.append(token)
                    self._col += size
                continue
            if self._col and self._col + size > width:
                out.append("\n")
                self._col = 0
            self._soft = False
            out.append(token)
            self._col = (self._col + size) % width if size > width else self._col + size
        self._write("".join(out))

    def stream(self, key: str, label: str, text: str) -> None:
        """Append ``text`` to the streamed reply ``key``, starting its line (with
        ``label``) when another line was written in between."""
        self._clear_footer()
        if self._stream != key:
            self._end_line()
            self._status = None
            self._prompting = False
            self._write(label)
            self._col, self._soft = _visible(label), False
            self._stream = key
            self._open = True
        if text:
            self._wrapped(text)
            self._open = True
        self._draw_footer()

    def end_stream(self, key: str, suffix: str = "") -> bool:
        """Finish the line of reply ``key``; False if another line came in between."""
        if self._stream != key:
            return False
        self._clear_footer()
        self._write(suffix + "\n")
        self._open = False
        self._stream = None
        self._draw_footer()
        return True


class LineReader:
    """Lines typed or piped on a file descriptor, as an async stream.

    ``async with LineReader(portal) as lines:`` then ``await lines.receive()``; raises
    ``anyio.EndOfStream`` at end of input. Lines come without their newline.
    """

    def __init__(self, portal: BlockingPortal, fd: int = 0, buffer: int = 64) -> None:
        self._portal = portal
        self._fd = fd
        send, receive = anyio.create_memory_object_stream[str](buffer)
        self._send: MemoryObjectSendStream[str] = send
        self.receive_stream: MemoryObjectReceiveStream[str] = receive
        self._thread = threading.Thread(target=self._pump, name="voxta stdin", daemon=True)

    async def __aenter__(self) -> MemoryObjectReceiveStream[str]:
        self._thread.start()
        return self.receive_stream

    async def __aexit__(self, *exc_info: object) -> None:
        self.receive_stream.close()

    def _deliver(self, line: str) -> bool:
        try:
            self._portal.call(self._send.send, line)
        except (RuntimeError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False  # the chat is over (portal stopped or nobody reads)
        return True

    def _pump(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        pending = ""
        while True:
            try:
                data = os.read(self._fd, 4096)
            except OSError:
                data = b""  # e.g. EIO when the terminal went away
            if not data:
                break
            pending += decoder.decode(data)
            while "\n" in pending:
                line, pending = pending.split("\n", 1)
                if not self._deliver(line.rstrip("\r")):
                    return
        pending += decoder.decode(b"", final=True)
        if pending and not self._deliver(pending):
            return
        with suppress(RuntimeError):
            self._portal.call(self._send.close)


class LineEditor(LineReader):
    """[LineReader][voxta_proto.cli.terminal.LineReader] for a terminal, with line editing
    and history, drawn in the footer of ``screen``.

    The terminal is switched out of canonical mode and echo (Ctrl-C still sends SIGINT)
    while the editor runs, and restored when it ends. Keys: arrows, Home/End, Delete and
    Backspace; Up and Down walk the history; Ctrl-A/E (start, end), Ctrl-B/F (left, right),
    Ctrl-U/K (delete to the start, to the end), Ctrl-W (delete a word), Ctrl-D (quit on an
    empty line, else delete).
    """

    def __init__(self, portal: BlockingPortal, screen: Screen, fd: int = 0,
                 buffer: int = 64) -> None:
        super().__init__(portal, fd, buffer)
        self._screen = screen
        self.history: list[str] = []
        self._saved: list[Any] | None = None

    async def __aenter__(self) -> MemoryObjectReceiveStream[str]:
        import termios

        self._saved = termios.tcgetattr(self._fd)
        mode = termios.tcgetattr(self._fd)
        mode[3] &= ~(termios.ICANON | termios.ECHO | termios.IEXTEN)  # keep ISIG
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        termios.tcsetattr(self._fd, termios.TCSANOW, mode)
        atexit.register(self.restore)  # even if the chat ends without leaving this block
        return await super().__aenter__()

    async def __aexit__(self, *exc_info: object) -> None:
        await super().__aexit__(*exc_info)
        self.restore()
        atexit.unregister(self.restore)

    def restore(self) -> None:
        """Give the terminal its modes back (idempotent)."""
        if self._saved is not None:
            import termios

            with suppress(termios.error, OSError):
                termios.tcsetattr(self._fd, termios.TCSANOW, self._saved)
            self._saved = None

    def _show(self, buffer: str, cursor: int) -> bool:
        try:
            self._portal.call(self._screen.edit, buffer, cursor)
        except RuntimeError:
            return False
        return True

    def _enter(self, line: str) -> bool:
        try:
            self._portal.call(self._screen.commit)
        except RuntimeError:
            return False
        if line.strip() and (not self.history or self.history[-1] != line):
            self.history.append(line)
        return self._deliver(line)

    def _pump(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        line, cursor = "", 0
        recall = len(self.history)  # the history entry shown (len: the new line)
        draft = ""
        pending = ""
        while True:
            try:
                data = os.read(self._fd, 4096)
            except OSError:
                data = b""
            if not data:
                break
            pending += decoder.decode(data)
            while pending:
                key, pending = _next_key(pending)
                if key is None:
                    break  # an escape sequence continues in the next read
                if key in ("\r", "\n"):
                    if not self._enter(line):
                        return
                    line, cursor, recall, draft = "", 0, len(self.history), ""
                    continue
                if key == "\x04":  # Ctrl-D
                    if not line:
                        self._end()
                        return
                    line = line[:cursor] + line[cursor + 1:]
                elif key in ("\x7f", "\x08"):
                    if cursor:
                        line, cursor = line[:cursor - 1] + line[cursor:], cursor - 1
                elif key == "\x1b[3~":
                    line = line[:cursor] + line[cursor + 1:]
                elif key in ("\x1b[D", "\x1bOD", "\x02"):
                    cursor = max(0, cursor - 1)
                elif key in ("\x1b[C", "\x1bOC", "\x06"):
                    cursor = min(len(line), cursor + 1)
                elif key in ("\x1b[H", "\x1bOH", "\x1b[1~", "\x01"):
                    cursor = 0
                elif key in ("\x1b[F", "\x1bOF", "\x1b[4~", "\x05"):
                    cursor = len(line)
                elif key == "\x15":  # Ctrl-U
                    line, cursor = line[cursor:], 0
                elif key == "\x0b":  # Ctrl-K
                    line = line[:cursor]
                elif key == "\x17":  # Ctrl-W
                    start = len(line[:cursor].rstrip())
                    start = line.rfind(" ", 0, start) + 1
                    line, cursor = line[:start] + line[cursor:], start
                elif key in ("\x1b[A", "\x1bOA", "\x1b[B", "\x1bOB"):
                    step = -1 if key[-1] == "A" else 1
                    target = recall + step
                    if 0 <= target <= len(self.history):
                        if recall == len(self.history):
                            draft = line
                        recall = target
                        line = draft if target == len(self.history) else self.history[target]
                        cursor = len(line)
                elif key.isprintable():
                    line, cursor = line[:cursor] + key + line[cursor:], cursor + len(key)
                else:
                    continue  # another control key or escape sequence: ignored
                if not self._show(line, cursor):
                    return
        self._end()

    def _end(self) -> None:
        with suppress(RuntimeError):
            self._portal.call(self._send.close)


def _next_key(text: str) -> tuple[str | None, str]:
    """The first key of ``text`` (a character or a whole escape sequence) and the rest;
    None when ``text`` is the start of an escape sequence that is not complete yet."""
    if text[0] != "\x1b":
        return text[0], text[1:]
    if len(text) == 1:
        return None, text
    if text[1] == "O":
        return (text[:3], text[3:]) if len(text) >= 3 else (None, text)
    if text[1] != "[":
        return text[:2], text[2:]  # Alt+key: ignored by the caller
    for end in range(2, len(text)):
        if "@" <= text[end] <= "~":
            return text[:end + 1], text[end + 1:]
    return None, text
