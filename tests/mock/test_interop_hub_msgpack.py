"""``@microsoft/signalr`` with its ``MessagePackHubProtocol`` (Node) against our
``HubServer``: an invoke, a hub error, a stream, a client result and binary values, over
negotiate and with ``skipNegotiation``. The server must read what the official client
writes and answer in binary messages it parses.

``HubClient`` against a Node hub in MessagePack is not checked: ``@microsoft/signalr`` is
a client only (the hub side is ASP.NET Core), and the one Node fake hub on npm that
claims MessagePack, ``@fakehost/signalr`` 1.0.0-beta.3, did not install here (the registry
had none of its ``@fakehost/exchange`` and ``@fakehost/fake-rest`` dependencies), and its
published code answers the handshake with ``{"type":0}``, which the .NET client and
our core refuse (a handshake response has no ``type``). ``HubClient`` against
``HubServer`` runs in ``tests/client``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from voxta_proto import HubServer
from voxta_proto.hub_server import HubServerConnection

from .test_interop import NODE_DIR, require
from .test_interop_msgpack import msgpack_missing

pytestmark = [pytest.mark.interop, pytest.mark.network, pytest.mark.anyio]

SCRIPT = NODE_DIR / "msgpack_hub.js"


def _hub(protocols: list[str]) -> HubServer:
    server = HubServer()
    server.method("Add", lambda conn, a, b: a + b)
    server.method("Echo", lambda conn, value: value)

    def fail(conn: HubServerConnection) -> None:
        raise ValueError("nope")

    server.method("Fail", fail)

    async def ask(conn: HubServerConnection, question: str) -> Any:
        protocols.append(conn.protocol)
        return await conn.invoke("Confirm", question)

    server.method("Ask", ask)

    async def count(conn: HubServerConnection, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i
            await anyio.lowlevel.checkpoint()

    server.stream("Count", count)
    return server


@pytest.mark.parametrize("mode", ["negotiate", "skip"])
async def test_js_messagepack_client_against_our_hub(mode: str) -> None:
    require(msgpack_missing())
    protocols: list[str] = []
    server = _hub(protocols)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            address = await tg.start(server.serve)
            result = await anyio.run_process(
                ["node", str(SCRIPT), address.url(path="/hub"), mode],
                cwd=NODE_DIR, check=False)
            tg.cancel_scope.cancel()
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0, output
    report = json.loads(result.stdout.decode().strip().splitlines()[-1])
    assert report == {
        "mode": mode,
        "sum": 5,
        "hubError": "Error: An unexpected error occurred invoking 'Fail': nope",
        "items": [0, 1, 2, 3, 4],
        "clientResult": "yes to tea",
        "bytes": {"isBinary": True, "values": [0, 1, 255]},
        "nested": {"a": [1, 2.5, None, True], "b": "h\u00e9"},
    }, output
    assert protocols == ["messagepack"]
