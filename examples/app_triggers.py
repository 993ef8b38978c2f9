"""Handle app triggers: a character's scenario asks the app to do something, by name.

    python examples/app_triggers.py                    # the bundled mock, on asyncio
    python examples/app_triggers.py --backend trio
    python examples/app_triggers.py --url http://localhost:5384 "Turn on the lights"

In Voxta, a scenario script calls ``chat.appTrigger("Name", ...args)`` and every app in
the chat gets an ``appTrigger`` message with the name and JSON arguments. This app keeps a
table of handlers by name, decodes the arguments for them, and acknowledges queued
triggers (those with a ``trigger_id``) with ``appTriggerComplete``, which the server
waits for.

Against the mock no scenario script runs, so the mock's data stands in for one: a
``ReplyScript`` fires a trigger when the user's message contains its keyword.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import msgspec

from voxta_mock import CharacterData, MockData, MockVoxtaServer, ReplyScript
from voxta_proto import VoxtaClient
from voxta_proto.voxta import AppTrigger, ChatFlow, ChatFlowStates

Handler = Callable[..., None]

HOME = MockData(
    characters=(CharacterData(id="0c1d2e3f-0000-4000-8000-00000000c0de", name="Butler",
                              greeting="Good evening. How may I help?"),),
    scripts=(
        ReplyScript(keyword="lights", reply="Right away.", app_trigger="SetLights",
                    app_trigger_arguments=("#ffaa00", 0.6), app_trigger_queued=True),
        ReplyScript(keyword="music", reply="Something relaxing, then.",
                    app_trigger="PlayMusic", app_trigger_arguments=({"playlist": "jazz"},)),
    ),
)
"""A stand-in for a scenario script: two keywords that fire app triggers; ``SetLights``
is queued (it has a ``trigger_id``), so the mock holds the chat until it is acknowledged."""


class TriggerRouter:
    """Call the handler registered for each trigger's name with its decoded arguments."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.unhandled: list[str] = []
        self.acknowledged: list[str] = []

    def handler(self, name: str) -> Callable[[Handler], Handler]:
        def register(function: Handler) -> Handler:
            self.handlers[name] = function
            return function
        return register

    async def dispatch(self, client: VoxtaClient, trigger: AppTrigger) -> None:
        arguments: list[Any] = [msgspec.json.decode(raw) for raw in trigger.arguments or ()]
        handler = self.handlers.get(trigger.name)
        if handler is None:
            self.unhandled.append(trigger.name)
        else:
            handler(*arguments)
        if trigger.trigger_id is not None:  # a queued trigger: the server waits for this
            await client.app_trigger_complete(trigger.trigger_id, trigger.session_id)
            self.acknowledged.append(trigger.name)


def home_router(log: list[str]) -> TriggerRouter:
    """The app's handlers; each appends what it did to ``log``."""
    router = TriggerRouter()

    @router.handler("SetLights")
    def set_lights(color: str, brightness: float) -> None:
        log.append(f"lights set to {color} at {brightness:.0%}")

    @router.handler("PlayMusic")
    def play_music(options: dict[str, str]) -> None:
        log.append(f"playing the {options['playlist']} playlist")

    return router


async def run(url: str, messages: Sequence[str]) -> list[str]:
    """Chat with the first character; return what the trigger handlers did."""
    log: list[str] = []
    router = home_router(log)
    async with VoxtaClient(url) as client:
        client.on("appTrigger", lambda trigger: router.dispatch(client, trigger))
        characters = await client.load_characters_list()
        turn_over = anyio.Event()

        def on_flow(flow: ChatFlow) -> None:
            if flow.state is ChatFlowStates.WAITING_FOR_USER_INPUT:
                turn_over.set()

        client.on("chatFlow", on_flow)
        with anyio.fail_after(30):
            await client.start_chat(characters[0].id)
            await turn_over.wait()
            for text in messages:
                turn_over = anyio.Event()
                print(f"> {text}")
                await client.send_message(text)
                await turn_over.wait()
    for line in log:
        print(line)
    if router.acknowledged:
        print("acknowledged queued triggers:", ", ".join(router.acknowledged))
    if router.unhandled:
        print("no handler for:", ", ".join(router.unhandled))
    return log


async def main(url: str | None, messages: Sequence[str]) -> None:
    if url is not None:
        await run(url, messages)
        return
    async with MockVoxtaServer(port=0, data=HOME, reply_delay=0.0) as server:
        await run(server.url, messages)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Handle Voxta app triggers.")
    parser.add_argument("--url", help="a Voxta server; default: the bundled mock")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("messages", nargs="*",
                        default=["Dim the lights, please.", "And some music?"])
    args = parser.parse_args(sys.argv[1:])
    anyio.run(main, args.url, args.messages, backend=args.backend)
