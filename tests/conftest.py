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


TEST_TIMEOUT = 120.0
"""Seconds a test may run before it fails instead of hanging (pytest-timeout)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every test without its own ``timeout`` marker the suite's timeout. It lives
    here, not in pyproject's ini options: there ``--strict-config`` would fail any run
    without pytest-timeout, such as a user's ``pytest examples/bot_testing``. "thread"
    rather than "signal": a signal cannot break a test hung inside anyio's trio runner."""
    if not config.pluginmanager.hasplugin("timeout"):
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT, method="thread"))


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


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path_factory: pytest.TempPathFactory,
                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys stored by ``voxta login`` live in the user's config directory: point it at an
    empty one, so no test reads (or writes) the developer's."""
    folder = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    monkeypatch.setenv("APPDATA", str(folder))
