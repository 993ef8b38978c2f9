"""The mock server in a process of its own, so clients measured in the parent do not share
its interpreter. ``python -m benchmarks.mockproc CHUNKS`` prints the URL, then answers each
``rss`` line on stdin with the server's resident memory in bytes (as is, and after
``malloc_trim``); EOF stops it. ``BENCH_TRACEMALLOC=1`` also prints where memory grew."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import resource
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import IO

import anyio
import msgspec

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("the", "night", "was", "quiet", "and", "I", "could", "hear", "rain", "on", "glass",
         "you're", "café", "smiled", "softly", "it's", "fine", "don't", "worry", "über")
WORDS_PER_CHUNK = 6
"""The mock engine's default chunk length, in words."""
REPLY_BATCH = 16
"""Messages per WebSocket message of the long reply (the corpus packs 1 to 20)."""


def raise_fd_limit() -> int:
    """Raise the soft limit of open files to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def rss_bytes() -> int:
    """Current resident set size (Linux /proc), else the peak from getrusage."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - not Linux
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def _malloc_trim() -> None:
    """Give glibc's free heap pages back to the OS, so RSS shows memory in use."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def long_reply(chunks: int) -> str:
    """A reply the mock streams as exactly ``chunks`` replyChunk messages."""
    return " ".join(WORDS[i % len(WORDS)] for i in range(chunks * WORDS_PER_CHUNK))


async def _serve(chunks: int) -> None:
    from voxta_mock import MockVoxtaServer
    from voxta_mock.data import DEFAULT_DATA

    data = DEFAULT_DATA
    if chunks > 0:
        data = msgspec.structs.replace(DEFAULT_DATA, replies=(long_reply(chunks),), scripts=())
    # A long reply (end to end) leaves REPLY_BATCH chunks per WebSocket message, so the
    # mock, a Python process too, writes it faster than a client can read it.
    # Without a delay the whole reply is queued at once (several MB), more than the
    # mock's per-connection output bound lets wait for a reader, so that bound is lifted.
    # Capacity (no long reply) runs the mock with its defaults, as CI runs it.
    mock = MockVoxtaServer(port=0) if chunks <= 0 else MockVoxtaServer(
        port=0, data=data, reply_delay=0.0, preseed_session=True, client_timeout=None,
        batch=REPLY_BATCH, max_output=1 << 30)
    async with mock as server:
        print(server.url, flush=True)
        previous: tracemalloc.Snapshot | None = None
        while True:
            line = await anyio.to_thread.run_sync(sys.stdin.readline)
            if not line:
                break
            gc.collect()
            if tracemalloc.is_tracing():  # BENCH_TRACEMALLOC=1: where the memory went
                snapshot = tracemalloc.take_snapshot()
                if previous is not None:
                    for stat in snapshot.compare_to(previous, "lineno")[:12]:
                        print(stat, file=sys.stderr)
                previous = snapshot
            raw = rss_bytes()
            _malloc_trim()
            print(raw, rss_bytes(), flush=True)


class MockProcess:
    """``with MockProcess(chunks) as mock:`` runs the mock; ``mock.url``, ``mock.rss()``."""

    def __init__(self, chunks: int = 0) -> None:
        self.chunks = chunks
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> MockProcess:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.mockproc", str(self.chunks)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        self.url = self._line()
        if not self.url.startswith("http"):
            self.proc.kill()
            self.__exit__()
            raise RuntimeError("the mock server did not start")
        return self

    def _pipes(self) -> tuple[subprocess.Popen[str], IO[str], IO[str]]:
        proc = self.proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise RuntimeError("the mock process is not running")
        return proc, proc.stdin, proc.stdout

    def _line(self) -> str:
        return self._pipes()[2].readline().strip()

    def rss(self) -> tuple[int, int]:
        """The server's resident memory after a gc.collect(), in bytes: as it is, and
        after ``malloc_trim`` returned free heap pages (the same when not glibc)."""
        stdin = self._pipes()[1]
        stdin.write("rss\n")
        stdin.flush()
        raw, trimmed = self._line().split()
        return int(raw), int(trimmed)

    def __exit__(self, *exc_info: object) -> None:
        proc, stdin, stdout = self._pipes()
        stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        finally:
            stdout.close()


if __name__ == "__main__":
    raise_fd_limit()
    if os.environ.get("BENCH_TRACEMALLOC"):
        tracemalloc.start()
    anyio.run(_serve, int(sys.argv[1]))
