"""pytest plugin (entry point ``voxta_mock``): fixtures that run the mock server.

* ``voxta_mock_server``: a running
  [`MockVoxtaServer`][voxta_mock.server.MockVoxtaServer] on loopback (``.url``).
* ``voxta_mock_pair``: ``(server, client_transport)`` connected in memory, no sockets.
* ``voxta_mock_config``: the keyword arguments both use; override the fixture, or mark a
  test ``@pytest.mark.voxta_mock(data=..., faults=..., preseed_session=True, ...)``.

With ``replay=<cassette>`` (a path or a loaded cassette) the server answers from the
recording, and a test whose client departed from it errors at teardown, naming the first
message that differs.

The fixtures are async, so they need the anyio pytest plugin (``anyio_backend``), which
comes with anyio; nothing else (neither pytest-timeout nor trio) is needed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from voxta_mock.server import MockVoxtaServer
from voxta_proto.transports import MemoryTransport

__all__ = ["voxta_mock_config", "voxta_mock_pair", "voxta_mock_server"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "voxta_mock(**kwargs): MockVoxtaServer options for the voxta_mock fixtures")


@pytest.fixture
def voxta_mock_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Options for ``MockVoxtaServer``: fast replies by default, plus the marker's."""
    options: dict[str, Any] = {"reply_delay": 0.0}
    for marker in reversed(list(request.node.iter_markers("voxta_mock"))):
        options.update(marker.kwargs)
    return options


@pytest.fixture
async def voxta_mock_server(voxta_mock_config: dict[str, Any]) -> AsyncIterator[MockVoxtaServer]:
    """A mock server listening on a free loopback port."""
    options = {"host": "127.0.0.1", **voxta_mock_config, "port": 0}
    async with MockVoxtaServer(**options) as server:
        yield server
    _check_replay(server)


@pytest.fixture
async def voxta_mock_pair(
    voxta_mock_config: dict[str, Any],
) -> AsyncIterator[tuple[MockVoxtaServer, MemoryTransport]]:
    """A mock server without sockets and one client transport wired to it in memory."""
    async with MockVoxtaServer(**{**voxta_mock_config, "listen": False}) as server:
        client = await server.connect_memory()
        try:
            yield server, client
        finally:
            await client.aclose()
    _check_replay(server)


def _check_replay(server: MockVoxtaServer) -> None:
    """Fail the test (at teardown) when a client departed from the replayed cassette."""
    if server.replay_errors:
        pytest.fail("the client departed from the replayed cassette:\n"
                    + "\n".join(str(error) for error in server.replay_errors), pytrace=False)
