"""The hub connection state table, shared by both roles; pure data, no I/O.

Every state change of [`HubConnection`][voxta_proto.hub.connection.HubConnection] is a lookup in
``TRANSITIONS``, keyed by (state, who sent it, what was sent). The table never asks which
role it is playing: the connection maps "we sent it" to its own role and "we received it"
to the peer's. Inputs that are not wire messages (end of stream, a reattach, a timeout)
have marker classes here so that they live in the same table. A missing key is a protocol
error: local on send, remote on receive.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

from voxta_proto.hub.messages import (
    Ack,
    CancelInvocation,
    Close,
    Completion,
    HandshakeAccepted,
    HandshakeRefused,
    HandshakeRequest,
    Invocation,
    Ping,
    Sequence,
    StreamInvocation,
    StreamItem,
)

__all__ = [
    "TRANSITIONS",
    "EndOfStream",
    "HubState",
    "Reattach",
    "Role",
    "TimedOut",
    "TransportLost",
]


class HubState(enum.Enum):
    """Where a hub connection is in its life."""

    NEW = "new"
    """Nothing exchanged yet."""
    HANDSHAKING = "handshaking"
    """The handshake request went out (client) or came in (server); no answer yet."""
    OPEN = "open"
    """Hub messages flow both ways."""
    DETACHED = "detached"
    """Stateful reconnect: the transport dropped; sends are buffered for replay."""
    REATTACHING = "reattaching"
    """Stateful reconnect: on a new transport, waiting for the peer's Sequence."""
    CLOSED = "closed"
    """Finished cleanly (Close, refused handshake, end of stream or a timeout)."""
    ERROR = "error"
    """A protocol error happened; every later call raises."""


class Role(enum.Enum):
    """Which end of the connection; also who sent a message in the table."""

    CLIENT = "client"
    SERVER = "server"

    @property
    def peer(self) -> Role:
        """The other end."""
        return Role.SERVER if self is Role.CLIENT else Role.CLIENT


class EndOfStream:
    """Table input: the transport ended and the connection cannot be resumed."""


class TransportLost:
    """Table input: the transport ended while stateful reconnect is active."""


class Reattach:
    """Table input: a new transport was attached to a DETACHED connection."""


class TimedOut:
    """Table input: the handshake, the peer or a reattach took too long."""


C, S = Role.CLIENT, Role.SERVER
_TRAFFIC: Final = (
    Invocation, StreamItem, Completion, StreamInvocation, CancelInvocation, Ping, Ack, Sequence
)
_REPLAYABLE: Final = (Invocation, StreamItem, Completion, StreamInvocation, CancelInvocation)

TRANSITIONS: Final[Mapping[tuple[HubState, Role, type[object]], HubState]] = {
    # Handshake: the client speaks first, the server answers once.
    (HubState.NEW, C, HandshakeRequest): HubState.HANDSHAKING,
    (HubState.HANDSHAKING, S, HandshakeAccepted): HubState.OPEN,
    (HubState.HANDSHAKING, S, HandshakeRefused): HubState.CLOSED,
    # Open traffic, either way; a Close from either side ends it.
    **{(HubState.OPEN, who, kind): HubState.OPEN for who in (C, S) for kind in _TRAFFIC},
    (HubState.OPEN, C, Close): HubState.CLOSED,
    (HubState.OPEN, S, Close): HubState.CLOSED,
    # Stateful reconnect: while detached, sends are buffered for replay; a new transport
    # starts a reattach, which ends when the peer's Sequence arrives.
    **{(HubState.DETACHED, who, kind): HubState.DETACHED
       for who in (C, S) for kind in (*_REPLAYABLE, Ping, Ack)},
    (HubState.DETACHED, C, Close): HubState.CLOSED,
    (HubState.DETACHED, S, Close): HubState.CLOSED,
    (HubState.DETACHED, C, Reattach): HubState.REATTACHING,
    (HubState.DETACHED, S, Reattach): HubState.REATTACHING,
    **{(HubState.REATTACHING, who, kind): HubState.REATTACHING
       for who in (C, S) for kind in (*_REPLAYABLE, Ping, Ack)},
    (HubState.REATTACHING, C, Sequence): HubState.OPEN,
    (HubState.REATTACHING, S, Sequence): HubState.OPEN,
    (HubState.REATTACHING, C, Close): HubState.CLOSED,
    (HubState.REATTACHING, S, Close): HubState.CLOSED,
    # The end of the byte stream, and timers.
    **{(state, who, EndOfStream): HubState.CLOSED
       for who in (C, S)
       for state in (HubState.NEW, HubState.HANDSHAKING, HubState.OPEN,
                     HubState.REATTACHING, HubState.CLOSED)},
    **{(state, who, TransportLost): HubState.DETACHED
       for who in (C, S) for state in (HubState.OPEN, HubState.REATTACHING)},
    **{(state, who, TimedOut): HubState.CLOSED
       for who in (C, S)
       for state in (HubState.NEW, HubState.HANDSHAKING, HubState.OPEN,
                     HubState.DETACHED, HubState.REATTACHING)},
}
"""(state, sender, input type) → next state. Anything missing is a protocol error."""
