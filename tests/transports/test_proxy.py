"""HTTP CONNECT proxies: from the environment or explicit, plain and TLS over the tunnel."""

from __future__ import annotations

import base64
import ssl

import anyio
import pytest

from voxta_proto.errors import ConnectError
from voxta_proto.transports import ConnectOptions, connect_websocket, negotiate

from .helpers import (
    HANDSHAKE_REQUEST,
    ConnectProxy,
    SignalRApp,
    closed_port,
    raw_server,
    running_server,
)

pytestmark = [pytest.mark.anyio, pytest.mark.network, pytest.mark.usefixtures("websocket_engine")]


async def test_https_proxy_from_env_tunnels_negotiate_and_wss(
    monkeypatch: pytest.MonkeyPatch,
    server_ssl_context: ssl.SSLContext,
    client_ssl_context: ssl.SSLContext,
) -> None:
    proxy = ConnectProxy()
    options = ConnectOptions(ssl_context=client_ssl_context)
    with anyio.fail_after(10):
        async with (
            running_server(SignalRApp(), ssl_context=server_ssl_context) as server,
            raw_server(proxy.handle) as proxy_address,
        ):
            monkeypatch.setenv("HTTPS_PROXY", proxy_address.url("http", ""))
            outcome = await negotiate(server.url("https", "/hub"), options=options)
            url = outcome.websocket_url()
            async with await connect_websocket(url, options=outcome.connect_options(options)) as ws:
                await ws.send(HANDSHAKE_REQUEST)
                assert await ws.receive() == "{}\x1e"
    assert proxy.targets == [f"127.0.0.1:{server.port}"] * 2
    assert proxy.authorizations == [None, None]


async def test_http_proxy_from_env_and_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = ConnectProxy()
    with anyio.fail_after(10):
        async with (
            running_server(SignalRApp()) as server,
            raw_server(proxy.handle) as proxy_address,
        ):
            monkeypatch.setenv("http_proxy", proxy_address.url("http", "/"))
            monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # must not be used for ws
            outcome = await negotiate(server.url("http", "/hub"))
            async with await connect_websocket(outcome.websocket_url()) as ws:
                await ws.send(HANDSHAKE_REQUEST)
                assert await ws.receive() == "{}\x1e"
            assert proxy.targets == [f"127.0.0.1:{server.port}"] * 2

            monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
            outcome = await negotiate(server.url("http", "/hub"))
            async with await connect_websocket(outcome.websocket_url()):
                pass
            assert len(proxy.targets) == 2  # went direct


async def test_explicit_proxy_with_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = ConnectProxy()
    monkeypatch.setenv("NO_PROXY", "*")  # an explicit proxy wins over the environment
    with anyio.fail_after(10):
        async with (
            running_server(SignalRApp()) as server,
            raw_server(proxy.handle) as proxy_address,
        ):
            proxy_url = f"http://user%40corp:p%3Ass@127.0.0.1:{proxy_address.port}"
            options = ConnectOptions(proxy=proxy_url)
            outcome = await negotiate(server.url("http", "/hub"), options=options)
            assert outcome.result.connection_id == "conn-1"
    expected = "Basic " + base64.b64encode(b"user@corp:p:ss").decode()
    assert proxy.authorizations == [expected]


async def test_proxy_refusal_is_a_connect_error() -> None:
    proxy = ConnectProxy(refuse_with=407)
    with anyio.fail_after(10):
        async with raw_server(proxy.handle) as proxy_address:
            options = ConnectOptions(proxy=proxy_address.url("http", ""))
            with pytest.raises(ConnectError, match="407") as info:
                await connect_websocket("ws://127.0.0.1:1/hub", options=options)
    assert "proxy authentication required" in str(info.value)
    assert "denied" in str(info.value)


async def test_unreachable_proxy_is_a_connect_error() -> None:
    with anyio.fail_after(10):
        options = ConnectOptions(proxy=f"http://127.0.0.1:{await closed_port()}")
        with pytest.raises(ConnectError, match=r"proxy .*refused"):
            await negotiate("http://example.invalid/hub", options=options)
