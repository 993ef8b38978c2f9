"""A tiny third-party bot, the code under test in this folder's pytest suite.

``ask`` sends one question to a character and returns what came back: the reply text
and the actions the character took. It takes a connected ``VoxtaClient``, so tests can
hand it a client wired to the mock server over loopback or in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio

from voxta_proto.client import EventStream, VoxtaClient
from voxta_proto.voxta import Action, ChatFlow, ChatFlowStates, ReplyChunk


@dataclass
class BotReply:
    text: str = ""
    actions: list[str] = field(default_factory=list)


async def ask(client: VoxtaClient, question: str, *, character: str | None = None,
              timeout: float = 30.0) -> BotReply:  # noqa: ASYNC109 (a bot-level budget)
    """Start a chat with ``character`` (by name; default the first), skip its greeting,
    ask ``question`` and collect the answer until the character waits for the user."""
    characters = await client.load_characters_list()
    chosen = next((c for c in characters if c.name == character), None)
    if chosen is None and character is not None:
        raise LookupError(f"no character named {character!r}")
    reply = BotReply()
    with anyio.fail_after(timeout):
        async with client.events() as events:
            await client.start_chat((chosen or characters[0]).id)
            await _turn(events, BotReply())  # the greeting
            await client.send_message(question)
            await _turn(events, reply)
    return reply


async def _turn(events: EventStream, into: BotReply) -> None:
    parts: list[str] = []
    async for event in events:
        if isinstance(event, ReplyChunk):
            parts.append(event.text)
        elif isinstance(event, Action) and event.value:
            into.actions.append(event.value)
        elif isinstance(event, ChatFlow) and event.state is ChatFlowStates.WAITING_FOR_USER_INPUT:
            into.text = " ".join(parts)
            return
