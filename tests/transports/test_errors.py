"""Failure modes: refused, DNS, timeouts, broken handshakes; only our errors come out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest
from anyio.abc import ByteStream
from wsproto.events import AcceptConnection

from voxta_proto.errors import (
    ConnectError,
    TransportClosed,
    TransportTimeout,
    VoxtaProtoError,
    WriteError,
)
from voxta_proto.transports import (
    ConnectOptions,
    ServerAddress,
    connect_websocket,
    http_request,
    negotiate,
)

from .helpers import accept_raw_websocket, closed_port, raw_server

pytestmark = [pytest.mark.anyio, pytest.mark.network, pytest.mark.usefixtures("websocket_engine")]

SHORT = ConnectOptions(connect_timeout=0.2)


Attempt = Callable[[str], Awaitable[object]]
ATTEMPTS: dict[str, Attempt] = {
    "negotiate": lambda base: negotiate(f"http://{base}/hub"),
    "http_request": lambda base: http_request("GET", f"https://{base}/"),
    "websocket": lambda base: connect_websocket(f"ws://{base}/hub"),
    "secure websocket": lambda base: connect_websocket(f"wss://{base}/hub"),
}


@pytest.mark.parametrize("attempt", ATTEMPTS.values(), ids=ATTEMPTS.keys())
async def test_connection_refused(attempt: Attempt) -> None:
    with anyio.fail_after(10):
        port = await closed_port()
        with pytest.raises(ConnectError, match="connection refused") as info:
            await attempt(f"127.0.0.1:{port}")
    assert f"127.0.0.1:{port}" in str(info.value)


@pytest.mark.parametrize("attempt", ATTEMPTS.values(), ids=ATTEMPTS.keys())
async def test_dns_failure(attempt: Attempt) -> None:
    with anyio.fail_after(10), pytest.raises(ConnectError, match="resolve the host name") as info:
        await attempt("no-such-host.invalid")
    assert "no-such-host.invalid" in str(info.value)


async def _silent(stream: ByteStream) -> None:
    """Accept and never answer."""
    await anyio.sleep_forever()


async def test_silent_server_times_out() -> None:
    with anyio.fail_after(10):
        async with raw_server(_silent) as address:
            base = f"127.0.0.1:{address.port}"
            with pytest.raises(TransportTimeout, match="timed out"):
                await negotiate(f"http://{base}/hub", timeout=0.2)
            with pytest.raises(TransportTimeout, match="timed out"):
                await http_request("GET", f"http://{base}/", timeout=0.2)
            with pytest.raises(TransportTimeout, match="timed out"):
                await connect_websocket(f"ws://{base}/hub", options=SHORT)
            with pytest.raises(TransportTimeout, match="timed out"):  # stuck in the TLS handshake
                await connect_websocket(f"wss://{base}/hub", options=SHORT)
            with pytest.raises(TimeoutError):  # also a plain TimeoutError for generic code
                await negotiate(f"https://{base}/hub", options=SHORT)


async def test_bad_handshake_answers_are_connect_errors() -> None:
    async def wrong_accept(stream: ByteStream) -> None:
        await stream.receive()
        await stream.send(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: bm90IHRoZSByaWdodCBrZXk=\r\n\r\n"
        )
        await anyio.sleep_forever()

    async def hang_up(stream: ByteStream) -> None:
        await stream.receive()

    async def garbage(stream: ByteStream) -> None:
        await stream.receive()
        await stream.send(b"\x00\x01\x02 definitely not HTTP\r\n\r\n")

    with anyio.fail_after(10):
        for handler, fragment in ((wrong_accept, "accept"), (hang_up, "closed the connection"),
                                  (garbage, "invalid")):
            async with raw_server(handler) as address:
                with pytest.raises(ConnectError, match=fragment):
                    await connect_websocket(address.url("ws", "/"))


async def test_send_after_the_peer_vanished() -> None:
    accepted = anyio.Event()
    gone = anyio.Event()

    async def vanish(stream: ByteStream) -> None:
        ws, _ = await accept_raw_websocket(stream)
        await stream.send(ws.send(AcceptConnection()))
        accepted.set()
        await stream.aclose()
        gone.set()

    with anyio.fail_after(10):
        async with raw_server(vanish) as address:
            ws = await connect_websocket(address.url("ws", "/"))
            await gone.wait()
            with pytest.raises(TransportClosed) as info:
                await ws.receive()
            assert info.value.code == 1006
            with pytest.raises((TransportClosed, WriteError)):
                await ws.send("into the void")
            await ws.aclose()


async def test_nothing_but_our_errors_escape() -> None:
    """One sweep over every failure above: each is a VoxtaProtoError from our module."""
    failures: list[BaseException] = []
    with anyio.fail_after(10):
        port = await closed_port()
        async with raw_server(_silent) as silent:
            attempts: list[Callable[[], Awaitable[object]]] = [
                lambda: negotiate(f"http://127.0.0.1:{port}/hub"),
                lambda: negotiate("http://host.invalid/hub"),
                lambda: connect_websocket(f"wss://127.0.0.1:{port}/"),
                lambda: connect_websocket(silent.url("ws", "/"), options=SHORT),
                lambda: http_request("GET", silent.url("https", "/"), timeout=0.2),
            ]
            for attempt in attempts:
                try:
                    await attempt()
                except Exception as exc:
                    failures.append(exc)
    assert len(failures) == len(attempts)
    for failure in failures:
        assert isinstance(failure, VoxtaProtoError)
        assert type(failure).__module__ == "voxta_proto.errors"


def test_server_address_url() -> None:
    assert ServerAddress("::1", 80).url("ws", "/x") == "ws://[::1]:80/x"
    assert ServerAddress("127.0.0.1", 8).url() == "http://127.0.0.1:8/"
