"""JSON hub protocol codec: hub messages to and from 0x1E-separated records. No I/O.

The hot path decodes every complete record of a frame with ONE msgspec call: the
records are joined into a JSON array (separators become commas) and typed as a list,
invocation arguments included, through tagged unions. Anything unusual in a frame (an unknown
``type``, an argument the typed pass rejects, pretty-printed JSON, an empty record) makes
that pass fail, and the frame is decoded again record by record, which applies the full
rules. Both paths give the same messages in the same order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Final, Generic, Protocol, TypeVar, Union

import msgspec

from voxta_proto.errors import RemoteProtocolError
from voxta_proto.framing import RECORD_SEPARATOR, RecordBuffer
from voxta_proto.hub.messages import (
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

__all__ = ["HUB_MESSAGE_TYPES", "FrameBuffer", "HubCodec", "JsonHubCodec",
           "decode_handshake_request", "decode_handshake_response", "encode_handshake"]

ArgT = TypeVar("ArgT")

HUB_MESSAGE_TYPES: Final[dict[int, type[HubMessage]]] = {
    1: Invocation,
    2: StreamItem,
    3: Completion,
    4: StreamInvocation,
    5: CancelInvocation,
    6: Ping,
    7: Close,
    8: Ack,
    9: Sequence,
}
"""The hub message class for each wire ``type`` number."""

_RAW_DECODER: Final[msgspec.json.Decoder[RawHubMessage]] = msgspec.json.Decoder(RawHubMessage)
_ANY_DECODER: Final = msgspec.json.Decoder()
_ENCODER: Final = msgspec.json.Encoder()
_DECODE_ERRORS: Final = (msgspec.DecodeError, RecursionError)
"""What msgspec raises on bad input; RecursionError comes from deeply nested arrays."""


def _protocol_error(text: str) -> RemoteProtocolError:
    return RemoteProtocolError(text, close_hint=Close(error=text))


_PING_RECORD: Final = b'{"type":6}' + RECORD_SEPARATOR
_PING: Final = Ping()
"""Frozen, so every canonical ping record can decode to this one instance."""


def _single_pass(decoder: msgspec.json.Decoder[list[Any]], chunk: bytes) -> list[Any] | None:
    """Every record of ``chunk`` with one msgspec call, or None if that is not safe.

    A chunk of canonical ping records only (keep-alive traffic) is recognised byte for
    byte and needs no parsing. Otherwise the records are joined into a JSON array, the
    separators becoming commas. An empty record makes the array invalid. Two values in one
    record ("{..},{..}") do not, so the array must have exactly one element per record
    (the replacement adds one byte per separator, so the lengths count them for free); and
    a record cut inside a string (a raw 0x1E there) fails on the newline put before each
    comma, as JSON strings cannot hold one. Not caught: a crafted pair of records, one with
    two values and one cut inside an array or object, which the record path would refuse.
    Such a chunk still decodes to messages the peer could have sent properly, so nothing
    is gained by crafting it.
    """
    if chunk.startswith(_PING_RECORD):
        pings = chunk.count(_PING_RECORD)
        if pings * len(_PING_RECORD) == len(chunk):  # non-overlapping, so all of it
            return [_PING] * pings
    body = chunk.replace(RECORD_SEPARATOR, b"\n,")
    try:  # the memoryview drops the last comma without a copy
        batch = decoder.decode(b"".join((b"[", memoryview(body)[:-1], b"]")))
    except _DECODE_ERRORS:
        return None
    # Each replacement adds one byte.
    return batch if len(batch) == len(body) - len(chunk) else None


class FrameBuffer(Protocol):
    """Splits the bytes after the handshake into whole messages, keeping a partial one."""

    def __len__(self) -> int: ...
    def feed_and_pop(self, data: bytes) -> bytes:
        """Add ``data``; return every complete message buffered, still framed."""
    def clear(self) -> None:
        """Drop everything buffered."""


class HubCodec(ABC, Generic[ArgT]):
    """What ``HubConnection`` needs from a hub protocol (JSON or MessagePack).

    The handshake is JSON for every protocol; the codec frames and encodes what follows.
    """

    __slots__ = ()

    protocol: ClassVar[str]
    """The name the handshake request carries (``"json"``, ``"messagepack"``)."""
    transfer_format: ClassVar[str]
    """What negotiate must offer for it: ``"Text"`` or ``"Binary"``."""

    @staticmethod
    @abstractmethod
    def encode(message: HubMessage) -> bytes:
        """One hub message, framed."""

    @abstractmethod
    def new_buffer(self, max_message_size: int) -> FrameBuffer:
        """A buffer that frames received bytes for
        [`decode_records()`][voxta_proto.hub.codec.HubCodec.decode_records]."""

    @abstractmethod
    def decode_records(self, chunk: bytes) -> list[HubMessage]:
        """Every message of a chunk of complete framed messages (see the subclasses)."""

    @abstractmethod
    def decode_traffic(self, chunk: bytes) -> list[HubMessage] | None:
        """The messages of a chunk holding only traffic, or None (see the subclasses)."""


class JsonHubCodec(HubCodec[ArgT], Generic[ArgT]):
    """Encodes hub messages and decodes whole frames of them.

    Args:
        argument_type: what invocation arguments become in the single-pass decode, e.g.
            ``msgspec.Raw`` or a tagged union of Voxta messages.
        fallback: turns one argument the typed pass rejected into an ``ArgT``; it must
            not raise (return an "unknown" or "invalid" value instead).
    """

    protocol: ClassVar[str] = "json"
    transfer_format: ClassVar[str] = "Text"

    __slots__ = ("_batch", "_fallback", "_one", "_traffic", "_typed_args")

    def __init__(self, argument_type: Any, fallback: Callable[[msgspec.Raw], ArgT]) -> None:
        self._typed_args = argument_type is not msgspec.Raw
        self._fallback = fallback
        union: Any = Union[
            Invocation[argument_type],
            StreamItem,
            Completion,
            StreamInvocation,
            CancelInvocation,
            Ping,
            Close,
            Ack,
            Sequence,
        ]
        traffic: Any = Union[
            Invocation[argument_type],
            StreamItem,
            Completion,
            StreamInvocation,
            CancelInvocation,
            Ping,
        ]
        self._one: msgspec.json.Decoder[Any] = msgspec.json.Decoder(union)
        self._batch: msgspec.json.Decoder[list[Any]] = msgspec.json.Decoder(list[union])
        self._traffic: msgspec.json.Decoder[list[Any]] = msgspec.json.Decoder(list[traffic])

    @staticmethod
    def encode(message: HubMessage) -> bytes:
        """Serialize one hub message as a record (JSON plus 0x1E)."""
        return _ENCODER.encode(message) + RECORD_SEPARATOR

    def new_buffer(self, max_message_size: int) -> RecordBuffer:
        """A buffer that hands out whole 0x1E-terminated records."""
        return RecordBuffer(max_message_size)

    def decode_records(self, chunk: bytes) -> list[HubMessage]:
        """Decode complete records, each ending in 0x1E, into hub messages.

        Unknown ``type`` numbers and empty records are skipped.

        Raises:
            RemoteProtocolError: a record is not JSON, not an object, has no numeric
                ``type``, or breaks its message's schema (e.g. a Completion with both
                ``result`` and ``error``).
        """
        batch = _single_pass(self._batch, chunk)
        if batch is not None:
            return batch
        messages: list[HubMessage] = []
        for record in chunk.split(RECORD_SEPARATOR)[:-1]:
            message = self._decode_one(record)
            if message is not None:
                messages.append(message)
        return messages

    def decode_traffic(self, chunk: bytes) -> list[HubMessage] | None:
        """Like [`decode_records()`][voxta_proto.hub.codec.JsonHubCodec.decode_records] for a chunk
        that holds only traffic (Invocation,
        StreamItem, Completion, StreamInvocation, CancelInvocation, Ping), else None.

        None means "use [`decode_records()`][voxta_proto.hub.codec.JsonHubCodec.decode_records]":
        the chunk holds a Close, Ack or Sequence,
        or something the single pass does not take (see there). This lets a connection
        skip its per-message bookkeeping for the frames that need none.
        """
        return _single_pass(self._traffic, chunk)

    def _decode_one(self, record: bytes) -> HubMessage | None:
        if not record.strip():
            return None
        try:
            message: HubMessage = self._one.decode(record)
            return message
        except _DECODE_ERRORS:
            pass
        try:
            raw_message = _RAW_DECODER.decode(record)
        except _DECODE_ERRORS as exc:
            return self._explain(record, exc)
        if self._typed_args and isinstance(raw_message, Invocation):
            fallback = self._fallback
            return msgspec.structs.replace(
                raw_message, arguments=tuple(fallback(arg) for arg in raw_message.arguments)
            )
        return raw_message

    @staticmethod
    def _explain(record: bytes, exc: Exception) -> None:
        """Skip a record of unknown type, or raise the right protocol error for it."""
        try:
            obj = _ANY_DECODER.decode(record)
        except _DECODE_ERRORS:
            raise _protocol_error(f"record is not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise _protocol_error("record is not a JSON object")
        if "type" not in obj:
            raise _protocol_error("hub message has no 'type'")
        kind = obj["type"]
        if not isinstance(kind, int) or isinstance(kind, bool):
            raise _protocol_error(f"hub message 'type' is not an integer: {kind!r}")
        if kind not in HUB_MESSAGE_TYPES:
            return
        name = HUB_MESSAGE_TYPES[kind].__name__
        raise _protocol_error(f"invalid {name} message: {exc}")


def encode_handshake(message: HandshakeRequest | HandshakeResponse) -> bytes:
    """Serialize a handshake request or response as a record."""
    return _ENCODER.encode(message) + RECORD_SEPARATOR


class _HandshakeResponseProbe(msgspec.Struct, frozen=True):
    error: str | None = None
    type: Any = msgspec.UNSET


_REQUEST_DECODER: Final = msgspec.json.Decoder(HandshakeRequest)
_RESPONSE_DECODER: Final = msgspec.json.Decoder(_HandshakeResponseProbe)


def decode_handshake_request(record: bytes) -> HandshakeRequest:
    """Parse the client's first record (without its separator).

    Raises:
        RemoteProtocolError: it is not ``{"protocol": str, "version": int}``.
    """
    try:
        return _REQUEST_DECODER.decode(record)
    except _DECODE_ERRORS as exc:
        raise RemoteProtocolError(f"invalid handshake request: {exc}") from None


def decode_handshake_response(record: bytes) -> HandshakeResponse:
    """Parse the server's first record (without its separator).

    Raises:
        RemoteProtocolError: it is not a JSON object, has a non-string ``error``, or has a
            ``type`` member (a hub message where the handshake response belongs).
    """
    try:
        probe = _RESPONSE_DECODER.decode(record)
    except _DECODE_ERRORS as exc:
        raise RemoteProtocolError(f"invalid handshake response: {exc}") from None
    if probe.type is not msgspec.UNSET:
        raise RemoteProtocolError("expected a handshake response, got a hub message")
    if probe.error is not None:
        return HandshakeRefused(error=probe.error)
    return HandshakeAccepted()
