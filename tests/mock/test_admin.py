"""The admin API against a fake server: every endpoint, its errors, and the token."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from voxta_mock.admin import MockAdmin, is_admin_path
from voxta_mock.faults import FaultPlan
from voxta_proto.transports import HttpRequest, HttpResponse
from voxta_proto.voxta import AppTrigger, RecordingRequest, Send, StopChat

from .admin_fake import FakeServer

pytestmark = pytest.mark.anyio


async def call(admin: MockAdmin, method: str, target: str, body: object = None, *,
               token: str | None = None, raw: bytes | None = None) -> HttpResponse:
    headers = (("authorization", f"Bearer {token}"),) if token else ()
    data = raw if raw is not None else b"" if body is None else msgspec.json.encode(body)
    return await admin.handle(HttpRequest(method=method, target=target, headers=headers,
                                          body=data))


def json_of(response: HttpResponse) -> Any:
    assert response.header("content-type") == "application/json; charset=utf-8"
    return msgspec.json.decode(response.body)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def admin(server: FakeServer) -> MockAdmin:
    return MockAdmin(server)


async def test_token_is_required_when_configured(server: FakeServer) -> None:
    admin = MockAdmin(server, token="s3cret")
    for token in (None, "wrong"):
        refused = await call(admin, "POST", "/_mock/reset", token=token)
        assert refused.status == 401
        assert refused.header("www-authenticate") == "Bearer"
        assert "Bearer" in json_of(refused)["error"]
    assert server.resets == 0
    assert (await call(admin, "POST", "/_mock/reset", token="s3cret")).status == 204
    assert server.resets == 1
    unknown = await call(admin, "GET", "/_mock/nope")
    assert unknown.status == 401  # nothing, not even 404, before the token


async def test_unknown_paths_404_and_wrong_methods_405(admin: MockAdmin) -> None:
    for path in ("/_mock", "/_mock/nope", "/_mock/journal/1", "/_mock/expectations/a/b",
                 "/api/chats"):
        response = await call(admin, "GET", path)
        assert response.status == 404, path
        assert "no admin endpoint" in json_of(response)["error"]
    wrong = await call(admin, "POST", "/_mock/journal")
    assert wrong.status == 405
    assert wrong.header("allow") == "DELETE, GET"
    assert (await call(admin, "GET", "/_mock/expectations/exp-1")).status == 405
    assert is_admin_path("/_mock/state")
    assert not is_admin_path("/_mockery")


async def test_journal_filters_since_and_clear(admin: MockAdmin, server: FakeServer) -> None:
    server.journal.record_received("c1", Send(session_id="s1", text="hi"))
    server.journal.record_received("c2", StopChat())
    server.journal.record_sent("c1", RecordingRequest(session_id="s1", enabled=True))
    everything = json_of(await call(admin, "GET", "/_mock/journal"))
    assert [e["seq"] for e in everything["entries"]] == [1, 2, 3]
    assert everything["lastSeq"] == 3
    by_type = json_of(await call(admin, "GET", "/_mock/journal?type=send"))
    assert [e["message"]["text"] for e in by_type["entries"]] == ["hi"]
    by_session = json_of(await call(admin, "GET", "/_mock/journal?session=s1&direction=sent"))
    assert [e["type"] for e in by_session["entries"]] == ["recordingRequest"]
    by_conn = json_of(await call(admin, "GET", "/_mock/journal?connection=c2"))
    assert [e["type"] for e in by_conn["entries"]] == ["stopChat"]
    since = json_of(await call(admin, "GET", "/_mock/journal?since=2"))
    assert [e["seq"] for e in since["entries"]] == [3]
    for bad, why in [("since=x", "since"), ("since=-1", "since"),
                     ("direction=up", "direction"), ("sesion=s1", "unknown query")]:
        response = await call(admin, "GET", f"/_mock/journal?{bad}")
        assert response.status == 400
        assert why in json_of(response)["error"]
    assert (await call(admin, "DELETE", "/_mock/journal")).status == 204
    assert len(server.journal) == 0


async def test_expectations_add_list_match_counts_and_remove(admin: MockAdmin,
                                                             server: FakeServer) -> None:
    created = await call(admin, "POST", "/_mock/expectations", {
        "match": {"type": "send", "fields": {"text": "hi"}}, "times": None})
    assert created.status == 201
    exp_id = json_of(created)["id"]
    server.expectations.match("c1", "s1", Send(session_id="s1", text="hi"))
    listed = json_of(await call(admin, "GET", "/_mock/expectations"))["expectations"]
    assert [(e["id"], e["matched"]) for e in listed] == [(exp_id, 1)]
    assert (await call(admin, "DELETE", f"/_mock/expectations/{exp_id}")).status == 204
    again = await call(admin, "DELETE", f"/_mock/expectations/{exp_id}")
    assert again.status == 404
    assert exp_id in json_of(again)["error"]
    bad = await call(admin, "POST", "/_mock/expectations", {"match": {"type": 1}})
    assert bad.status == 400
    assert "match" in json_of(bad)["error"]
    assert len(server.expectations) == 0


async def test_push_to_a_connection_a_session_or_everyone(admin: MockAdmin,
                                                          server: FakeServer) -> None:
    trigger = {"$type": "appTrigger", "sessionId": "s1", "name": "Wave", "senderId": "ch",
               "triggerId": "t1"}
    one = await call(admin, "POST", "/_mock/push", {"message": trigger, "connection": "c2"})
    assert json_of(one) == {"delivered": 1}
    session = await call(admin, "POST", "/_mock/push", {"message": trigger, "sessionId": "s1"})
    assert json_of(session) == {"delivered": 1}
    everyone = await call(admin, "POST", "/_mock/push", {"message": trigger})
    assert json_of(everyone) == {"delivered": 2}
    assert [key for key, _ in server.pushed] == ["c2", "c1", "c1", "c2"]
    assert all(isinstance(m, AppTrigger) and m.trigger_id == "t1" for _, m in server.pushed)
    assert len(server.journal.sent(AppTrigger)) == 4
    missing = await call(admin, "POST", "/_mock/push", {"message": trigger, "connection": "x"})
    assert missing.status == 404
    nobody = await call(admin, "POST", "/_mock/push", {"message": trigger, "sessionId": "s9"})
    assert nobody.status == 404


@pytest.mark.parametrize(("body", "why"), [
    (b"[", "must be JSON"),
    (b"[]", "JSON object"),
    (b'{"connection": "c1"}', "'message'"),
    (b'{"message": {"$type": "appTrigger"}, "connection": "c1"}', "invalid 'appTrigger'"),
    (b'{"message": {"$type": "madeUp"}}', "unknown server message type 'madeUp'"),
    (b'{"message": {"$type": "x"}, "connection": "c1", "sessionId": "s1"}', "not both"),
    (b'{"message": {"$type": "x"}, "connection": 5}', "'connection' must be a string"),
    (b'{"message": {}, "to": "c1"}', "unknown keys ['to']"),
])
async def test_push_bad_input(admin: MockAdmin, server: FakeServer, body: bytes,
                              why: str) -> None:
    response = await call(admin, "POST", "/_mock/push", raw=body)
    assert response.status == 400
    assert why in json_of(response)["error"]
    assert server.pushed == []


async def test_put_data_validates_like_the_data_file(admin: MockAdmin,
                                                     server: FakeServer) -> None:
    data = {"characters": [{"id": "c-1", "name": "Zed"}], "replies": ["Sure."]}
    assert (await call(admin, "PUT", "/_mock/data", data)).status == 204
    assert [c.name for c in server.data.characters] == ["Zed"]
    for body, why in [({"characters": []}, "at least one character"),
                      ({"characters": [{"id": "a", "name": "A", "nmae": 1}]}, "nmae"),
                      ("x", "invalid mock data")]:
        response = await call(admin, "PUT", "/_mock/data", body)
        assert response.status == 400
        assert why in json_of(response)["error"]
    bad_json = await call(admin, "PUT", "/_mock/data", raw=b"{")
    assert bad_json.status == 400
    assert [c.name for c in server.data.characters] == ["Zed"]


async def test_put_faults_for_all_or_the_next_n(admin: MockAdmin, server: FakeServer) -> None:
    plan = {"silent_after_handshake": True}
    assert (await call(admin, "PUT", "/_mock/faults", {"plan": plan})).status == 204
    assert (await call(admin, "PUT", "/_mock/faults", {"plan": plan, "next": 2})).status == 204
    assert (await call(admin, "PUT", "/_mock/faults", {"plan": None})).status == 204
    assert server.faults == [(FaultPlan(silent_after_handshake=True), None),
                             (FaultPlan(silent_after_handshake=True), 2), (None, None)]
    for body, why in [({}, "'plan'"), ({"plan": {}, "next": 0}, "'next'"),
                      ({"plan": {}, "next": True}, "'next'"),
                      ({"plan": {"latency": -1}}, "latency must be >= 0"),
                      ({"plan": {"laytency": 1}}, "laytency"),
                      ({"plan": {}, "count": 1}, "unknown keys")]:
        response = await call(admin, "PUT", "/_mock/faults", body)
        assert response.status == 400, body
        assert why in json_of(response)["error"]
    assert len(server.faults) == 3


async def test_state_and_reset(admin: MockAdmin, server: FakeServer) -> None:
    state = json_of(await call(admin, "GET", "/_mock/state"))
    assert [c["key"] for c in state["connections"]] == ["c1", "c2"]
    assert state["sessions"][0]["sessionId"] == "s1"
    assert state["chats"][0]["messages"] == 3
    server.journal.record_received("c1", StopChat())
    server.expectations.add(StopChat)
    assert (await call(admin, "POST", "/_mock/reset")).status == 204
    assert (len(server.journal), len(server.expectations), server.resets) == (0, 0, 1)
