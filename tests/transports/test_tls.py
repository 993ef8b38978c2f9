"""TLS with certificates made at test time by trustme: https negotiate and wss."""

from __future__ import annotations

import ssl
from pathlib import Path

import anyio
import anyio.abc
import pytest
import trustme

from voxta_proto.errors import ConnectError
from voxta_proto.transports import ConnectOptions, connect_websocket, http_request, negotiate

from .helpers import HANDSHAKE_REQUEST, SignalRApp, echo_app, running_server

pytestmark = [pytest.mark.anyio, pytest.mark.network, pytest.mark.usefixtures("websocket_engine")]


async def test_https_negotiate_and_wss_with_a_trusted_ca(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    app = SignalRApp()
    options = ConnectOptions(ssl_context=client_ssl_context)
    with anyio.fail_after(10):
        async with running_server(app, ssl_context=server_ssl_context) as address:
            outcome = await negotiate(address.url("https", "/hub"), options=options)
            url = outcome.websocket_url()
            assert url.startswith("wss://")
            async with await connect_websocket(url, options=outcome.connect_options(options)) as ws:
                await ws.send(HANDSHAKE_REQUEST)
                assert await ws.receive() == "{}\x1e"
                await ws.send('{"type":6}\x1e')
                assert await ws.receive() == '{"type":6}\x1e'
    assert app.upgrades[0].cookies == {"ARRAffinity": "abc123"}


async def test_ca_file_option(server_ssl_context: ssl.SSLContext, ca_file: Path) -> None:
    options = ConnectOptions(ca_file=ca_file)
    with anyio.fail_after(10):
        async with running_server(echo_app(), ssl_context=server_ssl_context) as address:
            response = await http_request("POST", address.url("https", "/"), options=options)
            assert response.body == b"plain "
            async with await connect_websocket(address.url("wss", "/"), options=options) as ws:
                await ws.send("secure")
                assert await ws.receive() == "secure"


async def test_untrusted_certificate_is_a_clear_connect_error(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    other_ca = trustme.CA()
    untrusting = ssl.create_default_context()
    other_ca.configure_trust(untrusting)
    with anyio.fail_after(10):
        async with running_server(echo_app(), ssl_context=server_ssl_context) as address:
            for options in (ConnectOptions(), ConnectOptions(ssl_context=untrusting)):
                with pytest.raises(ConnectError, match="certificate verif") as info:
                    await negotiate(address.url("https", "/hub"), options=options)
                assert "TLS" in str(info.value)
                with pytest.raises(ConnectError, match="certificate verif"):
                    await connect_websocket(address.url("wss", "/"), options=options)
            # verify=False skips the checks; the server survived the failed handshakes.
            insecure = ConnectOptions(verify=False)
            async with await connect_websocket(address.url("wss", "/"), options=insecure) as ws:
                await ws.send("unverified but working")
                assert await ws.receive() == "unverified but working"


async def test_host_name_mismatch_is_refused(
    ca: trustme.CA, client_ssl_context: ssl.SSLContext
) -> None:
    wrong_name = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("other.example").configure_cert(wrong_name)
    options = ConnectOptions(ssl_context=client_ssl_context)
    with anyio.fail_after(10):
        async with running_server(echo_app(), ssl_context=wrong_name) as address:
            with pytest.raises(ConnectError, match=r"mismatch|certificate"):
                await connect_websocket(address.url("wss", "/"), options=options)


async def _read_until_closed(stream: anyio.abc.ByteStream) -> None:
    while True:
        await stream.receive()


async def test_plain_client_on_a_tls_server_does_not_break_it(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    options = ConnectOptions(ssl_context=client_ssl_context)
    with anyio.fail_after(10):
        async with running_server(echo_app(), ssl_context=server_ssl_context) as address:
            async with await anyio.connect_tcp(address.host, address.port) as raw:
                await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError, OSError)):
                    await _read_until_closed(raw)
            async with await connect_websocket(address.url("wss", "/"), options=options) as ws:
                await ws.send("still serving")
                assert await ws.receive() == "still serving"


async def test_missing_ca_file_is_a_connect_error(tmp_path: Path) -> None:
    options = ConnectOptions(ca_file=tmp_path / "missing.pem")
    with anyio.fail_after(10), pytest.raises(ConnectError, match="CA file"):
        await connect_websocket("wss://127.0.0.1:1/", options=options)
