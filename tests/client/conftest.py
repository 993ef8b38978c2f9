"""Fixtures for the client tests: a client wired to an in-memory server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from voxta_mock.pytest_plugin import voxta_mock_config, voxta_mock_server

from .mini_server import MiniServer

__all__ = ["mini_server", "voxta_mock_config", "voxta_mock_server"]


@pytest.fixture
async def mini_server() -> AsyncIterator[MiniServer]:
    async with anyio.create_task_group() as tg:
        server = MiniServer(tg)
        yield server
        tg.cancel_scope.cancel()
