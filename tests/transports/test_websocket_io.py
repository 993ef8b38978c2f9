"""receive_many/send_text, a peer that stops reading (issue 14) and engine selection,
each over both engines."""

from __future__ import annotations

import sys

import anyio
import pytest
from anyio.abc import ByteStream
from wsproto.events import AcceptConnection, CloseConnection, Ping, TextMessage

from voxta_proto.errors import (
    ReadError,
    TransportClosed,
    TransportError,
    TransportTimeout,
    WriteAborted,
)
from voxta_proto.transports import connect_websocket
from voxta_proto.transports.websocket import WebSocketTransport

from .helpers import accept_raw_websocket, echo_app, raw_server, running_server

pytestmark = [pytest.mark.anyio, pytest.mark.network, pytest.mark.usefixtures("websocket_engine")]

BIG = 16 * 1024 * 1024  # more than loopback socket buffers hold


async def test_the_engine_fixture_reaches_the_connection(websocket_engine: str) -> None:
    with anyio.fail_after(10):
        async with (
            running_server(echo_app()) as address,
            await connect_websocket(address.url("ws", "/")) as ws,
        ):
            assert ws.engine == websocket_engine


async def test_receive_many_returns_every_message_of_one_read() -> None:
    async def handler(stream: ByteStream) -> None:
        ws, _ = await accept_raw_websocket(stream)
        await stream.send(ws.send(AcceptConnection()))
        await anyio.sleep(0.1)
        frames = b"".join(ws.send(TextMessage(data=f"m{i}é")) for i in range(5))
        await stream.send(frames)  # one write, one read on the other side
        await anyio.sleep(0.1)
        whole = ws.send(TextMessage(data="split across reads"))
        await stream.send(whole[:5])
        await anyio.sleep(0.1)
        await stream.send(whole[5:] + ws.send(TextMessage(data="last"))
                          + ws.send(CloseConnection(4001, "bye")))
        await anyio.sleep(1)

    with anyio.fail_after(10):
        async with raw_server(handler) as address:
            ws = await connect_websocket(address.url("ws", "/"))
            assert await ws.receive_many() == [f"m{i}é".encode() for i in range(5)]
            assert await ws.receive_many() == [b"split across reads", b"last"]
            with pytest.raises(TransportClosed) as info:
                await ws.receive_many()
            assert (info.value.code, info.value.reason) == (4001, "bye")
            await ws.aclose()


async def test_messages_sent_with_the_101_come_out_at_once() -> None:
    async def handler(stream: ByteStream) -> None:
        ws, _ = await accept_raw_websocket(stream)
        await stream.send(ws.send(AcceptConnection()) + ws.send(TextMessage(data="a"))
                          + ws.send(TextMessage(data="b")))
        await anyio.sleep(0.5)

    with anyio.fail_after(5):
        async with raw_server(handler) as address:
            ws = await connect_websocket(address.url("ws", "/"))
            assert await ws.receive_many() == [b"a", b"b"]
            await ws.aclose()


async def test_send_text_sends_utf8_bytes_as_text() -> None:
    with anyio.fail_after(10):
        async with (
            running_server(echo_app()) as address,
            await connect_websocket(address.url("ws", "/")) as ws,
        ):
            await ws.send_text("héllo ✓".encode())
            assert await ws.receive() == "héllo ✓"  # a text frame, not binary
            with pytest.raises(ValueError, match="UTF-8"):
                await ws.send_text(b"\xff\xfe")
            await ws.send_text(b"still open")
            assert await ws.receive_many() == [b"still open"]


async def _silent_peer(stream: ByteStream, ready: anyio.Event | None = None) -> None:
    """Completes the upgrade, sends a ping and a message a little later, never reads."""
    ws, _ = await accept_raw_websocket(stream)
    await stream.send(ws.send(AcceptConnection()))
    await anyio.sleep(0.5)  # the client's big send is stalled by now
    await stream.send(ws.send(Ping(b"are you there")) + ws.send(TextMessage(data="hello")))
    await anyio.sleep(30)


async def test_a_stalled_write_never_blocks_the_reader() -> None:
    """A ping (whose pong cannot be written) and a message arrive while our send is
    stuck on a peer that does not read: the reader still gets the message at once."""
    with anyio.fail_after(15):
        async with raw_server(_silent_peer) as address:
            ws = await connect_websocket(address.url("ws", "/"), write_timeout=None,
                                         close_timeout=0.5)

            async def send_big() -> None:
                with pytest.raises(TransportError):  # aclose ends the stalled write
                    await ws.send(b"x" * BIG)

            async with anyio.create_task_group() as tg:
                tg.start_soon(send_big)
                with anyio.fail_after(3):
                    assert await ws.receive_many() == [b"hello"]
                assert ws.pings_received == 1
                with anyio.fail_after(2):  # returns within close_timeout
                    await ws.aclose()


async def test_a_write_the_peer_never_takes_times_out_and_ends_the_connection() -> None:
    with anyio.fail_after(15):
        async with raw_server(_silent_peer) as address:
            ws = await connect_websocket(address.url("ws", "/"), write_timeout=1.5)
            async with anyio.create_task_group() as tg:
                ended: list[int | None] = []

                async def read() -> None:
                    """Gets the peer's message, then learns the connection was aborted."""
                    assert await ws.receive_many() == [b"hello"]
                    with pytest.raises(WriteAborted) as info:  # a TransportClosed
                        await ws.receive_many()
                    ended.append(info.value.code)

                tg.start_soon(read)
                before = anyio.current_time()
                with pytest.raises(TransportTimeout, match="timed out"):
                    await ws.send(b"x" * BIG)
                assert anyio.current_time() - before < 5
            assert ended == [1006]
            with pytest.raises(WriteAborted) as info:
                await ws.send("later")
            assert info.value.code == 1006
            with anyio.fail_after(2):
                await ws.aclose()


async def test_a_write_cancelled_by_the_callers_deadline_is_reported_as_write_aborted() -> None:
    """The mock's own deadline cancels a write a client does not take (on trio the
    reader learns of it first): the connection is then closed as ``WriteAborted``, the
    type the mock tells a non-reading client by, on every backend."""
    with anyio.fail_after(15):
        async with raw_server(_silent_peer) as address:
            ws = await connect_websocket(address.url("ws", "/"), write_timeout=None)
            ended: list[TransportClosed] = []

            async def read() -> None:
                assert await ws.receive_many() == [b"hello"]
                with pytest.raises(TransportClosed) as info:
                    await ws.receive_many()
                ended.append(info.value)

            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                with anyio.move_on_after(1.5) as scope:
                    await ws.send(b"x" * BIG)
                assert scope.cancelled_caught
            assert [type(e) for e in ended] == [WriteAborted]
            assert ended[0].code == 1006
            assert "aborted while sending a message" in str(ended[0])
            with pytest.raises(WriteAborted):
                await ws.send("later")
            with anyio.fail_after(2):
                await ws.aclose()


async def test_aclose_returns_in_time_while_a_write_is_stalled() -> None:
    with anyio.fail_after(15):
        async with raw_server(_silent_peer) as address:
            ws = await connect_websocket(address.url("ws", "/"), write_timeout=None,
                                         close_timeout=0.5)
            failures: list[BaseException] = []

            async def send_big() -> None:
                try:
                    await ws.send(b"x" * BIG)
                except Exception as exc:
                    failures.append(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(send_big)
                await anyio.sleep(0.3)
                before = anyio.current_time()
                await ws.aclose()
                assert anyio.current_time() - before < 2
            assert failures
            assert isinstance(failures[0], TransportClosed | Exception)
            assert ws.close_code is not None


async def test_the_reader_answers_pings_when_no_write_is_in_progress() -> None:
    pongs: list[bytes] = []
    ponged = anyio.Event()

    async def peer(stream: ByteStream) -> None:
        ws, _ = await accept_raw_websocket(stream)
        await stream.send(ws.send(AcceptConnection()) + ws.send(Ping(b"p1")))
        from wsproto.events import Pong
        while not pongs:
            data = await stream.receive()
            ws.receive_data(data)
            pongs.extend(bytes(e.payload) for e in ws.events() if isinstance(e, Pong))
        ponged.set()
        await anyio.sleep(5)

    with anyio.fail_after(10):
        async with raw_server(peer) as address:
            ws = await connect_websocket(address.url("ws", "/"), close_timeout=0.5)
            async with anyio.create_task_group() as tg:
                tg.start_soon(ws.receive_many)
                with anyio.fail_after(3):
                    await ponged.wait()
                tg.cancel_scope.cancel()
            await ws.aclose()
    assert pongs == [b"p1"]


async def test_a_pong_owed_during_a_write_goes_out_right_after_that_write() -> None:
    """The reader queues the pong while a big write is stuck; once the peer reads again,
    the writer sends the pong after its own message (nothing is lost or interleaved)."""
    from websockets.frames import Frame, Opcode
    from websockets.protocol import Protocol, Side

    seen: list[tuple[str, int]] = []
    done = anyio.Event()

    async def peer(stream: ByteStream) -> None:
        ws, _ = await accept_raw_websocket(stream)
        await stream.send(ws.send(AcceptConnection()))
        await anyio.sleep(0.5)  # the client's big send is stalled by now
        await stream.send(ws.send(Ping(b"p")))
        await anyio.sleep(0.3)  # the client's reader has queued the pong
        parser = Protocol(Side.SERVER, max_size=None)
        while not any(op == "PONG" for op, _ in seen):
            parser.receive_data(await stream.receive())
            for frame in parser.events_received():
                assert isinstance(frame, Frame)
                seen.append((Opcode(frame.opcode).name, len(frame.data)))
        done.set()
        await anyio.sleep(5)

    with anyio.fail_after(20):
        async with raw_server(peer) as address:
            ws = await connect_websocket(address.url("ws", "/"), close_timeout=0.5)
            async with anyio.create_task_group() as tg:
                tg.start_soon(ws.receive_many)
                await ws.send(b"x" * BIG)
                await done.wait()
                tg.cancel_scope.cancel()
            await ws.aclose()
    assert seen == [("BINARY", BIG), ("PONG", 1)]


async def test_fragmented_text_is_checked_across_fragments() -> None:
    """A character split over two fragments is fine; a bad byte in a later fragment
    closes with 1007 (the websockets engine checks UTF-8 itself)."""
    from wsproto.frame_protocol import FrameProtocol, Opcode

    async def peer(stream: ByteStream) -> None:
        ws, _ = await accept_raw_websocket(stream)
        framer = FrameProtocol(client=False, extensions=[])
        euro = "€".encode()
        good = (framer._serialize_frame(Opcode.TEXT, b"a" + euro[:1], fin=False)
                + framer._serialize_frame(Opcode.CONTINUATION, euro[1:], fin=True))
        bad = (framer._serialize_frame(Opcode.TEXT, b"ok", fin=False)
               + framer._serialize_frame(Opcode.CONTINUATION, b"\xc3\x28", fin=True))
        await stream.send(ws.send(AcceptConnection()) + good)
        await anyio.sleep(0.2)
        await stream.send(bytes(bad))
        await anyio.sleep(1)

    with anyio.fail_after(10):
        async with raw_server(peer) as address:
            ws = await connect_websocket(address.url("ws", "/"), close_timeout=0.5)
            assert await ws.receive() == "a€"
            with pytest.raises(ReadError):
                await ws.receive()
            with pytest.raises(TransportClosed) as info:
                await ws.receive()
            assert info.value.code == 1007


# ------------------------------------------------------------------------- engine choice


async def test_unknown_engine_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match="unknown websocket_engine 'nope'"):
        await connect_websocket("ws://127.0.0.1:1/", websocket_engine="nope")


async def test_missing_websockets_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "websockets.protocol", None)
    with pytest.raises(ImportError, match=r"pip install 'voxta-proto\[websockets\]'"):
        await connect_websocket("ws://127.0.0.1:1/", websocket_engine="websockets")


def test_transport_is_reexported() -> None:
    from voxta_proto import transports

    assert transports.WebSocketTransport is WebSocketTransport


async def test_write_lock_is_fifo_and_survives_cancelled_waiters() -> None:
    from voxta_proto.transports.websocket.transport import _WriteLock

    lock = _WriteLock()
    order: list[str] = []

    async def writer(name: str, hold: float) -> None:
        async with lock:
            order.append(name)
            await anyio.sleep(hold)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer, "a", 0.1)
            await anyio.sleep(0.01)
            with anyio.CancelScope() as doomed:
                doomed.cancel()  # cancelled while waiting: must not keep the lock
                await writer("cancelled", 0)
            tg.start_soon(writer, "b", 0)
            await anyio.sleep(0.01)
            tg.start_soon(writer, "c", 0)
        assert order == ["a", "b", "c"]
        assert not lock.locked
