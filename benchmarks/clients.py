"""The end-to-end clients, each run in a process of its own so its CPU time is its own.

``python -m benchmarks.clients NAME URL`` connects, reaches a chat, sends one message and
reads the streamed reply; it prints one JSON line ``{"chunks": n, "seconds": t,
"cpu_seconds": c}``, ``t`` the wall time from the first ``replyChunk`` to ``replyEnd`` as the
client's callbacks see them, ``c`` this process's CPU time over the same span. ``NAME`` is
``voxta-wsproto`` or ``voxta-websockets`` (``VoxtaClient`` with that WebSocket engine) or
``bare`` (``websockets`` plus ``json.loads``, the least a Python client does). It prints
``{"unavailable": reason}`` instead when this build of ``VoxtaClient`` has no such engine.
voxta-client 0.2.0 runs the same steps from its own virtualenv (``vc_receive.py``).
"""

from __future__ import annotations

import inspect
import json
import sys
import time
import urllib.request
from importlib.util import find_spec
from typing import Any

import anyio

ENGINES = ("wsproto", "websockets")


class _Timer:
    """Stamps at the first ``replyChunk`` and at ``replyEnd``, wall and process CPU."""

    def __init__(self) -> None:
        self.chunks = 0
        self.start = self.start_cpu = self.end = self.end_cpu = 0.0

    def chunk(self) -> None:
        if not self.chunks:
            self.start, self.start_cpu = time.perf_counter(), time.process_time()
        self.chunks += 1

    def finish(self) -> None:
        self.end, self.end_cpu = time.perf_counter(), time.process_time()

    def result(self) -> dict[str, float]:
        # The first chunk's stamp is taken as it arrives: the rate counts the chunks after it.
        return {"chunks": self.chunks, "seconds": self.end - self.start,
                "cpu_seconds": self.end_cpu - self.start_cpu}


def engine_unavailable(engine: str) -> str | None:
    """Why ``VoxtaClient(websocket_engine=engine)`` cannot be built, or None if it can."""
    from voxta_proto import VoxtaClient

    try:
        VoxtaClient("http://127.0.0.1:1", websocket_engine=engine)
    except Exception as exc:  # the reason is what the table shows
        return f"{type(exc).__name__}: {exc}"
    return None


async def voxta(url: str, engine: str | None = None) -> dict[str, float]:
    """``VoxtaClient``; ``engine=None`` leaves the engine at the client's default."""
    from voxta_proto import VoxtaClient

    timer = _Timer()
    done = anyio.Event()
    ready = anyio.Event()
    options: dict[str, Any] = {} if engine is None else {"websocket_engine": engine}
    client = VoxtaClient(url, **options)
    client.on("ready", lambda _: ready.set())
    client.on("replyChunk", lambda _: timer.chunk())

    def on_end(_: Any) -> None:
        timer.finish()
        done.set()

    client.on("replyEnd", on_end)
    with anyio.fail_after(300):
        async with client:
            await ready.wait()
            await client.send_message("Tell me a long story.")
            await done.wait()
    return timer.result()


def _invoke(payload: dict[str, Any], invocation_id: int) -> str:
    return json.dumps({"type": 1, "target": "SendMessage", "arguments": [payload],
                       "invocationId": str(invocation_id)}) + "\x1e"


def bare(url: str) -> dict[str, float]:
    """``websockets`` and ``json.loads``: split each message on the record separator,
    decode each record to a dict, dispatch on ``$type``."""
    import asyncio

    request = urllib.request.Request(f"{url}/hub/negotiate?negotiateVersion=1", b"",
                                     method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        token = json.loads(response.read())["connectionToken"]
    timer = _Timer()
    asyncio.run(asyncio.wait_for(
        _bare_exchange(f"{url.replace('http', 'ws', 1)}/hub?id={token}", timer), 300))
    return timer.result()


async def _bare_exchange(ws_url: str, timer: _Timer) -> None:
    from websockets.asyncio.client import connect

    async with connect(ws_url, compression=None) as ws:
        await ws.send('{"protocol":"json","version":1}\x1e')
        await ws.recv()
        await ws.send(_invoke({"$type": "authenticate", "client": "bench",
                               "clientVersion": "1.0", "scope": ["role:app"],
                               "capabilities": {}}, 0))
        while True:
            for record in (await ws.recv()).split("\x1e"):  # type: ignore[arg-type]
                if not record:
                    continue
                message = json.loads(record)
                if message.get("type") != 1:
                    continue
                payload = message["arguments"][0]
                kind = payload["$type"]
                if kind == "replyChunk":
                    timer.chunk()
                elif kind == "replyEnd":
                    timer.finish()
                    return
                elif kind == "chatsSessionsUpdated":
                    session = payload["sessions"][0]["sessionId"]
                    await ws.send(_invoke({"$type": "send", "sessionId": session,
                                           "text": "Tell me a long story.", "doReply": True},
                                          1))


def main(name: str, url: str) -> dict[str, Any]:
    if name == "bare":
        return bare(url)
    engine = name.removeprefix("voxta-")
    if engine not in ENGINES:
        raise SystemExit(f"unknown client {name!r}")
    from voxta_proto import VoxtaClient

    if "websocket_engine" not in inspect.signature(VoxtaClient).parameters:
        # Before engines existed the client spoke wsproto only: that is its row.
        if engine == "wsproto":
            return anyio.run(voxta, url, None)
        return {"unavailable": "VoxtaClient has no websocket_engine parameter yet"}
    reason = engine_unavailable(engine)
    if reason is None and engine == "websockets" and find_spec("websockets") is None:
        reason = "websockets is not installed"
    if reason is not None:
        return {"unavailable": reason}
    return anyio.run(voxta, url, engine)


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
