"""A MessagePack client against the Voxta server session: like a real Voxta server (which
registers the JSON hub protocol only) it answers with a handshake error naming the
protocol, also when the client's first MessagePack messages share the frame."""

from __future__ import annotations

import msgspec
import pytest

from codec_helpers import CODECS
from voxta_proto.errors import LocalProtocolError
from voxta_proto.hub import (
    HandshakeAccepted,
    HandshakeRefused,
    HandshakeRequest,
    HubConnection,
    HubState,
    Invocation,
    Ping,
    Role,
)
from voxta_proto.voxta.server import ServerState, VoxtaServerSession

REQUEST = b'{"protocol":"messagepack","version":1}\x1e'
REFUSAL = b'{"error":"The protocol \'messagepack\' is not supported."}\x1e'
MSGPACK = CODECS["messagepack"]()
PIPELINED = [
    b"",
    MSGPACK.encode(Ping()),
    # A 0x1E inside MessagePack: the JSON framing must not read it as a record end.
    MSGPACK.encode(Invocation(target="\x1e", arguments=(), invocation_id="\x1e")),
]


@pytest.mark.parametrize("after", PIPELINED, ids=["alone", "ping", "separator-byte"])
def test_messagepack_handshake_is_refused_naming_the_protocol(after: bytes) -> None:
    server = VoxtaServerSession(now=0.0)
    assert server.receive_data(REQUEST + after, now=0.0) == []
    assert server.data_to_send() == [REFUSAL]
    assert server.state is ServerState.CLOSED
    assert server.receive_data(MSGPACK.encode(Ping()), now=0.0) == []
    assert server.data_to_send() == []


def test_messagepack_client_core_sees_the_refusal() -> None:
    """Our own MessagePack client core reads the JSON refusal and closes."""
    client: HubConnection[msgspec.Raw] = HubConnection(Role.CLIENT, now=0.0, codec=MSGPACK)
    server = VoxtaServerSession(now=0.0)
    server.receive_data(client.send(HandshakeRequest(protocol="messagepack", version=1),
                                    now=0.0), now=0.0)
    (reply,) = server.data_to_send()
    assert client.receive_data(reply, now=0.0) == [
        HandshakeRefused(error="The protocol 'messagepack' is not supported.")]
    assert client.state is HubState.CLOSED


def test_a_json_hub_cannot_accept_messagepack() -> None:
    hub: HubConnection[msgspec.Raw] = HubConnection(Role.SERVER, now=0.0)
    assert hub.receive_data(REQUEST + MSGPACK.encode(Ping()), now=0.0) == [
        HandshakeRequest(protocol="messagepack", version=1)]
    with pytest.raises(LocalProtocolError, match="cannot accept the 'messagepack' protocol"):
        hub.send(HandshakeAccepted(), now=0.0)
