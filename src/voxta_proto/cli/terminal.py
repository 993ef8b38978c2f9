"""The terminal side of ``voxta chat``: drawing the transcript, and reading stdin lines.

:class:`Screen` writes the transcript. On a terminal it keeps one transient line for the
thinking status and the input prompt, and erases it before anything else is written; on
a pipe or file every state change is a plain line of its own.

:class:`LineReader` reads stdin in a daemon thread with ``os.read`` (never through
``sys.stdin``'s buffer, whose lock a blocked reader would hold at interpreter exit) and
hands complete lines to the event loop through a blocking portal, so it works the same
under asyncio and trio and never keeps the process alive.
"""

from __future__ import annotations

import codecs
import os
import threading
from contextlib import suppress
from typing import TextIO

import anyio
from anyio.from_thread import BlockingPortal
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ["LineReader", "Screen", "use_color"]

_ERASE_LINE = "\r\x1b[2K"
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


class Screen:
    """One output stream of the chat.

    Args:
        out: where to write.
        tty: draw transient status and prompt lines (else every note is a line).
        color: use ANSI styles.
        status_lines: on a non-terminal, whether status notes are printed at all.
    """

    def __init__(self, out: TextIO, *, tty: bool | None = None, color: bool | None = None,
                 status_lines: bool = True) -> None:
        self.out = out
        self.tty = _isatty(out) if tty is None else tty
        self.color = use_color(out) if color is None else color
        self.status_lines = status_lines
        self._transient = False   # the current line is a status or the prompt (tty only)
        self._open = False        # text was written on the current line, no newline yet
        self._stream: str | None = None  # the reply that owns the open line

    def style(self, text: str, *styles: str) -> str:
        if not self.color or not styles:
            return text
        codes = ";".join(_STYLES[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def settle(self) -> None:
        """Go to the start of a clean line: erase a transient line, end an open one."""
        if self._transient:
            self._write(_ERASE_LINE)
        elif self._open:
            self._write("\n")
        self._transient = self._open = False
        self._stream = None

    def line(self, text: str) -> None:
        """A line of its own."""
        self.settle()
        self._write(text + "\n")

    def status(self, text: str) -> None:
        """A passing state ("thinking"): replaced by whatever comes next on a terminal."""
        if self.tty:
            self.settle()
            self._write(self.style(text, "dim", "italic"))
            self._transient = True
        elif self.status_lines:
            self.line(text)

    def prompt(self, text: str) -> None:
        """Show the input prompt (terminal only); output erases it."""
        if self.tty and not self._transient:
            self.settle()
            self._write(self.style(text, "bold"))
            self._transient = True

    def entered(self) -> None:
        """The user pressed Enter: the terminal moved the cursor to a fresh line."""
        if self.tty:
            self._transient = self._open = False
            self._stream = None

    def stream(self, key: str, label: str, text: str) -> None:
        """Append ``text`` to the streamed reply ``key``, starting its line (with
        ``label``) when another line was written in between."""
        if self._stream != key:
            self.settle()
            self._write(label)
            self._stream = key
            self._open = True
        if text:
            self._write(text)
            self._open = True

    def end_stream(self, key: str, suffix: str = "") -> bool:
        """Finish the line of reply ``key``; False if another line came in between."""
        if self._stream != key:
            return False
        self._write(suffix + "\n")
        self._open = False
        self._stream = None
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
