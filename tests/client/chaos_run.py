"""The chaos workload: ``VoxtaClient`` talks to the mock through :class:`ChaosProxy`
while the proxy cuts the TCP connection at seeded random byte offsets (both
directions, FIN and RST). Shared by ``tests/client/test_chaos.py`` (a few hundred cuts
per run) and ``nox -s fuzz`` (``VOXTA_CHAOS_CUTS`` cuts).

Each round runs ``send_message`` + ``load_characters_list`` + ``request_suggestions``
at once and waits for the end of the reply; a round counts:

* lost: a request that failed or timed out, or a reply that never ended;
* duplicated: a user message the mock's chat holds more than once;
* hung: a round that did not finish within its deadline.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

import anyio

from chaos import ChaosProxy, Direction
from voxta_mock import MockVoxtaServer
from voxta_proto import VoxtaClient
from voxta_proto.errors import VoxtaProtoError
from voxta_proto.voxta import ReplyEnd
from voxta_proto.voxta.enums import ChatMessageRole

__all__ = ["ChaosResult", "run_chaos"]

logger = logging.getLogger("tests.chaos")

ROUND_DEADLINE = 20.0
"""Seconds a round may take before it counts as hung (reconnects included)."""


@dataclass
class ChaosResult:
    """What a run saw; ``ok`` when nothing was lost, duplicated or hung."""

    cuts: int = 0
    rounds: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    hung: list[int] = field(default_factory=list)
    reconnects: int = 0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.hung)


async def run_chaos(*, seed: int, cuts: int, stateful: bool = True,
                    after_request: bool = False, split_every: int = 0) -> ChaosResult:
    """Run rounds until ``cuts`` cuts fired. With ``after_request`` every cut is placed
    right after the client's next request (the first bytes the server sends after it);
    else at a random offset below a few KB in a random direction."""
    from voxta_mock.faults import FaultPlan

    rng = random.Random(seed)
    result = ChaosResult()
    plan = FaultPlan(split_every=split_every) if split_every else None
    async with MockVoxtaServer(host="127.0.0.1", port=0, seed=seed, reply_delay=0.0,
                               stateful_reconnect=stateful, faults=plan,
                               client_timeout=None) as mock, \
            ChaosProxy("127.0.0.1", mock.address.port if mock.address else 0,
                       seed=seed) as proxy:
        url = f"http://127.0.0.1:{proxy.port}"
        client = VoxtaClient(url, stateful_reconnect=stateful, request_timeout=8.0,
                             reconnect=[0.0, 0.01, 0.02, 0.05] + [0.1] * 40,
                             connect_timeout=5.0)
        client.on("reconnected", lambda _event: _count(result))
        with anyio.fail_after(60 + cuts * 2):
            async with client:
                characters = await client.load_characters_list()
                started = await client.start_chat(characters[0].id)
                session_id = started.session_id
                chat_id = started.chat_id
                await _round(client, "warm-up", result, session_id)
                number = 0
                while len(proxy.cuts) < cuts:
                    if not proxy._plans:  # the last cut fired: arm the next one
                        if after_request:
                            proxy.cut_after(rng.randrange(0, 64), Direction.DOWN,
                                            rst=rng.random() < 0.5)
                        elif rng.random() < 0.5:
                            proxy.cut_after(rng.randrange(600), Direction.UP,
                                            rst=rng.random() < 0.5)
                        else:
                            proxy.cut_after(rng.randrange(4000), Direction.DOWN,
                                            rst=rng.random() < 0.5)
                    number += 1
                    tag = f"m{number}x"
                    with anyio.move_on_after(ROUND_DEADLINE) as scope:
                        await _round(client, tag, result, client.session_id or session_id)
                    if scope.cancelled_caught:
                        result.hung.append(number)
                        logger.warning("round %d hung", number)
                        break
                    result.rounds += 1
                    logger.debug("round %d done, %d cuts", number, len(proxy.cuts))
                proxy.disarm()
                await _round(client, "final", result, client.session_id or session_id)
                result.cuts = len(proxy.cuts)
        if stateful:
            _count_duplicates(mock, chat_id, result)
    return result


def _count(result: ChaosResult) -> None:
    result.reconnects += 1


async def _round(client: VoxtaClient, tag: str, result: ChaosResult,
                 session_id: str | None) -> None:
    async def call(what: str, request: object) -> None:
        try:
            await request  # type: ignore[misc]
        except (VoxtaProtoError, TimeoutError) as exc:
            result.lost.append(f"{tag}: {what}: {type(exc).__name__}: {exc}")

    async def reply_end() -> None:
        try:
            await client.wait_for(ReplyEnd, timeout=10)
        except (VoxtaProtoError, TimeoutError) as exc:
            result.lost.append(f"{tag}: replyEnd: {type(exc).__name__}: {exc}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(reply_end)
        await anyio.lowlevel.checkpoint()
        tg.start_soon(call, "send_message", client.send_message(tag, session_id=session_id))
        tg.start_soon(call, "load_characters_list", client.load_characters_list())
        tg.start_soon(call, "request_suggestions",
                      client.request_suggestions(session_id=session_id))


def _count_duplicates(mock: MockVoxtaServer, chat_id: str, result: ChaosResult) -> None:
    """Every tagged user message must be in the chat exactly once (merged messages
    keep each text on its own line)."""
    chat = mock.engine._chats[chat_id]
    lines = [line for message in chat.messages if message.role is ChatMessageRole.USER
             for line in message.text.split("\n")]
    seen: dict[str, int] = {}
    for line in lines:
        seen[line] = seen.get(line, 0) + 1
    result.duplicated.extend(f"{line} x{count}" for line, count in seen.items() if count > 1)
