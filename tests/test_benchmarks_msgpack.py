"""The MessagePack decode rows of the benchmarks: the corpus carried over is the same
traffic, and both rows see every message. Nothing here is timed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import corpus, micro, micro_msgpack

from codec_helpers import as_wire_message
from voxta_proto.hub import raw_codec, raw_messagepack_codec


@pytest.mark.parametrize("workload", [corpus.conversation(500), corpus.pings(300),
                                      corpus.characters_list(1, characters=20)],
                         ids=lambda c: c.name)
def test_messagepack_corpus_is_the_same_traffic(workload: corpus.Corpus) -> None:
    frames = micro_msgpack.to_messagepack(workload)
    assert len(frames) == len(workload.frames)
    json_codec, msgpack_codec = raw_codec(), raw_messagepack_codec()
    for json_frame, msgpack_frame in zip(workload.frames, frames, strict=True):
        expected = [as_wire_message(m, "messagepack")
                    for m in json_codec.decode_records(json_frame)]
        assert msgpack_codec.decode_records(msgpack_frame) == expected


def test_both_rows_see_every_message() -> None:
    workload = corpus.conversation(1_000)
    rows = micro.compare(workload.name, micro_msgpack.decode_paths(workload), repeats=1)
    assert {row.count for row in rows.values()} == {workload.messages}
