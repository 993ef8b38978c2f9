"""The voxta-client README quick start, on voxta-proto: negotiate, connect in a task,
wait until the client is in a chat, send a message, print the streamed reply.

    python examples/quickstart.py                               # the bundled mock
    python examples/quickstart.py --url http://localhost:5384   # a Voxta server

Without ``--url`` it starts the bundled mock server in this process. With one, it joins
the chat that runs on the server, or starts one with the first character when none does
(a fresh ``voxta-mock`` has none).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

from voxta_mock import MockVoxtaServer
from voxta_proto import VoxtaClient
from voxta_proto.voxta import ReplyChunk, ReplyEnd


@contextlib.asynccontextmanager
async def server_url(url: str | None) -> AsyncIterator[str]:
    """``url`` itself, or the URL of a mock server running until the block ends."""
    if url is not None:
        yield url
        return
    async with MockVoxtaServer(port=0) as server:
        yield server.url


async def quickstart(url: str) -> str:
    """The round trip; returns the reply's text."""
    # 1. Initialize the client
    client = VoxtaClient(url)

    # Set up event listeners: events are typed messages, not dicts
    reply: list[str] = []

    @client.on("replyChunk")
    def on_chunk(chunk: ReplyChunk) -> None:
        reply.append(chunk.text)
        print(chunk.text, end=" ", flush=True)

    # The client joins a chat that runs on the server ("ready"), as voxta-client does
    welcomed = asyncio.Event()
    ready = asyncio.Event()
    client.on("welcome", lambda _: welcomed.set())
    client.on("ready", lambda _: ready.set())

    # 2. Negotiate (awaited: no blocking HTTP)
    print("Negotiating connection...")
    token, cookies = await client.negotiate()

    # 3. Connect (runs the connection, with keep-alive and reconnect, in the background)
    connection_task = asyncio.create_task(client.connect(token, cookies))
    try:
        print("Connecting to Voxta...")
        await asyncio.wait_for(welcomed.wait(), timeout=30)
        # The server lists running chats right after the welcome; messages keep their
        # order, so once this answer is in, the client has seen that list if there was one.
        characters = await client.load_characters_list()
        if client.session_id is None:
            print(f"No chat running: starting one with {characters[0].name}")
            greeting = asyncio.ensure_future(client.wait_for(ReplyEnd, timeout=60))
            await client.start_chat(characters[0].id)
            await greeting
            reply.clear()
            print()
        await asyncio.wait_for(ready.wait(), timeout=30)
        print(f"Connected! Session ID: {client.session_id}")

        # 4. Send a message and wait for the whole reply instead of sleeping
        print("Sending message...")
        reply_end = asyncio.ensure_future(client.wait_for(ReplyEnd, timeout=60))
        await client.send_message("Hello! Tell me a short story.")
        await reply_end
        print()
    finally:
        # Clean up
        await client.close()
        await connection_task
    return " ".join(reply)


async def main(url: str | None = None) -> str:
    """The round trip against ``url``, or against a mock server of its own."""
    async with server_url(url) as target:
        return await quickstart(target)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a Voxta server (default: start the bundled mock)")
    asyncio.run(main(parser.parse_args(sys.argv[1:]).url))
