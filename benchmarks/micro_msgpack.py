"""Decode rows for the MessagePack hub protocol, next to JSON, on the same workloads.

Each corpus is carried over message for message and frame for frame (arguments, items and
results re-encoded as MessagePack), then both go through ``HubConnection.receive_data``
with arguments left raw, so the two rows differ only in the hub protocol. Kept apart from
``micro.py`` so the MessagePack rows stay one import and one dict merge in ``__main__``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from benchmarks.corpus import Corpus
from benchmarks.micro import Factory, Run
from voxta_proto.hub import (
    Completion,
    HandshakeRequest,
    HubCodec,
    HubConnection,
    HubMessage,
    Invocation,
    Role,
    StreamItem,
    raw_codec,
    raw_messagepack_codec,
)

__all__ = ["JSON_RAW", "MSGPACK_RAW", "decode_paths", "to_messagepack"]

JSON_RAW = "hub JSON: receive_data, raw arguments"
MSGPACK_RAW = "hub MessagePack: receive_data, raw arguments"


def _payload(raw: msgspec.Raw) -> msgspec.Raw:
    return msgspec.Raw(msgspec.msgpack.encode(msgspec.json.decode(raw)))


def _convert(message: HubMessage) -> HubMessage:
    if isinstance(message, Invocation):
        return msgspec.structs.replace(
            message, arguments=tuple(_payload(arg) for arg in message.arguments))
    if isinstance(message, StreamItem):
        return msgspec.structs.replace(message, item=_payload(message.item))
    if isinstance(message, Completion) and message.has_result:
        assert isinstance(message.result, msgspec.Raw)
        return msgspec.structs.replace(message, result=_payload(message.result))
    return message


def to_messagepack(corpus: Corpus) -> tuple[bytes, ...]:
    """The corpus's frames in the MessagePack hub protocol, the same messages per frame."""
    decode = raw_codec().decode_records
    encode = raw_messagepack_codec().encode
    return tuple(b"".join(encode(_convert(m)) for m in decode(frame))
                 for frame in corpus.frames)


def _receiver(codec: HubCodec[Any], frames: tuple[bytes, ...]) -> Factory:
    def factory() -> Run:  # past the handshake before timing starts
        conn = HubConnection(Role.CLIENT, now=0.0, codec=codec)
        conn.send(HandshakeRequest(protocol=codec.protocol, version=1), now=0.0)
        conn.receive_data(b"{}\x1e", now=0.0)
        receive = conn.receive_data

        def run() -> int:
            n = 0
            for frame in frames:
                n += len(receive(frame, now=0.0))
            return n
        return run
    return factory


def decode_paths(corpus: Corpus) -> dict[str, Factory]:
    """The JSON and MessagePack raw-argument rows for ``corpus``."""
    return {JSON_RAW: _receiver(raw_codec(), corpus.frames),
            MSGPACK_RAW: _receiver(raw_messagepack_codec(), to_messagepack(corpus))}
