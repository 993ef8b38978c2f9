"""Every example of the admin API guide, run as written against the handler and a fake
server: a request block, then the response block it must produce (status, headers, JSON).

``<!-- client <key> sends <json> -->`` in the page is a step the server would do: the
message is journaled and, when an expectation answers it, its reply is journaled as sent.
"""

from __future__ import annotations

import http
import re
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from voxta_mock.admin import MockAdmin
from voxta_proto.transports import HttpRequest, HttpResponse
from voxta_proto.voxta import ReplyStart, Send, decode_client_message

from .admin_fake import FakeServer

pytestmark = pytest.mark.anyio

PAGE = Path(__file__).parents[2] / "docs" / "guides" / "admin-api.md"
_BLOCK = re.compile(r"```http\n(.*?)```|<!-- client (\S+) sends (.*?) -->", re.DOTALL)


@dataclass
class Message:
    start: str
    headers: list[tuple[str, str]]
    body: bytes


def parse(block: str) -> Message:
    head, _, body = block.partition("\n\n")
    start, *lines = head.strip("\n").split("\n")
    headers = [(name.strip().lower(), value.strip())
               for name, _, value in (line.partition(":") for line in lines)]
    return Message(start, headers, body.strip().encode())


@dataclass
class ClientStep:
    key: str
    json: str


@dataclass
class Exchange:
    request: Message
    response: Message


def steps() -> list[ClientStep | Exchange]:
    """The page's client steps and request/response pairs, in page order."""
    found: list[ClientStep | Exchange] = []
    pending: Message | None = None
    for match in _BLOCK.finditer(PAGE.read_text(encoding="utf-8")):
        if match.group(2):
            found.append(ClientStep(match.group(2), match.group(3)))
            continue
        message = parse(match.group(1))
        if message.start.startswith("HTTP/1.1 "):
            assert pending is not None, f"a response without a request: {message.start}"
            found.append(Exchange(pending, message))
            pending = None
        else:
            assert pending is None, f"a request without a response: {pending}"
            pending = message
    assert pending is None, "the page ends with a request and no response"
    return found


def seeded() -> FakeServer:
    """The mock the page describes: c1 said "hi" in s1, the reply started, a REST call."""
    server = FakeServer()
    server.journal.record_received("c1", Send(session_id="s1", text="hi"))
    server.journal.record_sent("c1", ReplyStart(
        session_id="s1", message_id="m1", sender_id="22222222-2222-4222-8222-222222222222",
        chat_time=1200))
    server.journal.record_rest(
        HttpRequest(method="GET", target="/api/chats?characterId="
                    "22222222-2222-4222-8222-222222222222", client=("127.0.0.1", 50003)),
        HttpResponse(200))
    return server


def client_sends(server: FakeServer, key: str, data: str) -> None:
    message = decode_client_message(data.encode())
    server.journal.record_received(key, message)
    answer = server.expectations.match(key, getattr(message, "session_id", None), message)
    for reply in answer.reply if answer is not None else ():
        server.journal.record_sent(key, reply)


def check(documented: Message, actual: HttpResponse, request: str) -> None:
    status_line = documented.start.split(" ", 2)
    assert int(status_line[1]) == actual.status, f"{request}: {actual.body!r}"
    assert status_line[2] == http.HTTPStatus(actual.status).phrase
    assert sorted(documented.headers) == sorted((k.lower(), v) for k, v in actual.headers), (
        request)
    if not documented.body:
        assert actual.body == b"", request
    else:
        assert msgspec.json.decode(actual.body) == msgspec.json.decode(documented.body), (
            request)


async def test_every_example_of_the_admin_guide_runs_as_written() -> None:
    server = seeded()
    admin = MockAdmin(server, token="secret")
    exchanges = 0
    for step in steps():
        if isinstance(step, ClientStep):
            client_sends(server, step.key, step.json)
            continue
        request, response = step.request, step.response
        method, target, version = request.start.split(" ")
        assert version == "HTTP/1.1"
        actual = await admin.handle(HttpRequest(method=method, target=target,
                                                headers=tuple(request.headers),
                                                body=request.body))
        check(response, actual, request.start)
        exchanges += 1
    endpoints = {"GET /_mock/journal", "DELETE /_mock/journal", "POST /_mock/expectations",
                 "GET /_mock/expectations", "DELETE /_mock/expectations/", "POST /_mock/push",
                 "PUT /_mock/data", "PUT /_mock/faults", "POST /_mock/reset",
                 "GET /_mock/state"}
    text = PAGE.read_text(encoding="utf-8")
    assert all(f"```http\n{e}" in text for e in endpoints)  # each endpoint has an example
    assert exchanges >= len(endpoints)
    assert server.resets == 1


def test_the_page_parser_sees_requests_responses_and_client_steps() -> None:
    kinds = [type(step) for step in steps()]
    assert kinds.count(ClientStep) == 1
    assert kinds.count(Exchange) >= 10
