"""API 2025-11 flows of the mock over a real hub connection (raw SignalR records)."""

from __future__ import annotations

import anyio
import msgspec
import pytest

from voxta_mock import DEFAULT_DATA
from voxta_mock.data import ReplyScript
from voxta_proto.transports import connect_websocket

from .wire import AUTH, START, fast, handshake, invoke, read_until, records

pytestmark = [pytest.mark.anyio, pytest.mark.network]

QUEUED = msgspec.structs.replace(DEFAULT_DATA, scripts=(ReplyScript(
    keyword="forest", reply="The trees are so green here.", app_trigger="Emote",
    app_trigger_arguments=("🌳",), app_trigger_queued=True),))


def _message(record: dict[str, object]) -> dict[str, object]:
    arguments = record["arguments"]
    assert isinstance(arguments, list)
    message = arguments[0]
    assert isinstance(message, dict)
    return message


async def test_a_queued_trigger_holds_the_next_send_until_acknowledged() -> None:
    with anyio.fail_after(20):
        async with fast(data=QUEUED) as server:
            server.engine.app_trigger_timeout = 30.0
            ws = await connect_websocket(server.hub_url)
            await handshake(ws)
            await ws.send(AUTH)
            await read_until(ws, "configuration")
            await ws.send(START)
            started = await read_until(ws, "chatStarted")
            session_id = _message(started[-1])["sessionId"]
            await read_until(ws, "chatFlow")
            await ws.send(invoke({"$type": "send", "sessionId": session_id, "text": "forest"}))
            trigger = _message((await read_until(ws, "appTrigger"))[-1])
            assert trigger["arguments"] == ["🌳"]
            trigger_id = trigger["triggerId"]
            await ws.send(invoke({"$type": "send", "sessionId": session_id, "text": "next"}))
            held: list[str] = []
            with anyio.move_on_after(0.5):  # the second send is held: no update for it
                while True:
                    for record in records(await ws.receive()):
                        if record.get("type") == 1:
                            held.append(str(_message(record)["$type"]))
            assert "update" not in held
            await ws.send(invoke({"$type": "appTriggerComplete", "sessionId": session_id,
                                  "triggerId": trigger_id}))
            after = [str(_message(r)["$type"]) for r in await read_until(ws, "replyEnd")
                     if r.get("type") == 1]
            assert after[0] == "update"
            assert server.engine.app_triggers[str(trigger_id)].completed
            await ws.aclose()
