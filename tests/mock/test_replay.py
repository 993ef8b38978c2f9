"""Replay: a cassette recorded through ``voxta-mock record`` answers a client in the mock
(``MockVoxtaServer(replay=...)``, ``voxta-mock --replay``, the pytest marker), and a client
that departs from it gets a clear error.

Regenerate the shipped cassette with ``python -m tests.mock.test_replay`` (run from the
repository root) after a change that alters what VoxtaClient sends."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import anyio
import pytest

from voxta_mock import MockVoxtaServer
from voxta_mock.cassette import load_cassette
from voxta_mock.record import Recorder
from voxta_mock.replay import REPLAY_ERROR_CODE, Replayer
from voxta_proto import VoxtaClient
from voxta_proto.transports.websocket import serve

from .test_interop import CLIENT_PYTHON, HERE, require, voxta_client_missing
from .wire import handshake, invoke, records

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

CASSETTES = Path(__file__).parent / "cassettes"
SHIPPED = CASSETTES / "voxta-client-chat.voxta.jsonl"
"""A VoxtaClient chat recorded through the proxy against the mock (see make_cassette)."""

Script = Callable[[str], Awaitable[list[tuple[str, str | None]]]]


def _summary(event: object) -> tuple[str, str | None]:
    """An event's name and, for reply chunks and messages, its text."""
    return type(event).__name__, getattr(event, "text", None)


async def chat_script(url: str, text: str = "Hello there") -> list[tuple[str, str | None]]:
    """VoxtaClient against a running chat (the mock's ``preseed_session``): it subscribes
    to it by itself, says something and waits for the reply; returns every event the
    client saw, in order.

    Not ``start_chat``: whether VoxtaClient then also auto-subscribes depends on whether
    ``chatsSessionsUpdated`` and ``chatStarted`` reach it in one read, which is timing."""
    client = VoxtaClient(url)
    stream = client.events()
    seen: list[tuple[str, str | None]] = []
    ready, settled = anyio.Event(), anyio.Event()
    # After a reply the mock sends speechPlaybackComplete, then a chatFlow: waiting for
    # that chatFlow (not replyEnd) leaves nothing of the reply in flight.
    after_reply: list[bool] = []
    client.on("ready", lambda _: ready.set())
    client.on("speechPlaybackComplete", lambda _: after_reply.append(True))
    client.on("chatFlow", lambda _: settled.set() if after_reply else None)

    async def collect() -> None:
        async for event in stream:
            seen.append(_summary(event))

    async with anyio.create_task_group() as tg:
        tg.start_soon(collect)
        async with client:
            await ready.wait()
            await client.send_message(text)
            await settled.wait()
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    return seen


async def record(out: Path, script: Script, **mock: Any) -> list[tuple[str, str | None]]:
    """Run ``script`` through the recording proxy against a fresh mock."""
    async with MockVoxtaServer(port=0, reply_delay=0.0, seed=3, preseed_session=True,
                               **mock) as server:
        with Recorder(server.url, out) as recorder:
            async with anyio.create_task_group() as tg:
                address = await tg.start(serve, recorder.app)
                seen = await script(address.url("http", "").rstrip("/"))
                tg.cancel_scope.cancel()
    return seen


async def test_voxta_client_sees_the_same_events_from_the_replay(tmp_path: Path) -> None:
    out = tmp_path / "chat.voxta.jsonl"
    recorded = await record(out, chat_script)
    assert ("ReplyChunk", None) not in recorded
    assert any(name == "ReplyChunk" for name, _ in recorded)
    # Another seed: the engine would answer differently; the replay answers as recorded.
    # At the recorded pace: see test_the_replay_command... for why not as fast as possible.
    async with MockVoxtaServer(port=0, seed=99, replay=out) as server:
        replayed = await chat_script(server.url)
        assert server.replay_errors == []
    assert replayed == recorded


def test_the_shipped_cassette_is_a_voxta_client_chat() -> None:
    cassette = load_cassette(SHIPPED)
    (hub,) = cassette.hub_connections()
    assert {entry["dir"] for entry in hub} == {"client", "server"}
    assert "replyChunk" in {entry["type"] for entry in hub}


async def test_the_shipped_cassette_replays_for_voxta_client() -> None:
    recorded_text = "".join(
        entry["message"]["arguments"][0]["text"]
        for entry in load_cassette(SHIPPED).hub_connections()[0]
        if entry["type"] == "replyChunk")
    async with MockVoxtaServer(port=0, replay=SHIPPED) as server:
        seen = await chat_script(server.url)
        assert server.replay_errors == []
    assert "".join(text or "" for name, text in seen if name == "ReplyChunk") == recorded_text


# -- the wire: raw records, unknown messages, normalising, timing, departures -----------

AUTHENTICATE = {"$type": "authenticate", "client": "t", "scope": ["role:app"],
                "capabilities": {}}
FUTURE = {"$type": "somethingNew", "nested": {"list": [1, 2.5, None]}, "extra": "kept"}
WELCOME = {"$type": "welcome", "user": {"id": "u-1", "name": "User"},
           "notInTheCatalog": True}


def hand_made(path: Path, delay: float = 0.0) -> Path:
    """A cassette as a real server might have given it: an unknown message, a known one
    with a field the catalog lacks, the client's ``clientVersion: null`` (a default)."""
    rows: list[dict[str, Any]] = [
        {"cassette": "voxta-mock", "version": 1, "upstream": "http://real:5384"},
        {"t": 0.0, "conn": 0, "kind": "hub", "dir": "client", "type": "handshake",
         "message": {"protocol": "json", "version": 1}},
        {"t": 0.0, "conn": 0, "kind": "hub", "dir": "server", "type": "handshake",
         "message": {}},
        {"t": 0.1, "conn": 0, "kind": "hub", "dir": "client", "type": "authenticate",
         "message": {"type": 1, "invocationId": "0", "target": "SendMessage",
                     "arguments": [{**AUTHENTICATE, "clientVersion": None}]}},
        {"t": 0.1 + delay, "conn": 0, "kind": "hub", "dir": "server", "type": "welcome",
         "message": {"type": 1, "target": "ReceiveMessage", "arguments": [WELCOME]}},
        {"t": 0.1 + delay, "conn": 0, "kind": "hub", "dir": "server", "type": "somethingNew",
         "message": {"type": 1, "target": "ReceiveMessage", "arguments": [FUTURE]}},
        {"t": 0.1 + delay, "conn": 0, "kind": "hub", "dir": "server", "type": "Completion",
         "message": {"type": 3, "invocationId": "0"}},
        {"t": 0.3 + delay, "conn": 0, "kind": "hub", "dir": "client", "type": "send",
         "message": {"type": 1, "invocationId": "1", "target": "SendMessage",
                     "arguments": [{"$type": "send", "sessionId": "s-1", "text": "hi"}]}},
        {"t": 0.3 + delay, "conn": 0, "kind": "hub", "dir": "server", "type": "Completion",
         "message": {"type": 3, "invocationId": "1"}},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


async def read_records(ws: Any, count: int) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while len(seen) < count:
        seen += records(await ws.receive())
    return seen


async def test_recorded_records_go_out_raw_with_the_live_invocation_id(tmp_path: Path) -> None:
    cassette = hand_made(tmp_path / "c.voxta.jsonl")
    async with MockVoxtaServer(listen=False, replay=cassette, replay_speed=0) as server:
        ws = await server.connect_memory()
        await handshake(ws)
        await ws.send(invoke(AUTHENTICATE, "live-7"))  # no clientVersion: a default
        got = await read_records(ws, 3)
        await ws.aclose()
        assert server.replay_errors == []
    assert got == [
        {"type": 1, "target": "ReceiveMessage", "arguments": [WELCOME]},
        {"type": 1, "target": "ReceiveMessage", "arguments": [FUTURE]},
        {"type": 3, "invocationId": "live-7"},
    ]


async def test_recorded_delays_are_kept_scaled_by_the_speed(tmp_path: Path) -> None:
    cassette = hand_made(tmp_path / "c.voxta.jsonl", delay=0.4)
    async with MockVoxtaServer(listen=False, replay=cassette, replay_speed=2) as server:
        ws = await server.connect_memory()
        await handshake(ws)
        sent = anyio.current_time()
        await ws.send(invoke(AUTHENTICATE, "a"))
        await read_records(ws, 1)
        waited = anyio.current_time() - sent
        await ws.aclose()
    assert waited >= 0.2  # 0.4 s recorded, at twice the speed


def test_speed_zero_or_infinite_waits_nothing_and_negative_is_refused(tmp_path: Path) -> None:
    cassette = load_cassette(hand_made(tmp_path / "c.voxta.jsonl"))
    assert Replayer(cassette, speed=0)._scaled(3.0) == 0.0
    assert Replayer(cassette, speed=math.inf)._scaled(3.0) == 0.0
    assert Replayer(cassette, speed=4)._scaled(3.0) == 0.75
    with pytest.raises(ValueError, match="speed"):
        Replayer(cassette, speed=-1)


async def test_a_departing_client_gets_an_error_naming_the_first_difference(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cassette = hand_made(tmp_path / "c.voxta.jsonl")
    async with MockVoxtaServer(listen=False, replay=cassette, replay_speed=0) as server:
        ws = await server.connect_memory()
        await handshake(ws)
        await ws.send(invoke(AUTHENTICATE, "a"))
        await read_records(ws, 3)
        with caplog.at_level(logging.WARNING, logger="voxta_mock.replay"):
            await ws.send(invoke({"$type": "send", "sessionId": "s-1", "text": "bye"}, "b"))
            completion, error = await read_records(ws, 2)
        await ws.aclose()
        (mismatch,) = server.replay_errors
    assert mismatch.index == 1
    assert mismatch.path == "arguments[0].text"
    for text in (completion["error"], error["arguments"][0]["message"], caplog.text):
        assert "client message #2 on hub connection #1 departs from the recording" in text
        assert "expected send, differing at arguments[0].text" in text
    assert completion["invocationId"] == "b"
    assert error["arguments"][0]["$type"] == "error"
    assert error["arguments"][0]["code"] == REPLAY_ERROR_CODE


async def test_a_connection_the_recording_lacks_is_refused_too(tmp_path: Path) -> None:
    cassette = hand_made(tmp_path / "c.voxta.jsonl")
    async with MockVoxtaServer(listen=False, replay=cassette, replay_speed=0) as server:
        for _ in range(2):
            ws = await server.connect_memory()
            await handshake(ws)
            await ws.send(invoke(AUTHENTICATE, "a"))
            got = await read_records(ws, 3)
            await ws.aclose()
        (mismatch,) = server.replay_errors
    assert "hub connection #2" in str(mismatch)
    assert "the recording has no more client messages" in got[0]["error"]


# -- voxta-client 0.2.0 -----------------------------------------------------------------

EVENTS_SCRIPT = HERE / "voxta_client_events.py"


async def voxta_client_events(url: str) -> list[list[Any]]:
    result = await anyio.run_process([str(CLIENT_PYTHON), str(EVENTS_SCRIPT), url],
                                     check=False)
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0, output
    events: list[list[Any]] = json.loads(result.stdout.decode().splitlines()[-1])
    return events


@pytest.mark.interop
async def test_voxta_client_sees_the_same_events_from_its_replay(tmp_path: Path) -> None:
    """Recorded through the proxy with voxta-client 0.2.0 (its quick start against a
    running chat), then replayed: the same events in the same order."""
    require(voxta_client_missing())
    out = tmp_path / "voxta-client.voxta.jsonl"
    with anyio.fail_after(60):
        async with MockVoxtaServer(port=0, preseed_session=True, reply_delay=0.0) as server:
            with Recorder(server.url, out) as recorder:
                async with anyio.create_task_group() as tg:
                    address = await tg.start(serve, recorder.app)
                    recorded = await voxta_client_events(address.url("http", "").rstrip("/"))
                    tg.cancel_scope.cancel()
        assert ["replyEnd", None] in recorded
        async with MockVoxtaServer(port=0, seed=11, replay=out) as server:
            replayed = await voxta_client_events(server.url)
            assert server.replay_errors == []
    assert replayed == recorded


# -- the command line and the pytest marker ---------------------------------------------

async def test_the_replay_command_serves_a_cassette_until_interrupted() -> None:
    """At the recorded pace (``--speed 1``): as fast as possible, ``chatsSessionsUpdated``
    and ``chatStarted`` can reach VoxtaClient in one read, and then it does not send the
    ``subscribeToChat`` it sent while recording, so the replay waits for it (stalls)."""
    process = await anyio.open_process(
        [sys.executable, "-m", "voxta_mock", "--port", "0", "--replay", str(SHIPPED),
         "--speed", "1"], env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None
        with anyio.fail_after(15):
            line = (await process.stdout.receive()).decode()
        assert "replaying" in line
        url = line.split("listening on ")[1].split()[0]
        seen = await chat_script(url)
        assert any(name == "ReplyChunk" for name, _ in seen)
    finally:
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(15):
            await process.wait()
    assert process.returncode == 130


def test_the_replay_command_refuses_what_is_not_a_cassette(tmp_path: Path) -> None:
    bad = tmp_path / "x.jsonl"
    bad.write_text("{}\n")
    for args, message in ((["--replay", str(bad)], "no voxta-mock cassette header"),
                          (["--replay", str(tmp_path / "none.jsonl")], "cannot read"),
                          (["--replay", str(SHIPPED), "--speed", "-2"], "--speed")):
        result = subprocess.run([sys.executable, "-m", "voxta_mock", "--port", "0", *args],
                                capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr


THIRD_PARTY = """
import pytest
from voxta_proto import VoxtaClient
from voxta_proto.errors import InvocationError

pytestmark = [pytest.mark.anyio, pytest.mark.voxta_mock(replay={cassette!r})]


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def run(url, text):
    async with VoxtaClient(url) as client:
        await client.wait_for("ready")
        await client.send_message(text)
        await client.wait_for("replyEnd")


async def test_follows_the_recording(voxta_mock_server):
    await run(voxta_mock_server.url, "Hello there")


async def test_departs_from_it(voxta_mock_server):
    with pytest.raises(InvocationError, match="departs from the recording"):
        await run(voxta_mock_server.url, "Something else")
    # Even a test that swallowed the error errors at teardown.
"""


def test_the_pytest_marker_replays_and_fails_a_test_that_departs(tmp_path: Path) -> None:
    plugins = {e.name: e.value for e in entry_points(group="pytest11")}
    if plugins.get("voxta_mock") != "voxta_mock.pytest_plugin":
        pytest.skip("voxta-proto is not installed here, so its pytest11 entry point is not")
    (tmp_path / "test_replayed.py").write_text(THIRD_PARTY.format(cassette=str(SHIPPED)))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    output = result.stdout + result.stderr
    # The departing test passed its own assertions; the plugin fails it anyway (at
    # teardown here; a plugin that checks after the test body fails the test itself).
    assert re.search(r"\b(2 passed, 1 error|1 failed, 1 passed)\b", output), output
    assert re.search(r"(ERROR at teardown of |FAILED \S*::)test_departs_from_it", output), output
    assert "the client departed from the replayed cassette:\nclient message #3 on hub " \
           "connection #1 departs from the recording: got send; expected send, differing " \
           "at arguments[0].text" in output
    assert "ExceptionGroup" not in output


async def make_cassette(out: Path = SHIPPED) -> None:
    """Record the shipped cassette again (see the module docstring)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    await record(out, chat_script)


if __name__ == "__main__":
    anyio.run(make_cassette)


async def test_replayed_messages_and_departures_are_journaled(tmp_path: Path) -> None:
    """Where the server has a journal (``server.journal``), the replayed messages are in
    it as sent, and so is the ``error`` message a departing client gets."""
    cassette = hand_made(tmp_path / "c.voxta.jsonl")
    async with MockVoxtaServer(listen=False, replay=cassette, replay_speed=0) as server:
        journal = getattr(server, "journal", None)
        if journal is None:
            pytest.skip("this build's server has no journal yet")
        ws = await server.connect_memory()
        await handshake(ws)
        await ws.send(invoke(AUTHENTICATE, "a"))
        await read_records(ws, 3)
        await ws.send(invoke({"$type": "send", "sessionId": "s-1", "text": "bye"}, "b"))
        await read_records(ws, 2)
        await ws.aclose()
        sent = [entry.type_name for entry in journal.entries(direction="sent")]
    assert sent == ["welcome", "somethingNew", "error"]
