"""The HTTP server under abuse (issue 13): slow heads, too many half-open connections,
running out of descriptors, ordinary bad input; each runs in about a second."""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import subprocess
import sys
import time
from typing import Any

import anyio
import pytest
from anyio.abc import ByteStream, Listener

from voxta_proto.transports import connect_websocket, serve_listener

from .helpers import echo_app, running_server

pytestmark = [pytest.mark.anyio, pytest.mark.network]


async def _read_all(stream: ByteStream) -> bytes:
    data = b""
    try:
        while True:
            data += await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return data


@pytest.mark.parametrize(
    "partial",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n",  # a head with no blank line, ever
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",  # 3 of 10 bytes
    ],
)
async def test_a_request_that_never_ends_times_out(
    partial: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "voxta_proto.transports")
    with anyio.fail_after(5):
        async with (
            running_server(echo_app(), request_timeout=0.3) as address,
            await anyio.connect_tcp(address.host, address.port) as raw,
        ):
            await raw.send(partial)
            answer = await _read_all(raw)
    assert answer.startswith(b"HTTP/1.1 408")
    assert "timed out" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_connections_past_the_pending_cap_are_closed_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with anyio.fail_after(10):
        async with running_server(echo_app(), max_pending_connections=2) as address:
            idle = [await anyio.connect_tcp(address.host, address.port) for _ in range(2)]
            await anyio.sleep(0.1)
            async with await anyio.connect_tcp(address.host, address.port) as third:
                with anyio.fail_after(2):
                    assert await _read_all(third) == b""  # closed without an answer
            assert "max_pending_connections" in caplog.text
            for stream in idle:
                await stream.aclose()
            await anyio.sleep(0.1)
            async with await connect_websocket(address.url("ws", "/")) as ws:  # room again
                await ws.send("ok")
                assert await ws.receive() == "ok"


async def test_a_tls_handshake_that_never_starts_times_out(
    server_ssl_context: ssl.SSLContext,
) -> None:
    with anyio.fail_after(5):
        async with (
            running_server(echo_app(), ssl_context=server_ssl_context,
                           handshake_timeout=0.3) as address,
            await anyio.connect_tcp(address.host, address.port) as raw,
        ):
            before = anyio.current_time()
            assert await _read_all(raw) == b""  # we never sent a ClientHello
            assert anyio.current_time() - before < 3


async def test_an_idle_keep_alive_connection_is_closed_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "voxta_proto.transports")
    with anyio.fail_after(5):
        async with (
            running_server(echo_app(), request_timeout=0.3) as address,
            await anyio.connect_tcp(address.host, address.port) as raw,
        ):
            assert await _read_all(raw) == b""
    assert "timed out" not in caplog.text


class _FlakyListener(Listener[ByteStream]):
    """A real listener whose serve() first fails like accept() out of descriptors."""

    def __init__(self, inner: Listener[ByteStream], failures: int) -> None:
        self._inner = inner
        self.failures = failures

    async def serve(self, handler: Any, task_group: Any = None) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        await self._inner.serve(handler, task_group)

    async def aclose(self) -> None:
        await self._inner.aclose()

    @property
    def extra_attributes(self) -> Any:
        return self._inner.extra_attributes


async def test_running_out_of_descriptors_pauses_accept_and_never_exits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inner = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    flaky = _FlakyListener(inner, failures=3)
    with anyio.fail_after(10):
        async with flaky, anyio.create_task_group() as tg:
            address = await tg.start(serve_listener, echo_app(), flaky)
            async with await connect_websocket(address.url("ws", "/")) as ws:
                await ws.send("served")
                assert await ws.receive() == "served"
            tg.cancel_scope.cancel()
    assert flaky.failures == 0
    warnings = [r for r in caplog.records if "out of file descriptors" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING


@pytest.mark.parametrize(
    "payload",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n",  # half a head, then FIN
        b"\x16\x03\x01 garbage \r\n\r\n",  # not HTTP
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc",  # half a body
    ],
)
@pytest.mark.parametrize("reset", [False, True])
async def test_ordinary_bad_input_is_never_an_error(
    payload: bytes, reset: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that sends part of something and goes away (FIN or RST) costs at most one
    INFO line, never an ERROR with a traceback."""
    with anyio.fail_after(5):
        async with running_server(echo_app()) as address:
            raw = await anyio.connect_tcp(address.host, address.port)
            await raw.send(payload)
            await anyio.sleep(0.05)
            if reset:
                import socket
                import struct

                sock = raw.extra(anyio.abc.SocketAttribute.raw_socket)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await raw.aclose()
            await anyio.sleep(0.2)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


_EMFILE_SERVER = """
import os, resource, sys, anyio
from voxta_proto.transports import HttpResponse, serve

async def app(request):
    return HttpResponse(200, [], b"ok")

async def main():
    async with anyio.create_task_group() as tg:
        address = await tg.start(serve, app)
        used = len(os.listdir("/proc/self/fd"))
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (used + 8, hard))
        print(address.port, flush=True)
        await anyio.sleep(30)

anyio.run(main, backend=sys.argv[1])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and rlimits")
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_real_descriptor_shortage_pauses_accept_then_serves_again(backend: str) -> None:
    """A server limited to a few spare descriptors gets 30 connections at once, runs
    out, and answers a request once they are gone (it used to exit)."""
    server = subprocess.Popen(
        [sys.executable, "-c", _EMFILE_SERVER, backend],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        flood = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(30)]
        time.sleep(0.5)
        for sock in flood:
            sock.close()
        time.sleep(0.5)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
        assert server.poll() is None
    finally:
        server.kill()
        _, errors = server.communicate(timeout=10)
    assert "out of file descriptors (Too many open files)" in errors
    assert "Traceback" not in errors
