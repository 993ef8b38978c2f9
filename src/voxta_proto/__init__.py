"""voxta-proto: a sans-IO SignalR + Voxta protocol toolkit.

The core (``framing``, ``hub``, ``voxta``, ``errors``) never does I/O and never reads a
clock; ``transports`` and ``client`` put it on the network through anyio. Importing
this package loads only the core; ``VoxtaClient`` is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from voxta_proto._version import __version__
from voxta_proto.errors import (
    AuthenticationFailed,
    ConnectError,
    ConnectionClosed,
    HandshakeRejected,
    InvocationError,
    LocalProtocolError,
    MessageValidationError,
    NegotiationError,
    PeerTimeout,
    ProtocolError,
    ReadError,
    RemoteProtocolError,
    RestError,
    TransportClosed,
    TransportError,
    TransportTimeout,
    VoxtaProtoError,
    WriteAborted,
    WriteError,
)
from voxta_proto.voxta import (
    ClientMessage,
    InvalidClientMessage,
    InvalidServerMessage,
    ServerMessage,
    UnknownServerMessage,
    client_codec,
    decode_client_message,
    decode_server_message,
    encode_message,
    server_codec,
    unwrap_client_message,
    unwrap_server_message,
    wrap_client_message,
    wrap_server_message,
)
from voxta_proto.voxta.server import ClientRequest, VoxtaServerSession
from voxta_proto.voxta.session import VoxtaClientSession

if TYPE_CHECKING:
    from voxta_proto.client import VoxtaClient

__all__ = [
    "AuthenticationFailed",
    "ClientMessage",
    "ClientRequest",
    "ConnectError",
    "ConnectionClosed",
    "HandshakeRejected",
    "InvocationError",
    "LocalProtocolError",
    "MessageValidationError",
    "NegotiationError",
    "PeerTimeout",
    "ProtocolError",
    "ReadError",
    "RemoteProtocolError",
    "RestError",
    "TransportClosed",
    "TransportError",
    "TransportTimeout",
    "VoxtaProtoError",
    "InvalidClientMessage",
    "InvalidServerMessage",
    "ServerMessage",
    "UnknownServerMessage",
    "HubClient",
    "HubServer",
    "VoxtaClient",
    "VoxtaClientSession",
    "VoxtaServerSession",
    "WriteAborted",
    "WriteError",
    "__version__",
    "client_codec",
    "decode_client_message",
    "decode_server_message",
    "encode_message",
    "server_codec",
    "unwrap_client_message",
    "unwrap_server_message",
    "wrap_client_message",
    "wrap_server_message",
]


def __getattr__(name: str) -> Any:
    """Import the async client on first use, so the sans-IO core never loads anyio."""
    if name == "VoxtaClient":
        from voxta_proto.client import VoxtaClient

        return VoxtaClient
    if name == "HubClient":
        from voxta_proto.hub_client import HubClient

        return HubClient
    if name == "HubServer":
        from voxta_proto.hub_server import HubServer

        return HubServer
    raise AttributeError(f"module 'voxta_proto' has no attribute {name!r}")
