"""An in-process transport pair on anyio memory object streams, for tests and benchmarks.

Imports anyio and our own ``base``; the sans-IO core must never import it.

Unlike httpcore's mock stream, each end records what it sent in
[`MemoryTransport.sent`][voxta_proto.transports.memory.MemoryTransport.sent],
so a test can assert on the exact messages, and closing one end hands its close code
and reason to the other end, as a WebSocket close frame would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from voxta_proto.errors import TransportClosed
from voxta_proto.transports.base import _translate

__all__ = ["MemoryTransport", "memory_transport_pair"]


@dataclass(slots=True)
class _CloseInfo:
    code: int
    reason: str


class MemoryTransport:
    """One end of an in-memory [`MessageTransport`][voxta_proto.transports.base.MessageTransport]
    pair.

    Attributes:
        sent: every message this end sent successfully, in order.
        close_code: the code this connection was closed with (ours or the peer's), or
            ``None`` while it is open.
        close_reason: the matching reason.
    """

    def __init__(
        self,
        send_stream: MemoryObjectSendStream[str | bytes],
        receive_stream: MemoryObjectReceiveStream[str | bytes],
        name: str,
    ) -> None:
        """Wrap two memory streams; use
        [`memory_transport_pair()`][voxta_proto.transports.memory.memory_transport_pair] instead."""
        self._send_stream = send_stream
        self._receive_stream = receive_stream
        self._name = name
        self._local_close: _CloseInfo | None = None
        self._peer: MemoryTransport | None = None
        self.sent: list[str | bytes] = []

    def __repr__(self) -> str:
        return f"<MemoryTransport {self._name} sent={len(self.sent)} closed={self.close_code}>"

    async def __aenter__(self) -> MemoryTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def close_code(self) -> int | None:
        info = self._close_info()
        return info.code if info else None

    @property
    def close_reason(self) -> str:
        info = self._close_info()
        return info.reason if info else ""

    def _close_info(self) -> _CloseInfo | None:
        if self._local_close is not None:
            return self._local_close
        return self._peer._local_close if self._peer is not None else None

    def _closed_error(self) -> TransportClosed:
        info = self._close_info()
        if info is None:  # the peer's streams went away without aclose(): abnormal
            return TransportClosed("the peer went away without closing", code=1006)
        who = "locally" if info is self._local_close else "by the peer"
        return TransportClosed(
            f"connection closed {who} with code {info.code}"
            + (f" ({info.reason})" if info.reason else ""),
            code=info.code,
            reason=info.reason,
        )

    async def send(self, message: str | bytes) -> None:
        """Send one message to the other end (``str`` = text, ``bytes`` = binary).

        Raises:
            TransportClosed: either end is closed.
            TypeError: ``message`` is neither ``str`` nor bytes-like.
        """
        value: object = message  # callers without a type checker may pass anything
        if isinstance(value, bytearray | memoryview):
            message = bytes(value)
        elif not isinstance(value, str | bytes):
            raise TypeError(f"message must be str or bytes, not {type(value).__name__}")
        if self._close_info() is not None:
            raise self._closed_error()
        try:
            await self._send_stream.send(message)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise self._closed_error() from None
        except Exception as exc:
            mapped = _translate(exc, TransportClosed, "memory transport send")
            if mapped is None:
                raise
            raise mapped from exc
        self.sent.append(message)

    async def send_text(self, data: bytes) -> None:
        """Send one text message given as UTF-8 bytes (see ``MessageTransport``); it
        travels, and is recorded in [`sent`][voxta_proto.transports.memory.MemoryTransport.sent], as
        ``str``.

        Raises:
            ValueError: ``data`` is not valid UTF-8; nothing was sent.
            TransportClosed: as [`send()`][voxta_proto.transports.memory.MemoryTransport.send].
        """
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"text message is not UTF-8: {exc}") from None
        await self.send(text)

    async def receive(self) -> str | bytes:
        """Return the next message; messages sent before a close are still delivered.

        Raises:
            TransportClosed: this end was closed, or the peer closed and everything it
                sent has been read (``code``/``reason`` are the peer's).
        """
        if self._local_close is not None:
            raise self._closed_error()
        try:
            return await self._receive_stream.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise self._closed_error() from None

    async def receive_many(self) -> list[bytes]:
        """Wait for one message, then take every message already queued (text as UTF-8).

        Raises:
            TransportClosed: as
                [`receive()`][voxta_proto.transports.memory.MemoryTransport.receive].
        """
        first = await self.receive()
        batch = [first.encode() if isinstance(first, str) else first]
        receive_nowait = self._receive_stream.receive_nowait
        while True:
            try:
                message = receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError,
                    anyio.BrokenResourceError):
                return batch  # an end is reported by the next call
            batch.append(message.encode() if isinstance(message, str) else message)

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close both directions; the peer's ``receive()`` then raises
        ``TransportClosed(code=code, reason=reason)`` once it has read what was sent."""
        if self._close_info() is not None:
            # Already closed by either side: just release our streams.
            self._send_stream.close()
            self._receive_stream.close()
            return
        self._local_close = _CloseInfo(code, reason)
        self._send_stream.close()
        self._receive_stream.close()
        await anyio.lowlevel.checkpoint()


def memory_transport_pair(
    max_buffer_size: float = math.inf,
) -> tuple[MemoryTransport, MemoryTransport]:
    """Create two connected transports (say client and server).

    Args:
        max_buffer_size: messages each direction may buffer before ``send()`` waits; the
            default never waits, a small number gives socket-like backpressure.

    Returns:
        ``(a, b)``: what ``a`` sends, ``b`` receives, and the other way round.
    """
    a_to_b_send, a_to_b_receive = anyio.create_memory_object_stream[str | bytes](max_buffer_size)
    b_to_a_send, b_to_a_receive = anyio.create_memory_object_stream[str | bytes](max_buffer_size)
    a = MemoryTransport(a_to_b_send, b_to_a_receive, "a")
    b = MemoryTransport(b_to_a_send, a_to_b_receive, "b")
    a._peer = b
    b._peer = a
    return a, b
