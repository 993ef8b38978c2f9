"""Issue 14, end to end: ``VoxtaClient`` never hangs and never loses a message, whatever
the network does. The chaos proxy (``tests/chaos.py``) sits between the client and the
mock, seeded; every test runs on asyncio and trio. ``VOXTA_CHAOS_CUTS`` sets the number
of random cuts per run (``nox -s fuzz`` runs it longer)."""

from __future__ import annotations

import contextlib
import os

import anyio
import pytest

from chaos import ChaosProxy, Direction
from voxta_mock import MockVoxtaServer
from voxta_mock.faults import FaultPlan
from voxta_proto import VoxtaClient
from voxta_proto.client import ChatLost, Reconnected, Reconnecting
from voxta_proto.errors import ChatGone, ConnectionClosed
from voxta_proto.voxta import ReplyEnd, Send

from .chaos_run import run_chaos
from .mini_server import MiniServer
from .test_client import connected

CUTS = int(os.environ.get("VOXTA_CHAOS_CUTS", "150"))
"""Random cuts per backend (two backends: a few hundred per run)."""

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120 + 3 * CUTS)]
"""Past ``run_chaos``'s own deadline (60 s + 2 s a cut), so a slow run on a loaded
machine fails there, with a traceback, rather than in pytest-timeout."""
SEED = int(os.environ.get("VOXTA_CHAOS_SEED", "0"))


# ------------------------------------------------------------ stateful reconnect, cuts


async def test_random_cuts_lose_duplicate_and_hang_nothing() -> None:
    """Row 1 of issue 14: seeded cuts at random byte offsets, both directions, FIN and
    RST, during send_message + load_characters_list + request_suggestions."""
    result = await run_chaos(seed=SEED, cuts=CUTS)
    assert result.cuts >= CUTS
    assert result.lost == []
    assert result.duplicated == []
    assert result.hung == []
    # every cut ends the connection; a cut that lands in a reattach costs one attempt more
    assert result.reconnects >= CUTS * 9 // 10


async def test_cuts_right_after_a_request_lose_nothing() -> None:
    """A cut in the first bytes the server sends after a request (the request was
    taken, its answer not delivered): replayed and answered once."""
    result = await run_chaos(seed=SEED + 1, cuts=10, after_request=True)
    assert result.cuts >= 10
    assert (result.lost, result.duplicated, result.hung) == ([], [], [])


# --------------------------------------------------------- stateful reconnect off


async def test_a_drop_inside_a_split_record_is_a_lost_connection() -> None:
    """Row 3: the mock splits every record across WebSocket messages; a TCP drop in the
    middle of one, with stateful reconnect off, is a reconnect (10 of 10), never
    "server broke the protocol"."""
    reconnected: list[Reconnected] = []
    async with MockVoxtaServer(host="127.0.0.1", port=0, reply_delay=0.0,
                               faults=FaultPlan(split_every=7)) as mock:
        assert mock.address is not None
        async with ChaosProxy("127.0.0.1", mock.address.port, seed=SEED) as proxy:
            client = VoxtaClient(f"http://127.0.0.1:{proxy.port}", stateful_reconnect=False,
                                 reconnect=[0.0, 0.01] + [0.05] * 40, request_timeout=5)
            client.on("reconnected", reconnected.append)
            with anyio.fail_after(60):
                async with client:
                    for number in range(10):
                        seen = len(reconnected)
                        proxy.cut_after(proxy.rng.randrange(1, 40), Direction.DOWN,
                                        rst=number % 2 == 1)
                        while len(reconnected) == seen:
                            try:  # a characters list is ~1 KB in 7-byte pieces: cut mid-record
                                await client.load_characters_list()
                            except ConnectionClosed:  # failed by the drop, or not back yet
                                await anyio.sleep(0.01)
                        assert client.running
                    assert await client.load_characters_list()
            assert len(proxy.cuts) == 10
    assert len(reconnected) == 10
    assert all(not event.stateful for event in reconnected)


# ------------------------------------------------------------------ stalled writes


async def test_a_server_that_stops_reading_never_blocks_the_client() -> None:
    """Row 2: the server accepts and stops reading. Another task's request fails by its
    own timeout, the stalled write ends the connection after the write timeout, the
    client reconnects once the path works again, and close() returns promptly."""
    reconnecting: list[Reconnecting] = []
    async with MockVoxtaServer(host="127.0.0.1", port=0, reply_delay=0.0) as mock:
        assert mock.address is not None
        async with ChaosProxy("127.0.0.1", mock.address.port, seed=SEED) as proxy:
            client = VoxtaClient(f"http://127.0.0.1:{proxy.port}", stateful_reconnect=False,
                                 write_timeout=1.0, request_timeout=0.5,
                                 reconnect=[0.2] * 50)
            client.on("reconnecting", reconnecting.append)
            with anyio.fail_after(30):
                async with client:
                    proxy.stop_reading()
                    big = Send(session_id="s", text="x" * 100_000, do_reply=False)

                    async def flood() -> None:
                        for _ in range(500):  # far more than the socket buffers hold
                            with contextlib.suppress(ConnectionClosed):
                                await client.send(big, wait=False)
                            await anyio.sleep(0.002)
                            if reconnecting:
                                return

                    async with anyio.create_task_group() as tg:
                        tg.start_soon(flood)
                        with pytest.raises(TimeoutError):  # by its own timeout, not later
                            with anyio.fail_after(3):
                                await client.load_characters_list()
                        with anyio.fail_after(10):  # the write timeout ends the connection
                            while not reconnecting:  # noqa: ASYNC110
                                await anyio.sleep(0.05)
                    proxy.resume()
                    client.request_timeout = 5
                    with anyio.fail_after(10):
                        while True:
                            try:
                                assert await client.load_characters_list()
                                break
                            except (TimeoutError, ConnectionClosed):
                                await anyio.sleep(0.1)
                    proxy.stop_reading()  # close() while the server reads nothing
                    with anyio.fail_after(5):
                        await client.close()
    assert reconnecting


# ------------------------------------------------------------ one lost answer


async def test_one_lost_answer_never_starves_the_next_requests(
        mini_server: MiniServer) -> None:
    """Row 4: the server loses one ``suggestions`` answer. That call times out; the
    next four of the same type get their own answers (the timed-out request is
    forgotten, so the next answer does not go to it)."""
    with anyio.fail_after(20):
        async with connected(mini_server, request_timeout=0.5) as client:
            await client.start_chat("c1")
            mini_server.swallow.add("suggestions")
            with pytest.raises(TimeoutError):
                await client.request_suggestions()
            client.request_timeout = 3
            for _ in range(4):
                assert await client.request_suggestions() is not None
            assert client.session is not None
            assert client.session.pending_requests == {}


# ------------------------------------------------------------ §3.7 chat gone


async def test_a_chat_gone_after_a_fresh_reconnect_fails_its_waiters_at_once(
        mini_server: MiniServer) -> None:
    """Row 5: after a fresh reconnect the server no longer runs our chat: a chatLost
    event, and a wait_for on that chat fails at once with ChatGone (not after its
    timeout); the client keeps working."""
    lost: list[ChatLost] = []
    back: list[Reconnected] = []
    with anyio.fail_after(10):
        async with connected(mini_server, stateful_reconnect=False) as client:
            client.on("chatLost", lost.append)
            client.on("reconnected", back.append)
            started = await client.start_chat("c1")
            failed: list[BaseException] = []
            ended = anyio.Event()

            async def wait_reply_end() -> None:
                try:
                    await client.wait_for(ReplyEnd, timeout=60)
                except ChatGone as exc:
                    failed.append(exc)
                ended.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(wait_reply_end)
                await anyio.lowlevel.checkpoint()
                mini_server.drop_during_reply = True
                with contextlib.suppress(ConnectionClosed):  # answered, or failed by the drop
                    await client.send_message("hi")
                await ended.wait()  # at once: within the 10 s above, not after 60 s
            assert isinstance(failed[0], ChatGone)
            assert failed[0].session_id == started.session_id
            while not back:  # noqa: ASYNC110
                await anyio.sleep(0.01)
            assert back == [Reconnected(stateful=False)]
            assert client.session_id is None
            assert client.chat_id is None
            assert await client.load_characters_list()
    assert len(lost) == 1
    assert (lost[0].session_id, lost[0].chat_id) == (started.session_id, started.chat_id)
