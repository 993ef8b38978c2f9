"""The chaos proxy's own tests (tests/chaos.py), on asyncio and trio, each with a timeout:
forwarding, cuts at an exact byte offset both ways, FIN and RST, stalls, stopped reading,
reconnecting through the same port, and seeded choices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from anyio.abc import SocketAttribute, SocketStream

from chaos import ChaosProxy, Cut, Direction

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(20)]


@asynccontextmanager
async def echo_server(received: list[bytes]) -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 that echoes and records what it received."""

    async def handle(stream: SocketStream) -> None:
        async with stream:
            try:
                while True:
                    data = await stream.receive()
                    received.append(data)
                    await stream.send(data)
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield listener.extra(SocketAttribute.local_port)
        tg.cancel_scope.cancel()


async def read_until_end(stream: SocketStream) -> tuple[bytes, type[Exception] | None]:
    """Everything the stream delivers before it ends, and how it ended."""
    data = b""
    with anyio.fail_after(5):
        while True:
            try:
                data += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError) as exc:
                return data, type(exc)


async def read_exactly(stream: SocketStream, size: int) -> bytes:
    data = b""
    with anyio.fail_after(5):
        while len(data) < size:
            data += await stream.receive()
    return data


async def test_forwards_both_ways_unchanged() -> None:
    received: list[bytes] = []
    async with echo_server(received) as port, ChaosProxy("127.0.0.1", port) as proxy:
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as client:
            payload = bytes(range(256)) * 64
            await client.send(payload)
            assert await read_exactly(client, len(payload)) == payload
        assert b"".join(received) == payload
        assert proxy.cuts == []
        assert proxy.accepted == 1


@pytest.mark.parametrize("rst", [False, True])
async def test_cut_upstream_forwards_exactly_n_bytes(rst: bool) -> None:
    received: list[bytes] = []
    async with echo_server(received) as port, ChaosProxy("127.0.0.1", port) as proxy:
        proxy.cut_after(37, Direction.UP, rst=rst)
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as client:
            await client.send(b"x" * 100)
            echoed, _ = await read_until_end(client)
        assert b"".join(received) == b"x" * 37
        assert len(echoed) <= 37
        assert proxy.cuts == [Cut(0, Direction.UP, 37, rst)]
        assert proxy.open_connections == 0


async def test_cut_downstream_in_the_middle_of_a_message() -> None:
    received: list[bytes] = []
    async with echo_server(received) as port, ChaosProxy("127.0.0.1", port) as proxy:
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as client:
            await client.send(b"a" * 10)
            assert await read_exactly(client, 10) == b"a" * 10
            proxy.cut_after(5, Direction.DOWN)
            await client.send(b"b" * 10)
            echoed, ended_by = await read_until_end(client)
        assert echoed == b"b" * 5
        assert ended_by is anyio.EndOfStream
        assert proxy.cuts == [Cut(0, Direction.DOWN, 15, rst=False)]


async def test_reset_is_seen_as_a_broken_connection() -> None:
    received: list[bytes] = []
    async with echo_server(received) as port, ChaosProxy("127.0.0.1", port) as proxy:
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as client:
            await client.send(b"hello")
            assert await read_exactly(client, 5) == b"hello"
            await proxy.reset()
            _, ended_by = await read_until_end(client)
        assert ended_by is anyio.BrokenResourceError
        assert [cut.rst for cut in proxy.cuts] == [True]


async def test_stall_holds_bytes_until_resume() -> None:
    received: list[bytes] = []
    async with echo_server(received) as port, ChaosProxy("127.0.0.1", port) as proxy, \
            await anyio.connect_tcp("127.0.0.1", proxy.port) as client:
        proxy.stall()
        await client.send(b"held")
        with anyio.move_on_after(0.2) as scope:
            await client.receive()
        assert scope.cancelled_caught  # nothing came back while stalled
        assert received == []
        proxy.resume()
        assert await read_exactly(client, 4) == b"held"


async def test_stop_reading_blocks_the_clients_writes() -> None:
    received: list[bytes] = []
    async with echo_server(received) as port, ChaosProxy("127.0.0.1", port) as proxy, \
            await anyio.connect_tcp("127.0.0.1", proxy.port) as client:
        await client.send(b"first")
        assert await read_exactly(client, 5) == b"first"
        proxy.stop_reading()
        sent = 0
        with anyio.move_on_after(0.5):
            while True:  # fills the kernel buffers, then blocks
                await client.send(b"z" * 65536)
                sent += 65536
        assert sent < 64 * 1024 * 1024  # it did block
        assert b"".join(received) == b"first"
        proxy.resume()
        await client.send(b"!")
        echoed = b""
        with anyio.fail_after(5):
            while not echoed.endswith(b"!"):
                echoed += await client.receive()
        # A send cut short by the timeout may still have queued its bytes (asyncio).
        assert sent + 1 <= len(echoed) <= sent + 65536 + 1


async def test_a_new_connection_goes_through_after_a_cut() -> None:
    received: list[bytes] = []
    async with echo_server(received) as port, ChaosProxy("127.0.0.1", port) as proxy:
        proxy.cut_after(0, Direction.UP, rst=True)
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as first:
            await first.send(b"lost")
            await read_until_end(first)
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as second:
            await second.send(b"kept")
            assert await read_exactly(second, 4) == b"kept"
        assert proxy.accepted == 2
        assert [cut.connection for cut in proxy.cuts] == [0]


def test_random_choices_follow_the_seed() -> None:
    def choices(seed: int) -> list[tuple[Direction, int, bool]]:
        proxy = ChaosProxy("127.0.0.1", 1, seed=seed)
        return [proxy.cut_at_random(within=1000) for _ in range(20)]

    assert choices(3) == choices(3)
    assert choices(3) != choices(4)
    assert {direction for direction, _, _ in choices(3)} == set(Direction)
    with pytest.raises(ValueError, match="negative"):
        ChaosProxy("127.0.0.1", 1).cut_after(-1, Direction.UP)
