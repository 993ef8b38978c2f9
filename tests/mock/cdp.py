"""A headless Chromium driven over the Chrome DevTools Protocol with our own WebSocket
client, for tests of the inspector page (no browser-automation package needed).

``find_chromium()`` looks for Debian's ``chromium`` (``apt-get install chromium``) or a
``CHROMIUM`` environment variable; tests skip with a clear reason where there is none.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from voxta_proto.transports import ConnectOptions
from voxta_proto.transports.http import http_request
from voxta_proto.transports.websocket import WebSocketTransport, connect_websocket

__all__ = ["Browser", "find_chromium", "headless_chromium"]

_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--window-size=1280,800", "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


def find_chromium() -> str | None:
    """The path of a Chromium to run, or None."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """One page of a running headless Chromium, spoken to over CDP."""

    def __init__(self, page: WebSocketTransport) -> None:
        self._page = page
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one CDP command and return its result (events in between are skipped)."""
        number = next(self._ids)
        await self._page.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            reply = json.loads(await self._page.receive())
            if reply.get("id") == number:
                if "error" in reply:
                    raise RuntimeError(f"CDP {method} failed: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    async def navigate(self, url: str) -> None:
        await self.call("Page.enable")
        await self.call("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-able values only)."""
        result = await self.call("Runtime.evaluate", expression=expression,
                                 returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 10.0) -> Any:  # noqa: ASYNC109
        """Poll ``expression`` until it is truthy (a page still loading counts as
        falsy); its value."""
        guarded = f"(() => {{ try {{ return ({expression}); }} catch (e) {{ return null; }} }})()"
        with anyio.fail_after(timeout):
            while True:
                value = await self.evaluate(guarded)
                if value:
                    return value
                await anyio.sleep(0.1)

    async def screenshot(self, path: Path) -> None:
        data = await self.call("Page.captureScreenshot", format="png")
        await anyio.Path(path).write_bytes(base64.b64decode(data["data"]))


@asynccontextmanager
async def headless_chromium(executable: str) -> AsyncIterator[Browser]:
    """Start Chromium with a fresh profile and open its first page over CDP."""
    # Chromium's helper processes may still be writing the profile as it goes: the
    # group is killed below, and what one still writes is no reason to fail a test.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        log = Path(profile) / "chromium.log"  # a file, so a chatty browser never blocks
        with log.open("wb") as sink:
            process = await anyio.open_process(
                [executable, *_FLAGS, f"--user-data-dir={profile}/data", "about:blank"],
                stdout=subprocess.DEVNULL, stderr=sink, start_new_session=True)
        try:
            endpoint = None
            with anyio.fail_after(20):
                while endpoint is None:
                    seen = await anyio.Path(log).read_bytes()
                    match = re.search(rb"DevTools listening on (ws://\S+)", seen)
                    if match:
                        endpoint = match.group(1).decode()
                    elif process.returncode is not None:
                        raise RuntimeError(f"chromium exited: {seen.decode(errors='replace')}")
                    else:
                        await anyio.sleep(0.05)
            http = "http://" + endpoint.split("/")[2]
            response = await http_request("GET", http + "/json/list",
                                          options=ConnectOptions(proxy=""))
            pages = [t for t in json.loads(response.body) if t.get("type") == "page"]
            page = await connect_websocket(pages[0]["webSocketDebuggerUrl"],
                                           options=ConnectOptions(proxy="",
                                                                  max_message_size=64 << 20))
            async with page:
                yield Browser(page)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the browser and its helpers
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await process.wait()
