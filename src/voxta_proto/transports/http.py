"""HTTP/1.1 over anyio with h11: one-shot requests and the SignalR negotiate step.

Imports anyio and h11 plus the pure helpers in `voxta_proto.hub.negotiate`; the
sans-IO core must never import this module.

h11 gives framing and nothing else, so this module adds what negotiate needs around it:
``Host``/``Content-Length``, bearer tokens, cookies from ``Set-Cookie`` (handed to the
WebSocket upgrade for load-balancer affinity), 307/308 ``Location`` redirects, negotiate
body redirects and typed errors. One TCP connection per request: negotiate is one POST
per start attempt, so pooling would buy nothing.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

import anyio
import h11

from voxta_proto._version import __version__
from voxta_proto.errors import ConnectError, NegotiationError, ReadError
from voxta_proto.hub.negotiate import (
    DEFAULT_MAX_BODY_SIZE,
    MAX_REDIRECTS,
    NegotiateRedirect,
    NegotiateRedirects,
    NegotiateResult,
    build_negotiate_url,
    build_websocket_url,
    parse_negotiate_response,
)
from voxta_proto.transports._net import (
    Endpoint,
    encode_headers,
    next_h11_event,
    open_connection,
    parse_url,
)
from voxta_proto.transports.base import ConnectOptions, HeaderInput, _pairs, map_exceptions

__all__ = [
    "DEFAULT_HTTP_TIMEOUT",
    "USER_AGENT",
    "HttpRequest",
    "HttpResponse",
    "NegotiateOutcome",
    "http_request",
    "negotiate",
]

_MAJOR_MINOR: Final = ".".join(__version__.split(".")[:2])
USER_AGENT: Final = (
    f"voxta-proto/{_MAJOR_MINOR} ({__version__}; {platform.system() or 'Unknown OS'}; "
    f"Python; {platform.python_version()})"
)
"""Shaped like the SignalR clients' ``Microsoft SignalR/<x.y> (<version>; <OS>; <runtime>;
<runtime version>)`` so server logs can tell clients apart."""

DEFAULT_HTTP_TIMEOUT: Final = 100.0
"""Seconds per HTTP request, as in the JS SignalR client."""

MAX_HEADER_BYTES: Final = 64 * 1024
"""Largest response head h11 may buffer (big ``Set-Cookie`` headers exist)."""

_HTTP_SCHEMES: Final = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
_FOLLOWED_STATUSES: Final = frozenset({307, 308})
_UNFOLLOWED_REDIRECTS: Final = frozenset({301, 302, 303})

_DEFAULT_OPTIONS: Final = ConnectOptions()
_FRAMING_HEADERS: Final = frozenset({"content-length", "transfer-encoding"})


# ------------------------------------------------------------------------------ messages


def _find(headers: Sequence[tuple[str, str]], name: str) -> list[str]:
    name = name.lower()
    return [value for key, value in headers if key.lower() == name]


def _parse_set_cookie(header: str) -> tuple[str, str, bool] | None:
    """``(name, value, expired)`` from one ``Set-Cookie`` value, ``None`` if malformed.

    Only name, value and ``Max-Age<=0`` (deletion) matter here: cookies are kept for one
    start attempt, so ``Expires`` dates, paths and flags are not tracked.
    """
    pair, *attributes = header.split(";")
    name, sep, value = pair.partition("=")
    name = name.strip()
    if not sep or not name:
        return None
    expired = False
    for attribute in attributes:
        key, _, val = attribute.partition("=")
        if key.strip().lower() == "max-age":
            with contextlib.suppress(ValueError):
                expired = int(val.strip()) <= 0
    return name, value.strip(), expired


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequest:
    """An HTTP request as the server side received it.

    Attributes:
        method: e.g. ``"POST"``.
        target: the raw request target (path and query, still percent-encoded).
        headers: ``(name, value)`` pairs with names in lower case, in arrival order.
        body: the complete body.
        client: the peer's ``(host, port)`` when known.
    """

    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    client: tuple[str, int] | None = None

    @property
    def path(self) -> str:
        """The target without its query string (still percent-encoded)."""
        return self.target.partition("?")[0]

    @property
    def query(self) -> tuple[tuple[str, str], ...]:
        """Decoded ``(key, value)`` query pairs, in order, blanks kept."""
        return tuple(parse_qsl(self.target.partition("?")[2], keep_blank_values=True))

    def query_param(self, name: str) -> str | None:
        """First query value for ``name``, matched case-insensitively as SignalR does."""
        name = name.lower()
        return next((value for key, value in self.query if key.lower() == name), None)

    def header(self, name: str) -> str | None:
        """First value of header ``name`` (case-insensitive), or ``None``."""
        values = _find(self.headers, name)
        return values[0] if values else None

    @property
    def cookies(self) -> dict[str, str]:
        """Cookies from the ``Cookie`` header(s)."""
        jar: dict[str, str] = {}
        for header in _find(self.headers, "cookie"):
            for part in header.split(";"):
                name, sep, value = part.partition("=")
                if sep and name.strip():
                    jar[name.strip()] = value.strip()
        return jar

    @property
    def is_websocket_upgrade(self) -> bool:
        """Whether this is a WebSocket upgrade request (``Upgrade: websocket``)."""
        upgrade = (self.header("upgrade") or "").lower()
        return self.method == "GET" and "websocket" in upgrade


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """An HTTP response: what the client got back, or what a server app answers.

    Attributes:
        status: the status code.
        headers: ``(name, value)`` pairs (lower-case names when received).
        body: the complete body.
    """

    status: int
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """First value of header ``name`` (case-insensitive), or ``None``."""
        values = _find(self.headers, name)
        return values[0] if values else None

    @property
    def set_cookies(self) -> dict[str, str]:
        """Cookies the response sets (``Set-Cookie``), name → value; deletions left out."""
        cookies: dict[str, str] = {}
        for header in _find(self.headers, "set-cookie"):
            parsed = _parse_set_cookie(header)
            if parsed is not None and not parsed[2]:
                cookies[parsed[0]] = parsed[1]
        return cookies


# ------------------------------------------------------------------------------- request


def _request_headers(
    endpoint: Endpoint,
    headers: Sequence[tuple[str, str]],
    options: ConnectOptions,
    body: bytes,
) -> list[tuple[str, str]]:
    """Host, our defaults, the caller's headers, bearer token, cookies and length.

    A caller's ``Host``, ``User-Agent``, ``Authorization`` or ``Cookie`` replaces ours;
    the body framing headers are ours alone.
    """
    extra = [*options.header_items(), *headers]
    names = {name.lower() for name, _ in extra}
    reserved = names & _FRAMING_HEADERS
    if reserved:
        raise ValueError(f"the transport sets {', '.join(sorted(reserved))} itself")
    result = [] if "host" in names else [("Host", endpoint.host_header)]
    if "user-agent" not in names:
        result.append(("User-Agent", USER_AGENT))
    result.extend(extra)
    if options.access_token and "authorization" not in names:
        result.append(("Authorization", f"Bearer {options.access_token}"))
    cookies = options.cookie_items()
    if cookies and "cookie" not in names:
        result.append(("Cookie", "; ".join(f"{name}={value}" for name, value in cookies)))
    # Always explicit, even for an empty body: some proxies answer 411 without it.
    result.append(("Content-Length", str(len(body))))
    return result


class _BodyTooLarge(Exception):
    """Internal signal: the response body passed ``max_body_size``."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"response body is over the {limit}-byte limit (at least {size} bytes)")


async def _exchange(
    method: str,
    endpoint: Endpoint,
    headers: list[tuple[str, str]],
    body: bytes,
    options: ConnectOptions,
    max_body_size: int,
) -> HttpResponse:
    """Connect, send one request and read one response; always closes the stream."""
    with (
        map_exceptions(ConnectError, context=f"connecting to {endpoint.authority}"),
        anyio.fail_after(options.connect_timeout),
    ):
        stream = await open_connection(endpoint, options)
    try:
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
        request = h11.Request(
            method=method, target=endpoint.target, headers=encode_headers(headers)
        )
        data = conn.send(request)
        if body:
            data += conn.send(h11.Data(data=body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        await stream.send(data)

        response: h11.Response | None = None
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await next_h11_event(conn, stream)  # EOF ends close-delimited bodies
            if isinstance(event, h11.Response):
                response = event
                length = _content_length(event)
                if length is not None and length > max_body_size:
                    raise _BodyTooLarge(length, max_body_size)
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > max_body_size:
                    raise _BodyTooLarge(size, max_body_size)
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                raise ReadError("the server closed the connection without a complete response")
            # InformationalResponse (100 Continue and the like): keep reading.
        assert response is not None  # h11 emits Response before EndOfMessage
        return HttpResponse(
            status=response.status_code,
            headers=tuple(
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in response.headers
            ),
            body=b"".join(chunks),
        )
    finally:
        await anyio.aclose_forcefully(stream)


def _content_length(response: h11.Response) -> int | None:
    for name, value in response.headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _request(
    method: str,
    url: str,
    *,
    headers: HeaderInput,
    body: bytes,
    options: ConnectOptions,
    timeout: float | None,  # noqa: ASYNC109 (per-request limit, like the JS client)
    max_body_size: int,
) -> HttpResponse:
    """[`http_request()`][voxta_proto.transports.http.http_request] that lets
    [`_BodyTooLarge`][voxta_proto.transports.http._BodyTooLarge] through for the caller."""
    endpoint = parse_url(url, _HTTP_SCHEMES)
    all_headers = _request_headers(endpoint, _pairs(headers, "header"), options, body)
    with (
        map_exceptions(ReadError, context=f"{method} {endpoint.display}"),
        anyio.fail_after(timeout),
    ):
        return await _exchange(method, endpoint, all_headers, body, options, max_body_size)


async def http_request(
    method: str,
    url: str,
    *,
    headers: HeaderInput = (),
    body: bytes = b"",
    options: ConnectOptions = _DEFAULT_OPTIONS,
    timeout: float | None = DEFAULT_HTTP_TIMEOUT,  # noqa: ASYNC109 (per request, as in JS)
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
) -> HttpResponse:
    """Send one HTTP/1.1 request and return the complete response.

    Redirects are not followed. ``options`` supplies extra headers, the bearer token,
    cookies, TLS settings, the proxy and the connect timeout.

    Args:
        method: e.g. ``"POST"``.
        url: an absolute ``http``/``https`` URL (``ws``/``wss`` are mapped to them).
        headers: headers for this request only, added after ``options.headers``.
        body: the request body; ``Content-Length`` is always sent.
        options: connection options.
        timeout: seconds for the whole exchange (connect included); ``None`` = no limit.
        max_body_size: largest response body accepted, in bytes.

    Returns:
        The response, whatever its status.

    Raises:
        ValueError: the URL or a header is malformed, or a header the transport sets
            itself (framing, handshake) was given.
        ConnectError: refused, DNS failure, proxy or TLS failure.
        ReadError: the server broke HTTP, closed early, or sent a body over the limit.
        WriteError: sending failed.
        TransportTimeout: ``timeout`` or ``options.connect_timeout`` ran out.
    """
    try:
        return await _request(
            method, url, headers=headers, body=body, options=options, timeout=timeout,
            max_body_size=max_body_size,
        )
    except _BodyTooLarge as exc:
        raise ReadError(str(exc)) from None


# ----------------------------------------------------------------------------- negotiate


@dataclass(frozen=True, slots=True, kw_only=True)
class NegotiateOutcome:
    """Everything the WebSocket connect needs after a successful negotiate.

    Attributes:
        base_url: the hub URL after all redirects (connect the WebSocket here).
        result: the parsed negotiate response (connection id and token, transports).
        access_token: the token to use from now on: the last redirect's, else the
            caller's.
        cookies: cookies to send on the upgrade (the caller's plus those the final
            host set during negotiate).
        redirects: how many redirects (negotiate body and HTTP 307/308) were followed.
    """

    base_url: str
    result: NegotiateResult
    access_token: str | None = field(default=None, repr=False)
    cookies: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    redirects: int = 0

    def websocket_url(self) -> str:
        """The ``ws(s)://`` URL with ``id=<connection token>`` appended."""
        return build_websocket_url(self.base_url, connection_token=self.result.connection_token)

    def connect_options(self, options: ConnectOptions) -> ConnectOptions:
        """``options`` with this outcome's access token and cookies, for the upgrade."""
        return replace(options, access_token=self.access_token, cookies=dict(self.cookies))


class _CookieJar:
    """Cookies per host name for one start attempt (RFC 6265 ignores ports), so a
    cookie set by one host is never sent to another."""

    def __init__(self, initial: Sequence[tuple[str, str]]) -> None:
        self._initial = dict(initial)
        self._by_host: dict[str, dict[str, str]] = {}

    def for_host(self, host: str) -> dict[str, str]:
        return {**self._initial, **self._by_host.get(host, {})}

    def store(self, host: str, response: HttpResponse) -> None:
        jar = self._by_host.setdefault(host, {})
        for header in _find(response.headers, "set-cookie"):
            parsed = _parse_set_cookie(header)
            if parsed is None:
                continue
            name, value, expired = parsed
            if expired:
                jar.pop(name, None)
            else:
                jar[name] = value


def _base_from_location(location: str, negotiate_url: str) -> str:
    """The hub base URL for a 307/308 ``Location`` pointing at a negotiate endpoint."""
    absolute = urljoin(negotiate_url, location)
    parts = urlsplit(absolute)
    if not parts.path.rstrip("/").endswith("/negotiate"):
        raise NegotiationError(
            f"negotiate was redirected to {absolute!r}, which is not a negotiate endpoint "
            "(its path does not end in /negotiate)"
        )
    path = parts.path.rstrip("/").removesuffix("/negotiate") or "/"
    query = "&".join(
        segment
        for segment in parts.query.split("&")
        if segment
        and segment.partition("=")[0].lower() not in {"negotiateversion", "usestatefulreconnect"}
    )
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def _keeps_token(old: Endpoint, new: Endpoint) -> bool:
    """Bearer tokens survive an HTTP redirect only to the same host and never from
    https down to http (fetch and .NET drop them on cross-origin redirects)."""
    return old.host == new.host and not (old.tls and not new.tls)


async def negotiate(
    base_url: str,
    *,
    options: ConnectOptions = _DEFAULT_OPTIONS,
    use_stateful_reconnect: bool = False,
    timeout: float | None = DEFAULT_HTTP_TIMEOUT,  # noqa: ASYNC109 (per request, as in JS)
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    transfer_format: str = "Text",
) -> NegotiateOutcome:
    """Run the SignalR negotiate step, following redirects.

    Sends ``POST {base}/negotiate?negotiateVersion=1`` with ``Content-Length: 0``,
    ``X-Requested-With: XMLHttpRequest``, a ``User-Agent``, the bearer token and
    cookies. A body with ``url`` (+ ``accessToken``) negotiates again at that URL,
    using the redirect's token from then on; HTTP 307/308 re-POST to ``Location``.
    Both kinds count against one limit of 100 redirects.

    Args:
        base_url: the hub URL, e.g. ``"https://host/hub"``.
        options: connection options; ``access_token`` and ``cookies`` seed the first
            request.
        use_stateful_reconnect: ask for stateful reconnect.
        timeout: seconds per HTTP request (connect included); ``None`` = no limit.
        max_body_size: largest negotiate body accepted, in bytes.
        transfer_format: what the hub protocol needs from the WebSockets transport
            (``"Text"`` for JSON, ``"Binary"`` for MessagePack).

    Returns:
        The final base URL, the parsed result, the token and cookies to connect with.

    Raises:
        NegotiationError: a non-200 status (``status_code`` set), an ``error`` body,
            a body that is not JSON or too large, a bad URL, too many redirects, or no
            WebSockets transport with ``transfer_format``.
        ConnectError: refused, DNS failure, proxy or TLS failure.
        ReadError: the server broke HTTP or closed early.
        TransportTimeout: a request ran out of time.
    """
    redirects = NegotiateRedirects()
    jar = _CookieJar(options.cookie_items())
    token = options.access_token
    url = base_url
    http_hops = 0
    headers = (("X-Requested-With", "XMLHttpRequest"),)
    while True:
        negotiate_url = build_negotiate_url(url, use_stateful_reconnect=use_stateful_reconnect)
        try:
            endpoint = parse_url(negotiate_url, _HTTP_SCHEMES)
        except ValueError as exc:
            raise NegotiationError(str(exc)) from None
        request_options = replace(options, access_token=token, cookies=jar.for_host(endpoint.host))
        try:
            response = await _request(
                "POST", negotiate_url, headers=headers, body=b"", options=request_options,
                timeout=timeout, max_body_size=max_body_size,
            )
        except _BodyTooLarge as exc:
            raise NegotiationError(f"negotiate {exc}", status_code=200) from None
        jar.store(endpoint.host, response)

        if response.status in _FOLLOWED_STATUSES | _UNFOLLOWED_REDIRECTS:
            location = response.header("location")
            if response.status in _UNFOLLOWED_REDIRECTS or not location:
                raise NegotiationError(
                    f"negotiate got HTTP {response.status} redirect"
                    + (f" to {location!r}" if location else " without a Location header")
                    + "; only 307/308 are followed, since negotiate must stay a POST",
                    status_code=response.status,
                )
            if http_hops + redirects.hops >= MAX_REDIRECTS:
                raise NegotiationError(
                    f"negotiate redirect limit exceeded ({MAX_REDIRECTS} redirects)",
                    status_code=response.status,
                )
            http_hops += 1
            url = _base_from_location(location, negotiate_url)
            try:
                new_endpoint = parse_url(url, _HTTP_SCHEMES)
            except ValueError as exc:
                raise NegotiationError(f"negotiate redirect is unusable: {exc}") from None
            if not _keeps_token(endpoint, new_endpoint):
                token = None
            continue

        parsed = parse_negotiate_response(
            response.body,
            status_code=response.status,
            requested_stateful_reconnect=use_stateful_reconnect,
            max_body_size=max_body_size,
            transfer_format=transfer_format,
        )
        if isinstance(parsed, NegotiateRedirect):
            if http_hops + redirects.hops >= MAX_REDIRECTS:
                raise NegotiationError(
                    f"negotiate redirect limit exceeded ({MAX_REDIRECTS} redirects)"
                )
            url = redirects.follow(parsed)
            token = redirects.access_token or options.access_token
            continue
        final_host = parse_url(url, _HTTP_SCHEMES).host
        return NegotiateOutcome(
            base_url=url,
            result=parsed,
            access_token=token,
            cookies=MappingProxyType(jar.for_host(final_host)),
            redirects=http_hops + redirects.hops,
        )
