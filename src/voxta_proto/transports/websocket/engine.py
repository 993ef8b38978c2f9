"""The sans-IO WebSocket engine interface and its two implementations.

An engine frames and parses one WebSocket connection after the HTTP upgrade: bytes in,
events out; messages, pings, pongs and close frames in, bytes out. It answers what
RFC 6455 says must be answered (a ping with a pong, a close with a close, a broken frame
with a close carrying 1002/1007/1009) by queueing bytes the transport collects with
[`WebSocketEngine.data_to_send()`][voxta_proto.transports.websocket.engine.WebSocketEngine.data_to_send].
Reassembly, size limits, timeouts and I/O stay in
the transport, so both engines behave alike on the wire and in errors.

* ``"wsproto"`` (default, a required dependency): hands text as ``str``, so text costs an
  encode on the way in and a decode on the way out.
* ``"websockets"`` (extra ``voxta-proto[websockets]``): its sans-IO ``Protocol`` after we
  did the upgrade with h11; text stays bytes both ways. websockets does not check UTF-8
  of text frames at this level, so the engine does (a cheap ``isascii`` first) and fails
  the connection with 1007 as RFC 6455 §8.1 asks.
"""

from __future__ import annotations

import codecs
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, Union

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.frame_protocol import (
    LOCAL_ONLY_CLOSE_REASONS,
    MAX_CLOSE_REASON,
    MAX_PROTOCOL_CLOSE_REASON,
    MIN_CLOSE_REASON,
    CloseReason,
    FrameDecoder,
    Opcode,
    ParseFailed,
)

if TYPE_CHECKING:
    from websockets.frames import Frame as WsFrame

__all__ = [
    "ENGINES",
    "CloseReceived",
    "EngineEvent",
    "EngineName",
    "MessageData",
    "PingReceived",
    "PongReceived",
    "ProtocolFailure",
    "WebSocketEngine",
    "create_engine",
]

EngineName = Literal["wsproto", "websockets"]
ENGINES: Final[tuple[str, ...]] = ("wsproto", "websockets")
"""Names accepted by ``websocket_engine=``."""

_INSTALL_HINT: Final = "pip install 'voxta-proto[websockets]'"
_TEXT, _BINARY, _CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION
_PING, _PONG = Opcode.PING, Opcode.PONG


@dataclass(slots=True)
class MessageData:
    """A piece of a message: ``finished`` marks its last piece (a whole unfragmented
    message is one piece). ``data`` is UTF-8 for text."""

    data: bytes
    is_text: bool
    finished: bool


@dataclass(slots=True)
class PingReceived:
    """The peer pinged; the engine has queued the pong."""

    payload: bytes


@dataclass(slots=True)
class PongReceived:
    """The peer answered a ping of ours (or sent an unsolicited pong)."""

    payload: bytes


@dataclass(slots=True)
class CloseReceived:
    """The peer's close frame; the engine has queued our reply when we had not closed."""

    code: int
    reason: str


@dataclass(slots=True)
class ProtocolFailure:
    """The peer broke the protocol; the engine has queued our close frame with
    ``code`` (1002, 1007 or 1009) and ignores everything after."""

    code: int
    reason: str


EngineEvent = Union[MessageData, PingReceived, PongReceived, CloseReceived, ProtocolFailure]


class WebSocketEngine(Protocol):
    """Framing for one open WebSocket connection (after the upgrade), sans-IO."""

    name: str

    def receive_data(self, data: bytes) -> list[EngineEvent]:
        """Parse bytes from the network; return the events they completed, in order."""
        ...

    def data_to_send(self) -> bytes:
        """Bytes the engine queued by itself (pongs, close replies) since the last call."""
        ...

    def send_text(self, data: bytes | str) -> bytes:
        """Frame one text message: UTF-8 bytes (checked) or a ``str``.

        Raises:
            UnicodeError: ``data`` is not valid UTF-8 (or a ``str`` with lone
                surrogates); nothing was framed.
        """
        ...

    def send_binary(self, data: bytes) -> bytes:
        """Frame one binary message."""
        ...

    def send_ping(self, payload: bytes) -> bytes:
        """Frame a ping."""
        ...

    def send_close(self, code: int, reason: str) -> bytes:
        """Frame our close; nothing may be sent after it."""
        ...


# ------------------------------------------------------------------------------ UTF-8


class _Utf8Check:
    """UTF-8 check of one text message's frames: a cheap ``isascii`` first, one
    incremental decoder only when a character may straddle two frames. No ``str`` is
    kept."""

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder: codecs.IncrementalDecoder | None = None

    def valid(self, payload: Any, first: bool, fin: bool) -> bool:
        """Whether this piece (``first`` of its message, ``fin`` its last) keeps the
        message valid UTF-8 so far."""
        if first:
            self._decoder = None
        decoder = self._decoder
        if decoder is None:
            if payload.isascii():
                return True  # every piece so far was ASCII: no character is cut
            if fin:
                try:
                    codecs.utf_8_decode(payload, "strict", True)
                except UnicodeDecodeError:
                    return False
                return True
            decoder = self._decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            decoder.decode(payload, fin)
        except UnicodeDecodeError:
            return False
        if fin:
            self._decoder = None
        return True


# -------------------------------------------------------------------------------- wsproto


def _close_payload(data: bytes) -> tuple[int, str]:
    """A received close frame's code and reason, checked as RFC 6455 §7.4 asks.

    Raises:
        ParseFailed: a 1-byte payload, a code the peer may not send, a reason that is
            not UTF-8.
    """
    if not data:
        return CloseReason.NO_STATUS_RCVD, ""
    if len(data) == 1:
        raise ParseFailed("CLOSE with 1 byte payload")
    code = int.from_bytes(data[:2], "big")
    if not MIN_CLOSE_REASON <= code <= MAX_CLOSE_REASON:
        raise ParseFailed("CLOSE with invalid code")
    if code in LOCAL_ONLY_CLOSE_REASONS:
        raise ParseFailed("remote CLOSE with local-only reason")
    if code <= MAX_PROTOCOL_CLOSE_REASON and code not in _KNOWN_CLOSE_CODES:
        raise ParseFailed("CLOSE with unknown reserved code")
    try:
        reason = data[2:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseFailed(f"Error decoding CLOSE reason: {exc}",
                          CloseReason.INVALID_FRAME_PAYLOAD_DATA) from None
    return code, reason


_KNOWN_CLOSE_CODES: Final = frozenset(int(reason) for reason in CloseReason)


class WsprotoEngine:
    """wsproto: its `FrameDecoder` parses what we receive (headers, lengths, masks,
    control-frame rules) and a post-handshake `Connection` frames what we send.

    Frames are read straight from the decoder rather than through
    `Connection.events()`, which decodes every text frame to `str` (we need bytes)
    and costs a generator and an event object per frame: about half of the receive
    cost of a small message. What that layer did is done here: continuation order,
    the UTF-8 check (`_Utf8Check`), close payloads, answering pings and closes.
    """

    name = "wsproto"

    def __init__(self, *, client: bool) -> None:
        role = ConnectionType.CLIENT if client else ConnectionType.SERVER
        self._conn = Connection(role)  # frames (and masks) what we send
        self._decoder = FrameDecoder(client=client, extensions=[])
        self._out = bytearray()
        self._message: Opcode | None = None
        """Opcode of the data message being received, None between messages."""
        self._utf8 = _Utf8Check()
        self._failed = False
        self._close_received = False

    def receive_data(self, data: bytes) -> list[EngineEvent]:
        out: list[EngineEvent] = []
        if self._failed or self._close_received:
            return out
        decoder = self._decoder
        decoder.receive_bytes(data)
        try:
            while True:
                frame = decoder.process_buffer()
                if frame is None:
                    return out
                opcode = frame.opcode
                payload: bytes = frame.payload  # type: ignore[assignment]  # the decoder's bytes
                if opcode is _TEXT or opcode is _BINARY or opcode is _CONT:
                    out.append(self._data(opcode, payload,
                                          frame.frame_finished and frame.message_finished))
                elif opcode is _PING:
                    if self._conn.state is ConnectionState.OPEN:
                        self._out += self._conn.send(Pong(payload=payload))
                    out.append(PingReceived(payload))
                elif opcode is _PONG:
                    out.append(PongReceived(payload))
                else:  # CLOSE
                    code, reason = _close_payload(payload)
                    self._close_received = True
                    if self._conn.state is ConnectionState.OPEN:  # the peer closed first
                        self._out += self._conn.send(CloseConnection(code, reason))
                    out.append(CloseReceived(code, reason))
                    return out
        except ParseFailed as exc:
            if self._conn.state is ConnectionState.OPEN:
                self._out += self._conn.send(CloseConnection(exc.code, str(exc)))
            self._failed = True
            out.append(ProtocolFailure(int(exc.code), str(exc)))
            return out

    def _data(self, opcode: Opcode, payload: bytes, finished: bool) -> MessageData:
        """One piece of a data message (a frame, or part of one the read cut)."""
        first = self._message is None
        if first:
            if opcode is _CONT:
                raise ParseFailed("unexpected CONTINUATION")
            self._message = opcode
        elif opcode is not _CONT:
            raise ParseFailed(f"expected CONTINUATION, got {opcode!r}")
        is_text = self._message is _TEXT
        if finished:
            self._message = None
        if is_text and not self._utf8.valid(payload, first, finished):
            raise ParseFailed("invalid UTF-8 in a text message",
                              CloseReason.INVALID_FRAME_PAYLOAD_DATA)
        return MessageData(payload, is_text, finished)

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def send_text(self, data: bytes | str) -> bytes:
        # wsproto frames text from str only: the one str round trip this engine costs
        # (the decode is also the UTF-8 check).
        text = data if isinstance(data, str) else data.decode("utf-8")
        if not text.isascii():
            text.encode("utf-8")  # lone surrogates: refuse before wsproto frames them
        return self._conn.send(TextMessage(data=text))

    def send_binary(self, data: bytes) -> bytes:
        return self._conn.send(BytesMessage(data=data))

    def send_ping(self, payload: bytes) -> bytes:
        return self._conn.send(Ping(payload=payload))

    def send_close(self, code: int, reason: str) -> bytes:
        if self._conn.state is not ConnectionState.OPEN:
            return b""
        return self._conn.send(CloseConnection(code, reason))


# ----------------------------------------------------------------------------- websockets


class _QuietAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets logs every closed server connection at INFO; that is DEBUG for us."""

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.debug(msg, *args, **kwargs)


_ENGINE_LOGGER: Final = _QuietAdapter(logging.getLogger("voxta_proto.transports.websockets"))


class WebsocketsEngine:
    """websockets' sans-IO `websockets.protocol.Protocol`, started in OPEN state
    after our own h11 upgrade."""

    name = "websockets"

    def __init__(self, *, client: bool, max_message_size: int | None) -> None:
        from websockets.frames import Opcode
        from websockets.protocol import Protocol as WsProtocol
        from websockets.protocol import Side, State

        self._text, self._binary, self._cont = Opcode.TEXT, Opcode.BINARY, Opcode.CONT
        self._ping, self._pong, self._close = Opcode.PING, Opcode.PONG, Opcode.CLOSE
        self._proto = WsProtocol(
            Side.CLIENT if client else Side.SERVER,
            state=State.OPEN,
            max_size=max_message_size,
            logger=_ENGINE_LOGGER,
        )
        self._open = State.OPEN
        self._message_is_text = False
        self._utf8 = _Utf8Check()
        self._failed = False

    def receive_data(self, data: bytes) -> list[EngineEvent]:
        proto = self._proto
        out: list[EngineEvent] = []
        if self._failed:
            return out
        try:
            proto.receive_data(data)
        except EOFError:  # fed after EOF: nothing more can come
            return out
        text, binary, cont = self._text, self._binary, self._cont
        # Once OPEN, websockets only produces frames.
        frames: list[WsFrame] = proto.events_received()  # type: ignore[assignment]
        for frame in frames:
            opcode = frame.opcode
            if opcode is text or opcode is binary or opcode is cont:
                payload = frame.data
                first = opcode is not cont
                if first:
                    self._message_is_text = opcode is text
                if self._message_is_text and not self._utf8.valid(payload, first, frame.fin):
                    proto.fail(1007, "invalid UTF-8 in a text message")
                    self._failed = True
                    out.append(ProtocolFailure(1007, "invalid UTF-8 in a text message"))
                    return out
                out.append(MessageData(bytes(payload), self._message_is_text, frame.fin))
            elif opcode is self._ping:
                out.append(PingReceived(bytes(frame.data)))
            elif opcode is self._pong:
                out.append(PongReceived(bytes(frame.data)))
            else:  # close: Protocol recorded it and queued the reply if needed
                rcvd = proto.close_rcvd
                code = rcvd.code if rcvd is not None else 1005
                out.append(CloseReceived(code, rcvd.reason if rcvd is not None else ""))
        if proto.parser_exc is not None and not isinstance(proto.parser_exc, EOFError):
            sent = proto.close_sent
            self._failed = True
            out.append(ProtocolFailure(
                sent.code if sent is not None else 1002,
                sent.reason if sent is not None else str(proto.parser_exc),
            ))
        return out

    def data_to_send(self) -> bytes:
        writes = self._proto.data_to_send()
        if not writes:
            return b""
        return b"".join(writes)  # b"" entries (half-close) add nothing; we close TCP

    def _framed(self) -> bytes:
        writes = self._proto.data_to_send()
        return writes[0] if len(writes) == 1 else b"".join(writes)

    def send_text(self, data: bytes | str) -> bytes:
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif not data.isascii():
            codecs.utf_8_decode(data, "strict", True)  # the check; no str is kept
        self._proto.send_text(data)
        return self._framed()

    def send_binary(self, data: bytes) -> bytes:
        self._proto.send_binary(data)
        return self._framed()

    def send_ping(self, payload: bytes) -> bytes:
        self._proto.send_ping(payload)
        return self._framed()

    def send_close(self, code: int, reason: str) -> bytes:
        if self._proto.state is not self._open:
            return b""
        self._proto.send_close(code, reason)
        return self._framed()


def create_engine(name: str, *, client: bool, max_message_size: int | None) -> WebSocketEngine:
    """The engine called ``name`` for a connection whose upgrade just finished.

    Raises:
        ValueError: ``name`` is not one of
            [`ENGINES`][voxta_proto.transports.websocket.engine.ENGINES].
        ImportError: the engine's optional dependency is not installed (one line naming
            the extra to install).
    """
    if name == "wsproto":
        return WsprotoEngine(client=client)
    if name == "websockets":
        check_engine(name)
        return WebsocketsEngine(client=client, max_message_size=max_message_size)
    check_engine(name)
    raise AssertionError("unreachable")  # pragma: no cover


def check_engine(name: str) -> None:
    """Fail early (before any I/O) for an unknown or missing engine.

    Raises:
        ValueError: unknown name.
        ImportError: the ``websockets`` extra is missing.
    """
    if name not in ENGINES:
        raise ValueError(
            f"unknown websocket_engine {name!r}; use one of: {', '.join(map(repr, ENGINES))}"
        )
    if name == "websockets":
        try:
            import websockets.protocol  # noqa: F401
        except ImportError:
            raise ImportError(
                f"websocket_engine='websockets' needs the websockets package: {_INSTALL_HINT}"
            ) from None
        from websockets.version import version

        if int(version.split(".")[0]) < 13:
            raise ImportError(
                f"websocket_engine='websockets' needs websockets>=13, found {version}: "
                f"{_INSTALL_HINT}"
            )
