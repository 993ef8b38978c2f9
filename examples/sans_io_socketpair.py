"""A SignalR client core and server core talking over socket.socketpair(), no event loop.

The sans-IO core takes bytes and the current time and hands back events and bytes, so a
blocking socket and ``time.monotonic()`` are all it needs. This script runs the whole
life of a connection: handshake, an invocation and its completion, a keep-alive ping
(with a made-up clock, so nobody waits 15 seconds), and a close.

Run it with ``python examples/sans_io_socketpair.py``.
"""

from __future__ import annotations

import socket
import time

import msgspec

from voxta_proto.hub import (
    Close,
    Completion,
    HandshakeAccepted,
    HandshakeRequest,
    HubConnection,
    HubEvent,
    HubState,
    Invocation,
    KeepAliveDue,
    Ping,
    Role,
)


def pump(
    sock: socket.socket, conn: HubConnection[msgspec.Raw], now: float
) -> list[HubEvent[msgspec.Raw]]:
    """Read until the core yields at least one event (the socket is blocking)."""
    while True:
        data = sock.recv(65536)
        if not data:
            return conn.receive_eof(now=now)
        events = conn.receive_data(data, now=now)
        if events:
            return events


def main() -> None:
    client_sock, server_sock = socket.socketpair()
    start = time.monotonic()
    client = HubConnection(Role.CLIENT, now=start)
    server = HubConnection(Role.SERVER, now=start)

    # 1. Handshake: the client speaks first, the server accepts.
    client_sock.sendall(client.send(HandshakeRequest(protocol="json", version=1), now=start))
    (request,) = pump(server_sock, server, time.monotonic())
    assert isinstance(request, HandshakeRequest)
    assert request.protocol == "json"
    print(f"server got handshake: protocol={request.protocol} version={request.version}")
    server_sock.sendall(server.send(HandshakeAccepted(), now=time.monotonic()))
    (accepted,) = pump(client_sock, client, time.monotonic())
    assert isinstance(accepted, HandshakeAccepted)
    print(f"handshake done: client is {client.state.name}, server is {server.state.name}")

    # 2. An invocation with an id from the connection's counter, and its completion.
    call = Invocation(
        target="Add",
        arguments=(msgspec.Raw(b"40"), msgspec.Raw(b"2")),
        invocation_id=client.next_invocation_id(),
    )
    client_sock.sendall(client.send(call, now=time.monotonic()))
    (received,) = pump(server_sock, server, time.monotonic())
    assert isinstance(received, Invocation)
    assert received.invocation_id is not None
    total = sum(msgspec.json.decode(arg, type=int) for arg in received.arguments)
    arguments = ", ".join(bytes(a).decode() for a in received.arguments)
    print(f"server runs {received.target}({arguments})")
    result = msgspec.Raw(msgspec.json.encode(total))
    reply = Completion(invocation_id=received.invocation_id, result=result)
    server_sock.sendall(server.send(reply, now=time.monotonic()))
    (completion,) = pump(client_sock, client, time.monotonic())
    assert isinstance(completion, Completion)
    assert isinstance(completion.result, msgspec.Raw)
    print(f"client got completion {completion.invocation_id}: result={bytes(completion.result)!r}")
    assert client.pending_invocations == frozenset()

    # 3. Keep-alive: nothing sent for 15 s makes a Ping due. Time is an argument, so we
    #    ask the core about a moment 15 s ahead instead of sleeping.
    later = time.monotonic() + 15.0
    assert client.handle_timer(now=later) == [KeepAliveDue()]
    client_sock.sendall(client.send(Ping(), now=later))
    (ping,) = pump(server_sock, server, later)
    assert isinstance(ping, Ping)
    deadline = client.next_deadline()
    assert deadline is not None
    print(f"keep-alive: client pinged, next ping due in {deadline - later:.0f} s")

    # 4. Close: the server says goodbye, both sides end up CLOSED.
    server_sock.sendall(server.send(Close(), now=later))
    (close,) = pump(client_sock, client, later)
    assert isinstance(close, Close)
    assert close.error is None
    server_sock.close()
    assert pump(client_sock, client, later) == []  # EOF after a Close is not a loss
    client_sock.close()
    assert client.state is HubState.CLOSED
    assert server.state is HubState.CLOSED
    print(f"closed cleanly: client is {client.state.name}, server is {server.state.name}")


if __name__ == "__main__":
    main()
