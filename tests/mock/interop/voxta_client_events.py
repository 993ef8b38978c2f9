"""voxta-client 0.2.0 against a URL, printing every event it emits; run in its virtualenv.

    python voxta_client_events.py <base url>

The quick start's flow (wait until ready, send a message, wait for the streamed reply
and the mock's ``speechPlaybackComplete`` and ``chatFlow`` after it, so that nothing is in
flight when it closes), then one JSON line: the list of ``[event name, text or null]``
the client emitted, in order
(its ``client_send`` echoes of what it sent included). Exits 1 on an ``error`` event.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from voxta_client import VoxtaClient  # type: ignore[import-not-found]


async def main(url: str) -> int:
    client = VoxtaClient(url)
    ready = asyncio.Event()
    settled = asyncio.Event()
    seen: list[list[Any]] = []
    emit = client._emit  # every event passes here; the public API has no catch-all

    async def spy(name: str, data: Any) -> None:
        text = data.get("text") if isinstance(data, dict) else None
        seen.append([str(name), text])
        await emit(name, data)
        if name == "chatFlow" and any(n == "speechPlaybackComplete" for n, _ in seen):
            settled.set()

    client._emit = spy
    client.on("ready", lambda _: ready.set())
    token, cookies = client.negotiate()
    task = asyncio.create_task(client.connect(token, cookies))
    await asyncio.wait_for(ready.wait(), 10)
    await client.send_message("Hello! Tell me a short story.")
    await asyncio.wait_for(settled.wait(), 10)
    await client.close()
    await asyncio.wait_for(task, 10)
    print(json.dumps(seen))
    return 1 if any(name == "error" for name, _ in seen) else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
