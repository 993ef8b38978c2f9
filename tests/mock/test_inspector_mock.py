"""The mock's own inspector (``GET /``) in a real headless Chromium: it shows a client's
messages live, lists the connection with its session, pushes a message to it and drops
it. The screenshot is kept in the artifacts (``inspector-mock.png``) and becomes the
testing guide's picture (``docs/guides/img/inspector.png``) when that is missing or
``VOXTA_UPDATE_DOCS_IMAGES=1``, so a test run does not change the checkout otherwise."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import pytest

from voxta_mock import MockVoxtaServer
from voxta_proto import VoxtaClient
from voxta_proto.errors import TransportError
from voxta_proto.voxta import AppTrigger

from .cdp import headless_chromium
from .test_inspector import ARTIFACTS, _chromium

pytestmark = [pytest.mark.interop, pytest.mark.network, pytest.mark.anyio,
              pytest.mark.timeout(90)]

DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "img" / "inspector.png"
_ROWS = "[...document.querySelectorAll('#messages tr')].map(r => r.dataset.type)"


async def test_the_mocks_inspector_shows_a_client_and_acts_on_it() -> None:
    chromium = _chromium()
    async with MockVoxtaServer(port=0, reply_delay=0.0, auth_token="user",
                               admin_token="admin") as mock, headless_chromium(chromium) as browser:
        await browser.navigate(mock.url + "/?admin_token=admin")
        await browser.wait_for("document.getElementById('status').textContent === 'live'")
        async with VoxtaClient(mock.url, token="user", reconnect=()) as client:
            characters = await client.load_characters_list()
            started = await client.start_chat(characters[0].id)
            await client.send_message("Hello from the mock's inspector test")
            shown = await browser.wait_for(f"{_ROWS}.includes('send') && {_ROWS}")
            assert "authenticate" in shown
            assert "welcome" in shown
            detail = await browser.evaluate(
                "(() => { const row = [...document.querySelectorAll('#messages tr')]"
                ".find(r => r.dataset.type === 'send'); row.click();"
                " return document.getElementById('detail').textContent; })()")
            assert "Hello from the mock's inspector test" in detail
            listed = await browser.wait_for(
                "(() => { const c = document.querySelector('#connections "
                "[data-connection]'); return c && c.textContent.includes('session') "
                "&& c.textContent; })()")
            assert started.session_id[:8] in listed
            await anyio.Path(ARTIFACTS).mkdir(parents=True, exist_ok=True)
            await browser.screenshot(ARTIFACTS / "inspector-mock.png")
            # push from the page: the client gets the message
            message = {"$type": "appTrigger", "sessionId": started.session_id,
                       "name": "Wave", "senderId": characters[0].id, "arguments": []}
            async with client.events() as events:
                await browser.evaluate(
                    f"document.getElementById('push-body').value = "
                    f"{json.dumps(json.dumps(message))};"
                    " document.getElementById('push-send').click()")
                with anyio.fail_after(10):
                    async for event in events:
                        if isinstance(event, AppTrigger):
                            assert event.name == "Wave"
                            break
            assert await browser.wait_for(
                "document.getElementById('push-result').textContent") == "pushed"
            # drop from the page: the mock ends that connection (a second one, so
            # VoxtaClient's exit after a drop is not part of this test)
            other = await mock.connect_memory()
            await other.send('{"protocol":"json","version":1}\x1e')
            assert await other.receive() == "{}\x1e"
            key = [c.key for c in mock.state().connections][-1]
            await browser.wait_for(
                f"!!document.querySelector('#connections [data-connection=\"{key}\"]')")
            await browser.evaluate(
                f"[...document.querySelectorAll('#connections [data-connection=\"{key}\"]"
                " button')].find(b => b.textContent === 'drop').click()")
            with pytest.raises(TransportError), anyio.fail_after(10):
                await other.receive()
            with anyio.fail_after(10):
                while key in [c.key for c in mock.state().connections]:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            assert mock.state().connections  # the client's own is still there
            await other.aclose()
    if os.environ.get("VOXTA_UPDATE_DOCS_IMAGES") == "1" or not DOCS_IMAGE.exists():
        await anyio.Path(DOCS_IMAGE.parent).mkdir(parents=True, exist_ok=True)
        await anyio.Path(DOCS_IMAGE).write_bytes(
            await anyio.Path(ARTIFACTS / "inspector-mock.png").read_bytes())
