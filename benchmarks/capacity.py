"""Mock capacity: N concurrent VoxtaClients on loopback each authenticate, start a chat and
get one reply; then all stay connected, idle, while the server's memory is measured.

The server runs in its own process (:mod:`benchmarks.mockproc`); memory per idle
connection is the growth of its resident memory (after ``gc.collect()`` and glibc's
``malloc_trim``, so free heap the allocator keeps is not counted; the untrimmed growth is
reported too) from before the first client to when all N are connected and idle, divided
by N.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass
from typing import Any

import anyio

from benchmarks.mockproc import MockProcess, raise_fd_limit

CHARACTER_ID = "22222222-2222-4222-8222-222222222222"
"""A character of the mock's default data."""


@dataclass
class Outcome:
    clients: int
    failures: int
    p50: float
    p99: float
    bytes_per_idle_connection: float
    """Growth of the server's RSS, after ``malloc_trim``, per connected client."""
    untrimmed_bytes_per_idle_connection: float
    """The same without ``malloc_trim`` (includes free heap the allocator kept)."""
    errors: list[str]


class _Countdown:
    """Set once ``tick()`` was called ``count`` times."""

    def __init__(self, count: int) -> None:
        self.left = count
        self.event = anyio.Event()
        if count <= 0:
            self.event.set()

    def tick(self) -> None:
        self.left -= 1
        if self.left <= 0:
            self.event.set()

    async def wait(self) -> None:
        await self.event.wait()


async def _one_client(url: str, latencies: list[float], errors: list[str],
                      connected: list[int], all_idle: anyio.Event,
                      gate: anyio.Semaphore, finished: _Countdown) -> None:
    from voxta_proto import VoxtaClient
    from voxta_proto.voxta import ReplyEnd

    ends: list[ReplyEnd] = []
    got_end = anyio.Event()

    def on_end(event: Any) -> None:
        ends.append(event)
        got_end.set()

    client = VoxtaClient(url, reconnect=())
    client.on("replyEnd", on_end)
    await gate.acquire()  # limits concurrent handshakes, not connections
    held = True
    counted = False
    try:
        async with client:
            gate.release()
            held = False
            try:
                with anyio.fail_after(120):
                    started = await client.start_chat(CHARACTER_ID)
                    while not ends:  # the greeting
                        await got_end.wait()
                    got_end = anyio.Event()
                    t0 = time.perf_counter()
                    await client.send_message("Hello, how are you?",
                                              session_id=started.session_id)
                    while len(ends) < 2:
                        await got_end.wait()
                    latencies.append(time.perf_counter() - t0)
                    connected.append(1)
                    counted = True
                    finished.tick()
            except Exception as exc:  # counted as a failure
                errors.append(f"{type(exc).__name__}: {exc}")
                counted = True
                finished.tick()
                return
            await all_idle.wait()
    except Exception as exc:  # a failed connect, or a failed close after the turn
        if not counted:
            errors.append(f"{type(exc).__name__}: {exc}")
            finished.tick()
    finally:
        if held:
            gate.release()


async def _run(url: str, clients: int, mock: MockProcess) -> Outcome:
    latencies: list[float] = []
    errors: list[str] = []
    connected: list[int] = []
    all_idle = anyio.Event()
    finished = _Countdown(clients)
    gate = anyio.Semaphore(64)
    before = await anyio.to_thread.run_sync(mock.rss)
    async with anyio.create_task_group() as tg:
        for _ in range(clients):
            tg.start_soon(_one_client, url, latencies, errors, connected, all_idle, gate,
                          finished)
        with anyio.fail_after(600):
            await finished.wait()
        await anyio.sleep(0.5)  # let the server finish the turns' bookkeeping
        after = await anyio.to_thread.run_sync(mock.rss)
        all_idle.set()
    latencies.sort()
    n = len(latencies)
    return Outcome(
        clients=clients, failures=len(errors),
        p50=statistics.median(latencies) if n else float("nan"),
        p99=latencies[min(n - 1, int(n * 0.99))] if n else float("nan"),
        bytes_per_idle_connection=(after[1] - before[1]) / max(1, len(connected)),
        untrimmed_bytes_per_idle_connection=(after[0] - before[0]) / max(1, len(connected)),
        errors=errors[:5])


def run(clients: int) -> Outcome:
    """Failures are counted and a few shown in the outcome, so the clients' warning per
    lost connection is held back for the run (it would be one line per failure)."""
    raise_fd_limit()
    client_log = logging.getLogger("voxta_proto.client")
    level = client_log.level
    client_log.setLevel(logging.ERROR)
    try:
        with MockProcess() as mock:
            # Warm up: one client first, so code loaded on first use is not counted per
            # connection.
            anyio.run(_run, mock.url, 1, mock)
            return anyio.run(_run, mock.url, clients, mock)
    finally:
        client_log.setLevel(level)


if __name__ == "__main__":
    import sys
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
