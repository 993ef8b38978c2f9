"""The benchmarks' quick mode works: corpora are valid Voxta traffic, every receive path
sees the same messages, and encoding, the mock capacity run and our end-to-end client run.
Nothing here is timed: speed is what ``nox -s bench`` reports, not what tests check."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import __main__ as bench_main
from benchmarks import capacity, corpus, e2e, micro, tinyserver
from benchmarks.__main__ import main
from wsproto.connection import Connection, ConnectionType
from wsproto.events import TextMessage

from voxta_proto.voxta import Send, wrap_client_message


def test_net_json_escapes_like_dotnet() -> None:
    text = corpus.net_json({"$type": "x", "text": "it's café <b>&+\n\U0001F60A\"\\"})
    assert text == ('{"$type":"x","text":"it\\u0027s caf\\u00E9 \\u003Cb\\u003E\\u0026'
                    '\\u002B\\n\\uD83D\\uDE0A\\u0022\\\\"}')
    assert json.loads(text) == {"$type": "x", "text": "it's café <b>&+\n\U0001F60A\"\\"}


def test_corpora_are_seeded_and_valid() -> None:
    conversation = corpus.conversation(3_000)
    assert conversation == corpus.conversation(3_000)
    assert conversation != corpus.conversation(3_000, seed=9)
    micro.check_corpus(conversation)
    records = [r for f in conversation.frames for r in f.split(b"\x1e") if r]
    assert len(records) == conversation.messages == 3_000
    assert all(1 <= f.count(b"\x1e") <= 20 for f in conversation.frames)
    chunks = sum(b'"$type":"replyChunk"' in r for r in records)
    assert 0.5 < chunks / len(records) < 0.7
    assert all(max(r) < 0x80 and b"'" not in r for r in records)  # .NET escapes them
    characters = corpus.characters_list(1, characters=500)
    micro.check_corpus(characters)
    assert 200_000 < characters.size < 450_000
    micro.check_corpus(corpus.pings(500))


def test_breaking_a_record_fails_the_corpus_check() -> None:
    good = corpus.conversation(200)
    broken = dataclasses.replace(good, frames=tuple(f.replace(
        b'"$type":"replyChunk"', b'"$type":"replyChunkX"') for f in good.frames))
    assert broken.frames != good.frames
    with pytest.raises(AssertionError, match="not a catalog message"):
        micro.check_corpus(broken)


@pytest.mark.parametrize("workload", [corpus.conversation(1_000), corpus.pings(1_000),
                                      corpus.characters_list(1, characters=50)],
                         ids=lambda c: c.name)
def test_every_receive_path_sees_every_message(workload: corpus.Corpus) -> None:
    rows = micro.compare(workload.name, micro.decode_paths(workload), repeats=1)
    counts = {path: row.count for path, row in rows.items()}
    session = counts.pop(micro.SESSION)
    assert set(counts.values()) == {workload.messages}, counts
    # The session surfaces Voxta messages, not pings or completions.
    assert session == sum(b'"type":1' in r for f in workload.frames for r in f.split(b"\x1e"))


def test_encoders_agree_on_the_message() -> None:
    conn = micro._open_hub(0)
    ours = micro._our_encoder(1)
    assert ours()() == 1
    wire = conn.send(wrap_client_message(Send(
        session_id=micro.SESSION_ID, text=micro.TEXT, do_reply=True,
        do_user_action_inference=True, do_character_action_inference=True),
        invocation_id="0"), now=0.0)
    theirs = json.loads(wire[:-1])
    assert theirs["arguments"][0]["text"] == micro.TEXT
    assert theirs["arguments"][0]["$type"] == "send"
    assert micro._json_encoder(3)()() == 3


def test_tiny_server_reply_is_the_chunks_packed_as_asked() -> None:
    reader = Connection(ConnectionType.CLIENT)
    reader.receive_data(tinyserver.reply_frames(40, 16))
    messages = [event.data for event in reader.events() if isinstance(event, TextMessage)]
    assert [m.count("\x1e") for m in messages] == [16, 16, 10]  # start, 40 chunks, end
    records = [json.loads(r) for m in messages for r in m.split("\x1e") if r]
    kinds = [r["arguments"][0]["$type"] for r in records]
    assert kinds == ["replyStart", *["replyChunk"] * 40, "replyEnd"]
    micro.check_corpus(corpus.Corpus("reply", tuple(m.encode() for m in messages), 42))


@pytest.mark.network
def test_quick_end_to_end_and_capacity(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Without voxta-client's virtualenv its rows say why (nox -s bench builds it).
    monkeypatch.delenv("VOXTA_CLIENT_PYTHON", raising=False)
    monkeypatch.setattr(bench_main, "DEFAULT_VC_PYTHON", tmp_path / "no-such-python")
    out = tmp_path / "r.jsonl"
    assert main(["--quick", "--only", "e2e", "--output", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    tiny = {(r["per_message"], r["client"]): r for r in lines if r["kind"] == "e2e-tiny"}
    assert set(tiny) == {(n, c) for n in e2e.PER_MESSAGE for c in e2e.CLIENTS}
    for n in e2e.PER_MESSAGE:
        for client in ("voxta-wsproto", "bare"):
            assert tiny[n, client]["chunks_per_cpu_second"] > 0, tiny[n, client]
        assert tiny[n, "voxta-client"]["unavailable"] == e2e.NO_VC
    mock = {r["client"]: r for r in lines if r["kind"] == "e2e-mock"}
    assert mock["voxta-wsproto"]["chunks_per_second"] > 0
    assert "against a server that costs almost nothing" in capsys.readouterr().out
    outcome = capacity.run(3)
    assert outcome.failures == 0, outcome.errors
    assert 0 < outcome.p50 <= outcome.p99


def test_quick_mode_writes_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.jsonl"
    assert main(["--quick", "--only", "decode", "encode", "--output", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    kinds = {line["kind"] for line in lines}
    assert kinds == {"decode", "encode", "target"}
    targets = {line["name"] for line in lines if line["kind"] == "target"}
    assert targets == {"conversation_vs_loop", "conversation_of_floor", "pings_vs_loop",
                       "characters_vs_loop", "encode_vs_json"}
    assert "targets" in capsys.readouterr().out
