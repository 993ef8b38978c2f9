"""The client side of API 2025-11 against the mock: apiVersion, replyThinking,
registerApp forms and appConfiguration, queued app triggers."""

from __future__ import annotations

import logging

import anyio
import msgspec
import pytest

from voxta_mock import MockVoxtaServer
from voxta_mock.data import DEFAULT_DATA
from voxta_proto.client import VoxtaClient
from voxta_proto.errors import LocalProtocolError
from voxta_proto.voxta import AppTrigger, ReplyThink, ReplyThinking
from voxta_proto.voxta.shapes import AppForm, AppFormField

from .mini_server import SESSION_ID, MiniServer
from .test_client import connected

pytestmark = pytest.mark.anyio

APEX = "22222222-2222-4222-8222-222222222222"


async def test_api_version_is_exposed_and_a_known_one_is_not_logged(
        voxta_mock_server: MockVoxtaServer, caplog: pytest.LogCaptureFixture) -> None:
    with anyio.fail_after(10), caplog.at_level(logging.WARNING, "voxta_proto"):
        async with VoxtaClient(voxta_mock_server.url) as client:
            assert client.api_version == "2025-11"
    assert not [r for r in caplog.records if "API version" in r.getMessage()]


@pytest.mark.voxta_mock(data=msgspec.structs.replace(DEFAULT_DATA, api_version="2099-01"),
                        stateful_reconnect=False)
async def test_an_unknown_api_version_is_accepted_and_logged_once_per_client(
        voxta_mock_server: MockVoxtaServer, caplog: pytest.LogCaptureFixture) -> None:
    with anyio.fail_after(20), caplog.at_level(logging.WARNING, "voxta_proto"):
        async with VoxtaClient(voxta_mock_server.url, reconnect=(0.05,)) as client:
            assert client.api_version == "2099-01"
            await client.authenticate()  # a second welcome on the same client
            chat = await client.start_chat(APEX)
            assert chat.session_id
    warnings = [r for r in caplog.records if "API version" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "2099-01" in warnings[0].getMessage()


async def test_reply_thinking_reaches_reply_think_callbacks_and_wait_for(
        mini_server: MiniServer) -> None:
    seen: list[ReplyThink] = []
    called = anyio.Event()

    def on_think(event: ReplyThink) -> None:
        seen.append(event)
        called.set()
    thinking = ReplyThinking(session_id=SESSION_ID, message_id="m1", sender_id="c1",
                             text="hmm")
    with anyio.fail_after(5):
        async with connected(mini_server) as client:
            client.on("replyThink", on_think)
            server = mini_server.sessions[-1]
            async with anyio.create_task_group() as tg:
                async def push() -> None:
                    await anyio.sleep(0.01)
                    server.send(thinking, now=anyio.current_time())
                    await mini_server._flush(mini_server.connections[-1], server)
                tg.start_soon(push)
                got = await client.wait_for("replyThink", timeout=5)
            assert got == thinking
            await called.wait()
    assert seen == [thinking]


async def test_register_app_forms_come_back_as_app_configuration(
        voxta_mock_server: MockVoxtaServer) -> None:
    form = AppForm(fields=(
        AppFormField(kind="bool", name="glow", label="Glow", text="Light up",
                     default_value=False),
        AppFormField(kind="asset", name="skin", label="Skin", content_types=("image/*",),
                     none_label="Default"),
    ))
    voxta_mock_server.engine.set_app_configuration(APEX, "voxta-proto", {"skin": "urn:x"})
    with anyio.fail_after(10):
        async with VoxtaClient(voxta_mock_server.url) as client:
            with pytest.raises(LocalProtocolError):
                client.app_configuration()
            await client.register_app("Forms test", character_form=form)
            await client.start_chat(APEX)
            values = client.app_configuration()
            assert client.app_configuration(APEX.upper()) == values
            with pytest.raises(LocalProtocolError):
                client.app_configuration("ffffffff-ffff-4fff-8fff-ffffffffffff")
    assert values == {"glow": "False", "skin": "urn:x"}


@pytest.mark.voxta_mock(app_trigger_timeout=30.0)
async def test_queued_app_trigger_is_completed_and_releases_the_session(
        voxta_mock_server: MockVoxtaServer) -> None:
    triggers: list[AppTrigger] = []
    with anyio.fail_after(15):
        async with VoxtaClient(voxta_mock_server.url) as client:
            async def on_trigger(trigger: AppTrigger) -> None:
                triggers.append(trigger)
                if trigger.trigger_id is not None:
                    await client.app_trigger_complete(trigger.trigger_id)

            client.on("appTrigger", on_trigger)
            started = await client.start_chat(APEX)
            trigger_id = await voxta_mock_server.queue_app_trigger(
                started.session_id, "Wave", ["hand", 2, True], scenario_role="main")
            # The session's next command waits for the ack (30 s timeout): a reply now
            # shows the trigger was acknowledged.
            await client.send_message("hello")
            await client.wait_for("replyEnd", timeout=10)
    record = voxta_mock_server.engine.app_triggers[trigger_id]
    assert record.completed
    assert not record.timed_out
    assert [t.trigger_id for t in triggers] == [trigger_id]
    assert triggers[0].scenario_role == "main"
