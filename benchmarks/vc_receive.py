"""Runs in voxta-client's own virtualenv: one streamed reply from the mock, timed.

Usage: ``python vc_receive.py URL``. Prints one JSON line:
``{"chunks": n, "seconds": t, "cpu_seconds": c}``, ``t`` from the first ``replyChunk`` to
``replyEnd`` as seen by the client's callbacks, ``c`` the CPU time this process used then.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from voxta_client import VoxtaClient  # type: ignore[import-not-found]


async def main(url: str) -> int:
    client = VoxtaClient(url)
    ready = asyncio.Event()
    done = asyncio.Event()
    stamps: list[float] = []
    cpu: list[float] = []

    def on_chunk(_: Any) -> None:
        stamps.append(time.perf_counter())
        if not cpu:
            cpu.append(time.process_time())

    def on_end(_: Any) -> None:
        stamps.append(time.perf_counter())
        cpu.append(time.process_time())
        done.set()

    client.on("ready", lambda _: ready.set())
    client.on("replyChunk", on_chunk)
    client.on("replyEnd", on_end)
    token, cookies = client.negotiate()
    task = asyncio.create_task(client.connect(token, cookies))
    await asyncio.wait_for(ready.wait(), 30)
    await client.send_message("Tell me a long story.")
    await asyncio.wait_for(done.wait(), 300)
    await client.close()
    await asyncio.wait_for(task, 30)
    print(json.dumps({"chunks": len(stamps) - 1, "seconds": stamps[-1] - stamps[0],
                      "cpu_seconds": cpu[-1] - cpu[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
