"""Our MessagePack golden vectors against the official JavaScript MessagePack hub protocol
(``@microsoft/signalr-protocol-msgpack`` under Node): it writes the same bytes where the
two implementations agree on the layout, we read everything it writes, and it reads
everything we write.

Where they differ, by design: the JS client omits ``streamIds`` when there are none
(.NET and we write ``[]``), writes every Close as ``[7, nil]`` (dropping the error and
``allowReconnect``), its parser ignores StreamInvocation and CancelInvocation (a client
never receives them) and the ``streamIds`` of an Invocation, and ``JSON.parse`` in Node
rounds integers above 2**53.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import anyio
import pytest

from codec_helpers import VECTORS, hex_bytes, load_vectors, message_from_json
from voxta_mock import MockVoxtaServer
from voxta_proto.hub import raw_messagepack_codec

from .test_interop import NODE_DIR, require

pytestmark = [pytest.mark.interop]

SCRIPT = NODE_DIR / "msgpack_vectors.js"
PACKAGE = (NODE_DIR / "node_modules" / "@microsoft" / "signalr-protocol-msgpack"
           / "package.json")
ROWS = {row["name"]: row for row in load_vectors("hub_messages")}
NODE_LOSSY = {
    "invocation_big_integer": "Node's JSON.parse rounds 2**53 + 1",
    "close_error_allow_reconnect": "the JS client writes every Close as [7, nil]",
}
"""Rows whose message Node cannot write as the vector means it."""
CLIENT_BOUND = {1, 2, 3, 6, 7, 8, 9}
"""The types the JS parser (a client's) reads; it skips 4 and 5."""


def msgpack_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not on PATH (the MessagePack interop check needs Node and npm)"
    if not PACKAGE.is_file():
        return ("@microsoft/signalr-protocol-msgpack is not installed: run `npm ci` in "
                "tests/mock/interop/node (nox -s interop does)")
    return None


@pytest.fixture(scope="module")
def node_results() -> dict[str, dict[str, Any]]:
    require(msgpack_missing())
    result = subprocess.run(
        ["node", str(SCRIPT), str(VECTORS / "hub_messages.jsonl")],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [row["error"] for row in rows] == [None] * len(rows)
    return {row["name"]: row for row in rows}


def test_node_writes_our_bytes_where_the_layouts_agree(
        node_results: dict[str, dict[str, Any]]) -> None:
    same = [name for name, row in ROWS.items() if row["node_same"]]
    assert len(same) >= 15
    assert {name: node_results[name]["encoded"] for name in same} == {
        name: hex_bytes(ROWS[name]["hex"]).hex() for name in same}


def test_we_read_everything_node_writes(node_results: dict[str, dict[str, Any]]) -> None:
    codec = raw_messagepack_codec()
    for name, row in ROWS.items():
        if name in NODE_LOSSY:
            continue
        node_bytes = bytes.fromhex(node_results[name]["encoded"])
        assert codec.decode_records(node_bytes) == [message_from_json(row["message"])], name


def _as_node_reads_it(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The row's message as the JS parser returns it, after ``_normalize``."""
    if message["type"] not in CLIENT_BOUND:
        return []
    expected = {k: v for k, v in message.items() if k != "streamIds"}
    return [expected]


def _normalize(node_message: dict[str, Any]) -> dict[str, Any]:
    """Drop what the JS parser always fills in: empty headers, ``streamIds: []``, and a
    Close's nil error and false ``allowReconnect``."""
    out = dict(node_message)
    if out.get("headers") == {}:
        del out["headers"]
    out.pop("streamIds", None)
    if out["type"] == 7:
        if out.get("error") is None:
            out.pop("error", None)
        if out.get("allowReconnect") is False:
            del out["allowReconnect"]
    return out


def test_node_reads_everything_we_write(node_results: dict[str, dict[str, Any]]) -> None:
    for name, row in ROWS.items():
        if name == "invocation_big_integer":
            continue  # a JS number cannot hold 2**53 + 1
        decoded = [_normalize(m) for m in node_results[name]["decoded"]]
        assert decoded == _as_node_reads_it(row["message"]), name


@pytest.mark.network
@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["negotiate", "skip"])
async def test_js_messagepack_client_gets_the_handshake_error(mode: str) -> None:
    """The JS client with MessagePackHubProtocol against the mock: the server offers
    Binary (as ASP.NET Core does), then refuses the protocol by name in the handshake."""
    require(msgpack_missing())
    with anyio.fail_after(60):
        async with MockVoxtaServer(port=0) as server:
            result = await anyio.run_process(
                ["node", str(NODE_DIR / "msgpack_handshake.js"), server.url, mode],
                cwd=NODE_DIR, check=False)
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0, output
    report = json.loads(result.stdout.decode().strip().splitlines()[-1])
    assert report["started"] is False
    assert "The protocol 'messagepack' is not supported." in report["error"], report
