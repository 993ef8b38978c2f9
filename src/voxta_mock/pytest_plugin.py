"""pytest plugin (entry point ``voxta_mock``): fixtures that run the mock server.

* ``voxta_client``: a connected, authenticated
  [`VoxtaClient`][voxta_proto.client.VoxtaClient] on ``voxta_mock_server`` (loopback).
* ``voxta_memory_client``: the same on ``voxta_memory_server`` (in memory, no sockets).
* ``voxta_mock_server``: a running
  [`MockVoxtaServer`][voxta_mock.server.MockVoxtaServer] on loopback (``.url``).
* ``voxta_memory_server``: a mock server without a socket (``listen=False``).
* ``voxta_mock_pair``: ``(server, client_transport)`` connected in memory, no sockets.
* ``voxta_mock_config``: the keyword arguments the servers use; override the fixture, or
  mark a test ``@pytest.mark.voxta_mock(data=..., faults=..., preseed_session=True, ...)``.

The fixtures are async and run on anyio's pytest plugin (it comes with anyio). A
coroutine test that asks for one of them directly is marked ``anyio`` here, so it runs
without a marker of its own, on every backend anyio's plugin finds importable (asyncio,
and trio when installed); nothing else (neither pytest-timeout nor trio) is needed.

When a test that used a server from these fixtures passed, the plugin checks the
server's expectations: one that is required and did not match as often as it should
fails the test, naming it and listing what the mock received.

With ``replay=<cassette>`` (a path or a loaded cassette) the server answers from the
recording, and a test whose client departed from it errors at teardown, naming the first
message that differs.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Generator
from typing import Any, Final

import pytest

from voxta_mock.server import MockVoxtaServer
from voxta_mock.testing import verify_expectations
from voxta_proto import VoxtaClient
from voxta_proto.transports import MemoryTransport

__all__ = [
    "voxta_client",
    "voxta_memory_client",
    "voxta_memory_server",
    "voxta_mock_config",
    "voxta_mock_pair",
    "voxta_mock_server",
]

ASYNC_FIXTURES: Final = frozenset({"voxta_client", "voxta_memory_client", "voxta_mock_server",
                                   "voxta_memory_server", "voxta_mock_pair"})
"""A coroutine test asking for one of these runs on anyio without a marker."""

_SERVERS = pytest.StashKey[list[MockVoxtaServer]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "voxta_mock(**kwargs): MockVoxtaServer options for the voxta_mock fixtures")


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Mark coroutine tests that ask for an async fixture of ours for anyio, before
    anyio's own hook looks for the marker."""
    if not (isinstance(collector, (pytest.Module, pytest.Class))
            and collector.istestfunction(obj, name)):
        return
    inner = getattr(getattr(obj, "hypothesis", None), "inner_test", obj)
    if not inspect.iscoroutinefunction(inner):
        return
    if ASYNC_FIXTURES.isdisjoint(inspect.signature(inner).parameters):
        return
    if not any(mark.name == "anyio" for mark in getattr(obj, "pytestmark", ())):
        pytest.mark.anyio(obj)
    pytest.mark.usefixtures("anyio_backend")(obj)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    """After a test body passed: fail it when a server of ours has unmet expectations."""
    result = yield
    __tracebackhide__ = True
    for server in item.stash.get(_SERVERS, []):
        verify_expectations(server.expectations, server.journal)
    return result


def _register(request: pytest.FixtureRequest, server: MockVoxtaServer) -> None:
    request.node.stash.setdefault(_SERVERS, []).append(server)


@pytest.fixture
def voxta_mock_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Options for ``MockVoxtaServer``: fast replies by default, plus the marker's."""
    options: dict[str, Any] = {"reply_delay": 0.0}
    for marker in reversed(list(request.node.iter_markers("voxta_mock"))):
        options.update(marker.kwargs)
    return options


@pytest.fixture
async def voxta_mock_server(voxta_mock_config: dict[str, Any],
                            request: pytest.FixtureRequest) -> AsyncIterator[MockVoxtaServer]:
    """A mock server listening on a free loopback port."""
    options = {"host": "127.0.0.1", **voxta_mock_config, "port": 0}
    async with MockVoxtaServer(**options) as server:
        _register(request, server)
        yield server
    _check_replay(server)


@pytest.fixture
async def voxta_memory_server(voxta_mock_config: dict[str, Any],
                              request: pytest.FixtureRequest) -> AsyncIterator[MockVoxtaServer]:
    """A mock server without a socket: clients reach it in memory."""
    async with MockVoxtaServer(**{**voxta_mock_config, "listen": False}) as server:
        _register(request, server)
        yield server
    _check_replay(server)


@pytest.fixture
async def voxta_mock_pair(
    voxta_memory_server: MockVoxtaServer,
) -> AsyncIterator[tuple[MockVoxtaServer, MemoryTransport]]:
    """A mock server without sockets and one client transport wired to it in memory."""
    client = await voxta_memory_server.connect_memory()
    try:
        yield voxta_memory_server, client
    finally:
        await client.aclose()


@pytest.fixture
async def voxta_client(voxta_mock_server: MockVoxtaServer) -> AsyncIterator[VoxtaClient]:
    """A ``VoxtaClient`` connected to ``voxta_mock_server`` over loopback and
    authenticated (``welcome`` arrived); it does not reconnect."""
    async with VoxtaClient(voxta_mock_server.url, token=voxta_mock_server.auth_token,
                           reconnect=()) as client:
        yield client


@pytest.fixture
async def voxta_memory_client(voxta_memory_server: MockVoxtaServer) -> AsyncIterator[VoxtaClient]:
    """A ``VoxtaClient`` connected to ``voxta_memory_server`` in memory and
    authenticated; it does not reconnect."""
    async with VoxtaClient("http://mock.memory", reconnect=(),
                           connector=voxta_memory_server.memory_connector,
                           negotiator=voxta_memory_server.negotiate_memory) as client:
        yield client


def _check_replay(server: MockVoxtaServer) -> None:
    """Fail the test (at teardown) when a client departed from the replayed cassette."""
    if server.replay_errors:
        pytest.fail("the client departed from the replayed cassette:\n"
                    + "\n".join(str(error) for error in server.replay_errors), pytrace=False)
