"""The plugin's fixtures for our own suite, which runs from a source tree where the
``pytest11`` entry point may not be installed."""

from __future__ import annotations

from voxta_mock.pytest_plugin import (
    voxta_client,
    voxta_memory_client,
    voxta_memory_server,
    voxta_mock_config,
    voxta_mock_pair,
    voxta_mock_server,
)

__all__ = ["voxta_client", "voxta_memory_client", "voxta_memory_server", "voxta_mock_config",
           "voxta_mock_pair", "voxta_mock_server"]
