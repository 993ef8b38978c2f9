"""VoxtaClient against the bundled MockVoxtaServer over loopback (port 0)."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from pathlib import Path

import anyio
import pytest

from voxta_mock import MockVoxtaServer
from voxta_mock.faults import FaultPlan
from voxta_proto.client import Reconnected, VoxtaClient
from voxta_proto.errors import VoxtaProtoError
from voxta_proto.voxta.server_messages import ChatStarted, ReplyChunk, ReplyEnd

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the example uses asyncio itself
@pytest.mark.voxta_mock(preseed_session=True)
async def test_readme_quickstart_runs_against_the_mock(voxta_mock_server: MockVoxtaServer,
                                                       anyio_backend: str) -> None:
    spec = importlib.util.spec_from_file_location("quickstart", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["quickstart"] = module
    spec.loader.exec_module(module)
    with anyio.fail_after(20):
        reply = await module.main(voxta_mock_server.url)
    assert reply


async def test_chat_round_trip_over_loopback(voxta_mock_server: MockVoxtaServer) -> None:
    chunks: list[ReplyChunk] = []
    with anyio.fail_after(20):
        async with VoxtaClient(voxta_mock_server.url) as client:
            characters = await client.load_characters_list()
            started = await client.start_chat(characters[0].id)
            assert isinstance(started, ChatStarted)
            assert client.session_id == started.session_id
            client.on("replyChunk", chunks.append)
            end = client.wait_for(ReplyEnd)
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.send_message, "hello")
                await end
            assert client.last_message_id is not None
    assert chunks


async def test_reconnects_after_drop_mid_reply(voxta_mock_server: MockVoxtaServer) -> None:
    voxta_mock_server.set_faults(FaultPlan(drop_after_chunks=1), connection=0)
    with anyio.fail_after(20):
        async with VoxtaClient(voxta_mock_server.url) as client:
            characters = await client.load_characters_list()
            started = await client.start_chat(characters[0].id)
            reconnected = client.wait_for(Reconnected, timeout=15)
            async def send() -> None:
                # without stateful reconnect, the request in flight fails with the drop
                with contextlib.suppress(VoxtaProtoError):
                    await client.send_message("hello")

            async with anyio.create_task_group() as tg:
                tg.start_soon(send)
                event = await reconnected
            assert isinstance(event, Reconnected)
            # the mock ends a chat with its owner's connection, so we come back chat-less
            assert await client.load_scenarios_list() is not None
            assert started.session_id
