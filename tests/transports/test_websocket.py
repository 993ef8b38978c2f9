"""Our WebSocket client against our server, and against hand-driven wsproto peers."""

from __future__ import annotations

import logging
import socket

import anyio
import pytest
from anyio.abc import ByteStream
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import FrameProtocol

from voxta_proto.errors import (
    HandshakeRejected,
    LocalProtocolError,
    ReadError,
    TransportClosed,
)
from voxta_proto.transports import (
    ConnectOptions,
    Connector,
    HttpRequest,
    HttpResponse,
    MessageTransport,
    WebSocketTransport,
    WebSocketUpgrade,
    connect_websocket,
)

from .helpers import (
    accept_raw_websocket,
    echo_app,
    echo_handler,
    raw_server,
    read_http_response,
    read_http_responses,
    read_ws_events,
    running_server,
)

pytestmark = [pytest.mark.anyio, pytest.mark.network, pytest.mark.usefixtures("websocket_engine")]


async def test_text_and_binary_round_trip() -> None:
    with anyio.fail_after(10):
        async with (
            running_server(echo_app()) as address,
            await connect_websocket(address.url("ws", "/echo")) as ws,
        ):
            await ws.send("héllo")
            assert await ws.receive() == "héllo"
            await ws.send(b"\x00\xff")
            assert await ws.receive() == b"\x00\xff"
            await ws.send("")
            assert await ws.receive() == ""
            await ws.aclose()
            assert ws.close_code == 1000


async def test_big_message_arrives_whole() -> None:
    big = "x" * 300_000 + "é" * 50_000
    with anyio.fail_after(10):
        async with (
            running_server(echo_app()) as address,
            await connect_websocket(address.url("ws", "/")) as ws,
        ):
            await ws.send(big)
            assert await ws.receive() == big


async def test_connector_protocol_is_satisfied() -> None:
    connector: Connector = connect_websocket
    with anyio.fail_after(10):
        async with running_server(echo_app()) as address:
            transport: MessageTransport = await connector(
                address.url("ws", "/"), options=ConnectOptions()
            )
            await transport.send("x")
            assert await transport.receive() == "x"
            await transport.aclose()


async def test_upgrade_request_carries_headers_cookies_and_token() -> None:
    seen: list[HttpRequest] = []

    async def app(request: HttpRequest) -> HttpResponse | WebSocketUpgrade:
        seen.append(request)
        return WebSocketUpgrade(echo_handler, extra_headers=[("X-Server", "yes")])

    options = ConnectOptions(
        headers={"X-Custom": "1"}, cookies={"ARRAffinity": "abc", "b": "2"}, access_token="tok"
    )
    with anyio.fail_after(10):
        async with running_server(app) as address:
            url = address.url("ws", "/hub/ä b?id=a%2Fb&x=ü")
            async with await connect_websocket(url, options=options) as ws:
                assert ("x-server", "yes") in ws.handshake_headers
    request = seen[0]
    assert request.target == "/hub/%C3%A4%20b?id=a%2Fb&x=%C3%BC"
    assert request.query_param("ID") == "a/b"
    assert request.header("host") == f"127.0.0.1:{address.port}"
    assert request.header("authorization") == "Bearer tok"
    assert request.header("x-custom") == "1"
    assert request.cookies == {"ARRAffinity": "abc", "b": "2"}
    assert (request.header("user-agent") or "").startswith("voxta-proto/")


async def test_bad_input_is_refused_before_anything_is_sent() -> None:
    seen: list[HttpRequest] = []

    async def app(request: HttpRequest) -> WebSocketUpgrade:
        seen.append(request)
        return WebSocketUpgrade(echo_handler)

    with anyio.fail_after(10):
        async with running_server(app) as address:
            url = address.url("ws", "/")
            bad = ConnectOptions(headers={"Sec-WebSocket-Key": "x"})
            with pytest.raises(ValueError, match="sec-websocket-key"):
                await connect_websocket(url, options=bad)
            with pytest.raises(ValueError, match="scheme"):
                await connect_websocket(f"ftp://127.0.0.1:{address.port}/")
            virtual_host = ConnectOptions(headers={"Host": "voxta.example"})
            async with await connect_websocket(url, options=virtual_host) as ws:
                with pytest.raises(ValueError, match="surrogate"):
                    await ws.send("\ud800")  # a lone surrogate cannot be UTF-8
                await ws.send("still usable")
                assert await ws.receive() == "still usable"
    assert [r.header("host") for r in seen] == ["voxta.example"]


async def test_access_token_in_query_instead_of_header() -> None:
    seen: list[HttpRequest] = []

    async def app(request: HttpRequest) -> WebSocketUpgrade:
        seen.append(request)
        return WebSocketUpgrade(echo_handler)

    options = ConnectOptions(access_token="a b/c+d", access_token_in_query=True)
    with anyio.fail_after(10):
        async with running_server(app) as address:
            url = address.url("ws", "/hub?id=1&access_token=old")
            async with await connect_websocket(url, options=options):
                pass
    assert seen[0].header("authorization") is None
    assert seen[0].query == (("id", "1"), ("access_token", "a b/c+d"))


@pytest.mark.parametrize("status", [401, 404, 409])
async def test_refused_upgrade_raises_handshake_rejected(status: int) -> None:
    async def app(request: HttpRequest) -> HttpResponse:
        return HttpResponse(status, [("Content-Type", "text/plain")], b"No Connection with that ID")

    with anyio.fail_after(10):
        async with running_server(app) as address:
            with pytest.raises(HandshakeRejected) as info:
                await connect_websocket(address.url("ws", "/hub?id=x"))
    assert info.value.status_code == status
    assert "No Connection with that ID" in str(info.value)
    assert f"HTTP {status}" in str(info.value)


async def test_websocket_upgrade_for_a_plain_request_gets_426() -> None:
    with anyio.fail_after(10):
        async with running_server(echo_app()) as address:
            stream = await anyio.connect_tcp(address.host, address.port)
            async with stream:
                await stream.send(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
                response, _ = await read_http_response(stream)
    assert response.status_code == 200  # echo_app answers plain GETs itself

    async def only_ws(request: HttpRequest) -> WebSocketUpgrade:
        return WebSocketUpgrade(echo_handler)

    with anyio.fail_after(10):
        async with running_server(only_ws) as address:
            stream = await anyio.connect_tcp(address.host, address.port)
            async with stream:
                await stream.send(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
                response, body = await read_http_response(stream)
    assert response.status_code == 426
    assert b"WebSocket" in body


async def test_close_codes_and_reasons_both_ways() -> None:
    server_saw: list[TransportClosed] = []
    server_done = anyio.Event()

    async def record_close(transport: WebSocketTransport, request: HttpRequest) -> None:
        try:
            if request.path == "/server-closes":
                await transport.aclose(4002, "server says bye")
                return
            await transport.receive()
        except TransportClosed as exc:
            server_saw.append(exc)
        finally:
            server_done.set()

    async def app(request: HttpRequest) -> WebSocketUpgrade:
        return WebSocketUpgrade(record_close)

    with anyio.fail_after(10):
        async with running_server(app) as address:
            ws = await connect_websocket(address.url("ws", "/client-closes"))
            await ws.aclose(4001, "client says bye")
            await server_done.wait()
            assert (server_saw[0].code, server_saw[0].reason) == (4001, "client says bye")
            assert ws.close_code == 4001
            with pytest.raises(TransportClosed):
                await ws.send("after close")

            ws = await connect_websocket(address.url("ws", "/server-closes"))
            with pytest.raises(TransportClosed) as info:
                await ws.receive()
            assert (info.value.code, info.value.reason) == (4002, "server says bye")
            assert (ws.close_code, ws.close_reason) == (4002, "server says bye")
            with pytest.raises(TransportClosed):
                await ws.receive()
            await ws.aclose()


async def test_invalid_close_code_is_refused() -> None:
    with anyio.fail_after(10):
        async with (
            running_server(echo_app()) as address,
            await connect_websocket(address.url("ws", "/")) as ws,
        ):
            for code in (1005, 1006, 999, 5000):
                with pytest.raises(ValueError, match="close code"):
                    await ws.aclose(code)


async def test_message_over_the_cap_closes_with_1009() -> None:
    server_saw: list[int | None] = []
    done = anyio.Event()

    async def send_big(transport: WebSocketTransport, request: HttpRequest) -> None:
        try:
            await transport.send("small")
            await transport.send(b"y" * 100_000)
            await transport.receive()
        except TransportClosed as exc:
            server_saw.append(exc.code)
        finally:
            done.set()

    async def app(request: HttpRequest) -> WebSocketUpgrade:
        return WebSocketUpgrade(send_big)

    options = ConnectOptions(max_message_size=64 * 1024)
    with anyio.fail_after(10):
        async with running_server(app) as address:
            ws = await connect_websocket(address.url("ws", "/"), options=options)
            assert await ws.receive() == "small"
            with pytest.raises(ReadError, match="limit"):
                await ws.receive()
            with pytest.raises(TransportClosed) as info:
                await ws.receive()
            assert info.value.code == 1009
            await done.wait()
            await ws.aclose()
    assert server_saw == [1009]


async def test_server_caps_client_messages() -> None:
    with anyio.fail_after(10):
        async with (
            running_server(echo_app(), max_message_size=1000) as address,
            await connect_websocket(address.url("ws", "/")) as ws,
        ):
            await ws.send("z" * 1001)
            with pytest.raises(TransportClosed) as info:
                await ws.receive()
            assert info.value.code == 1009


async def test_ping_pong_both_ways() -> None:
    async def pinger(transport: WebSocketTransport, request: HttpRequest) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(echo_handler, transport, request)
            await transport.ping(b"from server")
            await transport.send("server got its pong")

    async def app(request: HttpRequest) -> WebSocketUpgrade:
        return WebSocketUpgrade(pinger)

    with anyio.fail_after(10):
        async with (
            running_server(app) as address,
            await connect_websocket(address.url("ws", "/")) as ws,
        ):
            # Our receive() answers the server's ping on the way to the next message.
            assert await ws.receive() == "server got its pong"
            received: list[str | bytes] = []

            async def reader() -> None:
                received.append(await ws.receive())

            async with anyio.create_task_group() as tg:
                tg.start_soon(reader)
                await ws.ping(b"from client")
                await ws.send("done")
            assert received == ["done"]


async def test_waiting_ping_fails_when_the_connection_closes() -> None:
    async def handler(stream: ByteStream) -> None:
        ws, _ = await accept_raw_websocket(stream)
        await stream.send(ws.send(AcceptConnection()))
        events = await read_ws_events(stream, ws)
        assert isinstance(events[0], Ping)  # not answered on purpose
        await stream.send(ws.send(CloseConnection(1001, "going away")))
        await read_ws_events(stream, ws)

    with anyio.fail_after(10):
        async with raw_server(handler) as address:
            ws = await connect_websocket(address.url("ws", "/"))
            closed: list[TransportClosed] = []

            async def reader() -> None:
                with pytest.raises(TransportClosed) as info:
                    await ws.receive()
                closed.append(info.value)

            async with anyio.create_task_group() as tg:
                tg.start_soon(reader)
                with pytest.raises(TransportClosed):
                    await ws.ping(b"never answered")
            assert closed[0].code == 1001
            await ws.aclose()


async def test_aclose_from_another_task_ends_a_blocked_receive() -> None:
    with anyio.fail_after(10):
        async with running_server(echo_app()) as address:
            ws = await connect_websocket(address.url("ws", "/"))
            caught: list[TransportClosed] = []

            async def reader() -> None:
                with pytest.raises(TransportClosed) as info:
                    await ws.receive()
                caught.append(info.value)

            async with anyio.create_task_group() as tg:
                tg.start_soon(reader)
                await anyio.wait_all_tasks_blocked()
                with pytest.raises(LocalProtocolError):
                    await ws.receive()  # a second concurrent reader is a bug
                await ws.aclose(1000, "done")
            assert caught[0].code == 1000


async def test_cancelled_receive_loses_nothing() -> None:
    """Cancel a receive() that holds half a message; the next one returns it whole."""
    first_half_sent = anyio.Event()
    send_rest = anyio.Event()

    async def handler(stream: ByteStream) -> None:
        ws, _ = await accept_raw_websocket(stream)
        await stream.send(
            ws.send(AcceptConnection()) + ws.send(TextMessage("first ", message_finished=False))
        )
        first_half_sent.set()
        await send_rest.wait()
        await stream.send(ws.send(TextMessage("second", message_finished=True)))
        await read_ws_events(stream, ws)

    with anyio.fail_after(10):
        async with raw_server(handler) as address:
            ws = await connect_websocket(address.url("ws", "/"))
            await first_half_sent.wait()
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(ws.receive)
                    await anyio.wait_all_tasks_blocked()
                    scope.cancel()
            assert scope.cancelled_caught
            send_rest.set()
            assert await ws.receive() == "first second"
            await ws.aclose()


async def test_frames_in_the_same_packet_as_the_101_are_kept() -> None:
    async def handler(stream: ByteStream) -> None:
        ws, _ = await accept_raw_websocket(stream)
        await stream.send(
            ws.send(AcceptConnection())
            + ws.send(TextMessage("right after the 101"))
            + ws.send(BytesMessage(b"and more"))
        )
        await read_ws_events(stream, ws)

    with anyio.fail_after(10):
        async with (
            raw_server(handler) as address,
            await connect_websocket(address.url("ws", "/")) as ws,
        ):
            assert await ws.receive() == "right after the 101"
            assert await ws.receive() == b"and more"


async def test_fragments_and_empty_final_frame_are_reassembled() -> None:
    async def handler(stream: ByteStream) -> None:
        ws, _ = await accept_raw_websocket(stream)
        data = ws.send(AcceptConnection())
        for i in range(50):  # .NET style: ~4 KiB continuation frames
            data += ws.send(TextMessage(f"{i:04d}" * 1000, message_finished=False))
        data += ws.send(TextMessage("", message_finished=True))  # older servers' empty final
        data += ws.send(Ping(b"mid-stream"))
        data += ws.send(BytesMessage(b"ab", message_finished=False))
        data += ws.send(BytesMessage(b"cd", message_finished=True))
        await stream.send(data)
        events = await read_ws_events(stream, ws)
        assert Pong(payload=b"mid-stream") in events
        await read_ws_events(stream, ws)

    expected = "".join(f"{i:04d}" * 1000 for i in range(50))
    with anyio.fail_after(10):
        async with (
            raw_server(handler) as address,
            await connect_websocket(address.url("ws", "/")) as ws,
        ):
            assert await ws.receive() == expected
            assert await ws.receive() == b"abcd"


async def test_invalid_utf8_from_the_peer_closes_with_1007() -> None:
    replies: list[int | None] = []

    async def handler(stream: ByteStream) -> None:
        ws, _ = await accept_raw_websocket(stream)
        bad_text = b"\x81\x02\xff\xfe"  # unmasked FIN text frame with invalid UTF-8
        await stream.send(ws.send(AcceptConnection()) + bad_text)
        for event in await read_ws_events(stream, ws):
            if isinstance(event, CloseConnection):
                replies.append(event.code)

    with anyio.fail_after(10):
        async with raw_server(handler) as address:
            ws = await connect_websocket(address.url("ws", "/"))
            with pytest.raises(ReadError, match="protocol"):
                await ws.receive()
            with pytest.raises(TransportClosed) as info:
                await ws.receive()
            assert info.value.code == 1007
            await ws.aclose()
    assert replies == [1007]


async def test_garbage_instead_of_a_close_reply_ends_the_wait() -> None:
    peer_saw_close = anyio.Event()

    async def handler(stream: ByteStream) -> None:
        ws, _ = await accept_raw_websocket(stream)
        await stream.send(ws.send(AcceptConnection()))
        events = await read_ws_events(stream, ws)
        assert isinstance(events[0], CloseConnection)
        peer_saw_close.set()
        await stream.send(b"\x8f\x00")  # reserved opcode instead of the close reply
        await anyio.sleep_forever()  # and never hang up: only the garbage can end the wait

    with anyio.fail_after(10):
        async with raw_server(handler) as address:
            ws = await connect_websocket(address.url("ws", "/"))
            with anyio.fail_after(3):  # well under the 5 s close timeout
                await ws.aclose(1000)
            assert peer_saw_close.is_set()
            assert ws.close_code == 1000


async def test_tcp_loss_without_close_frame_is_1006() -> None:
    async def handler(stream: ByteStream) -> None:
        ws, _ = await accept_raw_websocket(stream)
        await stream.send(ws.send(AcceptConnection()) + ws.send(TextMessage("bye")))

    with anyio.fail_after(10):
        async with raw_server(handler) as address:
            ws = await connect_websocket(address.url("ws", "/"))
            assert await ws.receive() == "bye"
            with pytest.raises(TransportClosed) as info:
                await ws.receive()
            assert info.value.code == 1006
            with pytest.raises(TransportClosed):
                await ws.send("nobody there")
            await ws.aclose()


async def test_server_survives_garbage_disconnects_and_failing_handlers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def explode(transport: WebSocketTransport, request: HttpRequest) -> None:
        raise RuntimeError("handler bug")

    async def app(request: HttpRequest) -> HttpResponse | WebSocketUpgrade:
        if request.path == "/explode":
            return WebSocketUpgrade(explode)
        if request.path == "/app-bug":
            raise RuntimeError("app bug")
        return WebSocketUpgrade(echo_handler)

    caplog.set_level(logging.DEBUG, logger="voxta_proto.transports")
    with anyio.fail_after(10):
        async with running_server(app) as address:
            healthy = await connect_websocket(address.url("ws", "/echo"))

            # Garbage gets a 400 and only that connection is closed.
            async with await anyio.connect_tcp(address.host, address.port) as raw:
                await raw.send(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
                response, _ = await read_http_response(raw)
                assert response.status_code == 400

            # A client that hangs up halfway through its request.
            async with await anyio.connect_tcp(address.host, address.port) as raw:
                await raw.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")

            # An app exception becomes a 500, a handler exception a 1011 close.
            async with await anyio.connect_tcp(address.host, address.port) as raw:
                await raw.send(b"GET /app-bug HTTP/1.1\r\nHost: x\r\n\r\n")
                response, _ = await read_http_response(raw)
                assert response.status_code == 500
            broken = await connect_websocket(address.url("ws", "/explode"))
            with pytest.raises(TransportClosed) as info:
                await broken.receive()
            assert info.value.code == 1011
            await broken.aclose()

            # A bad upgrade (no key) gets a 400.
            async with await anyio.connect_tcp(address.host, address.port) as raw:
                await raw.send(
                    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\n\r\n"
                )
                response, _ = await read_http_response(raw)
                assert response.status_code == 400

            await healthy.send("still here")
            assert await healthy.receive() == "still here"
            await healthy.aclose()
            async with await connect_websocket(address.url("ws", "/echo")) as fresh:
                await fresh.send("new connections work")
                assert await fresh.receive() == "new connections work"
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "handler failed" in messages
    assert "app failed" in messages


async def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    with anyio.fail_after(10):
        async with (
            running_server(echo_app()) as address,
            await anyio.connect_tcp(address.host, address.port) as raw,
        ):
            await raw.send(
                b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
                b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo"
            )
            first, second = await read_http_responses(raw, 2)
    assert first[1] == b"plain one"
    assert second[1] == b"plain two"


async def test_serve_on_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        probe = socket.socket(socket.AF_INET6)
        with probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("::1 is not available")
    with anyio.fail_after(10):
        async with running_server(echo_app(), host="::1") as address:
            assert address.host == "::1"
            async with await connect_websocket(address.url("ws", "/")) as ws:
                await ws.send("over v6")
                assert await ws.receive() == "over v6"


async def test_client_frames_sent_with_the_upgrade_request_reach_the_handler() -> None:
    """h11's trailing data after the upgrade request goes to wsproto on the server."""
    with anyio.fail_after(10):
        async with running_server(echo_app()) as address:
            client = WSConnection(ConnectionType.CLIENT)
            request = client.send(Request(host="x", target="/"))
            early = FrameProtocol(client=True, extensions=[]).send_data("early bird", fin=True)
            async with await anyio.connect_tcp(address.host, address.port) as raw:
                await raw.send(request + bytes(early))
                events = await read_ws_events(raw, client)
                while not any(isinstance(e, TextMessage) for e in events):
                    events += await read_ws_events(raw, client)
            texts = [e.data for e in events if isinstance(e, TextMessage)]
            assert texts == ["early bird"]

