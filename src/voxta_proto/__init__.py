"""voxta-proto: a sans-IO SignalR + Voxta protocol toolkit.

The core (``framing``, ``hub``, ``voxta``, ``errors``) never does I/O and never reads a
clock; ``transports`` and ``client`` put it on the network through anyio.
"""

from __future__ import annotations

from voxta_proto._version import __version__
from voxta_proto.errors import (
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
    TransportClosed,
    TransportError,
    TransportTimeout,
    VoxtaProtoError,
    WriteError,
)

__all__ = [
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
    "TransportClosed",
    "TransportError",
    "TransportTimeout",
    "VoxtaProtoError",
    "WriteError",
    "__version__",
]
