"""The in-memory transport pair."""

from __future__ import annotations

import anyio
import pytest

from voxta_proto.errors import TransportClosed
from voxta_proto.transports import MemoryTransport, MessageTransport, memory_transport_pair


@pytest.mark.anyio
async def test_messages_flow_both_ways_and_are_recorded() -> None:
    with anyio.fail_after(10):
        client, server = memory_transport_pair()
        async with client, server:
            await client.send("text")
            await client.send(b"\x00binary")
            await server.send(b"reply")
            assert await server.receive() == "text"
            assert await server.receive() == b"\x00binary"
            assert await client.receive() == b"reply"
            assert client.sent == ["text", b"\x00binary"]
            assert server.sent == [b"reply"]


@pytest.mark.anyio
async def test_close_code_and_reason_reach_the_peer_after_pending_messages() -> None:
    with anyio.fail_after(10):
        client, server = memory_transport_pair()
        await client.send("last words")
        await client.aclose(4001, "going away")
        assert await server.receive() == "last words"
        with pytest.raises(TransportClosed) as info:
            await server.receive()
        assert (info.value.code, info.value.reason) == (4001, "going away")
        assert (server.close_code, server.close_reason) == (4001, "going away")
        with pytest.raises(TransportClosed) as sent_info:
            await server.send("too late")
        assert sent_info.value.code == 4001
        assert server.sent == []
        await server.aclose()


@pytest.mark.anyio
async def test_closed_end_refuses_everything_and_close_is_idempotent() -> None:
    with anyio.fail_after(10):
        client, server = memory_transport_pair()
        await client.aclose()
        await client.aclose(1011)
        with pytest.raises(TransportClosed) as info:
            await client.receive()
        assert info.value.code == 1000
        with pytest.raises(TransportClosed):
            await client.send("x")
        await server.aclose()  # closing after the peer did is fine too


@pytest.mark.anyio
async def test_close_wakes_a_blocked_receiver() -> None:
    with anyio.fail_after(10):
        client, server = memory_transport_pair()
        caught: list[TransportClosed] = []

        async def reader() -> None:
            with pytest.raises(TransportClosed) as info:
                await server.receive()
            caught.append(info.value)

        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await anyio.wait_all_tasks_blocked()
            await client.aclose(1001, "bye")
        assert caught[0].code == 1001
        await server.aclose()


@pytest.mark.anyio
async def test_bounded_buffer_applies_backpressure() -> None:
    with anyio.fail_after(10):
        client, server = memory_transport_pair(max_buffer_size=1)
        await client.send("one")
        done = anyio.Event()

        async def second_send() -> None:
            await client.send("two")
            done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(second_send)
            await anyio.wait_all_tasks_blocked()
            assert not done.is_set()
            assert await server.receive() == "one"
            assert await server.receive() == "two"
        await client.aclose()
        await server.aclose()


@pytest.mark.anyio
async def test_rejects_non_message_types() -> None:
    with anyio.fail_after(10):
        client, server = memory_transport_pair()
        async with client, server:
            with pytest.raises(TypeError):
                await client.send(42)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_is_a_message_transport() -> None:
    a, b = memory_transport_pair()
    transports: list[MessageTransport] = [a, b]
    for transport in transports:
        assert isinstance(transport, MemoryTransport)
        await transport.aclose()


@pytest.mark.anyio
async def test_receive_many_takes_everything_queued_then_reports_the_close() -> None:
    with anyio.fail_after(10):
        client, server = memory_transport_pair()
        await client.send_text("é1".encode())
        await client.send(b"\x00two")
        await client.send("three")
        await client.aclose(4000, "done")
        assert await server.receive_many() == ["é1".encode(), b"\x00two", b"three"]
        with pytest.raises(TransportClosed) as info:
            await server.receive_many()
        assert (info.value.code, info.value.reason) == (4000, "done")
        assert client.sent == ["é1", b"\x00two", "three"]  # text recorded as str
        await server.aclose()


@pytest.mark.anyio
async def test_send_text_refuses_bytes_that_are_not_utf8() -> None:
    with anyio.fail_after(10):
        client, server = memory_transport_pair()
        async with client, server:
            with pytest.raises(ValueError, match="not UTF-8"):
                await client.send_text(b"\xff")
            assert client.sent == []
