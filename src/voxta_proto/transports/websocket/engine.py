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

if TYPE_CHECKING:
    from websockets.frames import Frame

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


# -------------------------------------------------------------------------------- wsproto


class WsprotoEngine:
    """wsproto's post-handshake `Connection`."""

    name = "wsproto"

    def __init__(self, *, client: bool) -> None:
        role = ConnectionType.CLIENT if client else ConnectionType.SERVER
        self._conn = Connection(role)
        self._out = bytearray()
        self._failed = False

    def receive_data(self, data: bytes) -> list[EngineEvent]:
        conn = self._conn
        if self._failed or conn.state is ConnectionState.CLOSED:
            return []
        conn.receive_data(data)
        out: list[EngineEvent] = []
        for event in conn.events():  # wsproto updates its state as it yields
            if isinstance(event, TextMessage):
                out.append(MessageData(event.data.encode(), True, event.message_finished))
            elif isinstance(event, BytesMessage):
                out.append(MessageData(bytes(event.data), False, event.message_finished))
            elif isinstance(event, Ping):
                if self._state() is ConnectionState.OPEN:
                    self._out += conn.send(event.response())
                out.append(PingReceived(bytes(event.payload)))
            elif isinstance(event, Pong):
                out.append(PongReceived(bytes(event.payload)))
            elif isinstance(event, CloseConnection):
                code, reason = event.code, event.reason or ""
                state = self._state()
                if state is ConnectionState.REMOTE_CLOSING:
                    self._out += conn.send(event.response())
                    out.append(CloseReceived(code, reason))
                elif state is ConnectionState.CLOSED:  # the reply to our close
                    out.append(CloseReceived(code, reason))
                else:
                    # wsproto reports a broken frame as a close event without changing
                    # state (OPEN), or garbage while we wait for a close reply.
                    if state is ConnectionState.OPEN:
                        self._out += conn.send(CloseConnection(code, reason))
                    self._failed = True
                    out.append(ProtocolFailure(code, reason))
                    break
        return out

    def _state(self) -> ConnectionState:
        return self._conn.state

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
        self._utf8: codecs.IncrementalDecoder | None = None
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
        frames: list[Frame] = proto.events_received()  # type: ignore[assignment]
        for frame in frames:
            opcode = frame.opcode
            if opcode is text or opcode is binary or opcode is cont:
                payload = frame.data
                if opcode is not cont:
                    self._message_is_text = opcode is text
                if self._message_is_text and not self._valid_text(payload, frame.fin, opcode):
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

    def _valid_text(self, payload: Any, fin: bool, opcode: object) -> bool:
        """UTF-8 check of a text frame; fragments go through one incremental decoder
        (a character may straddle two frames)."""
        if opcode is not self._cont:
            self._utf8 = None
        decoder = self._utf8
        if decoder is None:
            if payload.isascii():
                return True
            if fin and opcode is not self._cont:
                try:
                    codecs.utf_8_decode(payload, "strict", True)
                except UnicodeDecodeError:
                    return False
                return True
            decoder = self._utf8 = codecs.getincrementaldecoder("utf-8")()
        try:
            decoder.decode(payload, fin)
        except UnicodeDecodeError:
            return False
        if fin:
            self._utf8 = None
        return True

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
