"""Running the real ``voxta`` program in tests: piped (`run_voxta`) or on a
pseudo-terminal (`PtyProgram`, stdlib only: send keys, wait for output)."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
       "PYTHONUNBUFFERED": "1"}
ENV.pop("VOXTA_API_KEY", None)
VOXTA = ["-m", "voxta_proto"]
"""``python -m voxta_proto`` runs the same ``main`` as the ``voxta`` script."""


def run_voxta(*args: str, stdin: str = "", timeout: float = 90.0,
              env: Mapping[str, str] = ENV) -> subprocess.CompletedProcess[str]:
    """``voxta ARGS`` with ``stdin`` piped in; never left running."""
    return subprocess.run([sys.executable, *VOXTA, *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout, env=dict(env), check=False)


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

# Runs in the child before the program: a new session whose controlling terminal is the
# pty, so the terminal turns Ctrl-C into SIGINT for it, as a shell would.
_CONTROLLING_TTY = (
    "import fcntl, os, sys, termios\n"
    "os.setsid()\n"
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n"
)


class PtyProgram:
    """``python ARGS`` with stdin, stdout and stderr on a new pseudo-terminal."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str] = ENV) -> None:
        master, slave = os.openpty()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _CONTROLLING_TTY, *args], stdin=slave, stdout=slave,
                stderr=slave, env=dict(env), close_fds=True)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.fd = master
        self.raw = b""
        self.seen = 0  # expect() searches the text after this position

    @property
    def text(self) -> str:
        """Everything the program wrote, without ANSI escapes and carriage returns."""
        return ANSI.sub("", self.raw.decode("utf-8", "replace")).replace("\r", "")

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the program exited and the pty closed
            data = b""
        self.raw += data
        return bool(data)

    def expect(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        """Wait for ``pattern`` (a regex) in the output after the last match."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.compile(pattern).search(self.text, self.seen)
            if match is not None:
                self.seen = match.end()
                return match
            left = deadline - time.monotonic()
            if left <= 0 or (not self._read(min(left, 0.5)) and self.proc.poll() is not None):
                raise AssertionError(
                    f"no {pattern!r} within {timeout} s; output after the last match:\n"
                    f"{self.text[self.seen:]!s}")

    def resize(self, columns: int, rows: int = 24) -> None:
        """Set the terminal's size, as a terminal window would."""
        import fcntl  # POSIX only, like the pty itself
        import struct
        import termios

        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def screen(self, columns: int) -> list[str]:
        """What a terminal ``columns`` wide shows (see `render`)."""
        return render(self.raw.decode("utf-8", "replace"), columns)

    def send(self, data: str) -> None:
        os.write(self.fd, data.encode())

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for the exit status, reading output meanwhile (a full pty would block)."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.2)
        return self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.fd)


_CONTROL = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|[\r\n]|[^\x1b\r\n]")


def render(output: str, columns: int) -> list[str]:
    """The lines a terminal ``columns`` wide shows after ``output``: a small emulator
    of what the chat uses (text with auto-wrap, CR, LF, erase line, cursor up, cursor
    to column; styles are ignored). Never scrolls away: every line stays."""
    lines: list[list[str]] = [[]]
    row = col = 0
    for match in _CONTROL.finditer(output):
        text = match.group(0)
        if match.group(2) is not None:
            final, arg = match.group(2), match.group(1)
            if final == "K":
                lines[row] = lines[row][:col] if arg in ("", "0") else []
            elif final == "A":
                row = max(0, row - int(arg or 1))
            elif final == "G":
                col = int(arg or 1) - 1
            continue
        if text == "\r":
            col = 0
        elif text == "\n":
            row += 1
            col = 0
        else:
            if col >= columns:  # auto-wrap
                row, col = row + 1, 0
            while len(lines) <= row:
                lines.append([])
            line = lines[row]
            line.extend(" " * (col - len(line)))
            line[col:col + 1] = [text]
            col += 1
        while len(lines) <= row:
            lines.append([])
    return ["".join(line).rstrip() for line in lines]
