"""The inspector page in a real browser: headless Chromium (Debian's package) opens it,
a client talks, and the page shows the messages live. ``nox -s interop`` installs
Chromium where it can (root and apt-get) and requires it; elsewhere the test skips and says
why. The screenshot is kept as an artifact in ``$VOXTA_TEST_ARTIFACTS`` (default
``.artifacts/`` at the root of the checkout)."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from voxta_mock import MockVoxtaServer
from voxta_mock.record import Recorder
from voxta_proto import VoxtaClient
from voxta_proto.transports.websocket import serve

from .cdp import find_chromium, headless_chromium
from .test_interop import require

pytestmark = [pytest.mark.interop, pytest.mark.network, pytest.mark.anyio,
              pytest.mark.timeout(90)]

ARTIFACTS = Path(os.environ.get("VOXTA_TEST_ARTIFACTS")
                 or Path(__file__).resolve().parents[2] / ".artifacts")

_ROWS = "[...document.querySelectorAll('#messages tr')].map(r => r.dataset.type)"


def _chromium() -> str:
    found = find_chromium()
    require(None if found else "no Chromium: `apt-get install chromium` (Debian's package) "
            "or set CHROMIUM to a Chromium executable")
    assert found is not None
    return found


async def test_the_inspector_shows_a_recorded_session_live(tmp_path: Path) -> None:
    chromium = _chromium()
    async with MockVoxtaServer(port=0, reply_delay=0.0) as mock, \
            anyio.create_task_group() as tg:
        with Recorder(mock.url, tmp_path / "s.voxta.jsonl") as recorder:
            address = await tg.start(serve, recorder.app)
            base = address.url("http", "").rstrip("/")
            async with headless_chromium(chromium) as browser:
                await browser.navigate(base + "/_mock/inspector")
                await browser.wait_for("document.getElementById('status').textContent"
                                       " === 'live'")
                async with VoxtaClient(base) as client:
                    characters = await client.load_characters_list()
                    await client.start_chat(characters[0].id)
                    await client.wait_for("replyEnd")
                    await client.send_message("Hello from the browser test")
                    await client.wait_for("replyEnd")
                    shown = await browser.wait_for(
                        f"{_ROWS}.includes('send') && {_ROWS}.includes('replyEnd') && {_ROWS}")
                    assert "authenticate" in shown
                    assert "replyChunk" in shown
                    connections = await browser.wait_for(
                        "document.querySelectorAll('#connections [data-connection]').length")
                    assert connections >= 1
                # the detail view shows one message's JSON
                detail = await browser.evaluate(
                    "(() => { const row = [...document.querySelectorAll('#messages tr')]"
                    ".find(r => r.dataset.type === 'send'); row.click();"
                    " return document.getElementById('detail').textContent; })()")
                assert "Hello from the browser test" in detail
                # the filter hides the others
                hidden = await browser.evaluate(
                    "(() => { const f = document.getElementById('filter');"
                    " f.value = 'replyChunk'; f.dispatchEvent(new Event('input'));"
                    " return [...document.querySelectorAll('#messages tr')]"
                    ".filter(r => !r.hidden).map(r => r.dataset.type); })()")
                assert hidden
                assert set(hidden) == {"replyChunk"}
                await anyio.Path(ARTIFACTS).mkdir(parents=True, exist_ok=True)
                await browser.screenshot(ARTIFACTS / "inspector-record.png")
            tg.cancel_scope.cancel()
