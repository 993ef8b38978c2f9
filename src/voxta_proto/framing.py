"""SignalR text framing: records terminated by 0x1E. Pure bytes; imports nothing but errors.

Splitting on 0x1E is safe because JSON escapes control characters inside strings and the
byte never occurs inside a multi-byte UTF-8 sequence. A partial record is kept across
calls (WebSocket messages need not end on a record boundary), but never beyond
``max_record_size``, so a peer cannot make us buffer without bound.

The buffer remembers how many bytes follow its last separator, so each call looks for a
separator only in the bytes it was given: a record dribbled in small pieces costs time
linear in its size, not quadratic.
"""

from __future__ import annotations

from typing import Final

from voxta_proto.errors import RemoteProtocolError

__all__ = ["DEFAULT_MAX_RECORD_SIZE", "RECORD_SEPARATOR", "RecordBuffer", "encode_record"]

RECORD_SEPARATOR: Final = b"\x1e"
DEFAULT_MAX_RECORD_SIZE: Final = 1 << 20
"""1 MiB: the largest record we accept by default (separator not counted)."""


def encode_record(payload: bytes) -> bytes:
    """Terminate one JSON payload with the record separator."""
    return payload + RECORD_SEPARATOR


class RecordBuffer:
    """Collects bytes and hands out complete 0x1E-terminated records.

    ``feed`` stores data; ``pop_record`` takes one record (for the handshake) and
    ``pop_records`` takes every complete record at once, still separated, so a decoder can
    parse them in a single pass.
    """

    __slots__ = ("_buf", "_tail", "max_record_size")

    def __init__(self, max_record_size: int = DEFAULT_MAX_RECORD_SIZE) -> None:
        if max_record_size < 1:
            raise ValueError("max_record_size must be positive")
        self.max_record_size = max_record_size
        self._buf = bytearray()
        self._tail = 0  # bytes after the last separator in _buf: the partial record

    def __len__(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        """Append received bytes.

        Raises:
            RemoteProtocolError: a record (complete or not) is longer than
                ``max_record_size``.
        """
        self._buf += data
        last = data.rfind(RECORD_SEPARATOR)
        self._tail = self._tail + len(data) if last < 0 else len(data) - last - 1
        if self._tail > self.max_record_size:
            raise RemoteProtocolError(
                f"record exceeds the maximum size of {self.max_record_size} bytes"
            )

    def feed_and_pop(self, data: bytes) -> bytes:
        """``feed`` then ``pop_records``, without copying in the common case.

        When nothing is buffered and ``data`` ends on a record boundary (most WebSocket
        messages do), ``data`` itself is returned.
        """
        if not self._buf and data.endswith(RECORD_SEPARATOR) and len(data) <= self.max_record_size:
            return data
        self.feed(data)
        return self.pop_records()

    def pop_record(self) -> bytes | None:
        """Remove and return the first complete record without its separator, or None."""
        if self._tail == len(self._buf):
            return None
        end = self._buf.find(RECORD_SEPARATOR)
        record = bytes(self._buf[:end])
        del self._buf[: end + 1]
        self._check_size(len(record))
        return record

    def pop_records(self) -> bytes:
        """Remove and return every complete record, each still ending in 0x1E (b"" if none).

        Raises:
            RemoteProtocolError: one of the records is longer than ``max_record_size``.
        """
        end = len(self._buf) - self._tail
        if end == 0:
            return b""
        if end == len(self._buf):
            chunk = bytes(self._buf)
            self._buf.clear()
        else:
            chunk = bytes(self._buf[:end])
            del self._buf[:end]
        if end > self.max_record_size:
            # Only a chunk longer than the cap can hold an oversized record.
            self._check_size(max(map(len, chunk.split(RECORD_SEPARATOR))))
        return chunk

    def clear(self) -> None:
        """Drop everything buffered (used when a transport is replaced on reattach)."""
        self._buf.clear()
        self._tail = 0

    def _check_size(self, size: int) -> None:
        if size > self.max_record_size:
            raise RemoteProtocolError(
                f"record exceeds the maximum size of {self.max_record_size} bytes"
            )
