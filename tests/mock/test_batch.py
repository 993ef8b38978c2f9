"""``MockVoxtaServer(batch=N)``: back-to-back messages share WebSocket messages, in order."""

from __future__ import annotations

import anyio
import msgspec
import pytest

from voxta_mock.data import DEFAULT_DATA, MockData
from voxta_proto.transports import connect_websocket

from .wire import AUTH, START, fast, handshake, records, voxta_type

pytestmark = [pytest.mark.anyio, pytest.mark.network]


async def _chat_frames(batch: int, data: MockData = DEFAULT_DATA,
                       ) -> list[list[dict[str, object]]]:
    """The records of each WebSocket message from authenticate to the greeting's replyEnd."""
    frames: list[list[dict[str, object]]] = []
    with anyio.fail_after(10):
        async with fast(batch=batch, data=data) as server:
            ws = await connect_websocket(server.hub_url)
            assert await handshake(ws) == "{}\x1e"
            await ws.send(AUTH)
            await ws.send(START)
            while not any(r.get("type") == 1 and r["arguments"][0]["$type"] == "replyEnd"  # type: ignore[index]
                          for frame in frames for r in frame):
                frames.append(records(await ws.receive()))
            await ws.aclose()
    return frames


def _kinds(frames: list[list[dict[str, object]]]) -> list[object]:
    """Each record's ``$type`` (or hub type), up to the first replyEnd (a batch may hold
    more after it)."""
    kinds = [r["arguments"][0]["$type"] if r["type"] == 1 else r["type"]  # type: ignore[index]
             for frame in frames for r in frame]
    return kinds[:kinds.index("replyEnd") + 1]


async def test_batch_packs_records_without_changing_them() -> None:
    single = await _chat_frames(1)
    batched = await _chat_frames(4)
    assert all(len(frame) == 1 for frame in single)  # the default: one record each
    assert max(len(frame) for frame in batched) > 1
    assert _kinds(batched) == _kinds(single)
    assert "replyChunk" in _kinds(batched)


async def test_batch_caps_the_steps_of_one_message() -> None:
    """However much is queued at once (a reply without delay is queued whole), no
    WebSocket message carries more than ``batch`` reply chunks: a long reply must not
    become one message over the client's size limit."""
    apex, *others = DEFAULT_DATA.characters
    long_greeting = msgspec.structs.replace(apex, greeting=" ".join(["word"] * 200))
    frames = await _chat_frames(4, msgspec.structs.replace(
        DEFAULT_DATA, characters=(long_greeting, *others)))
    chunks = [sum(voxta_type(r) == "replyChunk" for r in frame) for frame in frames]
    assert sum(chunks) > 20
    assert max(chunks) <= 4
