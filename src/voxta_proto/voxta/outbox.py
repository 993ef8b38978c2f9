"""Outbox: bytes a sans-IO session wants written, grouped into transport messages. No I/O."""

from __future__ import annotations

__all__ = ["Outbox"]


class Outbox:
    """Collects outgoing records; ``take()`` hands them over as transport messages.

    Records added with ``add`` share one message (SignalR allows several records per
    WebSocket message); ``add_alone`` gives a record a message of its own, which clients
    such as voxta-client need for the handshake reply.
    """

    __slots__ = ("_current", "_ready")

    def __init__(self) -> None:
        self._ready: list[bytes] = []
        self._current = bytearray()

    def __bool__(self) -> bool:
        return bool(self._ready or self._current)

    def add(self, data: bytes) -> None:
        """Queue records that may share a message with their neighbours."""
        self._current += data

    def add_alone(self, data: bytes) -> None:
        """Queue records as one message of their own."""
        self._flush()
        if data:
            self._ready.append(bytes(data))

    def clear(self) -> None:
        """Drop everything queued (on a reattach: it is in the replay buffer already, or
        a Ping or Ack the new transport does not need)."""
        self._ready.clear()
        self._current.clear()

    def take(self) -> list[bytes]:
        """Every queued message, oldest first; the outbox is empty afterwards."""
        self._flush()
        messages, self._ready = self._ready, []
        return messages

    def _flush(self) -> None:
        if self._current:
            self._ready.append(bytes(self._current))
            self._current.clear()
