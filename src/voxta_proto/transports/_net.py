"""Opening byte streams: URL parsing, proxy choice, CONNECT tunnels and TLS over anyio.

Private to ``voxta_proto.transports``; the HTTP and WebSocket clients share it so both
resolve proxies and verify certificates the same way.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import os
import ssl
import string
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, unquote, urlsplit

import anyio
import h11
from anyio.abc import ByteStream
from anyio.streams.tls import TLSStream

from voxta_proto.errors import ConnectError
from voxta_proto.transports.base import ConnectOptions, map_exceptions

__all__ = [
    "Endpoint",
    "encode_headers",
    "open_connection",
    "parse_url",
    "select_proxy",
    "ssl_context_for",
]

_DEFAULT_PORTS: Final = {"http": 80, "ws": 80, "https": 443, "wss": 443}
_TLS_SCHEMES: Final = frozenset({"https", "wss"})
READ_SIZE: Final = 65536
_MAX_PROXY_BODY: Final = 64 * 1024

# Printable ASCII that may stay raw in a request target; everything else (spaces,
# controls, non-ASCII, the characters RFC 3986 never allows raw) is percent-encoded.
# ``%`` is kept so existing escapes survive.
_TARGET_SAFE: Final = "".join(
    ch for ch in string.printable if ch not in string.whitespace and ch not in '"<>\\^`{|}#'
)


# -------------------------------------------------------------------------------- headers


def encode_headers(pairs: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Header pairs as bytes for h11/wsproto: values as Latin-1 (what HTTP/1.1 carries),
    or UTF-8 when a value has characters Latin-1 cannot hold."""
    encoded = []
    for name, value in pairs:
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            raw = value.encode("utf-8")
        encoded.append((name.encode("ascii"), raw))
    return encoded


# ----------------------------------------------------------------------------------- URLs


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a request goes: parsed once, so Host, SNI and the target always agree.

    Attributes:
        scheme: ``http``, ``https``, ``ws`` or ``wss`` (lower case).
        host: host name or IP address, without IPv6 brackets.
        port: TCP port (the scheme's default when the URL has none).
        target: percent-encoded path and query, e.g. ``/hub?id=abc``.
    """

    scheme: str
    host: str
    port: int
    target: str

    @property
    def tls(self) -> bool:
        return self.scheme in _TLS_SCHEMES

    @property
    def authority(self) -> str:
        """``host:port`` with IPv6 brackets, for CONNECT and error messages."""
        return f"{_bracket(self.host)}:{self.port}"

    @property
    def host_header(self) -> str:
        """The ``Host`` value: the port only when it is not the scheme's default."""
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return _bracket(self.host)
        return self.authority

    @property
    def display(self) -> str:
        """The URL without its query (which may hold tokens), for messages and logs."""
        return f"{self.scheme}://{self.host_header}{self.target.partition('?')[0]}"


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def parse_url(url: str, schemes: Mapping[str, str]) -> Endpoint:
    """Split ``url`` into an [`Endpoint`][voxta_proto.transports._net.Endpoint].

    Args:
        url: an absolute URL.
        schemes: accepted schemes mapped to the scheme to use (e.g. ``http`` → ``ws``).

    Raises:
        ValueError: unsupported scheme, no host, a bad port, or a non-ASCII host.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        raise ValueError(
            f"unsupported URL scheme {parts.scheme!r} in {url!r} "
            f"(expected one of {', '.join(sorted(schemes))})"
        )
    scheme = schemes[scheme]
    host = parts.hostname
    if not host:
        raise ValueError(f"URL {url!r} has no host")
    if not host.isascii() or any(ord(ch) <= 32 or ord(ch) == 127 for ch in host):
        raise ValueError(f"URL {url!r} has a non-ASCII or malformed host; IDNA-encode it first")
    if port == 0:
        raise ValueError(f"URL {url!r} has port 0")
    path = quote(parts.path, safe=_TARGET_SAFE) or "/"
    target = path + (f"?{quote(parts.query, safe=_TARGET_SAFE)}" if parts.query else "")
    return Endpoint(scheme, host, port or _DEFAULT_PORTS[scheme], target)


# ---------------------------------------------------------------------------------- proxy


def _no_proxy_entry_matches(entry: str, host: str, port: int) -> bool:
    """Whether one ``NO_PROXY`` entry (``*``, ``.example.com``, ``host:port``, ``[::1]``,
    ``10.0.0.0/8``) covers ``host:port``."""
    if entry == "*":
        return True
    entry_port = ""
    if entry.startswith("["):
        entry_host, _, rest = entry[1:].partition("]")
        entry_port = rest.lstrip(":")
    elif entry.count(":") == 1:
        entry_host, _, entry_port = entry.partition(":")
    else:
        entry_host = entry
    if entry_port and entry_port != str(port):
        return False
    entry_host = entry_host.removeprefix("*.").lstrip(".")
    if not entry_host:
        return False
    if "/" in entry_host:
        try:
            network = ipaddress.ip_network(entry_host, strict=False)
            return ipaddress.ip_address(host) in network
        except ValueError:
            return False
    return host == entry_host or host.endswith("." + entry_host)


def proxy_bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` (comma or space separated) excludes ``host:port``."""
    host = host.lower().strip("[]")
    entries = no_proxy.replace(" ", ",").split(",")
    return any(
        _no_proxy_entry_matches(entry.strip().lower(), host, port) for entry in entries if entry
    )


def select_proxy(
    endpoint: Endpoint,
    options: ConnectOptions,
    getproxies: Callable[[], Mapping[str, str]] = urllib.request.getproxies,
) -> str | None:
    """The proxy URL to tunnel through for ``endpoint``, or ``None`` to connect directly.

    An explicit ``options.proxy`` always wins (``""`` disables proxies). Otherwise
    ``wss``/``https`` use ``HTTPS_PROXY`` and ``ws``/``http`` use ``HTTP_PROXY``, both
    falling back to ``ALL_PROXY``, unless ``NO_PROXY`` matches the host. Loopback hosts
    are not special-cased: list them in ``NO_PROXY`` to reach them directly.
    """
    if options.proxy is not None:
        return options.proxy or None
    proxies = getproxies()
    key = "https" if endpoint.tls else "http"
    proxy = proxies.get(key) or proxies.get("all")
    if not proxy or proxy_bypassed(endpoint.host, endpoint.port, proxies.get("no", "")):
        return None
    return proxy


# ------------------------------------------------------------------------------------ TLS


@functools.lru_cache(maxsize=16)
def _default_context(ca_file: str | None, verify: bool) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:  # missing or unreadable CA file
        raise ConnectError(f"could not load the CA file {ca_file!r}: {exc}") from None
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context


def ssl_context_for(options: ConnectOptions) -> ssl.SSLContext:
    """The client TLS context: ``options.ssl_context`` as given, else a cached default
    context (system CAs, or ``ca_file`` instead of them; ``verify=False`` disables
    certificate and host name checks).

    Raises:
        ConnectError: ``ca_file`` could not be loaded.
    """
    if options.ssl_context is not None:
        return options.ssl_context
    ca_file = os.fspath(options.ca_file) if options.ca_file is not None else None
    return _default_context(ca_file, options.verify)


# -------------------------------------------------------------------------------- streams


async def next_h11_event(conn: h11.Connection, stream: ByteStream) -> Any:
    """h11's next event, reading from ``stream`` whenever h11 needs more data.

    The one h11 receive loop of the package (client requests, proxy tunnels, the
    server and the WebSocket upgrade). End of stream is fed as ``b""``, h11's EOF
    marker; a server waiting on ``Expect: 100-continue`` gets its interim response.
    Returns an event, never ``NEED_DATA``; h11's errors pass through.
    """
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        if conn.our_role is h11.SERVER and conn.they_are_waiting_for_100_continue:
            await stream.send(
                conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b""
            )
        try:
            data = await stream.receive(READ_SIZE)
        except anyio.EndOfStream:
            data = b""
        conn.receive_data(data)


class _PrefixedStream(ByteStream):
    """A byte stream that first returns bytes already read from it (a proxy's reply
    can arrive in the same packet as the first tunnelled bytes)."""

    def __init__(self, stream: ByteStream, prefix: bytes) -> None:
        self._stream = stream
        self._prefix = prefix

    async def receive(self, max_bytes: int = READ_SIZE) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix[:max_bytes], self._prefix[max_bytes:]
            return data
        return await self._stream.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        await self._stream.send(item)

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self._stream.extra_attributes


async def _connect_tcp(host: str, port: int, what: str = "") -> ByteStream:
    context = f"connecting to {what}{_bracket(host)}:{port}"
    with map_exceptions(ConnectError, context=context):
        return await anyio.connect_tcp(host, port)


async def _wrap_tls(stream: ByteStream, host: str, context: ssl.SSLContext) -> ByteStream:
    # standard_compatible=False: HTTP and WebSocket have their own end-of-message and
    # close handshakes, and many servers drop TCP without a TLS close_notify.
    with map_exceptions(ConnectError, context=f"TLS handshake with {host}"):
        return await TLSStream.wrap(
            stream, server_side=False, hostname=host, ssl_context=context, standard_compatible=False
        )


async def _open_tunnel(stream: ByteStream, endpoint: Endpoint, proxy: Endpoint,
                       proxy_auth: str | None) -> ByteStream:
    """Ask an HTTP proxy to ``CONNECT`` to ``endpoint``; return the tunnelled stream."""
    conn = h11.Connection(h11.CLIENT)
    headers = [("Host", endpoint.authority), ("User-Agent", "voxta-proto")]
    if proxy_auth:
        headers.append(("Proxy-Authorization", proxy_auth))
    context = f"proxy {proxy.authority} tunnelling to {endpoint.authority}"
    with map_exceptions(ConnectError, context=context):
        await stream.send(
            conn.send(h11.Request(method="CONNECT", target=endpoint.authority, headers=headers))
            + (conn.send(h11.EndOfMessage()) or b"")
        )
        status = 0
        body = b""
        while True:
            event = await next_h11_event(conn, stream)
            if isinstance(event, h11.Response):
                status = event.status_code
                if 200 <= status < 300:
                    break
            elif isinstance(event, h11.Data):
                body = (body + event.data)[:_MAX_PROXY_BODY]
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed) or event is h11.PAUSED:
                break
    if not 200 <= status < 300:
        detail = body.decode("utf-8", "replace").strip()[:200]
        what = f"HTTP {status}" if status else "no answer"
        hint = " (proxy authentication required)" if status == 407 else ""
        raise ConnectError(
            f"{context}: the proxy refused the CONNECT with {what}{hint}"
            + (f": {detail}" if detail else "")
        )
    leftover, _ = conn.trailing_data
    return _PrefixedStream(stream, leftover) if leftover else stream


def _proxy_endpoint(proxy_url: str) -> tuple[Endpoint, str | None]:
    try:
        proxy = parse_url(proxy_url, {"http": "http", "https": "https"})
    except ValueError as exc:
        raise ConnectError(f"unusable proxy URL: {exc}") from None
    parts = urlsplit(proxy_url)
    auth = None
    if parts.username is not None:
        raw = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        auth = "Basic " + base64.b64encode(raw).decode("ascii")
    return proxy, auth


async def open_connection(endpoint: Endpoint, options: ConnectOptions) -> ByteStream:
    """Open a byte stream to ``endpoint``: TCP (through a proxy tunnel if one applies),
    then TLS for ``https``/``wss`` with SNI and certificate checks for ``endpoint.host``.

    The caller applies ``options.connect_timeout``.

    Raises:
        ConnectError: refused, DNS failure, proxy refusal or TLS failure.
    """
    context = ssl_context_for(options) if endpoint.tls else None
    proxy_url = select_proxy(endpoint, options)
    if proxy_url is None:
        stream = await _connect_tcp(endpoint.host, endpoint.port)
    else:
        proxy, auth = _proxy_endpoint(proxy_url)
        stream = await _connect_tcp(proxy.host, proxy.port, what="proxy ")
        try:
            if proxy.tls:
                stream = await _wrap_tls(stream, proxy.host, ssl_context_for(options))
            stream = await _open_tunnel(stream, endpoint, proxy, auth)
        except BaseException:
            await anyio.aclose_forcefully(stream)
            raise
    if context is None:
        return stream
    try:
        return await _wrap_tls(stream, endpoint.host, context)
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise
