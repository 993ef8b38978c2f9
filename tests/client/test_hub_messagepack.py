"""The MessagePack hub protocol on the wire, on asyncio and trio: what HubClient writes
(the JSON handshake as text, everything else binary), what HubServer answers a client
that asks for MessagePack (binary messages), negotiate asking for the Binary transfer
format, a close hint in MessagePack, and the mock refusing MessagePack as Voxta does.

The round trips themselves (invoke, errors, streams, client results, reattach) run over
both protocols in ``test_hub_client.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import msgspec
import pytest

from voxta_mock import MockVoxtaServer
from voxta_proto import HubClient, HubServer
from voxta_proto.errors import HandshakeRejected, NegotiationError, RemoteProtocolError
from voxta_proto.hub.connection import HubConfig
from voxta_proto.hub.messages import Close, Completion, HandshakeRequest, Invocation
from voxta_proto.hub.msgpack import raw_messagepack_codec
from voxta_proto.hub.negotiate import AvailableTransport, NegotiateResponseBody
from voxta_proto.hub.state import Role
from voxta_proto.hub_client import HubSession
from voxta_proto.transports import (
    ConnectOptions,
    HttpRequest,
    HttpResponse,
    MessageTransport,
    connect_websocket,
    negotiate,
    serve,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(20)]

CODEC = raw_messagepack_codec()
HANDSHAKE = b'{"protocol":"messagepack","version":1}\x1e'


class Recording:
    """A transport that notes the kind of every message written on it."""

    def __init__(self, inner: MessageTransport, log: list[tuple[str, bytes]]) -> None:
        self._inner, self._log = inner, log

    async def send(self, message: str | bytes) -> None:
        self._log.append(("binary" if isinstance(message, bytes) else "text",
                          message if isinstance(message, bytes) else message.encode()))
        await self._inner.send(message)

    async def send_text(self, data: bytes) -> None:
        self._log.append(("text", data))
        await self._inner.send_text(data)

    async def receive(self) -> str | bytes:
        return await self._inner.receive()

    async def receive_many(self) -> list[bytes]:
        return await self._inner.receive_many()

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        await self._inner.aclose(code, reason)


@pytest.fixture
async def hub() -> AsyncIterator[tuple[HubServer, str]]:
    server = HubServer()
    server.method("Add", lambda conn, a, b: a + b)
    server.method("Echo", lambda conn, value: value)
    async with anyio.create_task_group() as tg:
        address = await tg.start(server.serve)
        yield server, address.url(path="/hub")
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("protocol", ["json", "messagepack"])
async def test_the_client_writes_the_handshake_as_text_then_binary(
        hub: tuple[HubServer, str], protocol: str) -> None:
    server, url = hub
    sent: list[tuple[str, bytes]] = []

    async def connector(url: str, *, options: ConnectOptions) -> MessageTransport:
        return Recording(await connect_websocket(url, options=options), sent)

    async with HubClient(url, protocol=protocol, connector=connector) as client:
        assert await client.invoke("Add", 2, 3) == 5
        connection = next(iter(server.connections.values()))
        assert connection.protocol == protocol
    kinds = [kind for kind, _ in sent]
    assert kinds[0] == "text"
    assert sent[0][1].startswith(b'{"protocol":"' + protocol.encode())
    assert set(kinds[1:]) == {"binary" if protocol == "messagepack" else "text"}


async def test_values_keep_their_messagepack_types(hub: tuple[HubServer, str]) -> None:
    _, url = hub
    async with HubClient(url, protocol="messagepack") as client:
        value = {"bytes": b"\x00\xff", "list": [1, 2.5, None, True], "text": "h\u00e9"}
        assert await client.invoke("Echo", value) == value
        assert await client.invoke("Echo", b"\x01\x02", result_type=bytes) == b"\x01\x02"


async def test_the_server_answers_messagepack_in_binary_messages(
        hub: tuple[HubServer, str]) -> None:
    _, url = hub
    outcome = await negotiate(url, transfer_format="Binary")
    transport = await connect_websocket(outcome.websocket_url())
    try:
        await transport.send_text(HANDSHAKE)
        answer = await transport.receive()
        assert answer == b"{}\x1e"  # bytes: a binary message, as ASP.NET Core answers
        await transport.send(CODEC.encode(Invocation(
            target="Add", invocation_id="7",
            arguments=(msgspec.Raw(b"\x02"), msgspec.Raw(b"\x03")))))
        reply = await transport.receive()
        assert isinstance(reply, bytes)
        [completion] = CODEC.decode_records(reply)
        assert completion == Completion(invocation_id="7", result=msgspec.Raw(b"\x05"))
    finally:
        await transport.aclose()


async def test_a_peer_breaking_messagepack_gets_a_messagepack_close(
        hub: tuple[HubServer, str]) -> None:
    _, url = hub
    outcome = await negotiate(url)
    transport = await connect_websocket(outcome.websocket_url())
    try:
        await transport.send_text(HANDSHAKE)
        assert await transport.receive() == b"{}\x1e"
        await transport.send(b"\x02\x92\xc1")  # 0xc1 is never valid MessagePack
        hint = await transport.receive()
        assert isinstance(hint, bytes)
        [close] = CODEC.decode_records(hint)
        assert isinstance(close, Close)
        assert close.error is not None
        assert "MessagePack" in close.error
    finally:
        await transport.aclose()


async def test_negotiate_asks_for_the_binary_transfer_format() -> None:
    async def text_only(request: HttpRequest) -> HttpResponse:
        body = NegotiateResponseBody(
            negotiate_version=1, connection_id="c", connection_token="t",
            use_stateful_reconnect=False,
            available_transports=(AvailableTransport(transport="WebSockets",
                                                      transfer_formats=("Text",)),))
        return HttpResponse(200, (("Content-Type", "application/json"),),
                            msgspec.json.encode(body))

    async with anyio.create_task_group() as tg:
        address = await tg.start(serve, text_only)
        with pytest.raises(NegotiationError, match="'Binary' transfer format"):
            async with HubClient(address.url(path="/hub"), protocol="messagepack"):
                pass
        tg.cancel_scope.cancel()


def test_an_unknown_protocol_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"unknown hub protocol 'msgpack'.*'messagepack'"):
        HubClient("http://127.0.0.1:1/hub", protocol="msgpack")


async def test_the_mock_refuses_messagepack_as_voxta_does() -> None:
    """Over a socket: negotiate offers Binary, the handshake is refused naming it."""
    async with MockVoxtaServer(host="127.0.0.1", port=0) as mock:
        with pytest.raises(HandshakeRejected,
                           match=r"The protocol 'messagepack' is not supported\."):
            async with HubClient(mock.hub_url, protocol="messagepack"):
                pass


def _server_session() -> HubSession:
    return HubSession(Role.SERVER, now=0.0, config=HubConfig(max_record_size=1024))


def test_the_server_session_reads_a_split_handshake_then_traffic_in_its_protocol() -> None:
    session = _server_session()
    invocation = Invocation(target="Add", invocation_id="1",
                            arguments=(msgspec.Raw(b"\x01"), msgspec.Raw(b"\x02")))
    assert session.receive_data(HANDSHAKE[:9], now=0.0) == []
    events = session.receive_data(HANDSHAKE[9:] + CODEC.encode(invocation), now=0.0)
    assert events == [HandshakeRequest(protocol="messagepack", version=1), invocation]
    assert session.values.protocol == "messagepack"
    assert session.binary
    assert session.data_to_send() == [b"{}\x1e"]


def test_the_server_session_refuses_an_unknown_protocol_by_name() -> None:
    session = _server_session()
    events = session.receive_data(b'{"protocol":"foo","version":1}\x1e', now=0.0)
    assert events == [HandshakeRequest(protocol="foo", version=1)]
    assert session.data_to_send() == [b'{"error":"The protocol \'foo\' is not supported."}\x1e']
    assert not session.binary


def test_the_server_session_refuses_an_oversized_handshake() -> None:
    session = _server_session()
    assert session.receive_data(b'{"protocol":"' + b"j" * 1000, now=0.0) == []
    with pytest.raises(RemoteProtocolError, match="maximum size"):
        session.receive_data(b"j" * 100, now=0.0)
