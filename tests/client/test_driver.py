"""The connection driver on its own: one hand-off per socket read, keep-alive from the
timer, a stalled write is a lost connection and never holds up the reader, a protocol
error sends the close hint, and a reattach replays on the new transport."""

from __future__ import annotations

import json

import anyio
import pytest

from voxta_proto.driver import Driver, DriverState, coalescing_writer
from voxta_proto.errors import RemoteProtocolError
from voxta_proto.hub.connection import HubConfig
from voxta_proto.hub.events import ConnectionLost
from voxta_proto.hub.messages import HandshakeRequest, Invocation
from voxta_proto.hub.state import Role
from voxta_proto.hub_client import HubSession, encode_args
from voxta_proto.transports import MemoryTransport, memory_transport_pair
from voxta_proto.transports.base import MessageTransport

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(20)]

RS = "\x1e"


def _records(message: str | bytes) -> list[dict[str, object]]:
    text = message.decode() if isinstance(message, bytes) else message
    return [json.loads(part) for part in text.split(RS) if part]


def _client(config: HubConfig | None = None, version: int = 1, **driver_args: object) -> tuple[
        HubSession, Driver[object], list[list[object]]]:
    session = HubSession(Role.CLIENT, now=anyio.current_time(), config=config or HubConfig())
    session.send(HandshakeRequest(protocol="json", version=version), now=anyio.current_time())
    batches: list[list[object]] = []
    driver: Driver[object] = Driver(
        session, on_events=batches.append, alive=session.alive,
        **driver_args)  # type: ignore[arg-type]
    return session, driver, batches


async def _accept(peer: MemoryTransport, session: HubSession | None = None,
                  version: int = 1) -> None:
    assert _records(await peer.receive()) == [{"protocol": "json", "version": version}]
    await peer.send("{}" + RS)
    with anyio.fail_after(5):
        while session is not None and session.hub.state.name != "OPEN":  # noqa: ASYNC110
            await anyio.sleep(0.01)


async def _close_later(transport: MemoryTransport) -> None:
    async with transport:
        await anyio.sleep_forever()


def _invocation(n: int) -> str:
    return json.dumps({"type": 1, "target": "Tick", "arguments": [n]}) + RS


async def test_one_hand_off_per_read_not_per_message() -> None:
    ours, peer = memory_transport_pair()
    _, driver, batches = _client()
    for n in range(50):  # already waiting when the driver starts: one read takes them all
        await peer.send(("{}" + RS if n == 0 else "") + _invocation(n))
    async with peer, anyio.create_task_group() as tg:
        tg.start_soon(driver.run, ours)
        with anyio.fail_after(5):
            while sum(len(b) for b in batches) < 51:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        await driver.close()
    ticks = [e for batch in batches for e in batch if isinstance(e, Invocation)]
    assert [json.loads(bytes(t.arguments[0])) for t in ticks] == list(range(50))
    assert len(batches) == 1


async def test_keepalive_ping_comes_from_the_timer() -> None:
    ours, peer = memory_transport_pair()
    _, driver, _ = _client(HubConfig(keepalive_interval=0.05))
    async with peer, anyio.create_task_group() as tg:
        tg.start_soon(driver.run, ours)
        await _accept(peer)
        with anyio.fail_after(5):
            assert _records(await peer.receive()) == [{"type": 6}]
        await driver.close()
    assert driver.state is DriverState.CLOSED


async def test_a_stalled_write_is_a_lost_connection_and_the_reader_goes_on() -> None:
    ours, peer = memory_transport_pair(max_buffer_size=1)
    session, driver, batches = _client(write_timeout=0.3)
    ended: list[DriverState] = []

    async def run() -> None:
        ended.append(await driver.run(ours))

    async with peer, anyio.create_task_group() as tg:
        tg.start_soon(run)
        await _accept(peer, session)
        for n in range(3):  # the peer never reads again: the second write stalls
            session.send(Invocation(target="Spam", arguments=encode_args([n])),
                         now=anyio.current_time())
            driver.transmit()
            await anyio.sleep(0.05)  # so each goes out as a message of its own
        await peer.send(_invocation(7))  # the reader still takes this while it stalls
        with anyio.fail_after(5):
            while not any(isinstance(e, Invocation) for b in batches for e in b):  # noqa: ASYNC110
                await anyio.sleep(0.01)
        assert not ended
    assert ended == [DriverState.LOST]
    assert isinstance(driver.lost_error, Exception)
    assert "longer than 0.3 s" in str(driver.lost_error)
    assert batches[-1] == [ConnectionLost(reattachable=False)]


async def test_the_transport_ending_while_close_drains_still_ends_run() -> None:
    """close() waits for a write, and the transport ends meanwhile: the reader sees the
    end while CLOSING. run() used to hang there (on trio, after a server's TCP drop): the
    reader forgot the task group, so close()'s stop after its drain found none and the
    timer task slept on."""
    ours, peer = memory_transport_pair()
    stalled = anyio.Event()

    async def writer(transport: MessageTransport, items: list[bytes]) -> None:
        if stalled.is_set():  # after the handshake every write hangs
            await anyio.sleep_forever()
        await coalescing_writer(transport, items)

    session, driver, _ = _client(writer=writer)
    ended: list[DriverState] = []

    async def run() -> None:
        ended.append(await driver.run(ours))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await _accept(peer, session)
            stalled.set()
            session.send(Invocation(target="Bye", arguments=encode_args([1])),
                         now=anyio.current_time())
            tg.start_soon(driver.close)
            while driver.state is not DriverState.CLOSING:  # noqa: ASYNC110
                await anyio.sleep(0.01)
            await peer.aclose()  # the reader's receive fails while close() drains
    assert ended == [DriverState.CLOSED]


async def test_protocol_error_sends_the_close_hint_then_raises() -> None:
    ours, peer = memory_transport_pair()
    _, driver, _ = _client()
    async with peer, anyio.create_task_group() as tg:

        async def run() -> None:
            with pytest.raises(RemoteProtocolError):
                await driver.run(ours)

        tg.start_soon(run)
        await _accept(peer)
        await peer.send('{"type":1}' + RS)  # an Invocation without a target
        with anyio.fail_after(5):
            close = _records(await peer.receive())
    assert close[0]["type"] == 7
    assert driver.state is DriverState.CLOSED


async def test_reattach_replays_what_the_lost_transport_did_not_confirm() -> None:
    first, peer = memory_transport_pair()
    session, driver, batches = _client(HubConfig(stateful_reconnect=True), version=2)
    async with peer, anyio.create_task_group() as tg:
        tg.start_soon(driver.run, first)
        await _accept(peer, session, version=2)
        await peer.aclose()  # the socket drops
        with anyio.fail_after(5):
            while batches[-1] != [ConnectionLost(reattachable=True)]:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        assert driver.state is DriverState.LOST
        session.send(Invocation(target="WhileAway", arguments=encode_args([1])),
                     now=anyio.current_time())
        driver.transmit()  # detached: nothing to write to, the hub keeps it
        second, peer2 = memory_transport_pair()
        tg.start_soon(_close_later, peer2)
        tg.start_soon(lambda: driver.run(second, reattach=True))
        with anyio.fail_after(5):
            replay = _records(await peer2.receive())
        assert replay[0] == {"type": 9, "sequenceId": 1}
        assert [r.get("target") for r in replay[1:]] == ["WhileAway"]
        await driver.close()
        tg.cancel_scope.cancel()


async def test_voxta_client_sends_the_close_hint_before_hanging_up() -> None:
    # The old loop encoded the hint through the session, whose state machine is in ERROR
    # by then, so the Close never left; the driver encodes it directly.
    from voxta_proto import ProtocolError, VoxtaClient
    from voxta_proto.transports import ConnectOptions

    ours, peer = memory_transport_pair()

    async def connector(url: str, *, options: ConnectOptions) -> MemoryTransport:
        return ours

    client = VoxtaClient("http://memory", connector=connector, reconnect=())
    received: list[dict[str, object]] = []

    async def server() -> None:
        await peer.receive()  # handshake
        await peer.send("{}" + RS)
        await peer.receive()  # authenticate
        await peer.send('{"type":1}' + RS)  # an Invocation without a target
        while True:
            try:
                received.extend(_records(await peer.receive()))
            except Exception:
                return

    async with peer, anyio.create_task_group() as tg:
        tg.start_soon(server)
        with anyio.fail_after(5), pytest.raises(ProtocolError):
            await client.connect("token")
    assert received
    assert received[0]["type"] == 7
    assert "target" in str(received[0]["error"])
