"""Events the hub core makes itself (timers, end of stream, reattach); pure data.

Messages from the peer are delivered as the hub message Structs themselves; these are
the things that happen without a message. All are frozen Structs, comparable with ``==``.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "AckDue",
    "ConnectionLost",
    "HandshakeTimedOut",
    "KeepAliveDue",
    "PeerTimedOut",
    "ReattachTimedOut",
    "Reattached",
    "SendUnblocked",
]


class KeepAliveDue(msgspec.Struct, frozen=True, gc=False):
    """We sent nothing for the keep-alive interval: send a Ping (or anything else)."""


class AckDue(msgspec.Struct, frozen=True, gc=False):
    """Stateful reconnect: send ``Ack(sequence_id=...)`` to release the peer's buffer."""

    sequence_id: int


class PeerTimedOut(msgspec.Struct, frozen=True, gc=False):
    """The peer sent nothing for the peer timeout; the connection is now CLOSED."""

    silent_for: float


class HandshakeTimedOut(msgspec.Struct, frozen=True, gc=False):
    """The handshake did not finish in time; the connection is now CLOSED."""


class ConnectionLost(msgspec.Struct, frozen=True, gc=False):
    """The byte stream ended without a Close message.

    ``reattachable`` is True when stateful reconnect is active: the connection is
    DETACHED and can resume on a new transport with ``reattach()``.
    """

    reattachable: bool


class Reattached(msgspec.Struct, frozen=True, gc=False):
    """The peer's Sequence arrived after a reattach; traffic flows again."""


class ReattachTimedOut(msgspec.Struct, frozen=True, gc=False):
    """No reattach happened within the reattach timeout; the connection is now CLOSED."""


class SendUnblocked(msgspec.Struct, frozen=True, gc=False):
    """Stateful reconnect: an Ack freed room in a full replay buffer, so
    ``send_would_block`` is False again. A writer that waited (backpressure, as ASP.NET
    Core applies it) may go on; nothing was dropped meanwhile."""
