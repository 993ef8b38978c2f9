"""Tests for voxta_proto.hub.negotiate: URL building, response parsing, redirects."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from voxta_proto.errors import NegotiationError
from voxta_proto.hub.negotiate import (
    DEFAULT_MAX_BODY_SIZE,
    MAX_REDIRECTS,
    AvailableTransport,
    NegotiateRedirect,
    NegotiateRedirects,
    NegotiateResponseBody,
    NegotiateResult,
    build_negotiate_url,
    build_websocket_url,
    parse_negotiate_response,
)

WS = {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}
SSE = {"transport": "ServerSentEvents", "transferFormats": ["Text"]}
LP = {"transport": "LongPolling", "transferFormats": ["Text", "Binary"]}

V1_BODY = (
    b'{"negotiateVersion":1,"connectionId":"Qh3xJ2bV0kq8m1Zr5T7wAa",'
    b'"connectionToken":"x8TqL0pW3nE6yR9uC2vB4d","availableTransports":['
    b'{"transport":"WebSockets","transferFormats":["Text","Binary"]},'
    b'{"transport":"ServerSentEvents","transferFormats":["Text"]},'
    b'{"transport":"LongPolling","transferFormats":["Text","Binary"]}]}'
)


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def parse_error(raw: bytes, **kwargs: Any) -> NegotiationError:
    with pytest.raises(NegotiationError) as info:
        parse_negotiate_response(raw, **kwargs)
    return info.value


# ------------------------------------------------------------------ parse: success


def test_v1_body() -> None:
    result = parse_negotiate_response(V1_BODY)
    assert result == NegotiateResult(
        negotiate_version=1,
        connection_id="Qh3xJ2bV0kq8m1Zr5T7wAa",
        connection_token="x8TqL0pW3nE6yR9uC2vB4d",
        available_transports=(
            AvailableTransport(transport="WebSockets", transfer_formats=("Text", "Binary")),
            AvailableTransport(transport="ServerSentEvents", transfer_formats=("Text",)),
            AvailableTransport(transport="LongPolling", transfer_formats=("Text", "Binary")),
        ),
        use_stateful_reconnect=False,
    )


def test_v0_body_without_version_uses_connection_id_as_token() -> None:
    result = parse_negotiate_response(body(connectionId="abc", availableTransports=[WS]))
    assert isinstance(result, NegotiateResult)
    assert result.negotiate_version == 0
    assert result.connection_id == "abc"
    assert result.connection_token == "abc"


def test_v0_body_ignores_a_connection_token() -> None:
    raw = body(
        negotiateVersion=0, connectionId="abc", connectionToken="t", availableTransports=[WS]
    )
    result = parse_negotiate_response(raw)
    assert isinstance(result, NegotiateResult)
    assert result.connection_token == "abc"


def test_unknown_fields_are_ignored() -> None:
    raw = body(
        negotiateVersion=1,
        connectionId="id",
        connectionToken="tok",
        availableTransports=[{**WS, "extra": [1, 2]}],
        tokenLifetimeSeconds=3600,
        somethingNew={"nested": True},
    )
    result = parse_negotiate_response(raw)
    assert isinstance(result, NegotiateResult)
    assert result.connection_token == "tok"
    assert result.available_transports == (
        AvailableTransport(transport="WebSockets", transfer_formats=("Text", "Binary")),
    )


def test_field_order_is_arbitrary() -> None:
    raw = (
        b'{"availableTransports":[{"transferFormats":["Text"],"transport":"WebSockets"}],'
        b'"connectionToken":"tok","connectionId":"id","negotiateVersion":1}'
    )
    assert parse_negotiate_response(raw) == NegotiateResult(
        negotiate_version=1,
        connection_id="id",
        connection_token="tok",
        available_transports=(
            AvailableTransport(transport="WebSockets", transfer_formats=("Text",)),
        ),
        use_stateful_reconnect=False,
    )


def test_stateful_reconnect_accepted_when_requested() -> None:
    raw = body(
        negotiateVersion=1,
        connectionId="id",
        connectionToken="tok",
        availableTransports=[WS],
        useStatefulReconnect=True,
    )
    result = parse_negotiate_response(raw, requested_stateful_reconnect=True)
    assert isinstance(result, NegotiateResult)
    assert result.use_stateful_reconnect is True


def test_stateful_reconnect_requested_but_not_granted() -> None:
    result = parse_negotiate_response(V1_BODY, requested_stateful_reconnect=True)
    assert isinstance(result, NegotiateResult)
    assert result.use_stateful_reconnect is False


def test_whitespace_around_body_is_fine() -> None:
    assert parse_negotiate_response(b"\r\n  " + V1_BODY + b"\n") == parse_negotiate_response(
        V1_BODY
    )


def test_result_repr_hides_the_token() -> None:
    result = parse_negotiate_response(V1_BODY)
    assert "x8TqL0pW3nE6yR9uC2vB4d" not in repr(result)
    assert "Qh3xJ2bV0kq8m1Zr5T7wAa" in repr(result)


# ---------------------------------------------------------------- parse: redirects


def test_redirect_with_access_token() -> None:
    raw = body(url="https://svc.example/client/?hub=chat", accessToken="eyJ.abc.def")
    assert parse_negotiate_response(raw) == NegotiateRedirect(
        url="https://svc.example/client/?hub=chat", access_token="eyJ.abc.def"
    )


def test_redirect_without_access_token() -> None:
    result = parse_negotiate_response(body(url="http://other:8080/hub"))
    assert result == NegotiateRedirect(url="http://other:8080/hub", access_token=None)


def test_redirect_with_empty_access_token_has_none() -> None:
    result = parse_negotiate_response(body(url="http://other/hub", accessToken=""))
    assert result == NegotiateRedirect(url="http://other/hub", access_token=None)


def test_redirect_repr_hides_the_token() -> None:
    result = parse_negotiate_response(body(url="http://o/h", accessToken="s3cr3t"))
    assert "s3cr3t" not in repr(result)


@pytest.mark.parametrize("url", ["ftp://x/hub", "/relative/hub", "https:///nohost"])
def test_redirect_to_unusable_url(url: str) -> None:
    err = parse_error(body(url=url))
    assert "redirect" in str(err)


# ------------------------------------------------------------------- parse: errors


def test_error_body_surfaces_the_server_text() -> None:
    text = "The client requested version '0', but the server does not support this version."
    err = parse_error(body(error=text))
    assert text in str(err)
    assert err.status_code is None


def test_error_body_with_non_string_error() -> None:
    err = parse_error(b'{"error":{"code":42}}')
    assert '{"code":42}' in str(err)


def test_error_null_is_not_an_error() -> None:
    result = parse_negotiate_response(body(error=None, connectionId="i", availableTransports=[WS]))
    assert isinstance(result, NegotiateResult)


def test_error_wins_over_success_fields() -> None:
    raw = body(error="nope", negotiateVersion=1, connectionId="i", connectionToken="t")
    assert "nope" in str(parse_error(raw))


def test_classic_aspnet_server() -> None:
    raw = body(
        Url="/signalr",
        ConnectionToken="abc",
        ConnectionId="def",
        KeepAliveTimeout=20.0,
        ProtocolVersion="1.5",
        TryWebSockets=True,
    )
    err = parse_error(raw)
    assert "classic ASP.NET SignalR" in str(err)


@pytest.mark.parametrize(
    ("status", "needle"),
    [
        (401, "401 Unauthorized"),
        (403, "403 Forbidden"),
        (404, "not a SignalR hub endpoint"),
        (405, "must be sent as POST"),
        (500, "HTTP 500"),
        (307, "Location"),
    ],
)
def test_non_200_status(status: int, needle: str) -> None:
    err = parse_error(b"", status_code=status)
    assert needle in str(err)
    assert err.status_code == status


def test_non_200_status_even_with_a_valid_body() -> None:
    err = parse_error(V1_BODY, status_code=201)
    assert err.status_code == 201


def test_non_200_includes_the_server_error_text() -> None:
    err = parse_error(body(error="invalid_token"), status_code=401)
    assert "invalid_token" in str(err)
    err = parse_error(b"<html>Bad gateway</html>", status_code=502)
    assert "Bad gateway" in str(err)


def test_non_200_excerpt_is_bounded() -> None:
    err = parse_error(b"x" * 100_000, status_code=500)
    assert len(str(err)) < 400


@pytest.mark.parametrize(
    "raw",
    [b"", b"   ", b"not json", b"\xff\xfe\x00garbage", b'{"connectionId":', b"[" * 100_000],
)
def test_junk_bytes(raw: bytes) -> None:
    parse_error(raw)


@pytest.mark.parametrize(
    ("raw", "kind"), [(b"[1,2]", "list"), (b'"s"', "str"), (b"null", "NoneType"), (b"3", "int")]
)
def test_body_not_an_object(raw: bytes, kind: str) -> None:
    err = parse_error(raw)
    assert "not a JSON object" in str(err)
    assert kind in str(err)


def test_missing_connection_id() -> None:
    err = parse_error(body(negotiateVersion=1, connectionToken="t", availableTransports=[WS]))
    assert "connectionId" in str(err)


def test_empty_connection_id() -> None:
    err = parse_error(body(connectionId="", availableTransports=[WS]))
    assert "connectionId" in str(err)


def test_v1_without_connection_token() -> None:
    err = parse_error(body(negotiateVersion=1, connectionId="i", availableTransports=[WS]))
    assert "connectionToken" in str(err)


def test_no_websockets_transport() -> None:
    raw = body(
        negotiateVersion=1, connectionId="i", connectionToken="t", availableTransports=[SSE, LP]
    )
    err = parse_error(raw)
    assert "WebSockets" in str(err)
    assert "ServerSentEvents, LongPolling" in str(err)


def test_no_transports_at_all() -> None:
    err = parse_error(body(negotiateVersion=1, connectionId="i", connectionToken="t"))
    assert "offered: none" in str(err)


def test_websockets_without_text_format() -> None:
    ws_binary = {"transport": "WebSockets", "transferFormats": ["Binary"]}
    raw = body(connectionId="i", availableTransports=[ws_binary])
    assert "'Text'" in str(parse_error(raw))
    result = parse_negotiate_response(raw, transfer_format="Binary")
    assert isinstance(result, NegotiateResult)


def test_unrequested_stateful_reconnect_is_rejected() -> None:
    raw = body(
        negotiateVersion=1,
        connectionId="i",
        connectionToken="t",
        availableTransports=[WS],
        useStatefulReconnect=True,
    )
    err = parse_error(raw)
    assert "useStatefulReconnect" in str(err)


@pytest.mark.parametrize(
    "fields",
    [
        {"negotiateVersion": "1", "connectionId": "i", "connectionToken": "t"},
        {"negotiateVersion": True, "connectionId": "i"},
        {"negotiateVersion": -1, "connectionId": "i", "availableTransports": [WS]},
        {"connectionId": 5},
        {"connectionId": "i", "availableTransports": {"transport": "WebSockets"}},
        {"connectionId": "i", "availableTransports": [{"transport": "WebSockets"}]},
        {"connectionId": "i", "availableTransports": [WS], "useStatefulReconnect": "yes"},
        {"url": 7},
    ],
)
def test_wrong_field_types(fields: dict[str, Any]) -> None:
    parse_error(body(**fields))


def test_body_size_cap() -> None:
    padded = V1_BODY + b" " * (DEFAULT_MAX_BODY_SIZE - len(V1_BODY))
    assert len(padded) == DEFAULT_MAX_BODY_SIZE
    assert isinstance(parse_negotiate_response(padded), NegotiateResult)
    err = parse_error(padded + b" ")
    assert "limit" in str(err)
    parse_error(V1_BODY, max_body_size=len(V1_BODY) - 1)
    assert isinstance(
        parse_negotiate_response(V1_BODY, max_body_size=len(V1_BODY)), NegotiateResult
    )


def test_response_body_struct_encodes_wire_shapes() -> None:
    success = NegotiateResponseBody(
        negotiate_version=1,
        connection_id="i",
        connection_token="t",
        available_transports=(
            AvailableTransport(transport="WebSockets", transfer_formats=("Text",)),
        ),
    )
    assert json.loads(msgspec.json.encode(success)) == {
        "negotiateVersion": 1,
        "connectionId": "i",
        "connectionToken": "t",
        "availableTransports": [{"transport": "WebSockets", "transferFormats": ["Text"]}],
    }
    assert msgspec.json.encode(NegotiateResponseBody(error="x")) == b'{"error":"x"}'
    secret_repr = repr(NegotiateResponseBody(connection_token="SECRET1", access_token="SECRET2"))
    assert "SECRET" not in secret_repr
    assert secret_repr.startswith("NegotiateResponseBody(")


# -------------------------------------------------------------------- negotiate URL


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("http://localhost:5384/hub", "http://localhost:5384/hub/negotiate?negotiateVersion=1"),
        ("http://localhost:5384/hub/", "http://localhost:5384/hub/negotiate?negotiateVersion=1"),
        ("https://example.com", "https://example.com/negotiate?negotiateVersion=1"),
        ("https://example.com/", "https://example.com/negotiate?negotiateVersion=1"),
        (
            "https://svc.example/client/?hub=chat",
            "https://svc.example/client/negotiate?hub=chat&negotiateVersion=1",
        ),
        ("http://h/hub?hub=chat#frag", "http://h/hub/negotiate?hub=chat&negotiateVersion=1"),
        ("http://h/hub?", "http://h/hub/negotiate?negotiateVersion=1"),
        ("http://h?a=1", "http://h/negotiate?a=1&negotiateVersion=1"),
        ("http://[::1]:5000/hub", "http://[::1]:5000/hub/negotiate?negotiateVersion=1"),
        ("ws://h:81/hub", "http://h:81/hub/negotiate?negotiateVersion=1"),
        ("WSS://h/hub", "https://h/hub/negotiate?negotiateVersion=1"),
        ("http://h/a%2Fb?x=%26y", "http://h/a%2Fb/negotiate?x=%26y&negotiateVersion=1"),
        ("http://h/h\u00fcb x", "http://h/h%C3%BCb%20x/negotiate?negotiateVersion=1"),
    ],
)
def test_negotiate_url(base: str, expected: str) -> None:
    assert build_negotiate_url(base) == expected


@pytest.mark.parametrize(
    "base",
    [
        "http://h/hub?negotiateVersion=0",
        "http://h/hub?NegotiateVersion=0",
        "http://h/hub?x=1&NEGOTIATEVERSION=0",
    ],
)
def test_negotiate_url_keeps_the_users_version(base: str) -> None:
    url = build_negotiate_url(base)
    query = urlsplit(url).query
    assert query == urlsplit(base).query
    assert "negotiateVersion=1" not in url


def test_negotiate_url_other_version() -> None:
    assert build_negotiate_url("http://h/x", negotiate_version=0).endswith("?negotiateVersion=0")
    with pytest.raises(ValueError, match="negotiate_version"):
        build_negotiate_url("http://h/x", negotiate_version=-1)


def test_negotiate_url_stateful_reconnect() -> None:
    assert (
        build_negotiate_url("http://h/hub?hub=chat", use_stateful_reconnect=True)
        == "http://h/hub/negotiate?hub=chat&negotiateVersion=1&useStatefulReconnect=true"
    )
    assert (
        build_negotiate_url("http://h/hub?usestatefulreconnect=false", use_stateful_reconnect=True)
        == "http://h/hub/negotiate?negotiateVersion=1&useStatefulReconnect=true"
    )


@pytest.mark.parametrize(
    "base",
    [
        "ftp://h/hub",
        "file:///tmp/hub",
        "h/hub",
        "localhost:5000/hub",
        "http:///hub",
        "http://:80/hub",
        "http://[::1/hub",
        "http://h:notaport/hub",
        "http://h:99999/hub",
        "http://h\u00e9/hub",
        "http://h\ud800/hub",
        "",
    ],
)
def test_negotiate_url_rejects(base: str) -> None:
    with pytest.raises(NegotiationError):
        build_negotiate_url(base)


# -------------------------------------------------------------------- WebSocket URL


@pytest.mark.parametrize(
    ("base", "token", "access", "expected"),
    [
        ("http://h:5384/hub", "abc", None, "ws://h:5384/hub?id=abc"),
        ("https://h/hub", "abc", None, "wss://h/hub?id=abc"),
        ("ws://h/hub", "abc", None, "ws://h/hub?id=abc"),
        ("wss://h/hub", "abc", None, "wss://h/hub?id=abc"),
        ("https://h/client/?hub=chat", "abc", None, "wss://h/client/?hub=chat&id=abc"),
        ("https://h/hub", None, None, "wss://h/hub"),
        ("https://h/hub", "", None, "wss://h/hub"),
        ("https://h", None, None, "wss://h/"),
        ("https://h/hub?a=1#f", None, None, "wss://h/hub?a=1"),
        ("http://[::1]:5000/hub", "a b", None, "ws://[::1]:5000/hub?id=a%20b"),
        ("https://h/hub", "a+b/c=", "t&k=v", "wss://h/hub?id=a%2Bb%2Fc%3D&access_token=t%26k%3Dv"),
        ("https://h/hub", None, "tok", "wss://h/hub?access_token=tok"),
        ("https://h/hub?ID=old&x=1", "new", None, "wss://h/hub?x=1&id=new"),
        ("https://h/hub?access_token=old", None, "new", "wss://h/hub?access_token=new"),
    ],
)
def test_websocket_url(base: str, token: str | None, access: str | None, expected: str) -> None:
    assert build_websocket_url(base, connection_token=token, access_token=access) == expected


@pytest.mark.parametrize("base", ["ftp://h/hub", "http:///hub", "wss://[::1/x"])
def test_websocket_url_rejects(base: str) -> None:
    with pytest.raises(NegotiationError):
        build_websocket_url(base, connection_token="t")


def test_websocket_url_rejects_unencodable_token() -> None:
    with pytest.raises(NegotiationError):
        build_websocket_url("http://h/hub", connection_token="\ud800")


# ------------------------------------------------------------------------ redirects


def test_redirect_limit_is_exactly_max_redirects() -> None:
    assert MAX_REDIRECTS == 100
    tracker = NegotiateRedirects()
    for hop in range(1, MAX_REDIRECTS + 1):
        assert tracker.follow(NegotiateRedirect(url=f"http://h{hop}/hub")) == f"http://h{hop}/hub"
        assert tracker.hops == hop
    with pytest.raises(NegotiationError, match="redirect limit"):
        tracker.follow(NegotiateRedirect(url="http://last/hub"))
    assert tracker.hops == MAX_REDIRECTS


def test_redirect_limit_custom() -> None:
    tracker = NegotiateRedirects(max_redirects=0)
    with pytest.raises(NegotiationError):
        tracker.follow(NegotiateRedirect(url="http://h/hub"))
    with pytest.raises(ValueError, match="max_redirects"):
        NegotiateRedirects(max_redirects=-1)


def test_redirect_access_token_is_remembered() -> None:
    tracker = NegotiateRedirects()
    tokens_seen = [tracker.access_token]
    tracker.follow(NegotiateRedirect(url="http://a/hub"))
    tokens_seen.append(tracker.access_token)
    assert tokens_seen == [None, None]
    tracker.follow(NegotiateRedirect(url="http://b/hub", access_token="one"))
    assert tracker.access_token == "one"
    tracker.follow(NegotiateRedirect(url="http://c/hub"))
    assert tracker.access_token == "one"
    tracker.follow(NegotiateRedirect(url="http://d/hub", access_token="two"))
    assert tracker.access_token == "two"


def test_redirect_follow_rejects_bad_url() -> None:
    tracker = NegotiateRedirects()
    with pytest.raises(NegotiationError):
        tracker.follow(NegotiateRedirect(url="gopher://h/hub"))
    assert tracker.hops == 0


def test_redirect_chain_end_to_end() -> None:
    tracker = NegotiateRedirects()
    first = parse_negotiate_response(body(url="https://svc/client/?hub=chat", accessToken="jwt"))
    assert isinstance(first, NegotiateRedirect)
    base = tracker.follow(first)
    assert build_negotiate_url(base) == "https://svc/client/negotiate?hub=chat&negotiateVersion=1"
    final = parse_negotiate_response(V1_BODY)
    assert isinstance(final, NegotiateResult)
    assert build_websocket_url(
        base, connection_token=final.connection_token, access_token=tracker.access_token
    ) == ("wss://svc/client/?hub=chat&id=x8TqL0pW3nE6yR9uC2vB4d&access_token=jwt")


# ----------------------------------------------------------------------- properties

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

KEYS = [
    "negotiateVersion",
    "connectionId",
    "connectionToken",
    "availableTransports",
    "useStatefulReconnect",
    "url",
    "accessToken",
    "error",
    "ProtocolVersion",
]

VALID_SHAPES: list[dict[str, Any]] = [
    {
        "negotiateVersion": 1,
        "connectionId": "i",
        "connectionToken": "t",
        "availableTransports": [WS],
    },
    {"connectionId": "i", "availableTransports": [WS, SSE]},
    {"url": "https://other/hub", "accessToken": "a"},
]


def mutate(shape: dict[str, Any], drop: list[str], changes: dict[str, Any]) -> bytes:
    mutated = {k: v for k, v in shape.items() if k not in drop}
    mutated.update(changes)
    return json.dumps(mutated).encode()


# Valid bodies with a few keys dropped or replaced: reaches every branch of the parser.
near_valid_bodies = st.builds(
    mutate,
    st.sampled_from(VALID_SHAPES),
    st.lists(st.sampled_from(KEYS), max_size=2),
    st.dictionaries(
        st.sampled_from(KEYS),
        json_values
        | st.sampled_from([[WS], [SSE], [], "WebSockets", "", 0, 1, 2, True, "http://x/y"]),
        max_size=2,
    ),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512) | near_valid_bodies, st.booleans())
@example(b"[" * 50_000, False)
@example(b'{"a":"\\ud800"}', False)
@example(b'"\xed\xa0\x80"', False)
@example(b"1e999999", False)
def test_parse_only_raises_negotiation_error(raw: bytes, stateful: bool) -> None:
    try:
        result = parse_negotiate_response(raw, requested_stateful_reconnect=stateful)
    except NegotiationError:
        return
    if isinstance(result, NegotiateRedirect):
        assert result.url
        assert result.access_token != ""
    else:
        assert result.connection_id
        assert result.connection_token
        assert any(t.transport == "WebSockets" for t in result.available_transports)
        assert stateful or not result.use_stateful_reconnect


@given(
    st.binary(max_size=256), st.integers(min_value=100, max_value=599).filter(lambda s: s != 200)
)
def test_non_200_always_raises_with_status(raw: bytes, status: int) -> None:
    with pytest.raises(NegotiationError) as info:
        parse_negotiate_response(raw, status_code=status)
    assert info.value.status_code == status


hosts = st.sampled_from(["h", "example.com", "127.0.0.1", "[::1]", "svc.example:8443"])
path_segments = st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=6))
query_pairs = st.lists(
    st.tuples(
        st.text(alphabet="abcxyz_", min_size=1, max_size=5).filter(
            lambda k: k.lower() not in {"id", "access_token"}
        ),
        st.text(alphabet="abc123", max_size=5),
    ),
    max_size=3,
)
tokens = st.text(alphabet=st.characters(codec="utf-8"), min_size=1)


def make_base(scheme: str, host: str, segments: list[str], pairs: list[tuple[str, str]]) -> str:
    path = "/" + "/".join(s.replace("/", "").replace("?", "").replace("#", "") for s in segments)
    query = "&".join(f"{k}={v}" for k, v in pairs)
    return f"{scheme}://{host}{path}" + (f"?{query}" if query else "")


@given(
    st.sampled_from(["http", "https", "ws", "wss"]),
    hosts,
    path_segments,
    query_pairs,
    tokens,
    st.none() | tokens,
)
@example("http", "h", [], [], "a+b/c==", "x y&z")
def test_websocket_url_round_trips_tokens(
    scheme: str,
    host: str,
    segments: list[str],
    pairs: list[tuple[str, str]],
    token: str,
    access: str | None,
) -> None:
    base = make_base(scheme, host, segments, pairs)
    url = build_websocket_url(base, connection_token=token, access_token=access)
    assert url.isascii()
    parts = urlsplit(url)
    assert parts.scheme == {"http": "ws", "https": "wss"}.get(scheme, scheme)
    assert parts.netloc == host
    query = parse_qs(parts.query, keep_blank_values=True)
    assert query["id"] == [token]
    if access is None:
        assert "access_token" not in query
    else:
        assert query["access_token"] == [access]
    for key, value in pairs:
        assert value in query[key]


@given(
    st.sampled_from(["http", "https", "ws", "wss"]),
    hosts,
    path_segments,
    query_pairs,
    st.booleans(),
)
def test_negotiate_url_shape(
    scheme: str, host: str, segments: list[str], pairs: list[tuple[str, str]], stateful: bool
) -> None:
    base = make_base(scheme, host, segments, pairs)
    url = build_negotiate_url(base, use_stateful_reconnect=stateful)
    assert url.isascii()
    parts = urlsplit(url)
    assert parts.scheme == {"ws": "http", "wss": "https"}.get(scheme, scheme)
    assert parts.netloc == host
    assert parts.path.endswith("/negotiate")
    base_path = urlsplit(base).path
    added_slashes = 0 if base_path.endswith("/") else 1
    assert parts.path.count("/") == base_path.count("/") + added_slashes
    query = parse_qs(parts.query, keep_blank_values=True)
    assert query["negotiateVersion"] == ["1"]
    if stateful:
        assert query["useStatefulReconnect"] == ["true"]
    else:
        assert "useStatefulReconnect" not in query
    for key, value in pairs:
        assert value in query[key]


def test_url_errors_do_not_echo_the_query() -> None:
    with pytest.raises(NegotiationError) as info:
        build_websocket_url("ftp://h/hub?access_token=SECRET", connection_token=None)
    assert "SECRET" not in str(info.value)
    assert "ftp://h/hub" in str(info.value)
