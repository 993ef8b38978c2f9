"""voxta-mock record: the proxy relays a session untouched and writes it to a cassette;
HubReplay answers the recorded client messages with the recorded server messages."""

from __future__ import annotations

import json
import re
import signal
import sys
from pathlib import Path

import anyio
import pytest

from voxta_mock import MockVoxtaServer
from voxta_mock.cassette import (
    REDACTED,
    CassetteError,
    HubReplay,
    ReplayMismatch,
    load_cassette,
)
from voxta_mock.record import Recorder
from voxta_proto import VoxtaClient
from voxta_proto.transports.websocket import serve

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


async def _record_session(out: Path, *, auth_token: str | None = None) -> list[str]:
    """One chat through the recording proxy; returns the reply's chunks as seen."""
    chunks: list[str] = []
    async with MockVoxtaServer(port=0, reply_delay=0.0, seed=3, auth_token=auth_token) as mock:
        with Recorder(mock.url, out, token=auth_token) as recorder:
            async with anyio.create_task_group() as tg:
                address = await tg.start(serve, recorder.app)
                async with VoxtaClient(address.url("http", "").rstrip("/")) as client:
                    characters = await client.load_characters_list()
                    await client.start_chat(characters[0].id)
                    await client.wait_for("replyEnd")
                    client.on("replyChunk", lambda chunk: chunks.append(chunk.text))
                    await client.send_message("Hello there")
                    await client.wait_for("replyEnd")
                    await anyio.sleep(0.05)  # let the last callbacks run
                tg.cancel_scope.cancel()
    return chunks


async def test_a_session_through_the_proxy_is_recorded_in_order(tmp_path: Path) -> None:
    out = tmp_path / "session.voxta.jsonl"
    chunks = await _record_session(out)
    assert chunks, "the client got its reply through the proxy"
    cassette = load_cassette(out)
    assert cassette.header["upstream"].startswith("http://127.0.0.1:")
    kinds = [entry["kind"] for entry in cassette.entries]
    assert kinds[0] == "http"
    assert cassette.entries[0]["target"].startswith("/hub/negotiate")
    assert cassette.entries[0]["status"] == 200
    (hub,) = cassette.hub_connections()
    types = [entry["type"] for entry in hub]
    assert types[:2] == ["handshake", "handshake"]
    assert types.index("authenticate") < types.index("welcome") < types.index("chatStarted")
    recorded = [entry["message"]["arguments"][0]["text"] for entry in hub
                if entry["type"] == "replyChunk"]
    assert "".join(chunks) in "".join(recorded)  # the last reply, in order, untouched
    times = [entry["t"] for entry in cassette.entries]
    assert times == sorted(times)


async def test_tokens_are_redacted_by_default(tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    await _record_session(out, auth_token="s3cret-token")
    text = out.read_text()
    assert "s3cret-token" not in text
    negotiate = load_cassette(out).entries[0]
    assert negotiate["response"]["body"]["connectionToken"] == REDACTED
    opened = next(e for e in load_cassette(out).entries if e.get("event") == "open")
    assert f"id={REDACTED}" in opened["target"]


def test_replay_answers_recorded_messages_and_maps_client_ids(tmp_path: Path) -> None:
    out = tmp_path / "session.voxta.jsonl"
    anyio.run(_record_session, out)
    (hub,) = load_cassette(out).hub_connections()
    client_messages = [e["message"] for e in hub
                       if e["dir"] == "client" and e["message"].get("type") == 1]
    replay = HubReplay(hub)
    assert replay.opening() == []
    answered: list[dict[str, object]] = []
    for number, message in enumerate(client_messages):
        live = dict(message)
        if "invocationId" in live:  # the live client numbers its invocations its own way
            live["invocationId"] = f"live-{number}"
        for step in replay.on_client(live):
            answered.append(dict(step.message))
    assert replay.finished
    assert replay.matched == len(client_messages)
    completions = [m for m in answered if m.get("type") == 3]
    assert completions
    assert all(str(m["invocationId"]).startswith("live-") for m in completions)
    assert any(describe(m) == "replyEnd" for m in answered)


def describe(message: dict[str, object]) -> str:
    arguments = message.get("arguments")
    if isinstance(arguments, list) and arguments and isinstance(arguments[0], dict):
        return str(arguments[0].get("$type"))
    return ""


def test_a_departing_client_gets_a_mismatch_naming_the_message(tmp_path: Path) -> None:
    out = tmp_path / "session.voxta.jsonl"
    anyio.run(_record_session, out)
    (hub,) = load_cassette(out).hub_connections()
    replay = HubReplay(hub)
    first = next(e["message"] for e in hub
                 if e["dir"] == "client" and e["message"].get("type") == 1)
    changed = json.loads(json.dumps(first))
    changed["arguments"][0]["client"] = "SomethingElse"
    with pytest.raises(ReplayMismatch) as info:
        replay.on_client(changed)
    assert info.value.index == 0
    assert "authenticate" in str(info.value)
    assert "arguments[0].client" in str(info.value)


def test_load_cassette_refuses_what_is_not_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"hello": 1}\n')
    with pytest.raises(CassetteError, match="header"):
        load_cassette(bad)
    bad.write_text("not json\n")
    with pytest.raises(CassetteError, match="not JSON"):
        load_cassette(bad)


async def test_the_record_command_records_until_interrupted(tmp_path: Path) -> None:
    out = tmp_path / "cli.voxta.jsonl"
    async with MockVoxtaServer(port=0, reply_delay=0.0) as mock:
        process = await anyio.open_process(
            [sys.executable, "-m", "voxta_mock", "record", "--upstream", mock.url,
             "--out", str(out), "--port", "0"])
        try:
            assert process.stdout is not None
            banner = b""
            with anyio.fail_after(15):
                while b"inspector:" not in banner:
                    banner += await process.stdout.receive()
            proxy = re.search(rb"proxying (http://\S+)", banner)
            assert proxy is not None
            async with VoxtaClient(proxy.group(1).decode()) as client:
                assert await client.load_characters_list()
            process.send_signal(signal.SIGINT)
            with anyio.fail_after(15):
                assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    kinds = [entry["type"] for entry in load_cassette(out).entries if entry["kind"] == "hub"]
    assert "charactersListLoaded" in kinds


def test_the_record_command_refuses_a_bad_upstream(capsys: pytest.CaptureFixture[str]) -> None:
    from voxta_mock.__main__ import main

    with pytest.raises(SystemExit) as info:
        main(["record", "--upstream", "ftp://x", "--out", "x.jsonl"])
    assert info.value.code == 2
    assert "http:// or https://" in capsys.readouterr().err
