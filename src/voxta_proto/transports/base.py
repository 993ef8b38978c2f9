"""Transport interfaces, connection options and the one place that maps I/O exceptions.

This module may import anyio, h11, wsproto and ssl (it is the transport edge); the
sans-IO core must never import it.

Everything the transports do on the network runs inside
[`map_exceptions()`][voxta_proto.transports.base.map_exceptions], so a
caller only ever sees the `voxta_proto.errors` tree, never an anyio, h11, wsproto,
``ssl`` or ``OSError`` exception (httpcore does the same with its ``map_exceptions``).
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final, Protocol, Union

import anyio
import h11
import wsproto.utilities

from voxta_proto.errors import (
    ConnectError,
    LocalProtocolError,
    TransportClosed,
    TransportError,
    TransportTimeout,
    VoxtaProtoError,
)

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "ConnectOptions",
    "Connector",
    "HeaderInput",
    "MessageTransport",
    "map_exceptions",
]

DEFAULT_MAX_MESSAGE_SIZE: Final = 1024 * 1024
"""Largest WebSocket message (after reassembly) a transport accepts by default: 1 MiB."""

DEFAULT_CONNECT_TIMEOUT: Final = 10.0
"""Seconds allowed for TCP connect, proxy tunnel, TLS and the WebSocket upgrade together."""

HeaderInput = Union[Mapping[str, str], Iterable[tuple[str, str]]]
"""Headers or cookies as a mapping or as ``(name, value)`` pairs (pairs allow repeats)."""


# ------------------------------------------------------------------------------ protocols


class MessageTransport(Protocol):
    """A message-oriented, bidirectional connection (a WebSocket or an in-memory pair).

    ``str`` travels as one text message and ``bytes`` as one binary message, so the hub
    layer above can tell the JSON protocol's text frames from binary ones.
    """

    async def send(self, message: str | bytes) -> None:
        """Send one complete message.

        Raises:
            TransportClosed: the connection is closed.
            WriteError: writing failed.
        """
        ...

    async def send_text(self, data: bytes) -> None:
        """Send one text message whose payload is ``data``, already UTF-8 (a writer
        that encodes to bytes pays for no ``str`` round trip where the engine allows).

        Raises:
            TransportClosed, WriteError: as
                [`send()`][voxta_proto.transports.base.MessageTransport.send].
        """
        ...

    async def receive(self) -> str | bytes:
        """Return the next complete message.

        Raises:
            TransportClosed: the connection ended; ``code``/``reason`` say how.
            ReadError: reading failed or the peer broke the framing protocol.
        """
        ...

    async def receive_many(self) -> list[bytes]:
        """Wait for at least one complete message, then return every complete message
        already available, in order, without waiting again (one socket read can hold
        many). Text messages come as their UTF-8 bytes, so a reader that decodes bytes
        pays for no ``str`` round trip; the cost is per read, not per message.

        Raises:
            TransportClosed: the connection ended and every message before the end has
                been returned.
            ReadError: as [`receive()`][voxta_proto.transports.base.MessageTransport.receive].
        """
        ...

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection with a close code and reason; safe to call twice."""
        ...


class Connector(Protocol):
    """Opens a [`MessageTransport`][voxta_proto.transports.base.MessageTransport] to a URL; lets the
    client swap real sockets for in-memory pairs in tests."""

    async def __call__(self, url: str, *, options: ConnectOptions) -> MessageTransport:
        """Connect to ``url``.

        Raises:
            ConnectError: the connection could not be opened.
            HandshakeRejected: the server refused the WebSocket upgrade.
            TransportTimeout: connecting took longer than ``options.connect_timeout``.
        """
        ...


# -------------------------------------------------------------------------------- options


def _pairs(value: object, what: str) -> tuple[tuple[str, str], ...]:
    """Normalise headers/cookies to a tuple of pairs and refuse values that could inject
    extra header lines (CR, LF or NUL)."""
    if isinstance(value, Mapping):
        items: list[object] = list(value.items())
    elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
        items = list(value)
    else:
        raise TypeError(f"{what}s must be a mapping or (name, value) pairs, not {value!r}")
    pairs: list[tuple[str, str]] = []
    for item in items:
        if not (
            isinstance(item, tuple)
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], str)
        ):
            raise TypeError(f"each {what} must be a (name, value) pair of str, got {item!r}")
        name, val = item
        if not name or not name.isascii() or any(ch in name for ch in "\r\n\0:;, \t"):
            raise ValueError(f"invalid {what} name {name!r}")
        if any(ch in val for ch in "\r\n\0"):
            raise ValueError(f"{what} {name!r} has a line break or NUL in its value")
        pairs.append((name, val))
    return tuple(pairs)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectOptions:
    """How to reach a server: credentials, extra headers, TLS, proxy and limits.

    One immutable object is shared by the negotiate POST and the WebSocket upgrade;
    derive variants with `dataclasses.replace()`.

    Attributes:
        headers: extra request headers (a mapping or ``(name, value)`` pairs); stored as
            a tuple of pairs.
        cookies: cookies to send (``Cookie`` header); stored as a tuple of pairs.
        access_token: bearer token, sent as ``Authorization: Bearer <token>``.
        access_token_in_query: send the token on the WebSocket URL as
            ``access_token=`` instead (what browsers must do); negotiate still uses the
            header.
        ssl_context: TLS settings to use as is; overrides ``ca_file`` and ``verify``.
        ca_file: PEM file of CA certificates to trust instead of the system store.
        verify: check the server certificate and host name (default ``True``).
        proxy: ``http://[user:pass@]host:port`` proxy to tunnel through with
            ``CONNECT``; ``None`` reads ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` and
            ``NO_PROXY`` from the environment, ``""`` means never use a proxy.
        connect_timeout: seconds for TCP connect, proxy tunnel, TLS handshake and
            WebSocket upgrade together; ``None`` waits forever.
        max_message_size: largest incoming WebSocket message, in bytes.
    """

    headers: HeaderInput = ()
    cookies: HeaderInput = ()
    access_token: str | None = field(default=None, repr=False)
    access_token_in_query: bool = False
    ssl_context: ssl.SSLContext | None = None
    ca_file: str | os.PathLike[str] | None = None
    verify: bool = True
    proxy: str | None = None
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE

    def __post_init__(self) -> None:
        # Copy into tuples so a dict the caller mutates later cannot change a frozen object.
        object.__setattr__(self, "headers", _pairs(self.headers, "header"))
        object.__setattr__(self, "cookies", _pairs(self.cookies, "cookie"))
        if self.access_token is not None and any(ch in self.access_token for ch in "\r\n\0"):
            raise ValueError("access_token has a line break or NUL in it")
        if self.connect_timeout is not None and not self.connect_timeout > 0:
            raise ValueError(f"connect_timeout must be > 0 or None, got {self.connect_timeout}")
        if self.max_message_size <= 0:
            raise ValueError(f"max_message_size must be > 0, got {self.max_message_size}")

    def header_items(self) -> tuple[tuple[str, str], ...]:
        """The extra headers as ``(name, value)`` pairs."""
        return _pairs(self.headers, "header")

    def cookie_items(self) -> tuple[tuple[str, str], ...]:
        """The cookies as ``(name, value)`` pairs."""
        return _pairs(self.cookies, "cookie")


# ----------------------------------------------------------------------- exception mapping


def _root_os_error(exc: OSError) -> OSError:
    """The most specific OSError behind ``exc``.

    ``anyio.connect_tcp`` raises a bare ``OSError("All connection attempts failed")``
    whose cause is the real error (or a group of them, one per address tried).
    """
    seen: set[int] = set()
    current: BaseException = exc
    while id(current) not in seen:
        seen.add(id(current))
        cause = current.__cause__
        if isinstance(cause, OSError):
            current = cause
            continue
        members = getattr(cause, "exceptions", None)
        if isinstance(members, tuple) and members and isinstance(members[0], OSError):
            refused = [m for m in members if isinstance(m, ConnectionRefusedError)]
            current = refused[0] if refused else members[0]
            continue
        break
    return current if isinstance(current, OSError) else exc


def _describe_os_error(exc: OSError) -> str:
    root = _root_os_error(exc)
    if isinstance(root, ConnectionRefusedError):
        return "connection refused (nothing is listening on that port)"
    text = root.strerror or str(root) or type(root).__name__
    if root is not exc and str(exc) and str(exc) != text:
        text = f"{exc}: {text}"
    return text


def _translate(
    exc: Exception, default: type[TransportError], context: str
) -> VoxtaProtoError | None:
    """Our error for a library exception, or ``None`` to let ``exc`` through unchanged."""
    prefix = f"{context}: " if context else ""
    if isinstance(exc, VoxtaProtoError):
        return None
    if isinstance(exc, TimeoutError):
        return TransportTimeout(f"{context or 'operation'} timed out")
    if isinstance(exc, ssl.SSLCertVerificationError):
        # The attributes are only set when OpenSSL raised the error.
        detail = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or exc
        return ConnectError(f"{prefix}TLS certificate verification failed: {detail}")
    if isinstance(exc, ssl.SSLError):
        return default(f"{prefix}TLS error: {getattr(exc, 'reason', None) or exc}")
    if isinstance(exc, socket.gaierror):
        return ConnectError(
            f"{prefix}could not resolve the host name ({exc.strerror or exc}); "
            "check the URL and your DNS"
        )
    if isinstance(exc, OSError):
        return default(f"{prefix}{_describe_os_error(exc)}")
    if isinstance(exc, anyio.ClosedResourceError):
        return TransportClosed(f"{prefix}the connection is already closed")
    if isinstance(exc, anyio.BusyResourceError):
        return LocalProtocolError(f"{prefix}another task is already using this connection")
    if isinstance(exc, anyio.BrokenResourceError):
        cause = exc.__cause__
        if isinstance(cause, OSError):  # ssl.SSLError is an OSError too
            return _translate(cause, default, context)
        return default(f"{prefix}the connection broke")
    if isinstance(exc, anyio.IncompleteRead):
        return default(f"{prefix}the peer closed the connection in the middle of a message")
    if isinstance(exc, anyio.EndOfStream):
        return default(f"{prefix}the peer closed the connection")
    if isinstance(exc, h11.RemoteProtocolError):
        return default(f"{prefix}invalid HTTP from the peer: {exc}")
    if isinstance(exc, h11.LocalProtocolError):
        return LocalProtocolError(f"{prefix}cannot send that HTTP message: {exc}")
    if isinstance(exc, wsproto.utilities.RemoteProtocolError):
        return default(f"{prefix}invalid WebSocket data from the peer: {exc}")
    if isinstance(exc, wsproto.utilities.LocalProtocolError):
        return LocalProtocolError(f"{prefix}cannot send that WebSocket event: {exc}")
    return None


@contextmanager
def map_exceptions(
    default: type[TransportError] = TransportError, *, context: str = ""
) -> Iterator[None]:
    """Translate anyio, h11, wsproto, ssl, socket and timeout errors into ours.

    Put ``anyio.fail_after`` *inside* this block so its ``TimeoutError`` is mapped too.
    Cancellation and other ``BaseException``s pass through untouched, as do errors that
    are already ours and plain programming errors (``TypeError``, ``ValueError``, ...).

    Args:
        default: the error for generic failures in this phase: ``ConnectError`` while
            connecting, ``ReadError`` while receiving, ``WriteError`` while sending.
        context: what was being done, prefixed to every message
            (e.g. ``"connecting to example.com:443"``).

    Raises:
        TransportTimeout: for ``TimeoutError``.
        ConnectError: for DNS failures and certificate verification failures, whatever
            ``default`` is.
        TransportClosed: for use of an already closed anyio resource.
        LocalProtocolError: for h11/wsproto refusing what we tried to send, and for two
            tasks using one stream at once.
        TransportError: ``default`` for everything else that is network related.
    """
    try:
        yield
    except Exception as exc:
        mapped = _translate(exc, default, context)
        if mapped is None:
            raise
        raise mapped from exc
