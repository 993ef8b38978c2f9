"""Running hub tests over both hub protocols (JSON and MessagePack).

The message strategies and ``HubPair`` speak JSON; this module converts their messages to
what the MessagePack codec carries and gives pairs and connections on either codec.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import strategies as st

from helpers import Conn, HubPair
from voxta_proto.hub import (
    Completion,
    HandshakeAccepted,
    HandshakeRequest,
    HubCodec,
    HubConfig,
    HubConnection,
    HubMessage,
    HubState,
    Invocation,
    Role,
    StreamInvocation,
    StreamItem,
    raw_codec,
    raw_messagepack_codec,
)

__all__ = ["CODECS", "CodecPair", "as_wire_message", "for_codec", "hex_bytes",
           "load_vectors", "message_from_json", "open_codec_conn", "open_codec_pair"]

Raw = msgspec.Raw
CODECS: dict[str, Callable[[], HubCodec[Raw]]] = {
    "json": raw_codec,
    "messagepack": raw_messagepack_codec,
}
"""Hub protocol name -> a codec factory with raw arguments."""

VECTORS = Path(__file__).resolve().parent / "vectors" / "msgpack"


def _to_msgpack(raw: Raw) -> Raw:
    return Raw(msgspec.msgpack.encode(msgspec.json.decode(raw)))


def as_wire_message(message: HubMessage, protocol: str) -> HubMessage:
    """``message`` (built with JSON payloads) as the ``protocol`` codec decodes it.

    For MessagePack the payloads become MessagePack bytes, and an empty ``headers`` map or
    ``stream_ids`` list becomes None (the wire writes both empty when absent).

    Raises:
        OverflowError: an integer does not fit MessagePack's 64 bits (see ``for_codec``).
    """
    if protocol == "json":
        return message
    changes: dict[str, Any] = {}
    if getattr(message, "headers", None) == {}:
        changes["headers"] = None
    if isinstance(message, (Invocation, StreamInvocation)):
        changes["arguments"] = tuple(_to_msgpack(arg) for arg in message.arguments)
        if message.stream_ids == ():
            changes["stream_ids"] = None
    elif isinstance(message, StreamItem):
        changes["item"] = _to_msgpack(message.item)
    elif isinstance(message, Completion) and message.has_result:
        assert isinstance(message.result, Raw)
        changes["result"] = _to_msgpack(message.result)
    return msgspec.structs.replace(message, **changes) if changes else message


def _fits(message: HubMessage) -> bool:
    try:
        as_wire_message(message, "messagepack")
    except OverflowError:
        return False
    return True


def for_codec(strategy: st.SearchStrategy[HubMessage],
              protocol: str) -> st.SearchStrategy[HubMessage]:
    """``strategy``'s messages as ``protocol`` carries them (MessagePack: integers over
    64 bits, which it cannot carry, are left out)."""
    if protocol == "json":
        return strategy
    return strategy.filter(_fits).map(lambda m: as_wire_message(m, protocol))


def open_codec_conn(protocol: str, role: Role = Role.CLIENT,
                    config: HubConfig | None = None, *, now: float = 0.0) -> Conn:
    """A connection speaking ``protocol``, already OPEN (handshake version 1)."""
    conn: Conn = HubConnection(role, now=now, config=config or HubConfig(),
                               codec=CODECS[protocol]())
    request = HandshakeRequest(protocol=protocol, version=1)
    if role is Role.CLIENT:
        conn.send(request, now=now)
        assert conn.receive_data(b"{}\x1e", now=now) == [HandshakeAccepted()]
    else:
        wire = json.dumps({"protocol": protocol, "version": 1}).encode() + b"\x1e"
        assert conn.receive_data(wire, now=now) == [request]
        conn.send(HandshakeAccepted(), now=now)
    assert conn.state is HubState.OPEN
    return conn


class CodecPair(HubPair):
    """A ``HubPair`` whose two sides speak ``protocol``."""

    def __init__(self, protocol: str, config: HubConfig | None = None, *,
                 now: float = 0.0) -> None:
        super().__init__(config, now=now)
        self.protocol = protocol
        base = config or HubConfig()
        self.client = HubConnection(Role.CLIENT, now=now, config=base,
                                    codec=CODECS[protocol]())
        self.server = HubConnection(Role.SERVER, now=now, config=base,
                                    codec=CODECS[protocol]())

    def handshake(self, version: int = 1) -> None:
        """Run the handshake for ``protocol``; both sides end OPEN."""
        self.client_sends(HandshakeRequest(protocol=self.protocol, version=version))
        self.server_sends(HandshakeAccepted())
        assert self.states() == (HubState.OPEN, HubState.OPEN)


def open_codec_pair(protocol: str, config: HubConfig | None = None, *,
                    stateful: bool = False, now: float = 0.0) -> CodecPair:
    """A ``CodecPair`` after a successful handshake (version 2 with ``stateful``)."""
    if stateful:
        config = dataclasses.replace(config or HubConfig(), stateful_reconnect=True)
    pair = CodecPair(protocol, config, now=now)
    pair.handshake(version=2 if stateful else 1)
    assert pair.client.stateful_reconnect is stateful
    return pair


# -- golden vectors ----------------------------------------------------------------------


def hex_bytes(text: str) -> bytes:
    """Bytes from the vectors' hex, where ``|`` separates array items for the reader."""
    return bytes.fromhex(text.replace("|", " "))


def load_vectors(name: str) -> list[dict[str, Any]]:
    """The rows of ``tests/vectors/msgpack/<name>.jsonl``."""
    lines = (VECTORS / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def message_from_json(obj: dict[str, Any], protocol: str = "messagepack") -> HubMessage:
    """The hub message a vector's JSON form describes, as ``protocol`` carries it."""
    (message,) = raw_codec().decode_records(json.dumps(obj).encode() + b"\x1e")
    return as_wire_message(message, protocol)
