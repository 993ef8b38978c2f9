"""End to end over loopback: one long streamed reply from the mock server, into VoxtaClient
and into voxta-client 0.2.0 (in its own virtualenv), chunks per second.

The mock runs in a process of its own (:mod:`benchmarks.mockproc`), a fresh one per run, with
``reply_delay=0``, so it writes the reply's N chunks as fast as it can and TCP
backpressure makes the client the bottleneck. Both clients time from the first
``replyChunk`` to ``replyEnd`` in their callbacks.
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
    done = anyio.Event()
    ready = anyio.Event()
    client = VoxtaClient(url)
    client.on("ready", lambda _: ready.set())
    client.on("replyChunk", lambda _: stamps.append(time.perf_counter()))

    def on_end(_: Any) -> None:
        stamps.append(time.perf_counter())
        done.set()

    client.on("replyEnd", on_end)
    with anyio.fail_after(300):
        async with client:
            await ready.wait()
            await client.send_message("Tell me a long story.")
            await done.wait()
    return {"chunks": len(stamps) - 1, "seconds": stamps[-1] - stamps[0]}


def voxta_client(python: str, url: str) -> dict[str, float]:
    out = subprocess.run([python, str(VC_SCRIPT), url], capture_output=True, text=True,
                         timeout=600, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"voxta-client failed: {out.stdout}{out.stderr}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(chunks: int, repeats: int, vc_python: str | None) -> dict[str, Any]:
    """Interleaved runs, each client on a fresh mock (the chat's history would otherwise
    grow by a long reply per run); medians of chunks per second for each client."""
    rates: dict[str, list[float]] = {"ours": [], "voxta-client": []}
    for _ in range(repeats):
        with MockProcess(chunks) as mock:
            result = anyio.run(ours, mock.url)
        rates["ours"].append(result["chunks"] / result["seconds"])
        if vc_python is not None:
            with MockProcess(chunks) as mock:
                result = voxta_client(vc_python, mock.url)
            rates["voxta-client"].append(result["chunks"] / result["seconds"])
    return {name: statistics.median(values) if values else None
            for name, values in rates.items()} | {"chunks": chunks, "runs": repeats}


if __name__ == "__main__":
    print(run(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None))
