"""End to end over loopback: one long streamed reply from the mock server, into VoxtaClient
and into voxta-client 0.2.0 (in its own virtualenv), chunks per second.

The mock runs in a process of its own (:mod:`benchmarks.mockproc`), a fresh one per run, with
``reply_delay=0`` and 16 chunks per WebSocket message, so it writes the reply's N chunks as
fast as it can. Both clients time from the first ``replyChunk`` to ``replyEnd`` in their
callbacks, on the wall clock and in CPU time of their own process.

Two rates per client: chunks per second (wall clock), which is capped by how fast the mock,
a Python process too, produces the reply (a client faster than that waits for it); and
chunks per CPU-second of the client's process, which is what the client itself costs per
chunk whatever the mock does.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from benchmarks.mockproc import MockProcess

VC_SCRIPT = Path(__file__).resolve().parent / "vc_receive.py"


async def ours(url: str) -> dict[str, float]:
    """Our client: the same steps as vc_receive.py, with VoxtaClient."""
    from voxta_proto import VoxtaClient

    stamps: list[float] = []
    cpu: list[float] = []
    done = anyio.Event()
    ready = anyio.Event()
    client = VoxtaClient(url)
    client.on("ready", lambda _: ready.set())

    def on_chunk(_: Any) -> None:
        stamps.append(time.perf_counter())
        if not cpu:
            cpu.append(time.process_time())

    def on_end(_: Any) -> None:
        stamps.append(time.perf_counter())
        cpu.append(time.process_time())
        done.set()

    client.on("replyChunk", on_chunk)

    client.on("replyEnd", on_end)
    with anyio.fail_after(300):
        async with client:
            await ready.wait()
            await client.send_message("Tell me a long story.")
            await done.wait()
    return {"chunks": len(stamps) - 1, "seconds": stamps[-1] - stamps[0],
            "cpu_seconds": cpu[-1] - cpu[0]}


def voxta_client(python: str, url: str) -> dict[str, float]:
    out = subprocess.run([python, str(VC_SCRIPT), url], capture_output=True, text=True,
                         timeout=600, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"voxta-client failed: {out.stdout}{out.stderr}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


CPU = " per cpu-second"
"""Suffix of the keys with chunks per CPU-second of the client's process."""


def run(chunks: int, repeats: int, vc_python: str | None) -> dict[str, Any]:
    """Interleaved runs, each client on a fresh mock (the chat's history would otherwise
    grow by a long reply per run); medians of chunks per second (``"ours"``,
    ``"voxta-client"``) and per CPU-second (the same keys plus :data:`CPU`)."""
    rates: dict[str, list[float]] = {"ours": [], "voxta-client": [], "ours" + CPU: [],
                                     "voxta-client" + CPU: []}

    def add(name: str, result: dict[str, float]) -> None:
        rates[name].append(result["chunks"] / result["seconds"])
        rates[name + CPU].append(result["chunks"] / max(result["cpu_seconds"], 1e-6))

    for _ in range(repeats):
        with MockProcess(chunks) as mock:
            add("ours", anyio.run(ours, mock.url))
        if vc_python is not None:
            with MockProcess(chunks) as mock:
                add("voxta-client", voxta_client(vc_python, mock.url))
    return {name: statistics.median(values) if values else None
            for name, values in rates.items()} | {"chunks": chunks, "runs": repeats}


if __name__ == "__main__":
    print(run(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None))
