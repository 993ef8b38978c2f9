"""Interop with the ``websockets`` library (an independent implementation), asyncio only."""

from __future__ import annotations

import anyio
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed

from voxta_proto.errors import ReadError, TransportClosed
from voxta_proto.transports import (
    ConnectOptions,
    HttpRequest,
    WebSocketTransport,
    WebSocketUpgrade,
    connect_websocket,
)

from .helpers import echo_handler, running_server

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.network,
    pytest.mark.parametrize("anyio_backend", ["asyncio"]),
    pytest.mark.usefixtures("websocket_engine"),
]


async def _their_server(ws: ServerConnection) -> None:
    assert ws.request is not None
    path = ws.request.path
    if path == "/fragments":
        await ws.send(["frag-" * 1000, "ment-" * 1000, ""])
        await ws.send([b"\x01\x02", b"\x03"])
    elif path == "/ping":
        await (await ws.ping(b"theirs"))
        await ws.send("pong arrived")
    elif path == "/close":
        await ws.close(4003, "their reason")
        return
    elif path == "/big":
        await ws.send("q" * 200_000)
    elif path == "/headers":
        await ws.send(ws.request.headers.get("Authorization", "") + "|"
                      + ws.request.headers.get("Cookie", ""))
    async for message in ws:
        await ws.send(message)


async def test_our_client_against_their_server() -> None:
    with anyio.fail_after(10):
        async with ws_serve(_their_server, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            base = f"ws://127.0.0.1:{port}"

            async with await connect_websocket(f"{base}/echo") as ours:
                await ours.send("text é")
                assert await ours.receive() == "text é"
                await ours.send(b"\x00bytes")
                assert await ours.receive() == b"\x00bytes"

                received: list[str | bytes] = []

                async def reader() -> None:
                    received.append(await ours.receive())

                async with anyio.create_task_group() as tg:
                    tg.start_soon(reader)
                    await ours.ping(b"ours")  # websockets answers pings itself
                    await ours.send("after ping")
                assert received == ["after ping"]

            async with await connect_websocket(f"{base}/fragments") as ours:
                assert await ours.receive() == "frag-" * 1000 + "ment-" * 1000
                assert await ours.receive() == b"\x01\x02\x03"

            async with await connect_websocket(f"{base}/ping") as ours:
                assert await ours.receive() == "pong arrived"

            options = ConnectOptions(access_token="tok", cookies={"a": "1"})
            async with await connect_websocket(f"{base}/headers", options=options) as ours:
                assert await ours.receive() == "Bearer tok|a=1"

            ours = await connect_websocket(f"{base}/close")
            with pytest.raises(TransportClosed) as info:
                await ours.receive()
            assert (info.value.code, info.value.reason) == (4003, "their reason")
            await ours.aclose()

            ours = await connect_websocket(
                f"{base}/big", options=ConnectOptions(max_message_size=100_000)
            )
            with pytest.raises(ReadError, match="limit"):
                await ours.receive()
            await ours.aclose()


async def test_their_client_against_our_server() -> None:
    closes: list[tuple[int | None, str]] = []
    handler_done = anyio.Event()

    async def closing_handler(transport: WebSocketTransport, request: HttpRequest) -> None:
        if request.path == "/server-closes":
            await transport.send("closing now")
            await transport.aclose(4006, "our reason")
            return
        try:
            while True:
                await transport.send(await transport.receive())
        except TransportClosed as exc:
            closes.append((exc.code, exc.reason))
        finally:
            handler_done.set()

    async def app(request: HttpRequest) -> WebSocketUpgrade:
        return WebSocketUpgrade(closing_handler if request.path != "/echo" else echo_handler)

    with anyio.fail_after(10):
        async with running_server(app) as address:
            async with ws_connect(address.url("ws", "/echo")) as theirs:
                await theirs.send("hello")
                assert await theirs.recv() == "hello"
                await theirs.send(["fragmented " * 500, "message"])
                assert await theirs.recv() == "fragmented " * 500 + "message"
                await theirs.send(b"\xffbinary")
                assert await theirs.recv() == b"\xffbinary"
                await (await theirs.ping(b"are you there"))  # answered by our receive()

            theirs = await ws_connect(address.url("ws", "/client-closes"))
            await theirs.close(4005, "client reason")
            await handler_done.wait()
            assert closes == [(4005, "client reason")]

            async with ws_connect(address.url("ws", "/server-closes")) as theirs:
                assert await theirs.recv() == "closing now"
                with pytest.raises(ConnectionClosed) as info:
                    await theirs.recv()
                assert info.value.rcvd is not None
                assert (info.value.rcvd.code, info.value.rcvd.reason) == (4006, "our reason")
