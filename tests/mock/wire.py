"""Helpers for the mock's wire tests: raw SignalR records over a ``MessageTransport``."""

from __future__ import annotations

import json
from collections.abc import Mapping

from voxta_mock import MockVoxtaServer
from voxta_proto import TransportError
from voxta_proto.transports import MessageTransport

__all__ = ["AUTH", "START", "drain", "fast", "handshake", "invoke", "read_until", "records",
           "voxta_type"]

AUTH = ('{"type":1,"invocationId":"a","target":"SendMessage","arguments":[{"$type":'
        '"authenticate","client":"t","scope":["role:app"],"capabilities":{}}]}\x1e')
START = ('{"type":1,"invocationId":"s","target":"SendMessage","arguments":[{"$type":'
         '"startChat","characterId":"22222222-2222-4222-8222-222222222222"}]}\x1e')


def records(message: str | bytes) -> list[dict[str, object]]:
    text = message.decode() if isinstance(message, bytes) else message
    return [json.loads(r) for r in text.split("\x1e") if r]


async def read_until(ws: MessageTransport, voxta_type: str) -> list[dict[str, object]]:
    """Every record up to and including the first ReceiveMessage of ``voxta_type``."""
    seen: list[dict[str, object]] = []
    while True:
        for record in records(await ws.receive()):
            seen.append(record)
            args = record.get("arguments")
            if isinstance(args, list) and args and args[0].get("$type") == voxta_type:
                return seen


async def drain(ws: MessageTransport) -> list[str | bytes]:
    """Everything the server sends until the connection ends."""
    pieces: list[str | bytes] = []
    while True:
        try:
            pieces.append(await ws.receive())
        except TransportError:
            return pieces


async def handshake(ws: MessageTransport, version: int = 1) -> str | bytes:
    await ws.send(f'{{"protocol":"json","version":{version}}}\x1e')
    return await ws.receive()


def fast(**kwargs: object) -> MockVoxtaServer:
    return MockVoxtaServer(port=0, reply_delay=0.0, **kwargs)  # type: ignore[arg-type]


def invoke(message: Mapping[str, object], invocation_id: str | None = None, **extra: object) -> str:
    """A ``SendMessage`` invocation record carrying ``message`` (``send`` without an id);
    ``extra`` adds fields to the record (e.g. ``headers``)."""
    record: dict[str, object] = {"type": 1, "target": "SendMessage", "arguments": [message],
                                 **extra}
    if invocation_id is not None:
        record["invocationId"] = invocation_id
    return json.dumps(record) + "\x1e"


def voxta_type(record: dict[str, object]) -> str | None:
    """The ``$type`` of a ``ReceiveMessage`` record, else None."""
    args = record.get("arguments")
    if record.get("target") == "ReceiveMessage" and isinstance(args, list) and args:
        value = args[0].get("$type")
        return value if isinstance(value, str) else None
    return None
