"""The Voxta client session over a plain blocking TCP socket: no asyncio, no trio, no anyio.

    python examples/sans_io_blocking_tcp.py "Hello!"
    python examples/sans_io_blocking_tcp.py --url http://localhost:5384 "Hello!"

``VoxtaClientSession`` is the sans-IO client core: it takes bytes and the time, and hands
back typed Voxta messages plus the bytes to send. This script supplies the rest with the
standard library and wsproto: ``urllib`` for negotiate, ``socket`` for the bytes,
``time.monotonic`` for the clock and the socket timeout for keep-alive deadlines.

Without ``--url`` it starts the bundled mock server on loopback in a background thread
(the mock is async; this client is not).
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from urllib.parse import urlsplit

from anyio.from_thread import start_blocking_portal
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from voxta_mock import MockVoxtaServer
from voxta_proto.hub.negotiate import (
    NegotiateResult,
    build_negotiate_url,
    parse_negotiate_response,
)
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
    RequestFailed,
    SessionEvent,
    VoxtaClientSession,
)


def negotiate(hub_url: str) -> NegotiateResult:
    """POST to ``{hub}/negotiate`` with urllib and parse the answer with the core."""
    request = urllib.request.Request(build_negotiate_url(hub_url), data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        result = parse_negotiate_response(response.read(), status_code=response.status)
    if not isinstance(result, NegotiateResult):
        raise SystemExit("the server redirected negotiate; this example does not follow")
    return result


class BlockingVoxta:
    """One WebSocket on a blocking socket, with the Voxta session on top."""

    def __init__(self, hub_url: str) -> None:
        token = negotiate(hub_url).connection_token
        parts = urlsplit(hub_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        self.sock = socket.create_connection((host, port), timeout=10)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host=f"{host}:{port}",
                                               target=f"{parts.path}?id={token}")))
        while not self._upgraded():
            self.ws.receive_data(self.sock.recv(65536))
        self.session = VoxtaClientSession(now=time.monotonic(), client="blocking-example")
        self.session.start(now=time.monotonic())  # queues the SignalR handshake
        self.flush()

    def _upgraded(self) -> bool:
        for event in self.ws.events():
            if isinstance(event, RejectConnection):
                raise SystemExit(f"WebSocket refused with HTTP {event.status_code}")
            if isinstance(event, AcceptConnection):
                return True
        return False

    def flush(self) -> None:
        """Write what the session queued: one WebSocket text message per item."""
        for item in self.session.data_to_send():
            self.sock.sendall(self.ws.send(TextMessage(data=item.decode())))

    # --8<-- [start:events]
    def events(self) -> Iterator[SessionEvent]:
        """Session events as they come; runs the keep-alive timer while waiting."""
        while self.session.state is not ClientState.CLOSED:
            deadline = self.session.next_deadline()
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            self.sock.settimeout(wait)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:  # a deadline passed: pings, acks or the server timeout
                batch = self.session.handle_timer(now=time.monotonic())
            else:
                batch = self._receive(data)
            self.flush()
            yield from batch

    def _receive(self, data: bytes) -> list[SessionEvent]:
        now = time.monotonic()
        if not data:
            return self.session.receive_eof(now=now)
        self.ws.receive_data(data)
        out: list[SessionEvent] = []
        for event in self.ws.events():
            if isinstance(event, TextMessage):  # may be a fragment: the core buffers
                out += self.session.receive_data(event.data.encode(), now=now)
            elif isinstance(event, BytesMessage):
                out += self.session.receive_data(bytes(event.data), now=now)
            elif isinstance(event, Ping):
                self.sock.sendall(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.sock.sendall(self.ws.send(event.response()))
                out += self.session.receive_eof(now=now)
        return out
    # --8<-- [end:events]

    def until(self, done: Callable[[SessionEvent], bool]) -> SessionEvent:
        """Handle events (printing reply text) until ``done`` accepts one."""
        for event in self.events():
            if isinstance(event, ReplyChunk):
                print(event.text, end=" ", flush=True)
            elif isinstance(event, ReplyEnd):
                print()
            elif isinstance(event, (Disconnected, RequestFailed)):
                raise SystemExit(f"failed: {event.error}")
            if done(event):
                return event
        raise SystemExit("the connection closed")

    def request(self, message: LoadCharactersList | StartChat) -> object:
        """Send a request and wait for the reply the protocol pairs with it."""
        invocation_id = self.session.send(message, now=time.monotonic())
        self.flush()
        event = self.until(lambda e: isinstance(e, RequestCompleted)
                           and e.invocation_id == invocation_id)
        assert isinstance(event, RequestCompleted)
        return event.reply

    def close(self) -> None:
        self.session.close(now=time.monotonic())  # queues a SignalR Close
        self.flush()
        with contextlib.suppress(OSError):
            self.sock.sendall(self.ws.send(CloseConnection(code=1000)))
        self.sock.close()


def chat(url: str, messages: Sequence[str]) -> list[str]:
    """Connect, start a chat with the first character, say each message; return the
    ids of the replies."""
    conn = BlockingVoxta(url.rstrip("/") + "/hub")
    try:
        conn.until(lambda _: conn.session.state is ClientState.READY)  # welcome arrived
        characters = conn.request(LoadCharactersList())
        assert isinstance(characters, CharactersListLoaded)
        first = characters.characters[0]
        print(f"Chatting with {first.name}")
        started = conn.request(StartChat(character_id=first.id))
        assert isinstance(started, ChatStarted)
        ends = [conn.until(lambda e: isinstance(e, ReplyEnd))]  # the greeting
        for text in messages:
            print(f"> {text}")
            conn.session.send(Send(session_id=started.session_id, text=text),
                              now=time.monotonic(), expect_reply=False)
            conn.flush()
            ends.append(conn.until(lambda e: isinstance(e, ReplyEnd)))
        return [end.message_id for end in ends if isinstance(end, ReplyEnd)]
    finally:
        conn.close()


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description="A Voxta chat on a blocking socket.")
    parser.add_argument("--url", help="a Voxta server; default: the bundled mock")
    parser.add_argument("messages", nargs="*", default=["Hello!"])
    args = parser.parse_args(argv)
    if args.url is not None:
        chat(args.url, args.messages)
        return 0
    # The mock is an async server: run it on an event loop in a background thread.
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(
            MockVoxtaServer(port=0, reply_delay=0.01)) as server:
        chat(server.url, args.messages)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
