"""The voxta-client README quick start, on voxta-proto: negotiate, connect in a task,
wait for ready, send a message, print the streamed reply.

    python examples/quickstart.py http://localhost:5384

(``python -m voxta_mock`` runs a mock server to try it against.)
"""

from __future__ import annotations

import asyncio
import sys

from voxta_proto.client import VoxtaClient
from voxta_proto.voxta.server_messages import ReplyChunk, ReplyEnd


async def main(url: str = "http://localhost:5384") -> str:
    # 1. Initialize the client
    client = VoxtaClient(url)

    # Set up event listeners: events are typed messages, not dicts
    reply: list[str] = []

    @client.on("replyChunk")
    def on_chunk(chunk: ReplyChunk) -> None:
        reply.append(chunk.text)
        print(chunk.text, end="", flush=True)

    # 2. Negotiate (now awaited: no blocking HTTP)
    print("Negotiating connection...")
    token, cookies = await client.negotiate()

    # Wait for the client to be ready (connected and session pinned)
    ready_event = asyncio.Event()
    client.on("ready", lambda _: ready_event.set())

    # 3. Connect (runs the connection, with keep-alive and reconnect, in the background)
    connection_task = asyncio.create_task(client.connect(token, cookies))

    print("Connecting to Voxta...")
    await asyncio.wait_for(ready_event.wait(), timeout=30)
    print(f"Connected! Session ID: {client.session_id}")

    # 4. Send a message and wait for the whole reply instead of sleeping
    print("Sending message...")
    reply_end = asyncio.ensure_future(client.wait_for(ReplyEnd, timeout=60))
    await client.send_message("Hello! Tell me a short story.")
    await reply_end
    print()

    # Clean up
    await client.close()
    await connection_task
    return "".join(reply)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:2]))
