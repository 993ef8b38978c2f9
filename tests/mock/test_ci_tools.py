"""The CI tools wired into the real mock server: the journal, expectations, pushed
messages, the admin API on the mock's own port, the inspector's routes and ``-v``."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import msgspec
import pytest

from voxta_mock import MockVoxtaServer
from voxta_mock.expectations import FaultAnswer
from voxta_mock.journal import AudioEntry, RestEntry
from voxta_proto import VoxtaClient
from voxta_proto.errors import HandshakeRejected, TransportError
from voxta_proto.transports import (
    ConnectOptions,
    MemoryTransport,
    connect_websocket,
    http_request,
)
from voxta_proto.voxta import (
    AppTrigger,
    Authenticate,
    ChatSessionError,
    ComputerVisionSource,
    ReplyEnd,
    Send,
    VisionCaptureRequest,
    Welcome,
)

pytestmark = pytest.mark.anyio


async def _chat(client: VoxtaClient) -> str:
    characters = await client.load_characters_list()
    started = await client.start_chat(characters[0].id)
    return started.session_id


async def _until(predicate: Any) -> None:
    with anyio.fail_after(10):
        while not predicate():  # noqa: ASYNC110 (server state, no event to wait on)
            await anyio.sleep(0.01)


async def test_the_journal_records_both_directions_rest_and_audio() -> None:
    async with MockVoxtaServer(port=0, reply_delay=0.0, journal_size=500) as server:
        async with VoxtaClient(server.url, reconnect=()) as client:
            session_id = await _chat(client)
            await client.send_message("hello journal")
            response = await http_request("GET", server.url + "/api/chats")
            assert response.status == 200
            async with await client.open_audio_input() as audio:
                await audio.send(b"\x00\x01" * 80)
            await _until(lambda: server.journal.entries(kind="audio", direction=None))
        assert isinstance(server.received(Authenticate)[0], Authenticate)
        sent = server.received(Send, session_id=session_id)
        assert [m.text for m in sent] == ["hello journal"]
        assert server.sent(Welcome)
        assert server.sent("welcome") == server.journal.sent(Welcome)
        assert server.journal.sent(ReplyEnd, session_id=session_id)
        entries = list(server.journal)
        assert any(isinstance(e, RestEntry) and e.path == "/api/chats" for e in entries)
        audio_entries = [e for e in entries if isinstance(e, AudioEntry)]
        assert audio_entries
        assert audio_entries[-1].size == 160
        server.reset()
        assert len(server.journal) == 0


async def test_the_journal_is_bounded_by_journal_size() -> None:
    async with MockVoxtaServer(port=0, reply_delay=0.0, journal_size=5) as server:
        async with VoxtaClient(server.url, reconnect=()) as client:
            await _chat(client)
        assert len(server.journal) == 5
        assert server.journal.dropped > 0


async def test_an_expectation_answers_before_the_engine_and_counts() -> None:
    async with (MockVoxtaServer(port=0, reply_delay=0.0) as server,
                VoxtaClient(server.url, reconnect=()) as client):
            session_id = await _chat(client)
            expectation = server.expectations.add(
                Send, text="ping", reply=[ChatSessionError(
                    session_id=session_id, message="scripted", code="x")])
            replies = len(server.journal.sent(ReplyEnd, session_id=session_id))
            async with client.events() as events:
                await client.send_message("ping")
                with anyio.fail_after(10):
                    async for event in events:
                        if isinstance(event, ChatSessionError):
                            assert event.message == "scripted"
                            break
            assert expectation.matched == 1
            assert not server.expectations.unmet()
            # the engine did not see it: no reply to "ping"
            assert len(server.journal.sent(ReplyEnd, session_id=session_id)) == replies


_HANDSHAKE = '{"protocol":"json","version":1}\x1e'
_AUTHENTICATE = ('{"type":1,"invocationId":"1","target":"SendMessage","arguments":[{'
                 '"$type":"authenticate","client":"raw","clientVersion":"1","scope":'
                 '["role:app"],"capabilities":{"audioInput":"None","audioOutput":"None",'
                 '"visionCapture":"None"}}]}\x1e')
_SEND = ('{"type":1,"invocationId":"2","target":"SendMessage","arguments":[{'
         '"$type":"send","sessionId":"s1","text":"bye"}]}\x1e')


async def _read_until_closed(transport: MemoryTransport, into: list[str]) -> None:
    while True:
        into.append(str(await transport.receive()))


async def test_a_drop_expectation_ends_the_connection_after_its_reply() -> None:
    # A raw client: VoxtaClient's own exit after a drop is not what is tested here.
    async with MockVoxtaServer(listen=False, reply_delay=0.0) as server:
        server.expectations.add(Send, text="bye", fault=FaultAnswer(kind="drop"),
                                reply=[ChatSessionError(session_id="s1", message="last")])
        transport = await server.connect_memory()
        received: list[str] = []
        with anyio.fail_after(10):
            await transport.send(_HANDSHAKE + _AUTHENTICATE)
            while not any('"welcome"' in text for text in received):
                received.append(str(await transport.receive()))
            await transport.send(_SEND)
            with pytest.raises(TransportError):
                await _read_until_closed(transport, received)
        await transport.aclose()
        assert '"invocationId":"2"' in "".join(received)  # completed,
        assert '"message":"last"' in "".join(received)  # answered, then dropped
        await _until(lambda: not server.state().connections)
        assert server.expectations.unmet() == []


async def test_push_reaches_a_connection_or_a_session() -> None:
    async with MockVoxtaServer(port=0, reply_delay=0.0) as server:
        async with VoxtaClient(server.url, reconnect=()) as client:
            session_id = await _chat(client)
            (key,) = [c.key for c in server.state().connections]
            async with client.events() as events:
                assert server.push(VisionCaptureRequest(
                    session_id=session_id, vision_capture_request_id="v1",
                    source=ComputerVisionSource.SCREEN),
                    session_id=session_id) == 1
                assert server.push(AppTrigger(name="wave", session_id=session_id,
                                              sender_id="s", trigger_id="t1"),
                                   connection=key) == 1
                seen: list[type] = []
                with anyio.fail_after(10):
                    async for event in events:
                        if isinstance(event, (VisionCaptureRequest, AppTrigger)):
                            seen.append(type(event))
                            if len(seen) == 2:
                                break
            assert seen == [VisionCaptureRequest, AppTrigger]
            assert server.push(AppTrigger(name="x", session_id=session_id, sender_id="s"),
                               connection="nobody") == 0
            with pytest.raises(ValueError, match="not both"):
                server.push(AppTrigger(name="x", session_id=session_id, sender_id="s"),
                            connection=key, session_id=session_id)
        assert server.journal.sent(AppTrigger, trigger_id="t1")


async def _admin(server: MockVoxtaServer, method: str, path: str, body: object = None,
                 token: str | None = "admin") -> tuple[int, Any]:
    response = await http_request(
        method, server.url + path,
        body=b"" if body is None else msgspec.json.encode(body),
        headers=[("Content-Type", "application/json")],
        options=ConnectOptions(access_token=token))
    data = msgspec.json.decode(response.body) if response.body else None
    return response.status, data


async def test_the_admin_api_on_the_mocks_port_drives_a_real_client() -> None:
    async with MockVoxtaServer(port=0, reply_delay=0.0, auth_token="user",
                               admin_token="admin") as server:
        assert (await _admin(server, "GET", "/_mock/state", token=None))[0] == 401
        assert (await _admin(server, "GET", "/_mock/state", token="user"))[0] == 401
        status, _added = await _admin(server, "POST", "/_mock/expectations", {
            "match": {"type": "send", "fields": {"text": "admin?"}},
            "reply": [{"$type": "chatSessionError", "sessionId": "s", "message": "hi",
                       "code": "c"}]})
        assert status == 201
        async with VoxtaClient(server.url, token="user", reconnect=()) as client:
            session_id = await _chat(client)
            await client.send_message("admin?")
            status, state = await _admin(server, "GET", "/_mock/state")
            assert status == 200
            (conn,) = state["connections"]
            assert conn["authenticated"]
            assert conn["sessionIds"] == [session_id]
            assert [s["sessionId"] for s in state["sessions"]] == [session_id]
            status, pushed = await _admin(server, "POST", "/_mock/push", {
                "sessionId": session_id,
                "message": {"$type": "appTrigger", "name": "nod", "senderId": "s",
                            "sessionId": session_id}})
            assert (status, pushed) == (200, {"delivered": 1})
            status, journal = await _admin(
                server, "GET", f"/_mock/journal?type=send&session={session_id}")
            assert [e["message"]["text"] for e in journal["entries"]] == ["admin?"]
            status, listed = await _admin(server, "GET", "/_mock/expectations")
            assert listed["expectations"][0]["matched"] == 1
            status, _ = await _admin(server, "PUT", "/_mock/faults",
                                     {"connection": conn["key"], "action": "silence"})
            assert status == 204
            assert (await _admin(server, "PUT", "/_mock/faults",
                                 {"connection": "nobody", "action": "drop"}))[0] == 404
        assert (await _admin(server, "POST", "/_mock/reset"))[0] == 204
        assert len(server.journal) == 0
        assert len(server.expectations) == 0


async def test_the_admin_token_defaults_to_the_auth_token() -> None:
    async with MockVoxtaServer(port=0, auth_token="one") as server:
        assert (await _admin(server, "GET", "/_mock/state", token=None))[0] == 401
        assert (await _admin(server, "GET", "/_mock/state", token="one"))[0] == 200
    async with MockVoxtaServer(port=0) as server:  # no token at all: open, as the mock
        assert (await _admin(server, "GET", "/_mock/state", token=None))[0] == 200


async def test_the_inspector_page_and_its_live_feed() -> None:
    async with MockVoxtaServer(port=0, reply_delay=0.0, admin_token="admin") as server:
        for path in ("/", "/_mock/inspector"):
            page = await http_request("GET", server.url + path)
            assert page.status == 200
            assert b"/_mock/live" in page.body
        with pytest.raises(HandshakeRejected, match="401"):
            await connect_websocket(server.url.replace("http", "ws") + "/_mock/live")
        feed = await connect_websocket(server.url.replace("http", "ws")
                                    + "/_mock/live?admin_token=admin")
        async with VoxtaClient(server.url, reconnect=()) as client:
            await _chat(client)
            await client.send_message("seen live")
            with anyio.fail_after(10):
                while True:
                    entry = msgspec.json.decode(await feed.receive())
                    if entry.get("type") == "send":
                        break
        await feed.aclose()
        assert entry["direction"] == "received"
        assert entry["message"]["text"] == "seen live"
        assert entry["session_id"] == entry["message"]["sessionId"]
        assert {"seq", "time", "connection"} <= set(entry)


async def test_verbose_logs_one_line_per_message_and_payloads_redacted(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="voxta_mock.traffic")
    async with (MockVoxtaServer(port=0, reply_delay=0.0, verbose=1) as server,
                VoxtaClient(server.url, reconnect=()) as client):
        await _chat(client)
    lines = [r.getMessage() for r in caplog.records if r.name == "voxta_mock.traffic"]
    assert any(" <- authenticate " in line and line.endswith("B") for line in lines)
    assert any(" -> welcome " in line for line in lines)
    assert all("{" not in line for line in lines)
    caplog.clear()
    async with MockVoxtaServer(port=0, reply_delay=0.0, verbose=2) as server:
        async with VoxtaClient(server.url, reconnect=()) as client:
            await client.load_characters_list()
        await http_request("POST", server.url + "/api/nothing",
                           body=b'{"accessToken":"s3cret","text":"kept"}',
                           headers=[("Content-Type", "application/json")])
    lines = [r.getMessage() for r in caplog.records if r.name == "voxta_mock.traffic"]
    assert any('"$type":"loadCharactersList"' in line for line in lines)
    (rest,) = [line for line in lines if "/api/nothing" in line]
    assert "kept" in rest
    assert "s3cret" not in rest
