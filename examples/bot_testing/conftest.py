"""Fixtures of the bot's test suite, as a third-party project would write them.

The ``voxta_mock_server``, ``voxta_mock_pair`` and ``voxta_mock_config`` fixtures and the
``voxta_mock`` marker come from the voxta_mock pytest plugin, which installing
voxta-proto registers; they are async, so the suite runs them with anyio's plugin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from voxta_mock import MockVoxtaServer
from voxta_proto import VoxtaClient
from voxta_proto.hub.negotiate import NegotiateResult
from voxta_proto.transports import ConnectOptions, MemoryTransport, NegotiateOutcome

try:
    import trio  # noqa: F401  (only asks whether it is there)

    BACKENDS = ["asyncio", "trio"]
except ImportError:  # trio comes with ``pip install voxta-proto[trio]``
    BACKENDS = ["asyncio"]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every test on each event loop there is."""
    backend: str = request.param
    return backend


@pytest.fixture
async def client(voxta_mock_server: MockVoxtaServer) -> AsyncIterator[VoxtaClient]:
    """A client connected to the mock over loopback."""
    async with VoxtaClient(voxta_mock_server.url, reconnect=()) as connected:
        yield connected


@pytest.fixture
async def memory_client(
    voxta_mock_pair: tuple[MockVoxtaServer, MemoryTransport],
) -> AsyncIterator[VoxtaClient]:
    """A client connected to the mock in memory: no sockets, no HTTP."""
    _, transport = voxta_mock_pair

    async def connector(url: str, *, options: ConnectOptions) -> MemoryTransport:
        return transport

    async def negotiator(url: str, options: ConnectOptions, stateful: bool) -> NegotiateOutcome:
        result = NegotiateResult(negotiate_version=1, connection_id="memory",
                                 connection_token="memory", available_transports=(),
                                 use_stateful_reconnect=False)
        return NegotiateOutcome(base_url=url, result=result)

    async with VoxtaClient("http://memory", connector=connector, negotiator=negotiator,
                           reconnect=()) as connected:
        yield connected
