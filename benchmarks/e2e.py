"""End to end over loopback: one long streamed reply into each client, chunks per second and
per CPU-second of the client's own process.

Two servers, each in a process of its own:

- :mod:`benchmarks.tinyserver`, which costs almost nothing (the reply's frames are built
  before the run and written in one go), so the client is the bottleneck; at 1 record per
  WebSocket message (a real server streaming token by token) and at 16;
- the mock (:mod:`benchmarks.mockproc`, a fresh one per run, ``reply_delay=0``, 16 records
  per WebSocket message), a Python server as slow as a client, so its wall-clock rate is
  capped by how fast the mock writes.

Every client runs in a process of its own (:mod:`benchmarks.clients`; voxta-client 0.2.0 from
its virtualenv with ``vc_receive.py``) and times from the first ``replyChunk`` to ``replyEnd``
in its callbacks. Runs are interleaved (every client once, then again), the order rotating
each round; the results are medians. Chunks per CPU-second of the client's process is what
the client itself costs per chunk, whatever the server and the other processes on the
machine do.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.mockproc import ROOT, MockProcess

VC_SCRIPT = Path(__file__).resolve().parent / "vc_receive.py"
VOXTA = {"voxta-wsproto": "VoxtaClient, wsproto", "voxta-websockets": "VoxtaClient, websockets"}
VC = "voxta-client"
BARE = "bare"
CLIENTS = (*VOXTA, VC, BARE)
LABELS = {**VOXTA, VC: "voxta-client 0.2.0", BARE: "bare websockets + json.loads"}
PER_MESSAGE = (1, 16)
"""Records per WebSocket message of the tiny server's reply."""
NO_VC = "no virtualenv with voxta-client 0.2.0 (nox -s bench builds one)"


@dataclass
class Rates:
    """One client against one server: medians over the runs, or why it did not run."""

    client: str
    per_second: list[float] = field(default_factory=list)
    per_cpu_second: list[float] = field(default_factory=list)
    unavailable: str | None = None

    def add(self, result: dict[str, float]) -> None:
        self.per_second.append(result["chunks"] / max(result["seconds"], 1e-9))
        self.per_cpu_second.append(result["chunks"] / max(result["cpu_seconds"], 1e-6))

    @property
    def cpu(self) -> float | None:
        """Median chunks per CPU-second of the client's process."""
        return statistics.median(self.per_cpu_second) if self.per_cpu_second else None

    @property
    def wall(self) -> float | None:
        """Median chunks per second (wall clock)."""
        return statistics.median(self.per_second) if self.per_second else None

    def record(self) -> dict[str, object]:
        return {"client": self.client, "chunks_per_second": self.wall,
                "chunks_per_cpu_second": self.cpu, "runs": len(self.per_cpu_second),
                "unavailable": self.unavailable}


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def run_client(name: str, url: str, vc_python: str | None) -> dict[str, object]:
    """One run of one client in a fresh process: its JSON line (maybe ``unavailable``)."""
    if name == VC:
        if vc_python is None:
            return {"unavailable": NO_VC}
        command = [vc_python, str(VC_SCRIPT), url]
    else:
        command = [sys.executable, "-m", "benchmarks.clients", name, url]
    out = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False,
                         env=_env(), cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"{name} failed: {out.stdout}{out.stderr}")
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _one(rates: Rates, url: str, vc_python: str | None) -> None:
    if rates.unavailable is not None:
        return
    result = run_client(rates.client, url, vc_python)
    if "unavailable" in result:
        rates.unavailable = str(result["unavailable"])
    else:
        rates.add(result)  # type: ignore[arg-type]


@contextmanager
def tiny_server(chunks: int, per_message: int) -> Iterator[str]:
    """The tiny server in a process of its own; yields its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.tinyserver", str(chunks),
                             str(per_message)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=_env(), cwd=ROOT)
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the tiny server did not start")
        yield url
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def _rotated(items: tuple[str, ...], turn: int) -> tuple[str, ...]:
    turn %= len(items)
    return items[turn:] + items[:turn]


def run_tiny(chunks: int, repeats: int, vc_python: str | None,
             clients: tuple[str, ...] = CLIENTS) -> dict[int, dict[str, Rates]]:
    """Every client against the tiny server, at each of :data:`PER_MESSAGE`, interleaved."""
    table = {n: {c: Rates(c) for c in clients} for n in PER_MESSAGE}
    with tiny_server(chunks, PER_MESSAGE[0]) as one, tiny_server(chunks, PER_MESSAGE[1]) as many:
        urls = {PER_MESSAGE[0]: one, PER_MESSAGE[1]: many}
        for turn in range(repeats):
            for n in PER_MESSAGE:
                for client in _rotated(clients, turn):
                    _one(table[n][client], urls[n], vc_python)
    return table


def run_mock(chunks: int, repeats: int, vc_python: str | None,
             clients: tuple[str, ...] = (*VOXTA, VC)) -> dict[str, Rates]:
    """Clients against the mock, a fresh one per run (the chat's history would otherwise
    grow by a long reply per run), interleaved."""
    table = {c: Rates(c) for c in clients}
    if VC in table and vc_python is None:
        table[VC].unavailable = NO_VC
    for turn in range(repeats):
        for client in _rotated(clients, turn):
            if table[client].unavailable is None:
                with MockProcess(chunks) as mock:
                    _one(table[client], mock.url, vc_python)
    return table


def ratio(a: Rates, b: Rates) -> float | None:
    """``a``'s chunks per CPU-second over ``b``'s, None when either did not run."""
    if a.cpu is None or b.cpu is None:
        return None
    return a.cpu / b.cpu


if __name__ == "__main__":
    for n, row in run_tiny(int(sys.argv[1]), int(sys.argv[2]),
                           sys.argv[3] if len(sys.argv) > 3 else None).items():
        print(n, {c: r.record() for c, r in row.items()})
