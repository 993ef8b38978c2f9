"""Issue 13 at test size: ordinary bad input against a running mock is one INFO/WARNING
line, never an ERROR or a traceback; the transports' limits are in force for the mock."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
from collections.abc import Callable

import anyio
import pytest
from wsproto import WSConnection
from wsproto.connection import ConnectionType
from wsproto.events import Request

from voxta_mock import MockVoxtaServer

from .wire import AUTH, fast

pytestmark = [pytest.mark.anyio, pytest.mark.network]

HANDSHAKE = '{"protocol":"json","version":1}\x1e'


def _upgrade(target: str = "/hub") -> tuple[WSConnection, bytes]:
    ws = WSConnection(ConnectionType.CLIENT)
    return ws, ws.send(Request(host="127.0.0.1", target=target))


def _frame(payload: bytes, opcode: int) -> bytes:
    """One masked client frame (FIN set)."""
    mask = b"\x01\x02\x03\x04"
    size = len(payload)
    head = bytes([0x80 | opcode])
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", size)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", size)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _frames(*messages: str | bytes) -> Callable[[], bytes]:
    """An upgrade, then ``messages`` as WebSocket frames (pipelined: a client may send
    them before the 101 arrives)."""
    def build() -> bytes:
        data = _upgrade()[1]
        for message in messages:
            if isinstance(message, str):
                data += _frame(message.encode(), 0x1)
            else:
                data += _frame(message, 0x2)
        return data
    return build


def _post(path: str, body: bytes, content_type: str = "application/json") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def _get(path: str, *headers: str) -> bytes:
    extra = "".join(f"{h}\r\n" for h in headers)
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n".encode()


# (name, bytes to send, how to end: "fin" | "rst" | "read")
CASES: list[tuple[str, Callable[[], bytes], str]] = [
    ("half a request head, FIN", lambda: b"GET /hub HTT", "fin"),
    ("half a request head, RST", lambda: b"GET /hub HTT", "rst"),
    ("garbage instead of HTTP", lambda: b"\x00\xff\xfe garbage \r\n\r\n", "read"),
    ("a bad request line", lambda: b"HELLO\r\n\r\n", "read"),
    ("a bad header", lambda: b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", "read"),
    ("half a body, FIN", lambda: _post("/api/device/code", b'{"scope": [')[:-3], "fin"),
    ("half a body, RST", lambda: _post("/api/device/code", b'{"scope": [')[:-3], "rst"),
    ("device code: bad JSON", lambda: _post("/api/device/code", b"{not json"), "read"),
    ("device code: list scope", lambda: _post("/api/device/code", b'{"scope": [1, 2]}'), "read"),
    ("device code: object scope", lambda: _post("/api/device/code", b'{"scope": {"a": 1}}'),
     "read"),
    ("device code: a list body", lambda: _post("/api/device/code", b"[1, 2, 3]"), "read"),
    ("device poll: bad JSON", lambda: _post("/api/device/poll", b"\xff\xfe"), "read"),
    ("device poll: unknown code", lambda: _post("/api/device/poll", b'{"deviceCode": "x"}'),
     "read"),
    ("negotiate with GET", lambda: _get("/hub/negotiate"), "read"),
    ("hub without an upgrade", lambda: _get("/hub"), "read"),
    ("hub with an unknown id", lambda: _upgrade("/hub?id=nope")[1], "read"),
    ("upgrade without a key", lambda: _get("/hub", "Upgrade: websocket",
                                           "Connection: Upgrade"), "read"),
    ("unknown path", lambda: _get("/nowhere"), "read"),
    ("upgrade then FIN", lambda: _upgrade()[1], "fin"),
    ("upgrade then RST", lambda: _upgrade()[1], "rst"),
    ("half a frame, FIN", lambda: _frames(HANDSHAKE)()[:-5], "fin"),
    ("half a frame, RST", lambda: _frames(HANDSHAKE)()[:-5], "rst"),
    ("half a handshake record, FIN", _frames('{"protocol":"js'), "fin"),
    ("garbage handshake", _frames("not json at all\x1e"), "read"),
    ("unknown protocol", _frames('{"protocol":"xml","version":1}\x1e'), "read"),
    ("half a record after the handshake, RST", _frames(HANDSHAKE, AUTH[:30]), "rst"),
    ("garbage after the handshake", _frames(HANDSHAKE, "garbage\x1e"), "read"),
    ("an unknown $type", _frames(HANDSHAKE, AUTH, '{"type":1,"target":"SendMessage",'
                                 '"arguments":[{"$type":"noSuchThing"}]}\x1e'), "read"),
    ("a binary frame on the JSON protocol", _frames(HANDSHAKE, b"\x00\x01\x02"), "read"),
    ("a bad frame opcode", lambda: _upgrade()[1] + b"\x8f\x80\x00\x00\x00\x00", "read"),
]


def _throw(port: int, payload: bytes, end: str) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        sock.sendall(payload)
        if end == "rst":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif end == "fin":
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(1)
            while sock.recv(65536):
                pass
        else:
            sock.settimeout(1)
            try:
                while sock.recv(65536):
                    pass
            except TimeoutError:
                pass
    finally:
        sock.close()


async def test_bad_input_never_logs_an_error(caplog: pytest.LogCaptureFixture) -> None:
    """Every case ends that connection only, with no ERROR record and no traceback; the
    mock serves a good client afterwards."""
    caplog.set_level(logging.DEBUG)
    with anyio.fail_after(120):
        async with fast(client_timeout=2.0, request_timeout=1.0) as server:
            assert server.address is not None
            for name, build, end in CASES:
                await anyio.to_thread.run_sync(_throw, server.address.port, build(), end)
                await anyio.sleep(0.05)
                bad = [r for r in caplog.records
                       if r.levelno >= logging.ERROR or r.exc_info is not None]
                assert not bad, (name, [(r.levelname, r.getMessage()) for r in bad])
            await _still_serves(server)
    assert len(CASES) >= 28


async def _still_serves(server: MockVoxtaServer) -> None:
    from voxta_proto.transports import connect_websocket

    from .wire import handshake, read_until

    client = await connect_websocket(server.hub_url.replace("http", "ws"))
    await handshake(client)
    await client.send(AUTH)
    await read_until(client, "welcome")
    await client.aclose()


async def test_request_heads_time_out_through_the_mock() -> None:
    """A half-sent request head is closed after the mock's ``request_timeout``."""
    with anyio.fail_after(10):
        async with fast(request_timeout=0.3) as server:
            assert server.address is not None
            async with await anyio.connect_tcp("127.0.0.1", server.address.port) as stream:
                await stream.send(b"GET /hub HTT")
                start = anyio.current_time()
                received = b""
                try:
                    while True:
                        received += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    pass
                assert anyio.current_time() - start < 5
                assert received == b"" or received.startswith(b"HTTP/1.1 408")


async def test_unfinished_connections_are_capped_through_the_mock(
        caplog: pytest.LogCaptureFixture) -> None:
    """Past ``max_pending_connections`` half-open connections, more are closed at once
    with a WARNING; a finished one is served meanwhile."""
    caplog.set_level(logging.INFO)
    with anyio.fail_after(20):
        async with fast(max_pending_connections=3, request_timeout=5.0) as server:
            assert server.address is not None
            held = [await anyio.connect_tcp("127.0.0.1", server.address.port)
                    for _ in range(3)]
            for stream in held:
                await stream.send(b"GET / HT")
            await anyio.sleep(0.2)
            extra = await anyio.connect_tcp("127.0.0.1", server.address.port)
            with anyio.fail_after(3):
                with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                    assert await extra.receive() == b""
            assert any("max_pending_connections" in r.getMessage() for r in caplog.records)
            for stream in (*held, extra):
                await stream.aclose()


async def test_running_out_of_descriptors_pauses_accept_and_the_mock_survives(
        caplog: pytest.LogCaptureFixture) -> None:
    """With the descriptor limit reached, accepting pauses (one WARNING), the mock keeps
    running, and it accepts again once descriptors are free."""
    import resource
    import subprocess
    import sys

    caplog.set_level(logging.WARNING)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with anyio.fail_after(30):
        async with fast() as server:
            assert server.address is not None
            port = server.address.port
            # Clients in another process, so only the mock's accepts use our descriptors.
            holder = subprocess.Popen(  # noqa: ASYNC220 - starts at once
                [sys.executable, "-c",
                 "import socket, sys, time\n"
                 f"s = [socket.create_connection(('127.0.0.1', {port})) for _ in range(20)]\n"
                 "print('ok', flush=True); sys.stdin.read()"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE,
                                   (len(os.listdir("/proc/self/fd")) + 3, hard))
                try:
                    assert holder.stdout is not None
                    await anyio.to_thread.run_sync(holder.stdout.readline)
                    with anyio.fail_after(10):
                        while not any("out of file descriptors" in r.getMessage()  # noqa: ASYNC110
                                      for r in caplog.records):
                            await anyio.sleep(0.05)
                finally:
                    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
            finally:
                assert holder.stdin is not None
                holder.stdin.close()
                holder.wait(10)
                if holder.stdout is not None:
                    holder.stdout.close()
            await _still_serves(server)
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
