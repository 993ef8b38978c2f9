"""A small chat on asyncio: pick a character, say a few things, print the streamed replies.

    python examples/asyncio_chat.py "Hello!" "Tell me a joke."
    python examples/asyncio_chat.py --url http://localhost:5384 "Hello!"

Without ``--url`` it starts the bundled mock server in the same process, so it runs with
no Voxta server installed. Replies arrive through callbacks (``client.on``), the way the
``voxta-client`` package works, and every request is awaited instead of slept on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Sequence

from voxta_mock import MockVoxtaServer
from voxta_proto import VoxtaClient
from voxta_proto.voxta import AppTrigger, ChatFlow, ChatFlowStates, ReplyChunk, ReplyEnd


@contextlib.asynccontextmanager
async def server_url(url: str | None) -> AsyncIterator[str]:
    """``url`` itself, or the URL of a mock server running until the block ends."""
    if url is not None:
        yield url
        return
    async with MockVoxtaServer(port=0) as server:
        yield server.url


async def chat(url: str, messages: Sequence[str], character: str | None = None) -> list[str]:
    """Say each message in turn; return the character's replies (greeting first)."""
    replies: list[str] = []
    current: list[str] = []
    turn_over = asyncio.Event()

    async with VoxtaClient(url) as client:

        @client.on("replyChunk")
        def on_chunk(chunk: ReplyChunk) -> None:
            current.append(chunk.text)
            print(chunk.text, end=" ", flush=True)

        @client.on("replyEnd")
        def on_end(end: ReplyEnd) -> None:
            replies.append(" ".join(current))
            current.clear()
            print()

        @client.on("chatFlow")
        def on_flow(flow: ChatFlow) -> None:
            # The turn is over (actions and app triggers come after replyEnd).
            if flow.state is ChatFlowStates.WAITING_FOR_USER_INPUT:
                turn_over.set()

        client.on("action", lambda a: print(f"  [action {a.value} on layer {a.layer}]"))

        @client.on("appTrigger")
        def on_trigger(trigger: AppTrigger) -> None:
            print(f"  [app trigger {trigger.name}]")

        characters = await client.load_characters_list()
        chosen = next((c for c in characters if c.name == character), characters[0])
        print(f"Chatting with {chosen.name}")
        turn_over.clear()
        await client.start_chat(chosen.id)
        await asyncio.wait_for(turn_over.wait(), timeout=30)  # the greeting
        for text in messages:
            print(f"> {text}")
            turn_over.clear()
            await client.send_message(text)
            await asyncio.wait_for(turn_over.wait(), timeout=30)
    return replies


async def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", help="a Voxta server; default: the bundled mock")
    parser.add_argument("--character", help="the character's name; default: the first")
    parser.add_argument("messages", nargs="*", default=["Hello!"])
    args = parser.parse_args(argv)
    async with server_url(args.url) as url:
        await chat(url, args.messages, args.character)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
