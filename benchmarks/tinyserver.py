"""A Voxta server that costs almost nothing, so an end-to-end run measures the client.

``python -m benchmarks.tinyserver CHUNKS PER_MESSAGE`` prints its URL and serves until
stdin reaches EOF. Every client gets the same exchange: negotiate, the WebSocket upgrade,
the SignalR handshake, ``welcome`` and a ``chatsSessionsUpdated`` with one session after
``authenticate`` (both Python clients reach their ``ready`` on it), a Completion for every
invocation that has an id, and, on ``send``, one reply of ``CHUNKS`` ``replyChunk``
messages between ``replyStart`` and ``replyEnd``, ``PER_MESSAGE`` records per WebSocket
message. The reply's frames are encoded before the first client connects and written in
one go, so the server spends nothing per chunk while a client reads.

Plain asyncio streams; wsproto (post-handshake ``Connection``) only reads the few
messages a client sends and frames the reply. The HTTP side understands just what the
three clients of the benchmark send.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sys
from typing import Any

from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Message, Ping, TextMessage

from benchmarks.corpus import invocation, net_json

RS = b"\x1e"
SESSION = "5b0f6a9e-4a4e-4c39-9a55-0d6b2f3b7d11"
CHAT = "8d1c2f4e-2a7b-4f0e-8c3d-6a5b4c3d2e1f"
USER = "3e2d1c0b-9a8f-4e7d-8c6b-5a4f3e2d1c0b"
CHARACTER = "22222222-2222-4222-8222-222222222222"
MESSAGE = "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910"
WORDS = ("the", "night", "was", "quiet", "and", "I", "could", "hear", "rain", "on", "glass",
         "you're", "café", "smiled", "softly", "it's", "fine", "don't", "worry", "über")
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""RFC 6455's constant for ``Sec-WebSocket-Accept``."""


def _records_after_authenticate() -> bytes:
    from voxta_proto.voxta import ChatsSessionsUpdated, Welcome
    from voxta_proto.voxta.shapes import ChatParticipantInfo, ChatSessionInfo

    user = ChatParticipantInfo(id=USER, name="User")
    character = ChatParticipantInfo(id=CHARACTER, name="Catherine")
    return (invocation(Welcome(voxta_server_version="1.2.0", api_version="2025-11",
                               user=user, assistant=character))
            + invocation(ChatsSessionsUpdated(sessions=(ChatSessionInfo(
                session_id=SESSION, chat_id=CHAT, user=user, characters=(character,)),))))


def reply_records(chunks: int) -> list[bytes]:
    """``replyStart``, ``chunks`` ``replyChunk`` and ``replyEnd``, as SignalR records."""
    from voxta_proto.voxta import ReplyChunk, ReplyEnd, ReplyStart

    records = [invocation(ReplyStart(session_id=SESSION, message_id=MESSAGE,
                                     sender_id=CHARACTER, chat_time=1_234_567))]
    offset = 0
    for i in range(chunks):
        text = " ".join(WORDS[(i * 6 + k) % len(WORDS)] for k in range(6)) + " "
        records.append(invocation(ReplyChunk(
            session_id=SESSION, message_id=MESSAGE, sender_id=CHARACTER, text=text,
            start_index=offset, end_index=offset + len(text),
            audio_url=f"/api/tts/gens/{i:08d}-0000-4000-8000-000000000000.wav?cache=true",
            is_narration=False)))
        offset += len(text)
    records.append(invocation(ReplyEnd(session_id=SESSION, message_id=MESSAGE,
                                       sender_id=CHARACTER, tokens=offset // 4,
                                       message_index=1, conversation_index=1)))
    return records


def reply_frames(chunks: int, per_message: int) -> bytes:
    """The whole reply as the bytes of server WebSocket frames (unmasked text)."""
    framer = Connection(ConnectionType.SERVER)
    records = reply_records(chunks)
    return b"".join(
        framer.send(Message(b"".join(records[i:i + per_message]).decode("ascii")))
        for i in range(0, len(records), per_message))


def _completion(invocation_id: str) -> bytes:
    return net_json({"type": 3, "invocationId": invocation_id, "result": None}).encode() + RS


class TinyServer:
    """One pre-built exchange per connection; see the module docstring."""

    def __init__(self, chunks: int, per_message: int) -> None:
        self.reply = reply_frames(chunks, per_message)
        self.after_authenticate = _records_after_authenticate()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request, *lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip()
                       for k, _, v in (line.partition(":") for line in lines if line)}
            method, target = request.split(" ")[:2]
            if method == "POST" and target.startswith("/hub/negotiate"):
                await self._negotiate(reader, writer, headers)
            elif method == "GET" and target.startswith("/hub") and "sec-websocket-key" in headers:
                await self._hub(reader, writer, headers["sec-websocket-key"])
            else:
                writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n"
                             b"connection: close\r\n\r\n")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _negotiate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         headers: dict[str, str]) -> None:
        length = int(headers.get("content-length", "0"))
        if length:
            await reader.readexactly(length)
        body = json.dumps({"negotiateVersion": 1, "connectionId": "c", "connectionToken": "t",
                           "availableTransports": [{"transport": "WebSockets",
                                                    "transferFormats": ["Text"]}]}).encode()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                     b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()

    async def _hub(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   key: str) -> None:
        accept = base64.b64encode(hashlib.sha1(key.encode() + _WS_GUID).digest())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                     b"connection: Upgrade\r\nsec-websocket-accept: %s\r\n\r\n" % accept)
        ws = Connection(ConnectionType.SERVER)
        text: list[str] = []
        handshaken = False
        while True:
            data = await reader.read(65536)
            ws.receive_data(data or None)
            for event in ws.events():
                if isinstance(event, CloseConnection):
                    writer.write(ws.send(event.response()))
                    await writer.drain()
                    return
                if isinstance(event, Ping):
                    writer.write(ws.send(event.response()))
                elif isinstance(event, TextMessage):
                    text.append(event.data)
                    if not event.message_finished:
                        continue
                    for record in "".join(text).split("\x1e"):
                        if not record:
                            continue
                        if not handshaken:
                            handshaken = True
                            writer.write(ws.send(Message("{}\x1e")))
                        else:
                            writer.write(self._answer(ws, json.loads(record)))
                    text.clear()
            if not data:
                return
            await writer.drain()

    def _answer(self, ws: Connection, message: dict[str, Any]) -> bytes:
        """What the server writes for one client record."""
        if message.get("type") != 1:
            return b""
        kind = (message.get("arguments") or [{}])[0].get("$type")
        invocation_id = message.get("invocationId")
        done = _completion(invocation_id) if invocation_id is not None else b""
        if kind == "authenticate":
            return ws.send(Message((self.after_authenticate + done).decode()))
        out = ws.send(Message(done.decode())) if done else b""
        return out + self.reply if kind == "send" else out


async def serve(chunks: int, per_message: int) -> None:
    tiny = TinyServer(chunks, per_message)
    server = await asyncio.start_server(tiny.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}", flush=True)
    async with server:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2])))
