"""Issue 13 at test size: what the mock costs per client stays bounded under load.

A "stuck" client here is a raw socket with a tiny receive buffer that completes the
WebSocket and SignalR handshakes, authenticates and then never reads."""

from __future__ import annotations

import contextlib
import logging
import socket
import struct

import anyio
import anyio.abc
import pytest
from wsproto import WSConnection
from wsproto.connection import ConnectionType
from wsproto.events import Request, TextMessage

from voxta_mock import MockVoxtaServer
from voxta_proto import HandshakeRejected, TransportError
from voxta_proto.transports import MessageTransport, connect_websocket

from .wire import AUTH, START, fast, handshake, read_until, records, voxta_type

LIST_CHARACTERS = ('{"type":1,"target":"SendMessage","arguments":[{"$type":'
                   '"loadCharactersList"}]}\x1e')

pytestmark = [pytest.mark.anyio, pytest.mark.network]


def _stuck_client(port: int, asks: int = 0) -> socket.socket:
    """Blocking setup in a thread: upgrade, SignalR handshake and authenticate, reading
    only the HTTP answer; the socket is then never read again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    ws = WSConnection(ConnectionType.CLIENT)
    sock.sendall(ws.send(Request(host="127.0.0.1", target="/hub")))
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    ws.receive_data(head)
    list(ws.events())  # AcceptConnection
    sock.sendall(ws.send(TextMessage('{"protocol":"json","version":1}\x1e'))
                 + ws.send(TextMessage(AUTH)))
    if asks:  # answers it will never read, so that its kernel buffers fill
        sock.sendall(ws.send(TextMessage(LIST_CHARACTERS * asks)))
    return sock


async def _chatters(server: MockVoxtaServer, count: int, every: float,
                    readers: anyio.abc.TaskGroup | None = None) -> list[MessageTransport]:
    """``count`` in-memory clients, each starting a chat, one start every ``every`` s;
    with ``readers``, each then keeps reading there (a client that reads is never
    dropped, however slow the machine), else it stops reading."""
    clients: list[MessageTransport] = []
    for _ in range(count):
        client = await server.connect_memory()
        await handshake(client)
        await client.send(AUTH)
        await read_until(client, "welcome")
        await client.send(START)
        await read_until(client, "chatStarted")
        clients.append(client)
        if readers is not None:
            readers.start_soon(_keep_reading, client)
        await anyio.sleep(every)
    return clients


async def _keep_reading(client: MessageTransport) -> None:
    with contextlib.suppress(TransportError):
        while True:
            await client.receive()


async def _stuck_conn(server: MockVoxtaServer) -> str:
    """The key of the one hub connection in ``server``."""
    while not server._conns:  # noqa: ASYNC110
        await anyio.sleep(0.01)
    (key,) = server._conns
    return key


async def test_session_lists_wait_for_a_client_that_does_not_read() -> None:
    """chatsSessionsUpdated is state: while a client's writer is behind, only the newest
    waits. Before, every start queued one more list for it (N starts x N sessions)."""
    with anyio.fail_after(30):
        async with fast(client_timeout=None, write_timeout=None,
                        max_output=1 << 30) as server:
            assert server.address is not None
            # ~6 MB of answers: more than loopback's kernel buffers take (~2.5 MB here).
            sock = await anyio.to_thread.run_sync(_stuck_client, server.address.port, 8000)
            key = await _stuck_conn(server)
            conn = server._conns[key]
            with anyio.fail_after(10):  # its writer gets stuck behind the answers
                while conn.unwritten < 1_000_000 or conn.inbox:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            await anyio.sleep(0.2)
            behind = conn.unwritten
            clients = await _chatters(server, 80, 0.0)
            await anyio.sleep(0.3)
            # Bounded: one list (80 sessions, ~20 KB) waits, not the 80 lists of 1 to 80
            # sessions (~800 KB) queued one per start.
            assert conn.unwritten - behind < 100_000, conn.unwritten - behind
            assert len(conn.snapshots) <= 1
            for client in clients:
                await client.aclose()
            sock.close()


@pytest.mark.parametrize(("max_output", "why"), [
    (64 * 1024, "wait to be written"),  # its output bound
    (1 << 30, "did not finish in 0.5 s"),  # the write timeout
])
async def test_a_client_that_never_reads_is_dropped_with_one_warning(
        caplog: pytest.LogCaptureFixture, max_output: int, why: str) -> None:
    """30 chats start around a client that never reads (one every 20 ms): it is dropped
    with ONE warning naming it and why; the others see nothing of it."""
    caplog.set_level(logging.INFO, logger="voxta_mock")
    with anyio.fail_after(30):
        async with fast(client_timeout=None, write_timeout=0.5, max_output=max_output) as server:
            assert server.address is not None
            sock = await anyio.to_thread.run_sync(_stuck_client, server.address.port, 8000)
            key = await _stuck_conn(server)
            async with anyio.create_task_group() as readers:
                clients = await _chatters(server, 30, 0.02, readers)
                with anyio.fail_after(10):
                    while key in server._conns:  # noqa: ASYNC110
                        await anyio.sleep(0.05)
                readers.cancel_scope.cancel()
            lines = [r for r in caplog.records if key in r.getMessage()
                     and "dropped" in r.getMessage()]
            assert len(lines) == 1, [r.getMessage() for r in caplog.records]
            assert lines[0].levelno == logging.WARNING
            assert "does not read" in lines[0].getMessage()
            assert why in lines[0].getMessage()
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
            for client in clients:  # everyone else is still served
                await client.send(AUTH.replace('"a"', '"again"'))
                await read_until(client, "welcome")
                await client.aclose()
            sock.close()


async def test_unused_connection_tokens_expire() -> None:
    """Negotiated tokens that never connect are forgotten after ``token_lifetime``: the
    table stays bounded and an expired token opens nothing (404)."""
    with anyio.fail_after(30):
        async with fast(token_lifetime=0.3) as server:
            first = await server.negotiate_memory()
            token = first.result.connection_token
            assert token is not None
            for _ in range(2_000):
                await server.negotiate_memory()
            assert len(server._pending) == 2_001  # all younger than 0.3 s
            await anyio.sleep(0.4)
            for _ in range(500):
                await server.negotiate_memory()
            assert len(server._pending) == 500
            with pytest.raises(HandshakeRejected, match="404"):
                await server.connect_memory(token)
            # A fresh one still works.
            fresh = (await server.negotiate_memory()).result.connection_token
            client = await connect_websocket(f"{server.url.replace('http', 'ws')}/hub?id={fresh}")
            await handshake(client)
            await client.aclose()


async def test_a_token_used_in_time_still_opens_the_hub() -> None:
    with anyio.fail_after(10):
        async with fast(token_lifetime=5.0) as server:
            token = (await server.negotiate_memory()).result.connection_token
            client = await connect_websocket(f"{server.url.replace('http', 'ws')}/hub?id={token}")
            assert records(await handshake(client)) == [{}]
            await client.send(AUTH)
            assert any(voxta_type(r) == "welcome" for r in await read_until(client, "welcome"))
            await client.aclose()




async def test_an_idle_connection_keeps_no_large_encode_buffer() -> None:
    """Memory per idle connection: after a large session list, a connection kept that
    list's encode buffer (~100 KiB each with 300 sessions) for as long as it lived."""
    with anyio.fail_after(30):
        async with fast(client_timeout=None) as server:
            clients = await _chatters(server, 120, 0.0)
            await anyio.sleep(0.3)
            sizes = [len(conn.session.hub._send_buffer) for conn in server._conns.values()]
            assert max(sizes) <= 16 * 1024, max(sizes)
            for client in clients:
                await client.aclose()


async def test_a_client_that_resets_mid_write_is_not_called_a_non_reader(
        caplog: pytest.LogCaptureFixture) -> None:
    """A write that fails because the peer reset the connection is a lost connection,
    not a stalled one: no "does not read" warning (the write failed at once, long before
    its timeout)."""
    caplog.set_level(logging.INFO, logger="voxta_mock")
    with anyio.fail_after(30):
        async with fast(client_timeout=None, write_timeout=20.0,
                        max_output=1 << 30) as server:
            assert server.address is not None
            sock = await anyio.to_thread.run_sync(_stuck_client, server.address.port, 8000)
            key = await _stuck_conn(server)
            conn = server._conns[key]
            with anyio.fail_after(10):  # its writer is stuck behind the answers
                while conn.unwritten < 1_000_000:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # RST
            with anyio.fail_after(10):  # gone well before the 20 s write timeout
                while key in server._conns:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
    assert not [r.getMessage() for r in caplog.records if "does not read" in r.getMessage()]
