"""ConnectOptions, the exception map, URL parsing and proxy selection (no I/O)."""

from __future__ import annotations

import dataclasses
import socket
import ssl

import anyio
import h11
import pytest
import wsproto.utilities

from voxta_proto.errors import (
    ConnectError,
    LocalProtocolError,
    ReadError,
    TransportClosed,
    TransportError,
    TransportTimeout,
    VoxtaProtoError,
    WriteError,
)
from voxta_proto.transports import ConnectOptions, map_exceptions
from voxta_proto.transports._net import Endpoint, parse_url, proxy_bypassed, select_proxy

WS = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}


def test_options_copy_headers_and_cookies_into_tuples() -> None:
    headers = {"X-One": "1"}
    options = ConnectOptions(headers=headers, cookies=[("a", "1"), ("b", "2")])
    headers["X-Two"] = "2"
    assert options.header_items() == (("X-One", "1"),)
    assert options.cookie_items() == (("a", "1"), ("b", "2"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.verify = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"headers": {"X-Evil": "a\r\nInjected: yes"}}, ValueError),
        ({"headers": {"Bad Name": "x"}}, ValueError),
        ({"headers": {"Ünicode": "x"}}, ValueError),
        ({"cookies": {"a": "b\nc"}}, ValueError),
        ({"headers": "X-Not: pairs"}, TypeError),
        ({"headers": [("only-name",)]}, TypeError),
        ({"access_token": "tok\r\nen"}, ValueError),
        ({"connect_timeout": 0}, ValueError),
        ({"max_message_size": 0}, ValueError),
    ],
)
def test_options_reject_bad_values(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        ConnectOptions(**kwargs)  # type: ignore[arg-type]


def test_options_repr_hides_the_token() -> None:
    assert "secret" not in repr(ConnectOptions(access_token="secret"))


def _refused_after_attempts() -> OSError:
    exc = OSError("All connection attempts failed")
    exc.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return exc


def _broken_by_tls() -> anyio.BrokenResourceError:
    exc = anyio.BrokenResourceError()
    exc.__cause__ = ssl.SSLError(1, "bad record mac")
    return exc


@pytest.mark.parametrize(
    ("exc", "default", "expected", "fragment"),
    [
        (TimeoutError(), ReadError, TransportTimeout, "timed out"),
        (socket.gaierror(-2, "Name or service not known"), ReadError, ConnectError, "resolve"),
        (_refused_after_attempts(), ConnectError, ConnectError, "connection refused"),
        (ConnectionRefusedError(111, "refused"), ConnectError, ConnectError, "refused"),
        (ConnectionResetError(104, "Connection reset by peer"), ReadError, ReadError, "reset"),
        (OSError(32, "Broken pipe"), WriteError, WriteError, "Broken pipe"),
        (ssl.SSLCertVerificationError(1, "verify failed"), ReadError, ConnectError, "certif"),
        (ssl.SSLError(1, "wrong version"), ConnectError, ConnectError, "TLS"),
        (anyio.BrokenResourceError(), WriteError, WriteError, "broke"),
        (_broken_by_tls(), ReadError, ReadError, "TLS"),
        (anyio.ClosedResourceError(), ReadError, TransportClosed, "closed"),
        (anyio.EndOfStream(), ReadError, ReadError, "closed the connection"),
        (anyio.IncompleteRead(), ReadError, ReadError, "middle"),
        (anyio.BusyResourceError("reading from"), ReadError, LocalProtocolError, "another task"),
        (h11.RemoteProtocolError("bad", 400), ReadError, ReadError, "invalid HTTP"),
        (h11.LocalProtocolError("nope"), WriteError, LocalProtocolError, "HTTP"),
        (wsproto.utilities.RemoteProtocolError("bad frame"), ReadError, ReadError, "WebSocket"),
        (wsproto.utilities.LocalProtocolError("no"), WriteError, LocalProtocolError, "WebSocket"),
    ],
)
def test_map_exceptions_translates(
    exc: Exception, default: type[TransportError], expected: type[Exception], fragment: str
) -> None:
    with pytest.raises(expected) as info, map_exceptions(default, context="doing x"):
        raise exc
    assert type(info.value).__module__ == "voxta_proto.errors"
    assert fragment in str(info.value)
    assert str(info.value).startswith("doing x")
    assert info.value.__cause__ is exc


@pytest.mark.parametrize(
    "exc", [ValueError("mine"), TypeError("bug"), ReadError("already ours"), KeyboardInterrupt()]
)
def test_map_exceptions_leaves_ours_and_programming_errors_alone(exc: BaseException) -> None:
    with pytest.raises(type(exc)) as info, map_exceptions(ConnectError):
        raise exc
    assert info.value is exc


def test_every_mapped_error_is_ours() -> None:
    for exc in (TimeoutError(), OSError(), anyio.EndOfStream(), h11.RemoteProtocolError("x", 400)):
        with pytest.raises(VoxtaProtoError), map_exceptions():
            raise exc


@pytest.mark.parametrize(
    ("url", "endpoint", "host_header"),
    [
        ("ws://example.com/hub", Endpoint("ws", "example.com", 80, "/hub"), "example.com"),
        ("wss://Example.COM:443", Endpoint("wss", "example.com", 443, "/"), "example.com"),
        ("https://h:8443/a?b=c", Endpoint("wss", "h", 8443, "/a?b=c"), "h:8443"),
        ("ws://[::1]:9000/x", Endpoint("ws", "::1", 9000, "/x"), "[::1]:9000"),
        ("ws://h/p ä?q=ü x", Endpoint("ws", "h", 80, "/p%20%C3%A4?q=%C3%BC%20x"), "h"),
        ("ws://h/%41?already=%20", Endpoint("ws", "h", 80, "/%41?already=%20"), "h"),
    ],
)
def test_parse_url(url: str, endpoint: Endpoint, host_header: str) -> None:
    parsed = parse_url(url, WS)
    assert parsed == endpoint
    assert parsed.host_header == host_header
    assert parsed.target.isascii()


@pytest.mark.parametrize("url", ["ftp://h/", "ws:///nohost", "ws://h:99999/", "ws://bücher.de/"])
def test_parse_url_rejects(url: str) -> None:
    with pytest.raises(ValueError, match=r"URL|scheme|port"):
        parse_url(url, WS)


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypassed"),
    [
        ("example.com", 443, "*", True),
        ("api.example.com", 443, ".example.com", True),
        ("api.example.com", 443, "example.com", True),
        ("notexample.com", 443, "example.com", False),
        ("example.com", 443, "example.com:8443", False),
        ("example.com", 8443, "example.com:8443", True),
        ("127.0.0.1", 80, "localhost, 127.0.0.1", True),
        ("10.1.2.3", 80, "10.0.0.0/8", True),
        ("11.1.2.3", 80, "10.0.0.0/8", False),
        ("::1", 80, "::1", True),
        ("::1", 8080, "[::1]:8080", True),
        ("127.0.0.1", 80, "", False),
    ],
)
def test_no_proxy_matching(host: str, port: int, no_proxy: str, bypassed: bool) -> None:
    assert proxy_bypassed(host, port, no_proxy) is bypassed


def test_select_proxy() -> None:
    env = {"https": "http://secure:1", "http": "http://plain:2", "no": "skip.me"}
    secure = parse_url("wss://h/", WS)
    plain = parse_url("ws://h/", WS)
    skipped = parse_url("wss://skip.me/", WS)
    options = ConnectOptions()
    assert select_proxy(secure, options, lambda: env) == "http://secure:1"
    assert select_proxy(plain, options, lambda: env) == "http://plain:2"
    assert select_proxy(skipped, options, lambda: env) is None
    assert select_proxy(plain, options, lambda: {"all": "http://all:3"}) == "http://all:3"
    assert select_proxy(plain, ConnectOptions(proxy=""), lambda: env) is None
    assert select_proxy(skipped, ConnectOptions(proxy="http://mine:4"), lambda: env) == (
        "http://mine:4"
    )


def test_select_proxy_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "localhost")
    assert select_proxy(parse_url("wss://127.0.0.1/", WS), ConnectOptions()) == (
        "http://proxy.test:3128"
    )
    assert select_proxy(parse_url("wss://localhost/", WS), ConnectOptions()) is None
    assert select_proxy(parse_url("ws://127.0.0.1/", WS), ConnectOptions()) is None
