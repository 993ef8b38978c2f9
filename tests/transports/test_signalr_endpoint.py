"""The whole client path against a SignalR-style endpoint served by our server: negotiate
over h11, then the WebSocket over wsproto, on plain TCP and TLS, IPv4 and IPv6."""

from __future__ import annotations

import socket
import ssl

import anyio
import pytest

from voxta_proto.errors import TransportClosed
from voxta_proto.transports import ConnectOptions, connect_websocket, negotiate

from .helpers import HANDSHAKE_REQUEST, SignalRApp, running_server

pytestmark = [pytest.mark.anyio, pytest.mark.network, pytest.mark.usefixtures("websocket_engine")]


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    ("tls", "host"),
    [
        (False, "127.0.0.1"),
        (True, "127.0.0.1"),
        pytest.param(
            True,
            "::1",
            marks=pytest.mark.skipif(not _ipv6_available(), reason="::1 is not available"),
        ),
    ],
    ids=["plain", "tls", "tls-ipv6"],
)
async def test_negotiate_then_hub_websocket(
    tls: bool,
    host: str,
    server_ssl_context: ssl.SSLContext,
    client_ssl_context: ssl.SSLContext,
) -> None:
    app = SignalRApp()
    options = ConnectOptions(
        access_token="user-token", ssl_context=client_ssl_context if tls else None
    )
    scheme = "https" if tls else "http"
    with anyio.fail_after(10):
        async with running_server(
            app, host=host, ssl_context=server_ssl_context if tls else None
        ) as address:
            outcome = await negotiate(address.url(scheme, "/hub"), options=options)
            ws = await connect_websocket(
                outcome.websocket_url(), options=outcome.connect_options(options)
            )
            await ws.send(HANDSHAKE_REQUEST)
            assert await ws.receive() == "{}\x1e"
            invocation = '{"type":1,"target":"SendMessage","arguments":["héllo"]}\x1e'
            await ws.send(invocation)
            assert await ws.receive() == invocation
            await ws.send('{"type":7}\x1e')
            assert await ws.receive() == '{"type":7}\x1e'
            await ws.aclose(1000)
            with pytest.raises(TransportClosed) as info:
                await ws.receive()
            assert info.value.code == 1000

    upgrade = app.upgrades[0]
    assert upgrade.query_param("id") == "token 1/+"
    assert upgrade.header("authorization") == "Bearer user-token"
    assert upgrade.cookies == {"ARRAffinity": "abc123"}
    assert [r.path for r in app.requests] == ["/hub/negotiate", "/hub"]
