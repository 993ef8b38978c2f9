"""HubClient against a hub served by the core's server role, over loopback.

Shows an invoke, a hub error, a stream, a client result and a stateful reattach with
nothing lost (the client's socket is dropped in the middle of 30 sends), in the JSON hub
protocol or in MessagePack (binary WebSocket messages; the hub answers each client in
the protocol it asks for).

    python examples/hub_client.py [--backend asyncio|trio] [--protocol json|messagepack]
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

import anyio

from voxta_proto import HubClient, HubServer, InvocationError
from voxta_proto.hub_server import HubServerConnection
from voxta_proto.transports import ConnectOptions, MessageTransport, connect_websocket


def make_hub() -> HubServer:
    hub = HubServer()  # stateful reconnect allowed, at /hub
    hub.method("Add", lambda conn, a, b: a + b)

    def divide(conn: HubServerConnection, a: float, b: float) -> float:
        return a / b  # b == 0 raises: the client gets an InvocationError

    hub.method("Divide", divide)

    async def ask(conn: HubServerConnection, question: str) -> str:
        answer: str = await conn.invoke("Confirm", question)  # a client result
        return f"the client said {answer!r} (in {conn.protocol})"

    hub.method("Ask", ask)

    async def echo(conn: HubServerConnection, n: int) -> None:
        await conn.send("Echo", n)

    hub.method("Echo", echo)

    async def countdown(conn: HubServerConnection, start: int) -> AsyncIterator[int]:
        for n in range(start, 0, -1):
            yield n

    hub.stream("Countdown", countdown)
    return hub


async def main(protocol: str = "json") -> None:
    hub = make_hub()
    async with anyio.create_task_group() as tg:
        address = await tg.start(hub.serve)
        sockets: list[MessageTransport] = []

        async def connector(url: str, *, options: ConnectOptions) -> MessageTransport:
            sockets.append(await connect_websocket(url, options=options))
            return sockets[-1]

        client = HubClient(address.url(path="/hub"), connector=connector, protocol=protocol)
        echoed: list[int] = []
        all_echoed = anyio.Event()

        def on_echo(n: int) -> None:
            echoed.append(n)
            if len(echoed) == 30:
                all_echoed.set()

        client.on("Echo", on_echo)
        client.on("Confirm", lambda question: f"yes, {question}")
        async with client:
            print("Add(2, 3) =", await client.invoke("Add", 2, 3))
            try:
                await client.invoke("Divide", 1, 0)
            except InvocationError as exc:
                print("Divide(1, 0) failed:", exc)
            async with client.stream("Countdown", 3, item_type=int) as items:
                print("Countdown(3):", [n async for n in items])
            print("Ask:", await client.invoke("Ask", "tea?"))
            for n in range(30):
                await client.send("Echo", n)
                if n == 10:
                    await sockets[0].aclose()  # the socket drops mid-stream
            with anyio.fail_after(10):
                await all_echoed.wait()
            print(f"reattached {client.reattach_count} time(s) over {len(sockets)} sockets; "
                  f"echoes in order and complete: {echoed == list(range(30))}")
        tg.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--protocol", choices=("json", "messagepack"), default="json")
    arguments = parser.parse_args()
    anyio.run(main, arguments.protocol, backend=arguments.backend)
