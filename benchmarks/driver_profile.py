"""Client CPU per WebSocket message at one record per message (issue 12's harness).

A server process that costs almost nothing writes N pre-encoded ``replyChunk`` frames,
one record per WebSocket message, as fast as it can right after ``welcome``;
``VoxtaClient`` counts them in a callback. Reported: client process CPU µs per message.

    python -m benchmarks.driver_profile [N] [--profile] [--engine wsproto|websockets]
"""

from __future__ import annotations

import cProfile
import pstats
import subprocess
import sys
import time

import anyio

N_DEFAULT = 20_000
RS = b"\x1e"
WELCOME = (b'{"type":1,"target":"ReceiveMessage","arguments":[{"$type":"welcome",'
           b'"voxtaServerVersion":"1.0","apiVersion":"1","user":{"id":"u","name":"U"}}]}' + RS)
CHUNK = (b'{"type":1,"target":"ReceiveMessage","arguments":[{"$type":"replyChunk",'
         b'"sessionId":"s","messageId":"m","senderId":"c","text":"token ","startIndex":0,'
         b'"endIndex":6,"audioUrl":"","isNarration":false}]}' + RS)


async def _server(n: int) -> None:
    from voxta_proto.transports import HttpRequest, HttpResponse, WebSocketUpgrade, serve

    async def hub(transport, _request) -> None:  # type: ignore[no-untyped-def]
        await transport.receive()  # handshake
        await transport.send_text(b"{}" + RS)
        await transport.receive()  # authenticate
        await transport.send_text(WELCOME)
        send_text = transport.send_text
        for _ in range(n):
            await send_text(CHUNK)
        await anyio.sleep(3600)

    async def app(request: HttpRequest) -> HttpResponse | WebSocketUpgrade:
        if request.path.endswith("/negotiate"):
            return HttpResponse(200, (("Content-Type", "application/json"),),
                                b'{"negotiateVersion":1,"connectionId":"c","connectionToken":"t",'
                                b'"availableTransports":[{"transport":"WebSockets",'
                                b'"transferFormats":["Text"]}]}')
        return WebSocketUpgrade(hub)

    async with anyio.create_task_group() as tg:
        address = await tg.start(serve, app)
        print(address.port, flush=True)


async def _client(port: int, n: int, profile: bool, engine: str) -> float:
    from voxta_proto import VoxtaClient

    done = anyio.Event()
    count = 0

    def on_chunk(_event: object) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    client = VoxtaClient(f"http://127.0.0.1:{port}", reconnect=(), websocket_engine=engine)
    client.on("replyChunk", on_chunk)
    profiler = cProfile.Profile() if profile else None
    async with client:
        start = time.process_time()
        if profiler:
            profiler.enable()
        await done.wait()
        if profiler:
            profiler.disable()
        used = time.process_time() - start
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(18)
    return used


def main() -> None:
    argv = sys.argv[1:]
    engine = "wsproto"
    if "--engine" in argv:
        at = argv.index("--engine")
        engine = argv[at + 1]
        del argv[at:at + 2]
    args = [a for a in argv if not a.startswith("--")]
    n = int(args[0]) if args else N_DEFAULT
    if "--serve" in sys.argv:
        anyio.run(_server, n)
        return
    server = subprocess.Popen([sys.executable, "-m", "benchmarks.driver_profile", str(n),
                               "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        used = anyio.run(_client, port, n, "--profile" in argv, engine)
        print(f"{n} messages, {engine}: {used * 1e6 / n:.1f} µs client CPU per message "
              f"({n / used:,.0f} chunks per CPU-second)")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
