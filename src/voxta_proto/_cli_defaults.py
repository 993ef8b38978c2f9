"""Defaults that ``voxta chat`` (its bundled mock) and ``voxta-mock`` share, so the two
programs behave the same unless told otherwise. A module of its own so that
``voxta-mock`` can read them without importing the client."""

from __future__ import annotations

from typing import Final

MOCK_SEED: Final = 0
"""Seed of the mock's ids and reply choices: a run is repeatable."""

MOCK_REPLY_DELAY: Final = 0.05
"""Seconds between streamed reply chunks: fast, and still visibly streaming."""
