"""The mock over loopback and in memory: negotiate, hub, auth, REST, audio and faults."""

from __future__ import annotations

import contextlib
import json

import anyio
import pytest

from voxta_mock import FaultPlan, MockVoxtaServer
from voxta_proto import HandshakeRejected, NegotiationError, TransportError
from voxta_proto.transports import (
    ConnectOptions,
    MessageTransport,
    connect_websocket,
    http_request,
    negotiate,
)

from .wire import AUTH, START, drain, fast, handshake, invoke, read_until, records

pytestmark = [pytest.mark.anyio, pytest.mark.network]

async def test_negotiate_then_hub_chat() -> None:
    with anyio.fail_after(10):
        async with fast() as server:
            assert server.url.startswith("http://127.0.0.1:")
            outcome = await negotiate(server.hub_url)
            assert outcome.result.negotiate_version == 1
            ws = await connect_websocket(outcome.websocket_url())
            assert await handshake(ws) == "{}\x1e"  # its own message
            await ws.send(AUTH)
            seen = await read_until(ws, "configuration")
            assert [r["arguments"][0]["$type"] for r in seen] == [  # type: ignore[index]
                "welcome", "moduleRuntimeInstances", "configuration"]
            assert records(await ws.receive()) == [{"type": 3, "invocationId": "a"}]
            await ws.send(START)
            seen = await read_until(ws, "replyEnd")
            types = [r["arguments"][0]["$type"] if r["type"] == 1 else r["type"]  # type: ignore[index]
                     for r in seen]
            assert types[0] == 3
            assert "chatStarted" in types
            assert "replyChunk" in types
            await ws.aclose()


async def test_negotiate_body_v0_and_v1() -> None:
    with anyio.fail_after(10):
        async with fast() as server:
            v1 = await http_request("POST", f"{server.hub_url}/negotiate?negotiateVersion=1")
            body = json.loads(v1.body)
            assert v1.status == 200
            assert (v1.header("content-type") or "").startswith("application/json")
            assert body["negotiateVersion"] == 1
            assert "connectionToken" in body
            assert body["availableTransports"] == [
                {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}]
            v0 = json.loads((await http_request("POST", f"{server.hub_url}/negotiate")).body)
            assert v0["negotiateVersion"] == 0
            assert "connectionToken" not in v0
            ws = await connect_websocket(f"{server.hub_url}?id={v0['connectionId']}&x=1")
            assert await handshake(ws, 0) == "{}\x1e"
            await ws.aclose()


@pytest.mark.parametrize("version", [0, 1, 2])
async def test_skip_negotiation_and_versions(version: int) -> None:
    with anyio.fail_after(10):
        async with fast() as server:
            ws = await connect_websocket(server.hub_url)
            assert await handshake(ws, version) == "{}\x1e"
            await ws.aclose()


async def test_unknown_id_is_404() -> None:
    with anyio.fail_after(10):
        async with fast() as server:
            with pytest.raises(HandshakeRejected) as info:
                await connect_websocket(f"{server.hub_url}?id=nope")
            assert info.value.status_code == 404


async def test_auth_token() -> None:
    with anyio.fail_after(10):
        async with fast(auth_token="s3cret") as server:
            with pytest.raises(NegotiationError) as info:
                await negotiate(server.hub_url)
            assert info.value.status_code == 401
            for path in ("/hub", "/ws/audio/input/stream?sessionId=s"):
                with pytest.raises(HandshakeRejected) as rejected:
                    await connect_websocket(f"{server.url}{path}")
                assert rejected.value.status_code == 401
            good = ConnectOptions(access_token="s3cret")
            outcome = await negotiate(server.hub_url, options=good)
            ws = await connect_websocket(outcome.websocket_url(), options=good)
            await ws.aclose()
            query = ConnectOptions(access_token="s3cret", access_token_in_query=True)
            ws = await connect_websocket(server.hub_url, options=query)
            await ws.aclose()


async def test_garbage_from_one_client_does_not_disturb_another() -> None:
    with anyio.fail_after(10):
        async with fast() as server:
            good = await connect_websocket(server.hub_url)
            await handshake(good)
            bad = await connect_websocket(server.hub_url)
            await handshake(bad)
            await bad.send("\x00\x01 not json at all\x1e")
            await drain(bad)
            await bad.aclose()
            await good.send(AUTH)
            await read_until(good, "welcome")
            await good.aclose()


async def test_rest_chats_and_audio_stream() -> None:
    with anyio.fail_after(10):
        async with fast() as server:
            response = await http_request("GET", f"{server.url}/api/chats")
            assert response.status == 200
            assert json.loads(response.body)["chats"][0]["id"]
            audio = await connect_websocket(f"{server.url}/ws/audio/input/stream?sessionId=s")
            await audio.send('{"contentType":"audio/pcm","sampleRate":16000,"channels":1,'
                             '"bitsPerSample":16}')
            await audio.send(b"\x00" * 960)
            await audio.send(b"\x00" * 960)
            await audio.aclose()
            while not server.audio_streams[0].closed:  # noqa: ASYNC110
                await anyio.sleep(0.01)
            stream = server.audio_streams[0]
            assert stream.spec is not None
            assert stream.spec["sampleRate"] == 16000
            assert (stream.frames, stream.bytes, stream.session_id) == (2, 1920, "s")


async def test_server_pings_while_idle() -> None:
    with anyio.fail_after(10):
        async with fast(keepalive_interval=0.2) as server:
            ws = await connect_websocket(server.hub_url)
            await handshake(ws)
            assert records(await ws.receive()) == [{"type": 6}]
            await ws.aclose()


async def test_silent_client_is_dropped() -> None:
    with anyio.fail_after(10):
        async with fast(keepalive_interval=0.1, client_timeout=0.3) as server:
            ws = await connect_websocket(server.hub_url)
            await handshake(ws)
            await drain(ws)  # ends: the server dropped the silent client
            await ws.aclose()


async def test_client_alive_only_through_websocket_pings_is_kept() -> None:
    """voxta-client never sends a SignalR Ping, only WebSocket pings (reference §10): those
    count as signs of life, so such a client outlives the client timeout."""
    with anyio.fail_after(20):
        async with fast(keepalive_interval=0.1, client_timeout=0.6) as server:
            ws = await connect_websocket(server.hub_url)
            await handshake(ws)
            received: list[str | bytes] = []

            async def read() -> None:  # a reader must run for pongs to be seen
                with contextlib.suppress(TransportError):
                    while True:
                        received.append(await ws.receive())

            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                for n in range(12):  # 2.4 s, four times the client timeout
                    await ws.ping(str(n).encode())
                    await anyio.sleep(0.2)
                tg.cancel_scope.cancel()
            assert ws.close_code is None  # still connected
            assert received  # and the server's keep-alive Pings kept coming
            await ws.aclose()


async def test_a_client_that_stops_reading_holds_up_nobody_else() -> None:
    """Regression: messages for other connections were written from the sender's task,
    so one client that had stopped reading (its buffers full) stalled the requests of
    every client whose answer also went to it (chatsSessionsUpdated goes user-wide)."""
    with anyio.fail_after(60):
        async with fast(client_timeout=None) as server:
            stuck = await connect_websocket(server.hub_url)
            await handshake(stuck)
            await stuck.send(AUTH)
            flood = invoke({"$type": "loadCharactersList"}) * 200
            with contextlib.suppress(TransportError):  # dropped for not reading: fine too
                for _ in range(100):  # 20,000 answers, far more than the buffers hold
                    await stuck.send(flood)
            await anyio.sleep(2)  # the server works through them until its writes block
            other = await connect_websocket(server.hub_url)
            await handshake(other)
            await other.send(AUTH)
            await read_until(other, "welcome")
            await other.send(START)
            with anyio.fail_after(15):
                await read_until(other, "chatStarted")
            await other.aclose()
            with anyio.move_on_after(2):
                await stuck.aclose()


async def test_in_memory_pair(voxta_mock_pair: tuple[MockVoxtaServer, MessageTransport]) -> None:
    _, client = voxta_mock_pair
    with anyio.fail_after(5):
        assert await handshake(client) == "{}\x1e"
        await client.send(AUTH)
        await read_until(client, "configuration")


@pytest.mark.voxta_mock(preseed_session=True)
async def test_server_fixture_with_marker(voxta_mock_server: MockVoxtaServer) -> None:
    with anyio.fail_after(10):
        ws = await connect_websocket(voxta_mock_server.hub_url)
        await handshake(ws)
        await ws.send(AUTH)
        await read_until(ws, "chatsSessionsUpdated")
        await ws.aclose()


# -- faults ----------------------------------------------------------------------------------

async def test_fault_refuse_handshake() -> None:
    with anyio.fail_after(10):
        async with fast(faults=FaultPlan(refuse_handshake="go away")) as server:
            ws = await connect_websocket(server.hub_url)
            assert records(await handshake(ws)) == [{"error": "go away"}]
            await ws.aclose()


async def test_fault_drop_mid_reply_only_hits_that_connection() -> None:
    plan = FaultPlan(drop_after_chunks=1)
    with anyio.fail_after(10):
        async with fast(connection_faults={0: plan}) as server:
            ws = await connect_websocket(server.hub_url)
            await handshake(ws)
            await ws.send(AUTH)
            await ws.send(START)
            with pytest.raises(TransportError) as info:
                await read_until(ws, "replyEnd")
            assert getattr(info.value, "code", 1006) == 1006
            await ws.aclose()
            other = await connect_websocket(server.hub_url)
            await handshake(other)
            await other.send(AUTH)
            await other.send(START)
            await read_until(other, "replyEnd")
            await other.aclose()


async def test_fault_split_garbage_close_and_oversized() -> None:
    plan = FaultPlan(split_every=7, garbage_after_handshake=True,
                     oversized_after_authenticate=2000,
                     close_after_authenticate="bye", allow_reconnect=True)
    with anyio.fail_after(10):
        async with fast(faults=plan) as server:
            ws = await connect_websocket(server.hub_url)
            await ws.send('{"protocol":"json","version":1}\x1e')
            await ws.send(AUTH)
            pieces = await drain(ws)
            assert all(len(p) <= 7 or p == "this is not json\x1e" for p in pieces)
            data = b"".join(p.encode() if isinstance(p, str) else p for p in pieces).decode()
            assert data.startswith("{}\x1ethis is not json\x1e")
            tail = [json.loads(r) for r in data.split("\x1e")[2:] if r]
            assert tail[-1] == {"type": 7, "error": "bye", "allowReconnect": True}
            assert any(r.get("type") == 1 and len(json.dumps(r)) > 2000 for r in tail)
            await ws.aclose()


async def test_fault_silent_and_latency() -> None:
    with anyio.fail_after(10):
        async with fast(faults=FaultPlan(silent_after_handshake=True),
                        keepalive_interval=0.1) as server:
            ws = await connect_websocket(server.hub_url)
            await handshake(ws)
            with anyio.move_on_after(0.4) as scope:
                await ws.receive()
            assert scope.cancelled_caught  # no pings, nothing
            await ws.aclose()
        async with fast(faults=FaultPlan(latency=0.05)) as server:
            ws = await connect_websocket(server.hub_url)
            start = anyio.current_time()
            await handshake(ws)
            assert anyio.current_time() - start >= 0.05
            await ws.aclose()
