"""Defaults that ``voxta chat`` (its bundled mock) and ``voxta-mock`` share, so the two
programs behave the same unless told otherwise. A module of its own, importing nothing,
so that ``voxta-mock`` reads them without loading the client or the chat."""

from __future__ import annotations

from typing import Final

MOCK_SEED: Final = 0
"""Seed of the mock's ids and reply choices: a run is repeatable."""

MOCK_REPLY_DELAY: Final = 0.05
"""Seconds between streamed reply chunks: fast, and still visibly streaming."""
