"""What real clients do to the mock, over loopback: the payloads of reference §10, the
errors of §9, speech with client playback, Close messages and bare disconnects, and the
keep-alive as seen on the wire."""

from __future__ import annotations

import io
import json
import re
import wave
from typing import Any

import anyio
import anyio.abc
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Ping, Request, TextMessage

from voxta_mock import MockVoxtaServer
from voxta_proto.transports import MessageTransport, connect_websocket, http_request

from .wire import AUTH, drain, fast, handshake, invoke, read_until, records, voxta_type

pytestmark = [pytest.mark.anyio, pytest.mark.network]

APEX = "22222222-2222-4222-8222-222222222222"
BEA = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
OLD_CHAT = "44444444-4444-4444-8444-444444444444"
DION_AUTH = {  # voxta-client 0.2.x, word for word (reference §10)
    "$type": "authenticate", "client": "Voxta.Client.Web", "clientVersion": "1.2.1",
    "scope": ["role:app", "role:admin", "role:inspector", "role:user"],
    "capabilities": {
        "audioInput": "WebSocketStream", "audioOutput": "Url",
        "acceptedAudioContentTypes": ["audio/x-wav", "audio/wav", "audio/mpeg", "audio/webm",
                                      "audio/pcm", "audio/ogg"],
        "visionCapture": "PostImage", "visionSources": ["Screen", "Eyes", "Attachment"]},
}


class Recorder:
    """Reads a hub connection, keeping every WebSocket message and record, and checking
    the rules every server message must follow as they arrive."""

    def __init__(self, ws: MessageTransport) -> None:
        self.ws = ws
        self.records: list[dict[str, Any]] = []
        self.completions: dict[str, list[dict[str, Any]]] = {}

    async def until(self, done: Any) -> dict[str, Any]:
        """Read until a record satisfies ``done`` and return it."""
        while True:
            message = await self.ws.receive()
            assert isinstance(message, str), "server messages go out as text frames"
            for record in records(message):
                self._check(record)
                self.records.append(record)
                if done(record):
                    return record

    async def completion(self, invocation_id: str) -> dict[str, Any]:
        return await self.until(lambda r: r.get("type") == 3
                                and r.get("invocationId") == invocation_id)

    async def voxta(self, type_name: str) -> dict[str, Any]:
        record = await self.until(lambda r: voxta_type(r) == type_name)
        message: dict[str, Any] = record["arguments"][0]
        return message

    def _check(self, record: dict[str, Any]) -> None:
        assert not _has_null(record), record  # null fields are omitted
        if record.get("type") == 1:
            # ReceiveMessage: no invocationId, nothing beyond the spec; $type first.
            assert set(record) == {"type", "target", "arguments"}, record
            assert record["target"] == "ReceiveMessage"
            assert next(iter(record["arguments"][0])) == "$type"
            role = record["arguments"][0].get("role")
            assert role is None or isinstance(role, str)  # enums as names
        elif record.get("type") == 3:
            assert not ("error" in record and "result" in record), record
            self.completions.setdefault(record["invocationId"], []).append(record)


def _has_null(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False


async def hub(server: MockVoxtaServer) -> Recorder:
    ws = await connect_websocket(server.hub_url)
    assert await handshake(ws) == "{}\x1e"
    return Recorder(ws)


async def test_every_payload_voxta_client_sends_is_accepted() -> None:
    """The §10 list, each message with voxta-client's stray ``invocationId`` property and
    an invocation ``headers`` object: each gets exactly one Completion, the socket stays."""
    with anyio.fail_after(20):
        async with fast() as server:
            rec = await hub(server)
            await rec.ws.send(invoke(DION_AUTH, "auth", headers={"x-trace": "1"}))
            await rec.voxta("welcome")
            await rec.completion("auth")
            await rec.ws.send(invoke({"$type": "registerApp", "clientVersion": "1.2.1",
                                      "label": "Voxta Python Client"}, "reg"))
            await rec.ws.send(invoke({"$type": "startChat", "characterId": APEX,
                                      "contexts": []}, "start"))
            sid = (await rec.voxta("chatStarted"))["sessionId"]
            await rec.voxta("chatFlow")
            s = {"sessionId": sid}
            payloads: list[dict[str, Any]] = [
                {"$type": "send", **s, "text": "hello", "doReply": True,
                 "doUserActionInference": False, "doCharacterActionInference": False},
                {"$type": "pauseChat", **s, "pause": True},
                {"$type": "pauseChat", **s, "pause": False},
                {"$type": "typingStart", **s},
                {"$type": "typingEnd", **s, "sent": True},
                {"$type": "inspect", **s, "enabled": True},
                {"$type": "inspectAudioInput", **s, "enabled": True},
                {"$type": "speechPlaybackStart", **s, "messageId": "m", "startIndex": 0,
                 "endIndex": 0, "duration": 0},
                {"$type": "triggerAction", **s, "messageId": "0b7c54f4-0c1f-4d3c-9a47-8d4b1f"
                 "0e5a10", "value": "wave", "arguments": {"hand": "left"}},
                {"$type": "characterSpeechRequest", **s, "characterId": APEX, "text": "On it!"},
                {"$type": "update", **s, "messageId": "m", "text": "edited"},
                {"$type": "deleteMessage", **s, "messageId": "m"},
                {"$type": "retry", **s},
                {"$type": "revert", **s},
                {"$type": "interrupt", **s},
                {"$type": "requestSuggestions", **s},
                {"$type": "addChatParticipant", **s, "characterId": BEA},
                {"$type": "removeChatParticipant", **s, "characterId": BEA},
                {"$type": "loadCharactersList"},
                {"$type": "loadScenariosList"},
                {"$type": "loadChatsList", "characterId": APEX},
                {"$type": "loadChatsList"},
                {"$type": "updateContext", **s, "contextKey": "game",
                 "contexts": [{"text": "The player is in the Dark Forest."}],
                 "actions": [{"name": "wave", "description": "When {{ char }} waves.",
                              "layer": "game"}],
                 "events": [], "setFlags": ["in_forest"], "enableRoles": {}},
                {"$type": "stopChat", "chatId": "whatever"},
                {"$type": "resumeChat", "chatId": OLD_CHAT},
            ]
            errors = {}
            for number, payload in enumerate(payloads):
                invocation = f"i{number}"
                await rec.ws.send(invoke({**payload, "invocationId": "stray-uuid"}, invocation,
                                         headers={"h": "v"}))
                completion = await rec.completion(invocation)
                if "error" in completion:
                    errors[payload["$type"]] = completion["error"]
            # Binding fails, as on the real server, only for the dict `arguments` of
            # triggerAction and for loadChatsList without its required characterId.
            assert set(errors) == {"triggerAction", "loadChatsList"}, errors
            assert all("Error binding arguments" in e for e in errors.values())
            assert (await rec.voxta("chatStarted"))["chatId"] == OLD_CHAT  # resumed
            await rec.ws.send(invoke({"$type": "loadCharactersList"}, "last"))
            await rec.completion("last")
            assert all(len(c) == 1 for c in rec.completions.values()), rec.completions
            assert {"auth", "reg", "start", "last"} <= set(rec.completions)
            types = [voxta_type(r) for r in rec.records]
            for expected in ("chatPaused", "inspectorEnabled", "speechPlaybackStart",
                             "suggestions", "chatParticipantsUpdated", "contextUpdated",
                             "charactersListLoaded", "scenariosListLoaded", "chatsListLoaded",
                             "chatClosed", "replyChunk"):
                assert expected in types, expected
            await rec.ws.aclose()


async def test_section_9_errors_come_only_as_completions() -> None:
    with anyio.fail_after(10):
        async with fast() as server:
            rec = await hub(server)
            await rec.ws.send(invoke({"$type": "loadCharactersList"}, "early"))
            assert (await rec.completion("early"))["error"] == "Call authenticate first"
            await rec.ws.send(invoke({"$type": "authenticate", "client": "t",
                                      "scope": ["role:nope"], "capabilities": {}}, "scope"))
            assert "Unknown scopes 'role:nope'" in (await rec.completion("scope"))["error"]
            await rec.ws.send(AUTH)
            await rec.completion("a")
            cases = {
                "unknown": {"$type": "noSuchMessage"},
                "types": {"$type": "pauseChat", "sessionId": "s", "pause": "yes"},
                "nosession": {"$type": "send", "text": "hi"},
            }
            for invocation, payload in cases.items():
                await rec.ws.send(invoke(payload, invocation))
                await rec.ws.send(invoke(payload))  # fire and forget: nothing comes back
            assert "Error binding arguments" in (await rec.completion("unknown"))["error"]
            assert "Error binding arguments" in (await rec.completion("types"))["error"]
            assert (await rec.completion("nosession"))["error"] == (
                "Missing SessionId on message send")
            await rec.ws.send('{"type":1,"invocationId":"m","target":"Nope","arguments":[]}\x1e')
            assert "Nope" in (await rec.completion("m"))["error"]
            # An unknown session is ignored; the connection works on.
            await rec.ws.send(invoke({"$type": "send", "sessionId": "nope", "text": "x"}, "u"))
            assert "error" not in await rec.completion("u")
            await rec.ws.send(invoke({"$type": "loadScenariosList"}, "ok"))
            await rec.completion("ok")
            assert "scenariosListLoaded" in [voxta_type(r) for r in rec.records]
            assert set(rec.completions) == {"early", "scope", "a", "unknown", "types",
                                            "nosession", "m", "u", "ok"}
            await rec.ws.aclose()


async def test_client_playback_over_the_wire_with_integer_enums() -> None:
    with anyio.fail_after(10):
        async with fast(speech=True) as server:
            rec = await hub(server)
            await rec.ws.send(invoke({"$type": "authenticate", "client": "Unity", "scope": [
                "role:app"], "capabilities": {"audioOutput": 1}}, "a"))  # 1 = Url
            await rec.completion("a")
            await rec.ws.send(invoke({"$type": "startChat", "characterId": APEX}))
            end = await rec.voxta("replyEnd")
            chunks = [r["arguments"][0] for r in rec.records if voxta_type(r) == "replyChunk"]
            assert chunks
            for chunk in chunks:
                response = await http_request("GET", f"{server.url}{chunk['audioUrl']}")
                assert response.status == 200
                with wave.open(io.BytesIO(response.body)) as clip:
                    assert clip.getnframes() > 0
            sid, mid = end["sessionId"], end["messageId"]
            await rec.ws.send(invoke({"$type": "speechPlaybackStart", "sessionId": sid,
                                      "messageId": mid, "startIndex": 0, "endIndex": 5,
                                      "duration": 0.5}))
            echo = await rec.voxta("speechPlaybackStart")
            assert (echo["startIndex"], echo["duration"]) == (0, 0.5)
            await rec.ws.send(invoke({"$type": "speechPlaybackComplete", "sessionId": sid,
                                      "messageId": mid}))
            assert (await rec.voxta("speechPlaybackComplete"))["messageId"] == mid
            assert (await rec.voxta("chatFlow"))["state"] == "WaitingForUserInput"
            # The wait really was for the client: nothing of the kind came before.
            types = [voxta_type(r) for r in rec.records]
            assert types.index("speechPlaybackStart") > types.index("replyEnd")
            assert types.count("chatFlow") == 1
            # An integer role (the Unity SDK's) is accepted and answered by name.
            await rec.ws.send(invoke({"$type": "send", "sessionId": sid, "text": "a bird sings",
                                      "role": 5, "doReply": False}))
            assert (await rec.voxta("update"))["role"] == "Event"
            await rec.ws.aclose()


async def test_close_message_and_bare_disconnect_end_only_that_client() -> None:
    with anyio.fail_after(15):
        async with fast() as server:
            watcher = await hub(server)
            await watcher.ws.send(AUTH)
            await watcher.completion("a")
            for how in ("close message", "bare tcp"):
                if how == "close message":
                    leaver = await hub(server)
                    await leaver.ws.send(AUTH)
                    await leaver.ws.send(invoke({"$type": "startChat", "characterId": APEX}))
                    await leaver.voxta("chatStarted")
                    await watcher.voxta("chatsSessionsUpdated")  # it started
                    await leaver.ws.send('{"type":7}\x1e')
                    await drain(leaver.ws)  # the server ends the connection
                    await leaver.ws.aclose()
                else:
                    stream, ws = await raw_hub(server)
                    await stream.send(ws.send(TextMessage(AUTH + invoke(
                        {"$type": "startChat", "characterId": APEX}))))
                    await watcher.voxta("chatsSessionsUpdated")  # it started
                    await stream.aclose()  # no Close, no close frame
                ended = await watcher.voxta("chatsSessionsUpdated")
                assert ended["sessions"] == [], how
            with anyio.fail_after(5):
                while len(server.engine.connections) > 1:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            await watcher.ws.send(invoke({"$type": "loadChatsList"}, "still"))
            await watcher.completion("still")
            await watcher.ws.aclose()


async def raw_hub(server: MockVoxtaServer) -> tuple[anyio.abc.SocketStream, WSConnection]:
    """A hub connection by hand (wsproto over TCP), handshake done: the test sees every
    WebSocket frame, control frames included, and can drop the TCP connection."""
    assert server.address is not None
    stream = await anyio.connect_tcp("127.0.0.1", server.address.port)
    ws = WSConnection(ConnectionType.CLIENT)
    await stream.send(ws.send(Request(host=f"127.0.0.1:{server.address.port}", target="/hub")))
    accepted = False
    while not accepted:
        ws.receive_data(await stream.receive())
        accepted = any(isinstance(e, AcceptConnection) for e in ws.events())
    await stream.send(ws.send(TextMessage('{"protocol":"json","version":1}\x1e')))
    return stream, ws


async def test_keepalive_is_a_signalr_ping_never_a_websocket_ping() -> None:
    with anyio.fail_after(10):
        async with fast(keepalive_interval=0.2, client_timeout=None) as server:
            stream, ws = await raw_hub(server)
            texts: list[str] = []
            control_pings = 0
            with anyio.move_on_after(1.5):
                while True:
                    ws.receive_data(await stream.receive())
                    for event in ws.events():
                        if isinstance(event, Ping):
                            control_pings += 1
                        elif isinstance(event, TextMessage):
                            texts.append(event.data)
            assert texts[0] == "{}\x1e"
            pings = [r for t in texts[1:] for r in records(t)]
            assert len(pings) >= 3, texts  # a silent client (timeout off) keeps getting them
            assert all(p == {"type": 6} for p in pings)
            assert control_pings == 0
            await stream.aclose()


async def test_negotiate_ids_are_url_safe_and_stateful_reconnect_only_when_configured() -> None:
    with anyio.fail_after(10):
        for offered in (False, True):
            async with fast(stateful_reconnect=offered) as server:
                url = f"{server.hub_url}/negotiate?negotiateVersion=1&useStatefulReconnect=true"
                body = json.loads((await http_request("POST", url)).body)
                for key in ("connectionId", "connectionToken"):
                    assert re.fullmatch(r"[A-Za-z0-9_-]{16,}", body[key]), body
                assert body.get("useStatefulReconnect", False) is offered
                plain = json.loads((await http_request(
                    "POST", f"{server.hub_url}/negotiate?negotiateVersion=1")).body)
                assert "useStatefulReconnect" not in plain


async def test_welcome_sequence_with_a_running_session() -> None:
    """§8.1: welcome, moduleRuntimeInstances, configuration, chatsSessionsUpdated, done."""
    with anyio.fail_after(10):
        async with fast(preseed_session=True) as server:
            rec = await hub(server)
            await rec.ws.send(AUTH)
            await rec.completion("a")
            assert [voxta_type(r) or r["type"] for r in rec.records] == [
                "welcome", "moduleRuntimeInstances", "configuration", "chatsSessionsUpdated", 3]
            sessions = rec.records[3]["arguments"][0]["sessions"]
            assert sessions[0]["sessionId"]
            assert sessions[0]["chatId"]
            await rec.ws.aclose()


async def test_a_client_record_split_over_two_messages() -> None:
    with anyio.fail_after(10):
        async with fast() as server:
            ws = await connect_websocket(server.hub_url)
            await handshake(ws)
            half = len(AUTH) // 2
            await ws.send(AUTH[:half])  # a record split over two WebSocket messages
            await ws.send(AUTH[half:])
            await read_until(ws, "welcome")
            await ws.aclose()
