"""Drive the sans-IO client core yourself on anyio: the same code runs on asyncio and trio.

    python examples/sans_io_anyio.py                   # asyncio, against the bundled mock
    python examples/sans_io_anyio.py --backend trio
    python examples/sans_io_anyio.py --url http://localhost:5384

``VoxtaClient`` is one such driver; this is the loop at its heart, small enough to copy
into a program that wants its own: wait for a message *or* the core's next deadline,
feed what came (or the time) to the core, write what it queued, handle its events.
"""

from __future__ import annotations

import argparse
import math
import sys

import anyio

from voxta_mock import MockVoxtaServer
from voxta_proto import TransportClosed
from voxta_proto.transports import MessageTransport, connect_websocket, negotiate
from voxta_proto.voxta import (
    CharactersListLoaded,
    ChatStarted,
    LoadCharactersList,
    ReplyChunk,
    ReplyEnd,
    Send,
    StartChat,
)
from voxta_proto.voxta.session import (
    ClientState,
    Disconnected,
    RequestCompleted,
    SessionEvent,
    VoxtaClientSession,
)


# --8<-- [start:driver]
async def flush(session: VoxtaClientSession, transport: MessageTransport) -> None:
    """Write what the core queued, one WebSocket message per item."""
    for item in session.data_to_send():
        await transport.send(item.decode())


async def next_events(session: VoxtaClientSession,
                      transport: MessageTransport) -> list[SessionEvent]:
    """Wait for a message or the core's next deadline, whichever comes first."""
    deadline = session.next_deadline()
    data: str | bytes | None = None
    with anyio.CancelScope(deadline=math.inf if deadline is None else deadline):
        try:
            data = await transport.receive()  # cancel-safe: all or nothing
        except TransportClosed:
            events = session.receive_eof(now=anyio.current_time())
            await flush(session, transport)
            return events
    now = anyio.current_time()  # anyio's clock: trio's MockClock works in tests
    if data is None:  # the deadline passed: keep-alive pings, or the server timed out
        events = session.handle_timer(now=now)
    else:
        events = session.receive_data(data.encode() if isinstance(data, str) else data,
                                      now=now)
    await flush(session, transport)
    return events
# --8<-- [end:driver]


async def chat(url: str, text: str) -> str:
    outcome = await negotiate(url.rstrip("/") + "/hub")
    transport = await connect_websocket(outcome.websocket_url())
    session = VoxtaClientSession(now=anyio.current_time(), client="anyio-example")
    session.start(now=anyio.current_time())
    await flush(session, transport)
    pending: dict[str, str] = {}
    reply: list[str] = []
    replies_seen = 0
    with anyio.fail_after(30):
        while replies_seen < 2:  # the greeting, then the answer to ``text``
            for event in await next_events(session, transport):
                if isinstance(event, Disconnected):
                    raise SystemExit(f"disconnected: {event.error}")
                if isinstance(event, RequestCompleted):
                    what = pending.pop(event.invocation_id, "")
                    if what == "characters" and isinstance(event.reply, CharactersListLoaded):
                        first = event.reply.characters[0]
                        print(f"Chatting with {first.name}")
                        start = StartChat(character_id=first.id)
                        pending[session.send(start, now=anyio.current_time()) or ""] = "start"
                    elif what == "start" and isinstance(event.reply, ChatStarted):
                        # Sent now, answered after the greeting (the server queues it).
                        print(f"> {text}")
                        session.send(Send(session_id=event.reply.session_id, text=text),
                                     now=anyio.current_time(), expect_reply=False)
                elif isinstance(event, ReplyChunk):
                    reply.append(event.text)
                    print(event.text, end=" ", flush=True)
                elif isinstance(event, ReplyEnd):
                    replies_seen += 1
                    print()
            if session.state is ClientState.READY and not pending and replies_seen == 0:
                request = LoadCharactersList()
                pending[session.send(request, now=anyio.current_time()) or ""] = "characters"
            await flush(session, transport)
    session.close(now=anyio.current_time())
    await flush(session, transport)
    await transport.aclose()
    return " ".join(reply)


async def main(url: str | None) -> None:
    if url is not None:
        await chat(url, "Hello!")
        return
    async with MockVoxtaServer(port=0, reply_delay=0.0) as server:
        await chat(server.url, "Hello!")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The sans-IO client core on anyio.")
    parser.add_argument("--url", help="a Voxta server; default: the bundled mock")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args(sys.argv[1:])
    anyio.run(main, args.url, backend=args.backend)
