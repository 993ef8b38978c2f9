"""The sans-IO SignalR layer: hub messages, the JSON codec, negotiate helpers and the
connection state machine. Imports no I/O library."""

from __future__ import annotations

from voxta_proto.hub.codec import (
    HUB_MESSAGE_TYPES,
    JsonHubCodec,
    decode_handshake_request,
    decode_handshake_response,
    encode_handshake,
)
from voxta_proto.hub.connection import (
    HubConfig,
    HubConnection,
    HubEvent,
    Outgoing,
    TimerEvent,
    raw_codec,
)
from voxta_proto.hub.events import (
    AckDue,
    ConnectionLost,
    HandshakeTimedOut,
    KeepAliveDue,
    PeerTimedOut,
    Reattached,
    ReattachTimedOut,
)
from voxta_proto.hub.messages import (
    TRACKABLE_TYPES,
    Ack,
    CancelInvocation,
    Close,
    Completion,
    HandshakeAccepted,
    HandshakeRefused,
    HandshakeRequest,
    HandshakeResponse,
    HubMessage,
    Invocation,
    Ping,
    RawHubMessage,
    Sequence,
    StreamInvocation,
    StreamItem,
)
from voxta_proto.hub.state import TRANSITIONS, HubState, Role

__all__ = [
    "HUB_MESSAGE_TYPES",
    "TRACKABLE_TYPES",
    "TRANSITIONS",
    "Ack",
    "AckDue",
    "CancelInvocation",
    "Close",
    "Completion",
    "ConnectionLost",
    "HandshakeAccepted",
    "HandshakeRefused",
    "HandshakeRequest",
    "HandshakeResponse",
    "HandshakeTimedOut",
    "HubConfig",
    "HubConnection",
    "HubEvent",
    "HubMessage",
    "HubState",
    "Invocation",
    "JsonHubCodec",
    "KeepAliveDue",
    "Outgoing",
    "PeerTimedOut",
    "Ping",
    "RawHubMessage",
    "ReattachTimedOut",
    "Reattached",
    "Role",
    "Sequence",
    "StreamInvocation",
    "StreamItem",
    "TimerEvent",
    "decode_handshake_request",
    "decode_handshake_response",
    "encode_handshake",
    "raw_codec",
]
