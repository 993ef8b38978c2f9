"""Tests for voxta_proto.framing: 0x1E records, buffering across chunks and the size cap."""

from __future__ import annotations

import pytest

from voxta_proto.errors import RemoteProtocolError
from voxta_proto.framing import (
    DEFAULT_MAX_RECORD_SIZE,
    RECORD_SEPARATOR,
    RecordBuffer,
    encode_record,
)


def test_constants() -> None:
    assert RECORD_SEPARATOR == b"\x1e"
    assert DEFAULT_MAX_RECORD_SIZE == 1024 * 1024


def test_encode_record_appends_separator() -> None:
    assert encode_record(b'{"type":6}') == b'{"type":6}\x1e'
    assert encode_record(b"") == b"\x1e"


def test_max_record_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RecordBuffer(0)
    assert RecordBuffer().max_record_size == DEFAULT_MAX_RECORD_SIZE
    assert RecordBuffer(7).max_record_size == 7


def test_multiple_records_in_one_chunk() -> None:
    buf = RecordBuffer()
    buf.feed(b'{"type":6}\x1e{"type":7}\x1e')
    assert buf.pop_record() == b'{"type":6}'
    assert buf.pop_record() == b'{"type":7}'
    assert buf.pop_record() is None
    assert len(buf) == 0


def test_pop_records_keeps_separators_and_the_tail() -> None:
    buf = RecordBuffer()
    buf.feed(b"a\x1eb\x1ec")
    assert buf.pop_records() == b"a\x1eb\x1e"
    assert len(buf) == 1
    assert buf.pop_records() == b""
    buf.feed(b"d\x1e")
    assert buf.pop_records() == b"cd\x1e"
    assert len(buf) == 0


def test_record_split_one_byte_at_a_time() -> None:
    wire = b'{"type":1,"target":"X","arguments":[]}\x1e{"type":6}\x1e'
    buf = RecordBuffer()
    chunks = [buf.feed_and_pop(wire[i : i + 1]) for i in range(len(wire))]
    assert b"".join(chunks) == wire
    # Only the bytes completing a record produce output, and they carry it all.
    assert [c for c in chunks if c] == [b'{"type":1,"target":"X","arguments":[]}\x1e',
                                        b'{"type":6}\x1e']
    assert len(buf) == 0


def test_record_split_across_two_chunks() -> None:
    buf = RecordBuffer()
    assert buf.feed_and_pop(b'{"ty') == b""
    assert len(buf) == 4
    assert buf.feed_and_pop(b'pe":6}\x1e{"type":7') == b'{"type":6}\x1e'
    assert buf.feed_and_pop(b"}\x1e") == b'{"type":7}\x1e'


def test_feed_and_pop_returns_data_itself_on_the_fast_path() -> None:
    buf = RecordBuffer()
    data = b'{"type":6}\x1e'
    assert buf.feed_and_pop(data) is data


def test_empty_records_are_passed_through_for_the_decoder_to_skip() -> None:
    buf = RecordBuffer()
    buf.feed(b"\x1e\x1ex\x1e")
    assert buf.pop_record() == b""
    assert buf.pop_record() == b""
    assert buf.pop_record() == b"x"
    assert buf.pop_record() is None


def test_clear_drops_a_partial_record() -> None:
    buf = RecordBuffer()
    buf.feed(b"partial")
    buf.clear()
    assert len(buf) == 0
    assert buf.feed_and_pop(b"x\x1e") == b"x\x1e"


# -- the size cap -----------------------------------------------------------------------


@pytest.mark.parametrize("limit", [DEFAULT_MAX_RECORD_SIZE, 16])
def test_record_of_exactly_the_limit_is_accepted(limit: int) -> None:
    buf = RecordBuffer(limit)
    record = b"x" * limit
    buf.feed(record)  # partial, at the limit
    assert buf.pop_records() == b""
    buf.feed(RECORD_SEPARATOR)
    assert buf.pop_records() == record + RECORD_SEPARATOR
    assert buf.feed_and_pop(record + RECORD_SEPARATOR) == record + RECORD_SEPARATOR
    buf.feed(record + RECORD_SEPARATOR)
    assert buf.pop_record() == record


@pytest.mark.parametrize("limit", [DEFAULT_MAX_RECORD_SIZE, 16])
def test_oversized_partial_record_is_refused(limit: int) -> None:
    buf = RecordBuffer(limit)
    buf.feed(b"x" * limit)
    with pytest.raises(RemoteProtocolError, match=f"maximum size of {limit} bytes"):
        buf.feed(b"x")


@pytest.mark.parametrize("limit", [DEFAULT_MAX_RECORD_SIZE, 16])
def test_oversized_partial_record_in_one_feed_and_pop(limit: int) -> None:
    buf = RecordBuffer(limit)
    with pytest.raises(RemoteProtocolError, match=f"maximum size of {limit} bytes"):
        buf.feed_and_pop(b"ok\x1e" + b"x" * (limit + 1))


@pytest.mark.parametrize("limit", [DEFAULT_MAX_RECORD_SIZE, 16])
def test_oversized_complete_record_is_refused(limit: int) -> None:
    data = b"x" * (limit + 1) + RECORD_SEPARATOR
    with pytest.raises(RemoteProtocolError, match=f"maximum size of {limit} bytes"):
        RecordBuffer(limit).feed_and_pop(data)
    buf = RecordBuffer(limit)
    buf.feed(data)
    with pytest.raises(RemoteProtocolError, match="maximum size"):
        buf.pop_record()


@pytest.mark.parametrize("limit", [DEFAULT_MAX_RECORD_SIZE, 16])
def test_oversized_complete_record_among_small_ones(limit: int) -> None:
    data = b"a\x1e" + b"x" * (limit + 1) + b"\x1eb\x1e"
    with pytest.raises(RemoteProtocolError, match="maximum size"):
        RecordBuffer(limit).feed_and_pop(data)


def test_oversized_record_completed_across_chunks() -> None:
    buf = RecordBuffer(16)
    assert buf.feed_and_pop(b"x" * 10) == b""
    with pytest.raises(RemoteProtocolError, match="maximum size of 16"):
        buf.feed_and_pop(b"y" * 7 + RECORD_SEPARATOR)


def test_many_small_records_beyond_the_limit_in_total_are_fine() -> None:
    buf = RecordBuffer(16)
    data = b"0123456789\x1e" * 50
    assert buf.feed_and_pop(data) == data
    buf.feed(data[:-1])
    assert buf.pop_records() == data[: -len(b"0123456789\x1e")]
    assert len(buf) == 10


class _CountingBytes(bytes):
    """Bytes that add up how many bytes their searches look at."""

    scanned = 0

    def find(self, sub, start=None, end=None):  # type: ignore[no-untyped-def]
        _CountingBytes.scanned += len(self[start:end])
        return super().find(sub, start, end)

    def rfind(self, sub, start=None, end=None):  # type: ignore[no-untyped-def]
        _CountingBytes.scanned += len(self[start:end])
        return super().rfind(sub, start, end)


class _CountingBuffer(bytearray):
    """A bytearray that adds its searches to the same count."""

    def find(self, sub, start=None, end=None):  # type: ignore[no-untyped-def]
        _CountingBytes.scanned += len(self[start:end])
        return super().find(sub, start, end)

    def rfind(self, sub, start=None, end=None):  # type: ignore[no-untyped-def]
        _CountingBytes.scanned += len(self[start:end])
        return super().rfind(sub, start, end)


@pytest.mark.parametrize("piece", [1, 100])
def test_dribbled_record_is_scanned_in_linear_work(piece: int) -> None:
    """Issue 13: a 256 KiB record fed in small pieces must cost work linear in its size.
    Counts the bytes searched for a separator (never time): the old ``feed`` searched the
    whole buffer on every call, about size²/(2·piece) bytes."""
    size = 256 * 1024 if piece > 1 else 16 * 1024
    record = b"x" * size
    buf = RecordBuffer()
    buf._buf = _CountingBuffer()
    _CountingBytes.scanned = 0
    out = b""
    for start in range(0, size, piece):
        out += buf.feed_and_pop(_CountingBytes(record[start:start + piece]))
    out += buf.feed_and_pop(_CountingBytes(RECORD_SEPARATOR))
    assert out == record + RECORD_SEPARATOR
    assert len(buf) == 0
    assert _CountingBytes.scanned <= 4 * (size + 1)


def test_partial_record_survives_pop_record_and_pop_records() -> None:
    buf = RecordBuffer(8)
    buf.feed(b"a\x1ebb\x1ecc")
    assert buf.pop_record() == b"a"
    assert buf.pop_records() == b"bb\x1e"
    assert buf.pop_record() is None
    buf.feed(b"cccccc")  # 8 bytes of one record: still within the limit
    with pytest.raises(RemoteProtocolError, match="maximum size of 8"):
        buf.feed(b"c")
