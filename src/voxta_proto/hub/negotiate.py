"""Build SignalR negotiate and WebSocket URLs and parse negotiate responses; does no I/O.

Everything here is a pure function of its arguments (no sockets, no clock, no
randomness), so a transport can drive the negotiate step however it likes:

1. ``build_negotiate_url(base)`` gives the URL to ``POST`` to.
2. ``parse_negotiate_response(body, status_code=...)`` turns the answer into a
   [`NegotiateResult`][voxta_proto.hub.negotiate.NegotiateResult] or a
   [`NegotiateRedirect`][voxta_proto.hub.negotiate.NegotiateRedirect], or raises
   [`NegotiationError`][voxta_proto.errors.NegotiationError].
3. On a redirect,
   [`NegotiateRedirects.follow()`][voxta_proto.hub.negotiate.NegotiateRedirects.follow] gives the
   next base URL (and keeps
   the redirect's access token), enforcing the hop limit; go back to step 1.
4. ``build_websocket_url(base, connection_token=...)`` gives the URL to upgrade.

Query strings the user supplied are kept byte for byte, except that segments whose
key this module sets itself (``useStatefulReconnect``, ``id``, ``access_token``) are
replaced, because the server reads query keys case-insensitively and a duplicated key
would corrupt its value. Fragments are always dropped.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import SplitResult, quote, unquote_plus, urlsplit, urlunsplit

import msgspec

from voxta_proto.errors import NegotiationError

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "MAX_REDIRECTS",
    "AvailableTransport",
    "NegotiateRedirect",
    "NegotiateRedirects",
    "NegotiateResponseBody",
    "NegotiateResult",
    "build_negotiate_url",
    "build_websocket_url",
    "parse_negotiate_response",
]

MAX_REDIRECTS: Final = 100
"""How many negotiate redirects one start attempt may follow."""

DEFAULT_MAX_BODY_SIZE: Final = 1024 * 1024
"""Largest negotiate body
[`parse_negotiate_response()`][voxta_proto.hub.negotiate.parse_negotiate_response] accepts by
default (1 MiB)."""

WEBSOCKETS_TRANSPORT: Final = "WebSockets"

_HTTP_SCHEMES: Final = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
_WS_SCHEMES: Final = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}

# Printable ASCII that may appear raw in a path or query. Anything else (space, control
# characters, non-ASCII, and the characters RFC 3986 never allows raw) gets
# percent-encoded; existing escapes are left alone because ``%`` is in the set.
_URL_SAFE: Final = "".join(
    ch for ch in string.printable if ch not in string.whitespace and ch not in '"<>\\^`{|}#'
)

_EXCERPT_LEN: Final = 200

_STATUS_MESSAGES: Final = {
    401: "401 Unauthorized: the server wants credentials (missing or invalid access token)",
    403: "403 Forbidden: the credentials were accepted but do not grant access to this hub",
    404: "404 Not Found: the URL is not a SignalR hub endpoint (wrong path, or a proxy answered)",
    405: "405 Method Not Allowed: negotiate must be sent as POST",
}


# --------------------------------------------------------------------------- wire types


class AvailableTransport(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One entry of ``availableTransports`` in a negotiate response.

    Attributes:
        transport: the transport name, e.g. ``"WebSockets"``.
        transfer_formats: the formats it supports, e.g. ``("Text", "Binary")``.
    """

    transport: str
    transfer_formats: tuple[str, ...]


class NegotiateResponseBody(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True
):
    """The negotiate JSON body as sent on the wire; unknown fields are ignored.

    One struct covers the success, redirect and error shapes, so every field is
    optional. Encoding it omits the fields left at their defaults, which gives the exact
    shapes a server sends (handy for mock servers).
    """

    negotiate_version: int = 0
    connection_id: str | None = None
    connection_token: str | None = None
    available_transports: tuple[AvailableTransport, ...] = ()
    use_stateful_reconnect: bool = False
    url: str | None = None
    access_token: str | None = None
    error: str | None = None

    def __repr__(self) -> str:
        # The connection token and access token are secrets: keep them out of logs.
        return (
            f"NegotiateResponseBody(negotiate_version={self.negotiate_version!r}, "
            f"connection_id={self.connection_id!r}, "
            f"available_transports={self.available_transports!r}, "
            f"use_stateful_reconnect={self.use_stateful_reconnect!r}, url={self.url!r}, "
            f"error={self.error!r})"
        )


# ------------------------------------------------------------------------ parsed results


@dataclass(frozen=True, slots=True, kw_only=True)
class NegotiateResult:
    """A successful negotiate: the connection to open.

    Attributes:
        negotiate_version: the version the server agreed on (0 when it sent none).
        connection_id: the public connection id.
        connection_token: the secret that goes into ``id=`` on the WebSocket URL; for
            version 0 servers it is the connection id.
        available_transports: the transports the server offers, in its preference order.
        use_stateful_reconnect: whether the server accepted stateful reconnect.
    """

    negotiate_version: int
    connection_id: str
    connection_token: str = field(repr=False)
    available_transports: tuple[AvailableTransport, ...]
    use_stateful_reconnect: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class NegotiateRedirect:
    """A negotiate redirect: negotiate again at ``url``.

    Attributes:
        url: the new base URL (absolute).
        access_token: a token to use instead of the user's for the rest of the start
            attempt, if the server sent one.
    """

    url: str
    access_token: str | None = field(default=None, repr=False)


# ---------------------------------------------------------------------------- URL helpers


def _shown(url: str) -> str:
    """``url`` for an error message: without its query (tokens live there), bounded."""
    shown = url.partition("?")[0].partition("#")[0]
    return shown if len(shown) <= _EXCERPT_LEN else shown[:_EXCERPT_LEN] + "…"


def _split_url(url: str, schemes: dict[str, str]) -> SplitResult:
    """Split ``url`` and check it has an allowed scheme, a host and a valid port."""
    shown = _shown(url)
    try:
        url.encode("utf-8")
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except UnicodeEncodeError:  # lone surrogates
        raise NegotiationError(f"URL {shown!r} is not valid Unicode text") from None
    except ValueError as exc:  # bad IPv6 literal, non-numeric or out-of-range port
        raise NegotiationError(f"invalid URL {shown!r}: {exc}") from None
    if parts.scheme not in schemes:
        allowed = ", ".join(sorted(schemes))
        raise NegotiationError(
            f"unsupported URL scheme {parts.scheme!r} in {shown!r} (expected one of {allowed})"
        )
    if not parts.hostname:
        raise NegotiationError(f"URL {shown!r} has no host")
    if not port_ok:
        raise NegotiationError(f"URL {shown!r} has an invalid port")
    if not parts.netloc.isascii():
        raise NegotiationError(
            f"URL {shown!r} has a non-ASCII host; IDNA-encode (punycode) it first"
        )
    if not all(33 <= ord(ch) < 127 for ch in parts.netloc):
        raise NegotiationError(f"URL {shown!r} has spaces or control characters in its host")
    return parts


def _query_key(segment: str) -> str:
    """The decoded, case-folded key of one ``key=value`` query segment."""
    return unquote_plus(segment.partition("=")[0]).lower()


def _query_segments(query: str) -> list[str]:
    """The non-empty ``&``-separated segments of a raw query string, made ASCII-safe."""
    return [quote(seg, safe=_URL_SAFE) for seg in query.split("&") if seg]


def _without_keys(segments: list[str], *keys: str) -> list[str]:
    """``segments`` minus those whose key matches one of ``keys`` case-insensitively."""
    folded = {key.lower() for key in keys}
    return [seg for seg in segments if _query_key(seg) not in folded]


def _encode_param(name: str, value: str) -> str:
    """``name=<value percent-encoded>`` where every reserved character is escaped."""
    try:
        return f"{name}={quote(value, safe='')}"
    except UnicodeEncodeError:  # lone surrogates cannot become UTF-8
        raise NegotiationError(f"the {name} value is not valid Unicode text") from None


def build_negotiate_url(
    base_url: str, *, negotiate_version: int = 1, use_stateful_reconnect: bool = False
) -> str:
    """Build the URL to ``POST`` the negotiate request to.

    ``/negotiate`` is appended to the path (with a ``/`` in between when the path does
    not end in one), the user's query string is kept and the fragment dropped.
    ``negotiateVersion`` is appended unless the query already has that key (compared
    case-insensitively, as the server does), in which case the user's value wins.
    ``ws``/``wss`` base URLs are mapped to ``http``/``https``.

    Args:
        base_url: the hub URL the user gave, e.g. ``"https://host/hub?hub=chat"``.
        negotiate_version: the negotiate protocol version to request.
        use_stateful_reconnect: also ask for stateful reconnect
            (``useStatefulReconnect=true``, replacing any value the user put there).

    Returns:
        The absolute negotiate URL, ASCII only.

    Raises:
        NegotiationError: the scheme is not http, https, ws or wss, the URL has no host,
            or it is otherwise malformed.
        ValueError: ``negotiate_version`` is negative.
    """
    if negotiate_version < 0:
        raise ValueError(f"negotiate_version must be >= 0, got {negotiate_version}")
    parts = _split_url(base_url, _HTTP_SCHEMES)
    path = quote(parts.path, safe=_URL_SAFE)
    if not path.endswith("/"):
        path += "/"
    path += "negotiate"
    segments = _query_segments(parts.query)
    if not any(_query_key(seg) == "negotiateversion" for seg in segments):
        segments.append(f"negotiateVersion={negotiate_version}")
    if use_stateful_reconnect:
        segments = _without_keys(segments, "useStatefulReconnect")
        segments.append("useStatefulReconnect=true")
    return urlunsplit((_HTTP_SCHEMES[parts.scheme], parts.netloc, path, "&".join(segments), ""))


def build_websocket_url(
    base_url: str, *, connection_token: str | None, access_token: str | None = None
) -> str:
    """Build the URL to open the WebSocket on.

    The scheme becomes ``ws``/``wss`` (``http``→``ws``, ``https``→``wss``), the path and
    the user's query are kept, the fragment dropped. ``id`` and ``access_token`` are
    appended percent-encoded; an ``id`` or ``access_token`` key already in the query is
    dropped first when this function sets one, since the server would otherwise see
    two values.

    Args:
        base_url: the negotiated base URL (after redirects), not the negotiate URL.
        connection_token: the token from
            [`NegotiateResult`][voxta_proto.hub.negotiate.NegotiateResult]; ``None`` (or empty)
            when negotiation was skipped, which leaves ``id`` out.
        access_token: a bearer token to send in the query (for servers that read it
            there); ``None`` or empty leaves it out.

    Returns:
        The absolute ``ws://`` or ``wss://`` URL, ASCII only.

    Raises:
        NegotiationError: the scheme is not http, https, ws or wss, the URL has no host
            or is otherwise malformed, or a token is not valid Unicode text.
    """
    parts = _split_url(base_url, _WS_SCHEMES)
    path = quote(parts.path, safe=_URL_SAFE) or "/"
    segments = _query_segments(parts.query)
    if connection_token:
        segments = _without_keys(segments, "id")
        segments.append(_encode_param("id", connection_token))
    if access_token:
        segments = _without_keys(segments, "access_token")
        segments.append(_encode_param("access_token", access_token))
    return urlunsplit((_WS_SCHEMES[parts.scheme], parts.netloc, path, "&".join(segments), ""))


# -------------------------------------------------------------------------- body parsing


def _excerpt(body: bytes) -> str:
    """A short, printable excerpt of a body for error messages (never raises)."""
    text = body[: _EXCERPT_LEN * 4].decode("utf-8", errors="replace").strip()
    try:
        decoded: Any = msgspec.json.decode(body)
    except (ValueError, RecursionError):
        decoded = None
    if isinstance(decoded, dict) and isinstance(decoded.get("error"), str):
        text = decoded["error"]
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    if len(text) > _EXCERPT_LEN:
        text = text[:_EXCERPT_LEN] + "…"
    return text


def _status_error(status_code: int, body: bytes) -> NegotiationError:
    """The error for a non-200 negotiate answer."""
    if status_code in _STATUS_MESSAGES:
        message = f"negotiate failed with HTTP {_STATUS_MESSAGES[status_code]}"
    elif 300 <= status_code < 400:
        message = (
            f"negotiate got an HTTP {status_code} redirect; the transport must follow the "
            "Location header itself (307/308 keep POST)"
        )
    else:
        message = f"negotiate failed with HTTP {status_code}"
    detail = _excerpt(body) if body else ""
    if detail:
        message += f" (server said: {detail})"
    return NegotiationError(message, status_code=status_code)


def _error_text(value: object) -> str:
    """The server's ``error`` member as text, whatever JSON type it had."""
    if isinstance(value, str):
        return value or "(no message)"
    return msgspec.json.encode(value).decode()


def parse_negotiate_response(
    body: bytes,
    *,
    status_code: int = 200,
    requested_stateful_reconnect: bool = False,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    transfer_format: str = "Text",
) -> NegotiateResult | NegotiateRedirect:
    """Parse the answer to a negotiate request.

    Applies the version 0 rule (no ``negotiateVersion`` or 0 means the connection id is
    also the connection token) and checks the server offers WebSockets with the
    transfer format we need. A ``url`` member makes it a redirect; an empty ``url`` or
    ``accessToken`` counts as absent, as in the JS client.

    Args:
        body: the raw response body.
        status_code: the HTTP status of the response.
        requested_stateful_reconnect: whether the request asked for stateful reconnect.
        max_body_size: the largest body accepted, in bytes.
        transfer_format: the format the hub protocol needs (``"Text"`` for JSON).

    Returns:
        A [`NegotiateResult`][voxta_proto.hub.negotiate.NegotiateResult], or a
        [`NegotiateRedirect`][voxta_proto.hub.negotiate.NegotiateRedirect] to follow.

    Raises:
        NegotiationError: a non-200 status (``status_code`` is set), a body that is too
            large, not JSON or not an object, an ``error`` body (its text is included), a
            classic ASP.NET SignalR server, a missing ``connectionId`` or
            ``connectionToken``, no usable WebSockets transport, an unrequested
            ``useStatefulReconnect``, or fields of the wrong type.
    """
    if status_code != 200:
        raise _status_error(status_code, body)
    if len(body) > max_body_size:
        raise NegotiationError(
            f"negotiate response is {len(body)} bytes, over the {max_body_size}-byte limit"
        )
    if not body.strip():
        raise NegotiationError("negotiate response body is empty")
    try:
        decoded: Any = msgspec.json.decode(body)
    except (ValueError, RecursionError) as exc:  # DecodeError, UnicodeDecodeError, nesting
        raise NegotiationError(f"negotiate response is not valid JSON: {exc}") from None
    if not isinstance(decoded, dict):
        raise NegotiationError(
            f"negotiate response is not a JSON object (got {type(decoded).__name__})"
        )
    if "ProtocolVersion" in decoded:
        raise NegotiationError(
            "the server looks like a classic ASP.NET SignalR server (its negotiate response "
            "has 'ProtocolVersion'); only ASP.NET Core SignalR is supported"
        )
    if decoded.get("error") is not None:
        raise NegotiationError(f"the server rejected negotiate: {_error_text(decoded['error'])}")
    try:
        raw = msgspec.convert(decoded, NegotiateResponseBody)
    except msgspec.ValidationError as exc:
        raise NegotiationError(f"malformed negotiate response: {exc}") from None

    if raw.url:
        try:
            _split_url(raw.url, _HTTP_SCHEMES)
        except NegotiationError as exc:
            raise NegotiationError(f"negotiate redirect is unusable: {exc}") from None
        return NegotiateRedirect(url=raw.url, access_token=raw.access_token or None)
    return _result_from(raw, requested_stateful_reconnect, transfer_format)


def _result_from(
    raw: NegotiateResponseBody, requested_stateful_reconnect: bool, transfer_format: str
) -> NegotiateResult:
    """Validate a decoded success body and build the result."""
    if not raw.connection_id:
        raise NegotiationError("negotiate response has no connectionId")
    if raw.negotiate_version < 0:
        raise NegotiationError(
            f"negotiate response has an invalid negotiateVersion {raw.negotiate_version}"
        )
    if raw.negotiate_version == 0:
        token = raw.connection_id
    elif raw.connection_token:
        token = raw.connection_token
    else:
        raise NegotiationError(
            f"negotiate response (version {raw.negotiate_version}) has no connectionToken"
        )
    websockets = [t for t in raw.available_transports if t.transport == WEBSOCKETS_TRANSPORT]
    if not websockets:
        offered = ", ".join(t.transport for t in raw.available_transports) or "none"
        raise NegotiationError(
            f"the server does not offer the WebSockets transport (offered: {offered})"
        )
    if not any(transfer_format in t.transfer_formats for t in websockets):
        raise NegotiationError(
            f"the server's WebSockets transport does not support the {transfer_format!r} "
            "transfer format"
        )
    if raw.use_stateful_reconnect and not requested_stateful_reconnect:
        raise NegotiationError(
            "the server enabled stateful reconnect (useStatefulReconnect) but the client "
            "did not request it"
        )
    return NegotiateResult(
        negotiate_version=raw.negotiate_version,
        connection_id=raw.connection_id,
        connection_token=token,
        available_transports=raw.available_transports,
        use_stateful_reconnect=raw.use_stateful_reconnect,
    )


# ------------------------------------------------------------------------------ redirects


class NegotiateRedirects:
    """Follows negotiate redirects for one start attempt, enforcing the hop limit.

    Make a new one per start attempt: the access token a redirect hands out replaces
    the user's token only until the attempt ends.

    Unlike the JS client, which sends at most 100 negotiate requests (and so follows 99
    redirects), this allows ``max_redirects`` redirects and fails on the next one.
    """

    __slots__ = ("_access_token", "_hops", "_max_redirects")

    def __init__(self, *, max_redirects: int = MAX_REDIRECTS) -> None:
        """Start with no hops taken.

        Args:
            max_redirects: how many redirects
                [`follow()`][voxta_proto.hub.negotiate.NegotiateRedirects.follow] accepts.

        Raises:
            ValueError: ``max_redirects`` is negative.
        """
        if max_redirects < 0:
            raise ValueError(f"max_redirects must be >= 0, got {max_redirects}")
        self._max_redirects = max_redirects
        self._hops = 0
        self._access_token: str | None = None

    @property
    def hops(self) -> int:
        """How many redirects were followed so far."""
        return self._hops

    @property
    def access_token(self) -> str | None:
        """The latest token a redirect sent (``None`` if none did): use it, not the user's."""
        return self._access_token

    def follow(self, redirect: NegotiateRedirect) -> str:
        """Record one redirect hop.

        A redirect without an access token keeps the token of an earlier hop.

        Args:
            redirect: the redirect returned by
                [`parse_negotiate_response()`][voxta_proto.hub.negotiate.parse_negotiate_response].

        Returns:
            The new base URL to negotiate at.

        Raises:
            NegotiationError: the hop limit is exceeded, or the redirect URL is not an
                absolute http(s)/ws(s) URL with a host.
        """
        if self._hops >= self._max_redirects:
            raise NegotiationError(
                f"negotiate redirect limit exceeded ({self._max_redirects} redirects)"
            )
        _split_url(redirect.url, _HTTP_SCHEMES)
        self._hops += 1
        if redirect.access_token:
            self._access_token = redirect.access_token
        return redirect.url
