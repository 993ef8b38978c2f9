"""Shared pytest set-up: the async backend matrix and the hypothesis profiles."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# Pinned on purpose: which backends the anyio plugin picks by default has changed between
# anyio releases, and every async test must run on both.
ANYIO_BACKENDS = ["asyncio", "trio"]


@pytest.fixture(params=ANYIO_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


# Hypothesis profiles, picked with HYPOTHESIS_PROFILE=<name>:
#   dev   local runs: a modest number of examples and no per-example deadline
#   ci    like dev, but derandomized (the same examples on every run) and printing the
#         reproduction blob of any failure
#   fuzz  long runs for `nox -s fuzz`
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("ci", settings.get_profile("dev"), derandomize=True, print_blob=True)
settings.register_profile("fuzz", max_examples=20_000, deadline=None, print_blob=True)

_default_profile = "ci" if os.environ.get("CI") else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or _default_profile)
