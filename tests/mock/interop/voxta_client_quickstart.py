"""voxta-client 0.2.0's quick start against a URL; run in voxta-client's own virtualenv.

    python voxta_client_quickstart.py <base url> [idle seconds]

Exits 0 when the client became ready, saw a streamed reply (replyChunk then replyEnd) to its
message, and, after the idle time, a reply to a second one, with no error; prints what went
wrong otherwise.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from voxta_client import VoxtaClient  # type: ignore[import-not-found]


async def main(url: str, idle: float = 0.0) -> int:
    client = VoxtaClient(url)
    ready = asyncio.Event()
    replied = asyncio.Event()
    chunks: list[str] = []
    errors: list[str] = []

    def on_reply_end(_: Any) -> None:
        if chunks:
            replied.set()

    client.on("ready", lambda _: ready.set())
    client.on("replyChunk", lambda p: chunks.append(p["text"]))
    client.on("replyEnd", on_reply_end)
    client.on("error", lambda p: errors.append(p.get("message")))
    token, cookies = client.negotiate()
    task = asyncio.create_task(client.connect(token, cookies))
    await asyncio.wait_for(ready.wait(), 10)
    await client.send_message("Hello! Tell me a short story.")
    await asyncio.wait_for(replied.wait(), 10)
    first = len(chunks)
    if idle:  # then prove the connection survived: a second message gets a reply
        await asyncio.sleep(idle)
        replied.clear()
        await client.send_message("Are you still there?")
        await asyncio.wait_for(replied.wait(), 10)
        if len(chunks) == first:
            errors.append(f"no reply after {idle} s idle")
    await client.close()
    await asyncio.wait_for(task, 10)
    if errors:
        print("errors:", errors)
        return 1
    print("reply:", " ".join(chunks))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)))
