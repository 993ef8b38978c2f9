"""HubClient against HubServer over loopback WebSockets, on asyncio and trio and in both
hub protocols (JSON and MessagePack): invoke, send, a hub error, a stream (and its
cancel), a client result, and a stateful reattach with nothing lost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from voxta_proto import HubClient, HubServer, InvocationError
from voxta_proto.driver import coalesce
from voxta_proto.errors import ConnectionClosed
from voxta_proto.hub.connection import HubConfig
from voxta_proto.hub_server import HubServerConnection
from voxta_proto.transports import ConnectOptions, MessageTransport, connect_websocket

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(20)]


def _hub() -> HubServer:
    server = HubServer()
    server.method("Add", lambda conn, a, b: a + b)

    def fail(conn: HubServerConnection) -> None:
        raise ValueError("nope")

    server.method("Fail", fail)

    async def ask(conn: HubServerConnection, question: str) -> Any:
        return await conn.invoke("Confirm", question)

    server.method("Ask", ask)

    async def echo_later(conn: HubServerConnection, text: str) -> None:
        await conn.send("Echo", text)

    server.method("EchoLater", echo_later)

    async def count(conn: HubServerConnection, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i
            await anyio.lowlevel.checkpoint()

    server.stream("Count", count)

    async def forever(conn: HubServerConnection) -> AsyncIterator[int]:
        i = 0
        while True:
            yield i
            i += 1
            await anyio.sleep(0.01)

    server.stream("Forever", forever)

    async def burst(conn: HubServerConnection, n: int) -> AsyncIterator[str]:
        for i in range(n):  # no checkpoint: every item is queued before the writer runs
            yield f"item {i:06d} " + "x" * 40

    server.stream("Burst", burst)
    return server


@pytest.fixture(params=["json", "messagepack"])
def protocol(request: pytest.FixtureRequest) -> str:
    """The hub protocol the client asks for; the server speaks both."""
    return str(request.param)


@pytest.fixture
async def hub_url() -> AsyncIterator[tuple[HubServer, str]]:
    server = _hub()
    async with anyio.create_task_group() as tg:
        address = await tg.start(server.serve)
        yield server, address.url(path="/hub")
        tg.cancel_scope.cancel()


async def test_invoke_send_error_and_stream(hub_url: tuple[HubServer, str],
                                            protocol: str) -> None:
    _, url = hub_url
    async with HubClient(url, protocol=protocol) as hub:
        assert await hub.invoke("Add", 2, 3) == 5
        assert await hub.invoke("add", 1.5, 1, result_type=float) == 2.5
        with pytest.raises(InvocationError, match="nope"):
            await hub.invoke("Fail")
        with pytest.raises(InvocationError, match="does not exist"):
            await hub.invoke("Missing")
        got: list[str] = []
        echoed = anyio.Event()

        def on_echo(text: str) -> None:
            got.append(text)
            echoed.set()

        hub.on("Echo", on_echo)
        await hub.send("EchoLater", "hi")
        with anyio.fail_after(5):
            await echoed.wait()
        assert got == ["hi"]
        async with hub.stream("Count", 5, item_type=int) as items:
            assert [item async for item in items] == [0, 1, 2, 3, 4]


async def test_stream_cancel_sends_cancel_invocation(hub_url: tuple[HubServer, str],
                                                     protocol: str) -> None:
    server, url = hub_url
    async with HubClient(url, protocol=protocol) as hub:
        async with hub.stream("Forever") as items:
            async for item in items:
                if item == 3:
                    break
        connection = next(iter(server.connections.values()))
        with anyio.fail_after(5):
            while connection._streams:  # the server cancelled its generator  # noqa: ASYNC110
                await anyio.sleep(0.01)
        assert await hub.invoke("Add", 1, 1) == 2  # the connection lives on


async def test_client_result(hub_url: tuple[HubServer, str], protocol: str) -> None:
    _, url = hub_url
    async with HubClient(url, protocol=protocol) as hub:
        async def confirm(question: str) -> str:
            return f"yes to {question}"

        hub.on("Confirm", confirm)
        assert await hub.invoke("Ask", "tea") == "yes to tea"


async def test_client_result_without_handler_is_a_hub_error(
        hub_url: tuple[HubServer, str], protocol: str) -> None:
    _, url = hub_url
    async with HubClient(url, protocol=protocol) as hub:
        with pytest.raises(InvocationError, match="no handler"):
            await hub.invoke("Ask", "tea")


async def test_stateful_reattach_loses_nothing(hub_url: tuple[HubServer, str],
                                               protocol: str) -> None:
    _, url = hub_url
    transports: list[MessageTransport] = []

    async def connector(url: str, *, options: ConnectOptions) -> MessageTransport:
        transport = await connect_websocket(url, options=options)
        transports.append(transport)
        return transport

    got: list[int] = []
    all_in = anyio.Event()

    def on_echo(value: int) -> None:
        got.append(value)
        if len(got) == 50:
            all_in.set()

    hub = HubClient(url, protocol=protocol, connector=connector)
    hub.on("Echo", on_echo)
    async with hub:
        for i in range(50):
            await hub.send("EchoLater", i)
            if i == 20:
                await transports[0].aclose(1000)  # drop the socket
        results = [await hub.invoke("Add", i, 1) for i in range(5)]
        with anyio.fail_after(10):
            await all_in.wait()
        assert hub.reattach_count == 1
        assert len(transports) == 2
    assert got == list(range(50))
    assert results == [1, 2, 3, 4, 5]


async def test_without_stateful_a_drop_fails_pending_calls(
        hub_url: tuple[HubServer, str], protocol: str) -> None:
    _, url = hub_url
    transports: list[MessageTransport] = []

    async def connector(url: str, *, options: ConnectOptions) -> MessageTransport:
        transport = await connect_websocket(url, options=options)
        transports.append(transport)
        return transport

    async with HubClient(url, protocol=protocol, connector=connector,
                         stateful_reconnect=False) as hub:
        await transports[0].aclose(1000)

        async def call_until_it_fails() -> None:
            with anyio.fail_after(5):
                while True:
                    await hub.invoke("Add", 1, 1)
                    await anyio.sleep(0.01)

        with pytest.raises(ConnectionClosed):
            await call_until_it_fails()


async def test_a_burst_over_the_message_limit_arrives_whole(hub_url: tuple[HubServer, str],
                                                             protocol: str) -> None:
    """40k stream items queued at once are ~2.5 MB: written as one WebSocket message
    they would pass the peer's 1 MiB limit and end the connection."""
    _, url = hub_url
    hub = HubClient(url, protocol=protocol, stateful_reconnect=False)
    async with hub, hub.stream("Burst", 40_000, item_type=str) as items:
        got = [item async for item in items]
    assert len(got) == 40_000
    assert got[-1].startswith("item 039999 ")


async def test_a_full_replay_buffer_waits_for_the_ack(protocol: str) -> None:
    """Stateful reconnect backpressure on both ends: sends and answers wait for the
    peer's Ack when the replay buffer is full, none is refused or dropped."""
    small = HubConfig(stateful_reconnect=True, max_buffered_bytes=2_000, ack_interval=0.01)
    server = _hub()
    server.hub_config = small
    async with anyio.create_task_group() as tg:
        address = await tg.start(server.serve)
        got: list[int] = []
        hub = HubClient(address.url(path="/hub"), protocol=protocol, hub_config=small)
        hub.on("Echo", got.append)
        async with hub:
            results = [await hub.invoke("Add", i, "-" * 50) for i in ("a", "b") * 50]
            for i in range(300):
                await hub.send("EchoLater", i)
            with anyio.fail_after(10):
                while len(got) < 300:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert results == [f"{i}{'-' * 50}" for i in ("a", "b") * 50]
    assert got == list(range(300))


def test_coalesce_keeps_order_and_the_limit() -> None:
    items = [bytes([i]) * 30 for i in range(10)] + [b"L" * 200, b"z"]
    joined = coalesce(items, limit=100)
    assert b"".join(joined) == b"".join(items)
    assert [len(m) for m in joined] == [90, 90, 90, 30, 200, 1]
    assert coalesce([b"one"]) == [b"one"]


async def test_stream_and_cancel_wait_for_room_too(protocol: str) -> None:
    """``stream()`` and a stream's cancel cannot await: with the replay buffer full they
    are queued once the Ack frees room, not refused."""
    small = HubConfig(stateful_reconnect=True, max_buffered_bytes=2_000, ack_interval=0.2)
    server = _hub()
    server.hub_config = small
    async with anyio.create_task_group() as tg:
        address = await tg.start(server.serve)
        hub = HubClient(address.url(path="/hub"), protocol=protocol, hub_config=small)
        hub.on("Echo", lambda value: None)
        async with hub:
            session = hub._session
            assert session is not None

            async def fill() -> None:
                while not session.hub.send_would_block:
                    await hub.send("EchoLater", "-" * 100)

            await fill()
            async with hub.stream("Count", 3, item_type=int) as items:
                assert [item async for item in items] == [0, 1, 2]
            async with hub.stream("Forever") as forever:
                await forever.__anext__()
                await fill()
            connection = next(iter(server.connections.values()))
            with anyio.fail_after(5):
                while connection._streams:  # the cancel arrived  # noqa: ASYNC110
                    await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
