"""The same chat on trio, reading one ordered stream of typed events instead of callbacks.

    python examples/trio_chat.py "Hello!" "Tell me a joke."
    python examples/trio_chat.py --url http://localhost:5384 "Hello!"

Without ``--url`` it starts the bundled mock server in the same process. ``VoxtaClient``
and ``MockVoxtaServer`` are written against anyio, so nothing here is trio-specific except
``trio.run`` and the cancel scope; ``match`` over the event classes keeps it type-checked.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import trio

from voxta_mock import MockVoxtaServer
from voxta_proto.client import EventStream, VoxtaClient
from voxta_proto.voxta import Action, AppTrigger, ChatFlow, ChatFlowStates, ReplyChunk, ReplyEnd


async def one_turn(events: EventStream) -> str:
    """Print the reply streaming in; return its text once the character waits for us."""
    parts: list[str] = []
    async for event in events:
        match event:
            case ReplyChunk(text=text):
                parts.append(text)
                print(text, end=" ", flush=True)
            case ReplyEnd():
                print()
            case Action(value=value) if value:
                print(f"  [action {value}]")
            case AppTrigger(name=name):
                print(f"  [app trigger {name}]")
            case ChatFlow(state=ChatFlowStates.WAITING_FOR_USER_INPUT):
                return " ".join(parts)
    raise RuntimeError("the connection ended in the middle of a turn")


async def chat(url: str, messages: Sequence[str], character: str | None = None) -> list[str]:
    """Say each message in turn; return the character's replies (greeting first)."""
    replies = []
    async with VoxtaClient(url) as client:
        characters = await client.load_characters_list()
        chosen = next((c for c in characters if c.name == character), characters[0])
        print(f"Chatting with {chosen.name}")
        # Subscribe before acting, so no event of the turn can slip by.
        async with client.events() as events:
            with trio.fail_after(30):
                await client.start_chat(chosen.id)
                replies.append(await one_turn(events))  # the greeting
            for text in messages:
                print(f"> {text}")
                with trio.fail_after(30):
                    await client.send_message(text)
                    replies.append(await one_turn(events))
    return replies


async def main(url: str | None, character: str | None, messages: Sequence[str]) -> None:
    if url is not None:
        await chat(url, messages, character)
        return
    async with MockVoxtaServer(port=0) as server:
        await chat(server.url, messages, character)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A chat on trio.")
    parser.add_argument("--url", help="a Voxta server; default: the bundled mock")
    parser.add_argument("--character", help="the character's name; default: the first")
    parser.add_argument("messages", nargs="*", default=["Hello!"])
    args = parser.parse_args(sys.argv[1:])
    trio.run(main, args.url, args.character, args.messages)
