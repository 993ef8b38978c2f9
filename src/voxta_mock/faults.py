"""Fault plans: the ways a server misbehaves, so client tests can check they survive it.

A [`FaultPlan`][voxta_mock.faults.FaultPlan] is plain data applied by the server's I/O
layer to a hub connection; set one for every connection or for the n-th one (see
[`MockVoxtaServer`][voxta_mock.server.MockVoxtaServer]).
"""

from __future__ import annotations

import msgspec

__all__ = ["FaultPlan", "split_message"]


class FaultPlan(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What to do wrong on a connection; the default does nothing wrong.

    Attributes:
        drop_after_chunks: abort the TCP connection (no Close, no close frame) after
            sending this many ``replyChunk`` messages: a drop in the middle of a reply.
        split_every: cut each outgoing WebSocket message into pieces of this many bytes,
            each sent as its own message (records then straddle messages).
        garbage_after_handshake: send a frame that is not JSON right after the handshake.
        silent_after_handshake: send nothing at all after the handshake reply (no
            pings either), so the client's server timeout fires.
        refuse_handshake: answer the handshake with this error.
        close_after_authenticate: after answering ``authenticate``, send a SignalR Close
            with this error text and close the socket.
        allow_reconnect: the ``allowReconnect`` flag of that Close.
        latency: seconds to wait before every outgoing message.
        oversized_after_authenticate: after ``authenticate``, send one valid
            ``ReceiveMessage`` of at least this many bytes.
        refuse_authenticate: answer ``authenticate`` with ``authenticationRequired``
            instead of ``welcome``.
    """

    drop_after_chunks: int | None = None
    split_every: int | None = None
    garbage_after_handshake: bool = False
    silent_after_handshake: bool = False
    refuse_handshake: str | None = None
    close_after_authenticate: str | None = None
    allow_reconnect: bool = False
    latency: float = 0.0
    oversized_after_authenticate: int | None = None
    refuse_authenticate: bool = False

    def __post_init__(self) -> None:
        if self.split_every is not None and self.split_every < 1:
            raise ValueError("split_every must be >= 1")
        if self.latency < 0:
            raise ValueError("latency must be >= 0")


def split_message(data: bytes, every: int) -> list[str | bytes]:
    """Cut ``data`` into ``every``-byte pieces: text where a piece is valid UTF-8,
    binary where the cut fell inside a character (SignalR allows both frame types)."""
    out: list[str | bytes] = []
    for start in range(0, len(data), every):
        piece = data[start:start + every]
        try:
            out.append(piece.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(piece)
    return out
