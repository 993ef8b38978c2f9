"""The exception tree of voxta-proto; imports nothing of ours so every layer can use it.

Every error the library raises on purpose derives from
[`VoxtaProtoError`][voxta_proto.errors.VoxtaProtoError]. The sans-IO core only ever raises
[`ProtocolError`][voxta_proto.errors.ProtocolError] subclasses; the transports map library
exceptions (anyio, h11, wsproto, ssl) to
[`TransportError`][voxta_proto.errors.TransportError] subclasses at their edge, so no
third-party exception reaches users.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voxta_proto.hub.messages import Close

__all__ = [
    "AuthenticationFailed",
    "ChatGone",
    "ConnectError",
    "ConnectionClosed",
    "HandshakeRejected",
    "InvocationError",
    "LocalProtocolError",
    "MessageValidationError",
    "NegotiationError",
    "PeerTimeout",
    "ProtocolError",
    "ReadError",
    "RemoteProtocolError",
    "RestError",
    "TransportClosed",
    "TransportError",
    "TransportTimeout",
    "VoxtaProtoError",
    "WriteAborted",
    "WriteError",
]


class VoxtaProtoError(Exception):
    """Base of every error this library raises on purpose."""


class ProtocolError(VoxtaProtoError):
    """The SignalR or Voxta protocol was broken; the connection is unusable afterwards."""


class LocalProtocolError(ProtocolError):
    """We misused the state machine (a bug in the caller, never the peer's fault)."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol.

    Attributes:
        close_hint: the SignalR Close message to send back before hanging up, if any.
    """

    def __init__(self, message: str, *, close_hint: Close | None = None) -> None:
        super().__init__(message)
        self.close_hint = close_hint


class MessageValidationError(VoxtaProtoError, ValueError):
    """One Voxta message did not match its schema (wrong field types, missing fields).

    This is an application-level error: it never breaks the SignalR connection. A client
    gets it as an event, a server answers the invocation with a Completion error.

    Attributes:
        type_name: the message's ``$type`` if it could be read, else ``None``.
    """

    def __init__(self, message: str, *, type_name: str | None = None) -> None:
        super().__init__(message)
        self.type_name = type_name


class NegotiationError(VoxtaProtoError):
    """The negotiate step failed: an ``error`` body, a classic ASP.NET server, bad JSON, a
    non-200 status or too many redirects.

    Attributes:
        status_code: the HTTP status, when the failure came from one.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class HandshakeRejected(VoxtaProtoError):
    """The server answered the SignalR handshake with an error, or the upgrade was refused.

    Attributes:
        status_code: the HTTP status of a refused WebSocket upgrade, when there was one.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class TransportError(VoxtaProtoError):
    """A network-level failure, mapped from the I/O library at the transport edge."""


class ConnectError(TransportError):
    """Could not open the connection (refused, DNS failure, TLS failure, proxy refusal)."""


class ReadError(TransportError):
    """Reading from an open connection failed."""


class WriteError(TransportError):
    """Writing to an open connection failed."""


class TransportClosed(TransportError):
    """The connection is closed; raised by ``receive()`` at end of stream.

    Attributes:
        code: the WebSocket close code, when one was received.
        reason: the WebSocket close reason.
    """

    def __init__(self, message: str = "connection closed", *, code: int | None = None,
                 reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class WriteAborted(TransportClosed):
    """The connection is closed because a write to it failed, timed out or was cancelled
    (it may have left half a frame on the wire, so the connection was dropped).

    Raised where a plain ``TransportClosed`` would be (by ``receive()`` in another task,
    by a later ``send()``), so a caller can tell a connection lost in a write (typically
    a peer that does not read) from one the peer ended. The write itself raised
    ``WriteError`` or ``TransportTimeout``, or was cancelled.
    """


class TransportTimeout(TransportError, TimeoutError):
    """A connect, read or write did not finish in time."""


class PeerTimeout(VoxtaProtoError, TimeoutError):
    """The peer sent nothing (not even a Ping) for longer than the configured timeout.

    Attributes:
        silent_for: seconds since the last thing we received.
    """

    def __init__(self, silent_for: float) -> None:
        super().__init__(f"peer sent nothing for {silent_for:.1f} s")
        self.silent_for = silent_for


class ConnectionClosed(VoxtaProtoError):
    """The hub connection is closed (by a Close message, a close frame or our own close).

    Attributes:
        error: the error text of the peer's Close, if any.
        allow_reconnect: whether the peer said reconnecting is legitimate.
    """

    def __init__(self, error: str | None = None, *, allow_reconnect: bool = False) -> None:
        super().__init__(error or "connection closed")
        self.error = error
        self.allow_reconnect = allow_reconnect


class AuthenticationFailed(ConnectionClosed):
    """The server refused our ``authenticate`` (it answered ``authenticationRequired``);
    the connection is closed and reconnecting would not help."""


class ChatGone(ConnectionClosed):
    """After a fresh reconnect, the chat the client was in no longer runs on the server
    (VOXTA_PROTOCOL_2025-11.md §3.7): what waited on it will never come.

    Attributes:
        session_id: the chat session that is gone.
        chat_id: its chat, when known.
    """

    def __init__(self, reason: str, *, session_id: str, chat_id: str | None = None) -> None:
        super().__init__(f"chat session {session_id} is gone: {reason}", allow_reconnect=True)
        self.session_id = session_id
        self.chat_id = chat_id


class InvocationError(VoxtaProtoError):
    """A Completion came back with ``error``.

    Attributes:
        invocation_id: the id of the failed invocation.
        error: the error text from the Completion.
    """

    def __init__(self, invocation_id: str, error: str) -> None:
        super().__init__(error)
        self.invocation_id = invocation_id
        self.error = error


class RestError(VoxtaProtoError):
    """A Voxta REST call (device login, token check, vision upload, ...) was answered with
    a status that means failure.

    Attributes:
        status_code: the HTTP status.
        body: the response body, as text (the server's reason, when it gave one).
    """

    def __init__(self, message: str, *, status_code: int, body: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
