"""The h11 HTTP client and negotiate against our server and against Python's http.server."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import pytest
from anyio.abc import ByteStream

from voxta_proto.errors import NegotiationError, ReadError
from voxta_proto.transports import (
    ConnectOptions,
    HttpRequest,
    HttpResponse,
    ServerAddress,
    http_request,
    negotiate,
)
from voxta_proto.transports._net import parse_url
from voxta_proto.transports.http import _base_from_location, _keeps_token

from .helpers import NEGOTIATE_BODY, SignalRApp, json_response, raw_server, running_server

pytestmark = [pytest.mark.anyio, pytest.mark.network]

HTTP = {"http": "http", "https": "https"}


async def test_negotiate_sends_what_signalr_servers_expect() -> None:
    app = SignalRApp()
    options = ConnectOptions(access_token="user-token", headers={"X-Custom": "yes"})
    with anyio.fail_after(10):
        async with running_server(app) as address:
            outcome = await negotiate(address.url(path="/hub?hub=chat"), options=options)
    request = app.requests[0]
    assert request.method == "POST"
    assert request.target == "/hub/negotiate?hub=chat&negotiateVersion=1"
    assert request.header("content-length") == "0"
    assert request.header("host") == f"127.0.0.1:{address.port}"
    assert request.header("x-requested-with") == "XMLHttpRequest"
    assert request.header("authorization") == "Bearer user-token"
    assert request.header("x-custom") == "yes"
    assert (request.header("user-agent") or "").startswith("voxta-proto/")
    assert outcome.base_url == address.url(path="/hub?hub=chat")
    assert outcome.result.connection_id == "conn-1"
    assert outcome.result.connection_token == "token 1/+"
    assert outcome.access_token == "user-token"
    assert dict(outcome.cookies) == {"ARRAffinity": "abc123"}
    assert outcome.redirects == 0
    assert outcome.websocket_url() == address.url("ws", "/hub?hub=chat&id=token%201%2F%2B")
    upgrade_options = outcome.connect_options(options)
    assert upgrade_options.cookie_items() == (("ARRAffinity", "abc123"),)
    assert upgrade_options.header_items() == (("X-Custom", "yes"),)


async def test_negotiate_asks_for_stateful_reconnect() -> None:
    seen: list[HttpRequest] = []

    async def app(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return json_response({**NEGOTIATE_BODY, "useStatefulReconnect": True})

    with anyio.fail_after(10):
        async with running_server(app) as address:
            outcome = await negotiate(address.url(path="/hub"), use_stateful_reconnect=True)
            assert outcome.result.use_stateful_reconnect
            with pytest.raises(NegotiationError, match="did not request"):
                await negotiate(address.url(path="/hub"))
    assert seen[0].query_param("useStatefulReconnect") == "true"


async def test_negotiate_follows_body_redirects_and_swaps_the_token() -> None:
    seen: list[HttpRequest] = []

    async def app(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        host = request.header("host")
        if request.path == "/app/negotiate":
            return json_response(
                {"url": f"http://{host}/service?hub=x", "accessToken": "service-token"},
                ("Set-Cookie", "app=1"),
            )
        return json_response(NEGOTIATE_BODY, ("Set-Cookie", "svc=2"))

    with anyio.fail_after(10):
        async with running_server(app) as address:
            outcome = await negotiate(
                address.url(path="/app"), options=ConnectOptions(access_token="user-token")
            )
    assert [r.header("authorization") for r in seen] == [
        "Bearer user-token",
        "Bearer service-token",
    ]
    assert seen[1].target == "/service/negotiate?hub=x&negotiateVersion=1"
    assert seen[1].cookies == {"app": "1"}  # same host, so the first hop's cookie goes along
    assert outcome.access_token == "service-token"
    assert outcome.base_url == address.url(path="/service?hub=x")
    assert dict(outcome.cookies) == {"app": "1", "svc": "2"}
    assert outcome.redirects == 1


def _hop_app(last_hop: int) -> SignalRApp:
    class Hops(SignalRApp):
        async def __call__(self, request: HttpRequest) -> HttpResponse:
            self.requests.append(request)
            hop = int(request.path.split("/")[2])
            if hop < last_hop:
                host = request.header("host")
                return json_response({"url": f"http://{host}/hop/{hop + 1}"})
            return json_response(NEGOTIATE_BODY)

    return Hops()


async def test_negotiate_follows_exactly_100_redirects() -> None:
    app = _hop_app(100)
    with anyio.fail_after(10):
        async with running_server(app) as address:
            outcome = await negotiate(address.url(path="/hop/0"))
    assert outcome.redirects == 100
    assert outcome.base_url.endswith("/hop/100")
    assert len(app.requests) == 101


async def test_negotiate_gives_up_after_100_redirects() -> None:
    app = _hop_app(101)
    with anyio.fail_after(10):
        async with running_server(app) as address:
            with pytest.raises(NegotiationError, match="redirect limit"):
                await negotiate(address.url(path="/hop/0"))
    assert len(app.requests) == 101


async def test_negotiate_follows_307_and_308_as_post() -> None:
    seen: list[HttpRequest] = []

    async def app(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        if request.path == "/old/negotiate":
            return HttpResponse(307, [("Location", "/mid/negotiate?negotiateVersion=1&k=v")])
        if request.path == "/mid/negotiate":
            return HttpResponse(308, [("Location", "/new/negotiate"), ("Set-Cookie", "lb=7")])
        return json_response(NEGOTIATE_BODY)

    with anyio.fail_after(10):
        async with running_server(app) as address:
            options = ConnectOptions(access_token="t")
            outcome = await negotiate(address.url(path="/old"), options=options)
    assert [(r.method, r.target) for r in seen] == [
        ("POST", "/old/negotiate?negotiateVersion=1"),
        ("POST", "/mid/negotiate?k=v&negotiateVersion=1"),
        ("POST", "/new/negotiate?negotiateVersion=1"),
    ]
    assert all(r.header("authorization") == "Bearer t" for r in seen)  # same host
    assert outcome.base_url == address.url(path="/new")
    assert dict(outcome.cookies) == {"lb": "7"}
    assert outcome.redirects == 2


def test_http_redirect_helpers() -> None:
    base = _base_from_location(
        "https://other:8443/hub/negotiate?negotiateVersion=1&useStatefulReconnect=true&x=1",
        "http://h/hub/negotiate?negotiateVersion=1",
    )
    assert base == "https://other:8443/hub?x=1"
    with pytest.raises(NegotiationError, match="not a negotiate endpoint"):
        _base_from_location("/login", "http://h/hub/negotiate")
    a = parse_url("https://a/", HTTP)
    assert _keeps_token(a, parse_url("https://a:8443/x", HTTP))
    assert not _keeps_token(a, parse_url("https://b/", HTTP))
    assert not _keeps_token(a, parse_url("http://a/", HTTP))


@pytest.mark.parametrize(
    ("response", "status_code", "fragment"),
    [
        (HttpResponse(302, [("Location", "/elsewhere")]), 302, "only 307/308"),
        (HttpResponse(500, body=b"boom: database down"), 500, "database down"),
        (HttpResponse(401, body=b""), 401, "Unauthorized"),
        (HttpResponse(404, body=b"<html>nope</html>"), 404, "not a SignalR hub"),
        (HttpResponse(200, [("Content-Type", "text/html")], b"<html>login</html>"), None, "JSON"),
        (json_response({"error": "Negotiate version not supported"}), None, "not supported"),
        (json_response({"ProtocolVersion": "1.5"}), None, "classic ASP.NET"),
    ],
)
async def test_negotiate_failures_are_negotiation_errors(
    response: HttpResponse, status_code: int | None, fragment: str
) -> None:
    async def app(request: HttpRequest) -> HttpResponse:
        return response

    with anyio.fail_after(10):
        async with running_server(app) as address:
            with pytest.raises(NegotiationError) as info:
                await negotiate(address.url(path="/hub"))
    assert fragment in str(info.value)
    assert info.value.status_code == status_code


@pytest.mark.parametrize("chunked", [False, True])
async def test_negotiate_body_over_the_limit(chunked: bool) -> None:
    headers = [("Transfer-Encoding", "chunked")] if chunked else []

    async def app(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, headers, b"[" + b"1," * 5000 + b"1]")

    with anyio.fail_after(10):
        async with running_server(app) as address:
            with pytest.raises(NegotiationError, match="limit"):
                await negotiate(address.url(path="/hub"), max_body_size=1000)


async def test_http_request_round_trip_and_limits() -> None:
    async def app(request: HttpRequest) -> HttpResponse:
        return HttpResponse(
            201,
            [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "gone=; Max-Age=0"), ("X-Echo", "1")],
            request.method.encode() + b" " + request.body,
        )

    with anyio.fail_after(10):
        async with running_server(app) as address:
            response = await http_request(
                "PUT", address.url(path="/x"), headers=[("X-A", "1")], body=b"payload"
            )
            assert response.status == 201
            assert response.body == b"PUT payload"
            assert response.header("X-ECHO") == "1"
            assert response.set_cookies == {"a": "1"}
            with pytest.raises(ReadError, match="limit"):
                await http_request("GET", address.url(path="/x"), max_body_size=3)
            with pytest.raises(ValueError, match="scheme"):
                await http_request("GET", f"ftp://127.0.0.1:{address.port}/")
            with pytest.raises(ValueError, match="content-length"):
                await http_request("GET", address.url(), headers={"Content-Length": "5"})


async def test_server_closing_mid_body_is_a_read_error() -> None:
    async def handler(stream: ByteStream) -> None:
        await stream.receive()
        await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial")

    with anyio.fail_after(10):
        async with raw_server(handler) as address:
            with pytest.raises(ReadError):
                await negotiate(address.url(path="/hub"))


async def test_garbage_response_is_a_read_error() -> None:
    async def handler(stream: ByteStream) -> None:
        await stream.receive()
        await stream.send(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

    with anyio.fail_after(10):
        async with raw_server(handler) as address:
            with pytest.raises(ReadError, match="invalid HTTP"):
                await http_request("GET", address.url(path="/"))


# ------------------------------------------------------------ Python's http.server as the peer


class _NegotiateHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, str]] = []  # noqa: RUF012 (test-only recorder)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        type(self).seen.append({"path": self.path, **headers})
        body = json.dumps(NEGOTIATE_BODY).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "sid=42; HttpOnly")
        if self.protocol_version == "HTTP/1.1":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Http10Handler(_NegotiateHandler):
    """HTTP/1.0 without Content-Length: the body ends when the server closes."""

    protocol_version = "HTTP/1.0"


@contextmanager
def threaded_http_server(
    handler: type[http.server.BaseHTTPRequestHandler],
) -> Iterator[ServerAddress]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield ServerAddress("127.0.0.1", server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("handler", [_NegotiateHandler, _Http10Handler])
async def test_negotiate_against_python_http_server(
    handler: type[_NegotiateHandler],
) -> None:
    handler.seen = []
    with anyio.fail_after(10), threaded_http_server(handler) as address:
        options = ConnectOptions(access_token="t")
        outcome = await negotiate(address.url(path="/hub"), options=options)
    assert outcome.result.connection_token == "token 1/+"
    assert dict(outcome.cookies) == {"sid": "42"}
    seen = handler.seen[0]
    assert seen["path"] == "/hub/negotiate?negotiateVersion=1"
    assert seen["content-length"] == "0"
    assert seen["authorization"] == "Bearer t"
    assert seen["x-requested-with"] == "XMLHttpRequest"
