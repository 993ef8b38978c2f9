"""MessagePack hub protocol codec: hub messages to and from length-prefixed arrays. No I/O.

After the (always JSON) handshake, every message is a VarInt length (1 to 5 bytes, 7 bits
each, least significant group first, high bit = more follows) and one MessagePack array
whose first element is the message type:

```text
[1, headers, invocationId|nil, target, [arguments], [streamIds]]   Invocation
[2, headers, invocationId, item]                                    StreamItem
[3, headers, invocationId, kind, result?]   kind 1 error, 2 void, 3 result
[4, headers, invocationId, target, [arguments], [streamIds]]       StreamInvocation
[5, headers, invocationId]                                          CancelInvocation
[6]                                                                 Ping
[7, error|nil, allowReconnect?]                                     Close
[8, sequenceId]  [9, sequenceId]                                    Ack, Sequence
```

Decoded messages are the same classes the JSON codec gives, so ``HubConnection`` and the
layers above do not care which protocol is spoken; payloads (``item``, ``result``, raw
arguments) are ``msgspec.Raw`` holding MessagePack bytes instead of JSON. Like .NET, we
write an empty ``headers`` map and an empty ``streamIds`` array when there are none, and
read both back as ``None``; the JS client omits ``streamIds`` and writes ``Close`` without
``allowReconnect``, which is read too. Extra trailing array items are ignored (forward
compatibility), an unknown type is skipped, anything else malformed is a
``RemoteProtocolError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Final, Generic, TypeVar, Union

import msgspec

from voxta_proto.errors import RemoteProtocolError
from voxta_proto.framing import DEFAULT_MAX_RECORD_SIZE
from voxta_proto.hub.codec import HUB_MESSAGE_TYPES, HubCodec
from voxta_proto.hub.messages import (
    Ack,
    CancelInvocation,
    Close,
    Completion,
    Headers,
    HubMessage,
    Invocation,
    NonEmptyStr,
    Ping,
    Sequence,
    StreamInvocation,
    StreamItem,
)

__all__ = [
    "MAX_LENGTH_PREFIX_SIZE",
    "LengthPrefixedBuffer",
    "MessagePackHubCodec",
    "encode_length_prefix",
    "raw_messagepack_codec",
]

ArgT = TypeVar("ArgT")

MAX_LENGTH_PREFIX_SIZE: Final = 5
"""A length takes at most 5 VarInt bytes (35 bits; .NET and we stop at 2**31 - 1)."""
_MAX_LENGTH: Final = (1 << 31) - 1

_ERROR_RESULT, _VOID_RESULT, _NON_VOID_RESULT = 1, 2, 3
_PING_PAYLOAD: Final = b"\x91\x06"
_PING_FRAME: Final = b"\x02" + _PING_PAYLOAD
_DECODE_ERRORS: Final = (msgspec.DecodeError, RecursionError)
"""What msgspec raises on bad input (ValidationError is a DecodeError); RecursionError
comes from deeply nested arrays."""
_ANY_DECODER: Final = msgspec.msgpack.Decoder()
_STR_DECODER: Final = msgspec.msgpack.Decoder(str)
_ENCODER: Final = msgspec.msgpack.Encoder()


def _protocol_error(text: str) -> RemoteProtocolError:
    return RemoteProtocolError(text, close_hint=Close(error=text))


def encode_length_prefix(length: int) -> bytes:
    """The VarInt that goes in front of a ``length``-byte message."""
    if length < 0x80:
        return bytes((length,))
    out = bytearray()
    while length >= 0x80:
        out.append((length & 0x7F) | 0x80)
        length >>= 7
    out.append(length)
    return bytes(out)


def _read_length_prefix(data: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """(message length, offset of its first byte), or None if the prefix is incomplete.

    Raises:
        RemoteProtocolError: the prefix is longer than 5 bytes or over 2**31 - 1.
    """
    length = 0
    end = len(data)
    for index in range(MAX_LENGTH_PREFIX_SIZE):
        if pos + index >= end:
            return None
        byte = data[pos + index]
        length |= (byte & 0x7F) << (7 * index)
        if byte < 0x80:
            if length > _MAX_LENGTH:
                break
            return length, pos + index + 1
    raise _protocol_error("message length prefix is longer than 5 bytes or over 2 GiB")


def _complete_end(data: bytes | bytearray, max_size: int,
                  payloads: list[memoryview] | None = None) -> int:
    """The offset just past the last complete message at the start of ``data``.

    Every length prefix that can be read is checked against ``max_size``, also that of
    the incomplete message at the end, so an oversized message is refused before any of
    it is kept. With ``payloads`` (``data`` must then be immutable), the payload of every
    complete message is appended to it, so the walk serves the decode too.
    """
    view = memoryview(data) if payloads is not None else None
    pos = 0
    end = len(data)
    while pos < end:
        length = data[pos]
        if length < 0x80:  # one- and two-byte prefixes (up to 16 KiB), inline
            start = pos + 1
        elif pos + 1 < end and data[pos + 1] < 0x80:
            length = (length & 0x7F) | (data[pos + 1] << 7)
            start = pos + 2
        else:
            prefix = _read_length_prefix(data, pos)
            if prefix is None:
                return pos
            length, start = prefix
        if length > max_size:
            raise _protocol_error(
                f"message of {length} bytes exceeds the maximum size of {max_size} bytes"
            )
        if start + length > end:
            return pos
        pos = start + length
        if view is not None and payloads is not None:
            payloads.append(view[start:pos])
    return pos


class _Framed(bytes):
    """Complete messages, with the payloads the buffer's walk over them found (or None),
    so the decode need not walk the prefixes again."""

    payloads: list[memoryview] | None = None


class LengthPrefixedBuffer:
    """Collects bytes and hands out complete length-prefixed messages, prefixes kept.

    The MessagePack counterpart of
    [`voxta_proto.framing.RecordBuffer`][voxta_proto.framing.RecordBuffer]; what it
    keeps between calls is at most one incomplete message of ``max_message_size`` bytes
    plus its prefix.
    """

    __slots__ = ("_buf", "max_message_size")

    def __init__(self, max_message_size: int = DEFAULT_MAX_RECORD_SIZE) -> None:
        if max_message_size < 1:
            raise ValueError("max_message_size must be positive")
        self.max_message_size = max_message_size
        self._buf = bytearray()

    def __len__(self) -> int:
        return len(self._buf)

    def feed_and_pop(self, data: bytes) -> bytes:
        """Add ``data``; return every complete message now buffered (b"" if none).

        What comes back carries the payloads found on the way (see ``_Framed``) when
        nothing was buffered before.

        Raises:
            RemoteProtocolError: a length prefix is malformed or over the maximum size.
        """
        buf = self._buf
        if not buf:
            if data.startswith(_PING_FRAME) and data.count(_PING_FRAME) * 3 == len(data):
                return data  # keep-alive traffic: the decode recognises it whole
            # A private copy first: the payload views must not pin the caller's buffer.
            framed = _Framed(data)
            payloads: list[memoryview] = []
            end = _complete_end(framed, self.max_message_size, payloads)
            if end < len(framed):
                buf += memoryview(framed)[end:]
                if end == 0:
                    return b""
                framed = _Framed(framed[:end])
            framed.payloads = payloads
            return framed
        buf += data
        end = _complete_end(buf, self.max_message_size)
        if end == 0:
            return b""
        chunk = bytes(buf[:end])
        del buf[:end]
        return chunk

    def clear(self) -> None:
        """Drop everything buffered (used when a transport is replaced on reattach)."""
        self._buf.clear()


# -- the wire layouts, as array-like structs tagged by their first element -----------------
# Optional trailing items have defaults, so shorter arrays (JS) are read; msgspec ignores
# extra trailing items. ``headers`` may be nil, read as no headers.


class _Wire(msgspec.Struct, array_like=True, frozen=True, gc=False, tag_field="type"):
    def to_message(self) -> HubMessage:
        raise NotImplementedError


class _Invocation(_Wire, Generic[ArgT], tag=1, frozen=True, gc=False):
    headers: Headers | None
    invocation_id: str | None
    target: NonEmptyStr
    arguments: tuple[ArgT, ...]
    stream_ids: tuple[str, ...] | None = None

    def to_message(self) -> HubMessage:
        return Invocation(target=self.target, arguments=self.arguments,
                          invocation_id=self.invocation_id, stream_ids=self.stream_ids or None,
                          headers=self.headers or None)


class _StreamItem(_Wire, tag=2, frozen=True, gc=False):
    headers: Headers | None
    invocation_id: str
    item: msgspec.Raw

    def to_message(self) -> HubMessage:
        return StreamItem(invocation_id=self.invocation_id, item=self.item,
                          headers=self.headers or None)


class _Completion(_Wire, tag=3, frozen=True, gc=False):
    headers: Headers | None
    invocation_id: str
    kind: int
    result: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET

    def to_message(self) -> HubMessage:
        headers = self.headers or None
        if self.kind == _VOID_RESULT:
            return Completion(invocation_id=self.invocation_id, headers=headers)
        if self.result is msgspec.UNSET:
            raise _protocol_error(f"Completion of result kind {self.kind} has no result")
        if self.kind == _NON_VOID_RESULT:
            return Completion(invocation_id=self.invocation_id, result=self.result,
                              headers=headers)
        if self.kind == _ERROR_RESULT:
            try:
                error = _STR_DECODER.decode(self.result)
            except _DECODE_ERRORS:
                raise _protocol_error("Completion error is not a string") from None
            return Completion(invocation_id=self.invocation_id, error=error, headers=headers)
        raise _protocol_error(f"invalid Completion result kind: {self.kind}")


class _StreamInvocation(_Wire, tag=4, frozen=True, gc=False):
    headers: Headers | None
    invocation_id: str
    target: NonEmptyStr
    arguments: tuple[msgspec.Raw, ...]
    stream_ids: tuple[str, ...] | None = None

    def to_message(self) -> HubMessage:
        return StreamInvocation(invocation_id=self.invocation_id, target=self.target,
                                arguments=self.arguments, stream_ids=self.stream_ids or None,
                                headers=self.headers or None)


class _CancelInvocation(_Wire, tag=5, frozen=True, gc=False):
    headers: Headers | None
    invocation_id: str

    def to_message(self) -> HubMessage:
        return CancelInvocation(invocation_id=self.invocation_id, headers=self.headers or None)


_PING: Final = Ping()


class _Ping(_Wire, tag=6, frozen=True, gc=False):
    def to_message(self) -> HubMessage:
        return _PING


class _Close(_Wire, tag=7, frozen=True, gc=False):
    error: str | None
    allow_reconnect: bool = False

    def to_message(self) -> HubMessage:
        return Close(error=self.error, allow_reconnect=self.allow_reconnect)


class _Ack(_Wire, tag=8, frozen=True, gc=False):
    sequence_id: int

    def to_message(self) -> HubMessage:
        return Ack(sequence_id=self.sequence_id)


class _Sequence(_Wire, tag=9, frozen=True, gc=False):
    sequence_id: int

    def to_message(self) -> HubMessage:
        return Sequence(sequence_id=self.sequence_id)


def _wire_union(argument_type: Any) -> Any:
    return Union[_Invocation[argument_type], _StreamItem, _Completion, _StreamInvocation,
                 _CancelInvocation, _Ping, _Close, _Ack, _Sequence]


_RAW_DECODER: Final[msgspec.msgpack.Decoder[Any]] = msgspec.msgpack.Decoder(
    _wire_union(msgspec.Raw))
_VALUES_DECODER: Final = msgspec.msgpack.Decoder(list[msgspec.Raw])
_TRAFFIC: Final = frozenset(
    {Invocation, StreamItem, Completion, StreamInvocation, CancelInvocation, Ping})


# -- encoding ------------------------------------------------------------------------------


def _array(message: HubMessage) -> list[Any]:
    """The MessagePack array for ``message`` (see the module docstring)."""
    if isinstance(message, Invocation):
        return [1, message.headers or {}, message.invocation_id, message.target,
                message.arguments, message.stream_ids or ()]
    if isinstance(message, StreamItem):
        return [2, message.headers or {}, message.invocation_id, message.item]
    if isinstance(message, Completion):
        head = [3, message.headers or {}, message.invocation_id]
        if message.error is not None:
            return [*head, _ERROR_RESULT, message.error]
        if message.result is msgspec.UNSET:
            return [*head, _VOID_RESULT]
        return [*head, _NON_VOID_RESULT, message.result]
    if isinstance(message, StreamInvocation):
        return [4, message.headers or {}, message.invocation_id, message.target,
                message.arguments, message.stream_ids or ()]
    if isinstance(message, CancelInvocation):
        return [5, message.headers or {}, message.invocation_id]
    if isinstance(message, Close):
        return [7, message.error, message.allow_reconnect]
    if isinstance(message, (Ack, Sequence)):
        return [8 if isinstance(message, Ack) else 9, message.sequence_id]
    raise TypeError(f"not a hub message: {type(message).__name__}")


class MessagePackHubCodec(HubCodec[ArgT], Generic[ArgT]):
    """Encodes hub messages as length-prefixed MessagePack and decodes frames of them.

    Args:
        argument_type: what invocation arguments become, e.g. ``msgspec.Raw`` (their
            MessagePack bytes) or any type msgspec can decode MessagePack into.
        fallback: turns one argument ``argument_type`` rejected into an ``ArgT``; it must
            not raise.
    """

    protocol: ClassVar[str] = "messagepack"
    transfer_format: ClassVar[str] = "Binary"

    __slots__ = ("_batch", "_decoder", "_fallback", "_typed_args")

    def __init__(self, argument_type: Any, fallback: Callable[[msgspec.Raw], ArgT]) -> None:
        self._typed_args = argument_type is not msgspec.Raw
        self._fallback = fallback
        union: Any = _wire_union(argument_type)
        self._decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(union)
        self._batch: msgspec.msgpack.Decoder[list[Any]] = msgspec.msgpack.Decoder(list[union])

    @staticmethod
    def encode(message: HubMessage) -> bytes:
        """Serialize one hub message: its length prefix and its MessagePack array.

        Raises:
            TypeError: ``message`` is not a hub message, or holds a value of a type
                MessagePack cannot carry.
            OverflowError: an integer outside MessagePack's range (-2**63 to 2**64 - 1).
        """
        if type(message) is Ping:
            return _PING_FRAME
        payload = _ENCODER.encode(_array(message))
        return encode_length_prefix(len(payload)) + payload

    def new_buffer(self, max_message_size: int) -> LengthPrefixedBuffer:
        """A buffer that hands out whole length-prefixed messages."""
        return LengthPrefixedBuffer(max_message_size)

    def decode_records(self, chunk: bytes) -> list[HubMessage]:
        """Decode complete length-prefixed messages into hub messages.

        Unknown types are skipped. The messages of a chunk are joined into one MessagePack
        array and decoded in one msgspec call; a first, untyped pass over that array must
        find exactly one value per message (each the length its prefix gave), so a
        message holding two values, or a cut one, never passes. Anything the typed pass
        refuses (an unknown type, a bad message, an argument for the fallback) is decoded
        again message by message, which applies the full rules.

        Raises:
            RemoteProtocolError: a length prefix is malformed or runs past the chunk, a
                message is not one MessagePack array with an integer type first, or it
                breaks its type's layout (e.g. a Completion error that is not a string).
        """
        if chunk.startswith(_PING_FRAME):  # keep-alive traffic needs no parsing
            pings = chunk.count(_PING_FRAME)
            if pings * len(_PING_FRAME) == len(chunk):
                return [_PING] * pings
        payloads = getattr(chunk, "payloads", None)
        if payloads is None:
            payloads = _split(chunk)
        lengths = list(map(len, payloads))
        count = len(payloads)
        joined = b"".join((b"\xdd", count.to_bytes(4, "big"), *payloads))
        try:
            exact = list(map(len, _VALUES_DECODER.decode(joined))) == lengths
            wires: list[_Wire] | None = self._batch.decode(joined) if exact else None
        except _DECODE_ERRORS:
            wires = None
        if wires is not None:
            return [wire.to_message() for wire in wires]
        messages: list[HubMessage] = []
        for payload in payloads:
            message = self._decode_one(payload)
            if message is not None:
                messages.append(message)
        return messages

    def decode_traffic(self, chunk: bytes) -> list[HubMessage] | None:
        """Like [`decode_records()`][voxta_proto.hub.msgpack.MessagePackHubCodec.decode_records]
        when every message is traffic (no Close, Ack or Sequence), else None (then the caller uses
        [`decode_records()`][voxta_proto.hub.msgpack.MessagePackHubCodec.decode_records])."""
        messages = self.decode_records(chunk)
        return messages if _TRAFFIC.issuperset(map(type, messages)) else None

    def _decode_one(self, payload: memoryview) -> HubMessage | None:
        try:
            wire: _Wire = self._decoder.decode(payload)
        except _DECODE_ERRORS as exc:
            if not self._typed_args:
                return self._explain(payload, exc)
            try:
                wire = _RAW_DECODER.decode(payload)
            except _DECODE_ERRORS as raw_exc:
                return self._explain(payload, raw_exc)
            if isinstance(wire, _Invocation):
                fallback = self._fallback
                wire = msgspec.structs.replace(
                    wire, arguments=tuple(fallback(arg) for arg in wire.arguments))
        return wire.to_message()

    @staticmethod
    def _explain(payload: memoryview, exc: Exception) -> None:
        """Skip a message of unknown type, or raise the right protocol error for it."""
        try:
            obj = _ANY_DECODER.decode(payload)
        except _DECODE_ERRORS:
            raise _protocol_error(f"message is not valid MessagePack: {exc}") from None
        if not isinstance(obj, list):
            raise _protocol_error("message is not a MessagePack array")
        if not obj:
            raise _protocol_error("hub message has no type (empty array)")
        kind = obj[0]
        if not isinstance(kind, int) or isinstance(kind, bool):
            raise _protocol_error(f"hub message type is not an integer: {kind!r}")
        if kind not in HUB_MESSAGE_TYPES:
            return
        name = HUB_MESSAGE_TYPES[kind].__name__
        raise _protocol_error(f"invalid {name} message: {exc}")


def _split(chunk: bytes) -> list[memoryview]:
    """The payloads of the complete length-prefixed messages making up ``chunk``.

    Raises:
        RemoteProtocolError: a prefix is malformed, a message is empty, or the last one
            runs past the end of ``chunk``.
    """
    view = memoryview(chunk)
    payloads = []
    pos = 0
    end = len(chunk)
    while pos < end:
        length = chunk[pos]
        if length < 0x80:  # one- and two-byte prefixes (up to 16 KiB), inline
            start = pos + 1
        elif pos + 1 < end and chunk[pos + 1] < 0x80:
            length = (length & 0x7F) | (chunk[pos + 1] << 7)
            start = pos + 2
        else:
            prefix = _read_length_prefix(chunk, pos)
            if prefix is None:
                raise _protocol_error("incomplete message at the end of a chunk")
            length, start = prefix
        if length == 0:
            raise _protocol_error("empty message (length 0)")
        pos = start + length
        if pos > end:
            raise _protocol_error("incomplete message at the end of a chunk")
        payloads.append(view[start:pos])
    return payloads


def raw_messagepack_codec() -> MessagePackHubCodec[msgspec.Raw]:
    """A MessagePack codec that leaves invocation arguments as their MessagePack bytes."""
    return MessagePackHubCodec(msgspec.Raw, lambda raw: raw)
