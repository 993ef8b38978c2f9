"""The WebSocket opening handshake (RFC 6455 §4) over h11, for both roles.

We do the upgrade ourselves so that any engine can take over the bytes after it,
including those that arrived in the same read as the upgrade (h11's trailing data).
No extensions and no subprotocols are offered or accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from typing import Final

import h11
from anyio.abc import ByteStream

from voxta_proto.errors import ConnectError, HandshakeRejected
from voxta_proto.transports._net import Endpoint, encode_headers, next_h11_event
from voxta_proto.transports.http import MAX_HEADER_BYTES, HttpRequest

__all__ = ["accept_key", "check_upgrade_request", "client_handshake", "server_accept"]

_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_REJECT_BODY: Final = 64 * 1024


def accept_key(key: bytes) -> bytes:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def _tokens(value: str) -> set[str]:
    return {token.strip().lower() for token in value.split(",")}


def _rejection(endpoint: Endpoint, status: int, body: bytes) -> HandshakeRejected:
    text = " ".join(body.decode("utf-8", "replace").split())[:300]
    message = f"WebSocket upgrade to {endpoint.display} was refused with HTTP {status}"
    return HandshakeRejected(message + (f": {text}" if text else ""), status_code=status)


async def client_handshake(
    stream: ByteStream, endpoint: Endpoint, host: str, headers: Sequence[tuple[str, str]]
) -> tuple[list[tuple[str, str]], bytes]:
    """Send the upgrade request and read the answer.

    Returns:
        The 101 response's headers (lower-case names) and the bytes that followed it.

    Raises:
        HandshakeRejected: any other final status (body text in the message).
        ConnectError: a 101 that is not a valid WebSocket accept, or the server hung up.
        h11.RemoteProtocolError: the answer is not HTTP (the caller maps it).
    """
    key = base64.b64encode(os.urandom(16))
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
    request = h11.Request(
        method="GET",
        target=endpoint.target,
        headers=[
            *encode_headers([("Host", host)]),
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Key", key),
            (b"Sec-WebSocket-Version", b"13"),
            *encode_headers(headers),
        ],
    )
    await stream.send(conn.send(request) + (conn.send(h11.EndOfMessage()) or b""))
    status: int | None = None
    body = bytearray()
    while True:
        try:
            event = await next_h11_event(conn, stream)
        except h11.RemoteProtocolError:
            buffered, at_eof = conn.trailing_data
            if status is None and at_eof and not buffered:
                event = h11.ConnectionClosed()  # hung up before answering
            else:
                raise
        if isinstance(event, h11.InformationalResponse):
            if event.status_code != 101:
                continue
            received = [(bytes(n).decode("latin-1").lower(), bytes(v).decode("latin-1"))
                         for n, v in event.headers]
            _check_accept(endpoint, received, key)
            trailing, _ = conn.trailing_data
            return received, bytes(trailing)
        if isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data[: _MAX_REJECT_BODY - len(body)]
        elif isinstance(event, h11.EndOfMessage) or status is not None:
            raise _rejection(endpoint, status or 0, bytes(body))
        else:  # ConnectionClosed before any answer
            raise ConnectError(
                f"the server at {endpoint.display} closed the connection during the "
                "WebSocket handshake"
            )


def _check_accept(endpoint: Endpoint, headers: list[tuple[str, str]], key: bytes) -> None:
    found = dict(headers)
    problem = ""
    if found.get("upgrade", "").lower() != "websocket":
        problem = "no 'Upgrade: websocket' header"
    elif "upgrade" not in _tokens(found.get("connection", "")):
        problem = "no 'Connection: Upgrade' header"
    elif found.get("sec-websocket-accept", "").encode("latin-1") != accept_key(key):
        problem = "its accept key (Sec-WebSocket-Accept) does not match ours"
    elif "sec-websocket-extensions" in found:
        problem = "the server chose an extension that was not offered"
    elif "sec-websocket-protocol" in found:
        problem = "the server chose a subprotocol that was not offered"
    if problem:
        raise ConnectError(
            f"the server at {endpoint.display} sent an invalid WebSocket handshake: {problem}"
        )


def check_upgrade_request(request: HttpRequest) -> bytes:
    """The client's ``Sec-WebSocket-Key`` if ``request`` is a valid upgrade request.

    Raises:
        ValueError: what is wrong with it (for a 400 answer).
    """
    if "upgrade" not in _tokens(request.header("connection") or ""):
        raise ValueError("missing 'Connection: Upgrade'")
    if (request.header("sec-websocket-version") or "").strip() != "13":
        raise ValueError("only Sec-WebSocket-Version 13 is supported")
    raw_key = (request.header("sec-websocket-key") or "").strip()
    try:
        decoded = base64.b64decode(raw_key, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) != 16:
        raise ValueError("missing or malformed Sec-WebSocket-Key")
    return raw_key.encode("ascii")


def server_accept(
    conn: h11.Connection, key: bytes, extra_headers: Sequence[tuple[str, str]]
) -> tuple[bytes, bytes]:
    """The 101 response for ``key`` and the bytes the client sent after its request."""
    data = conn.send(h11.InformationalResponse(
        status_code=101,
        headers=[
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Accept", accept_key(key)),
            *encode_headers(extra_headers),
        ],
    )) or b""
    trailing, _ = conn.trailing_data
    return data, bytes(trailing)
