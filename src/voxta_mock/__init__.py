"""voxta_mock: a mock Voxta server built on the voxta_proto sans-IO core."""

from __future__ import annotations

__all__: list[str] = []
