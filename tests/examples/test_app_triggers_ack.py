"""``examples/app_triggers.py``'s queued-trigger acknowledgement, reached with a pushed
``appTrigger`` that carries a ``triggerId`` (no keyword script sends one)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import anyio
import msgspec

from voxta_mock import MockVoxtaServer
from voxta_mock.testing import assert_received
from voxta_proto import VoxtaClient
from voxta_proto.voxta import AppTrigger, AppTriggerComplete

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "app_triggers.py"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("app_triggers_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_a_queued_trigger_is_acknowledged(voxta_client: VoxtaClient,
                                                voxta_mock_server: MockVoxtaServer) -> None:
    example = _example()
    log: list[str] = []
    router = example.home_router(log)
    voxta_client.on("appTrigger", lambda trigger: router.dispatch(voxta_client, trigger))
    characters = await voxta_client.load_characters_list()
    started = await voxta_client.start_chat(characters[0].id)
    pushed = AppTrigger(session_id=started.session_id, name="SetLights",
                        sender_id=characters[0].id, trigger_id="t-42",
                        arguments=(msgspec.Raw(b'"#00ff00"'), msgspec.Raw(b"0.25")))
    assert voxta_mock_server.push(pushed, session_id=started.session_id) == 1
    with anyio.fail_after(10):
        while not voxta_mock_server.journal.received(AppTriggerComplete):  # noqa: ASYNC110
            await anyio.sleep(0.01)
    ack = assert_received(voxta_mock_server, AppTriggerComplete, trigger_id="t-42")
    assert ack.session_id == started.session_id
    assert log == ["lights set to #00ff00 at 25%"]
