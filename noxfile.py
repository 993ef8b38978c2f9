"""Developer and CI entry points: ``nox -s tests``, ``nox -s lint``, ``nox -s fuzz``,
``nox -s interop``, ``nox -s docs``, ``nox -s bench``.

Every session builds its own virtualenv with the interpreter that runs nox, installs the
project in editable mode with the extra it needs, and runs the tools from there. Extra
arguments after ``--`` go to pytest, e.g. ``nox -s tests -- -k framing -x``.
"""

from __future__ import annotations

import os
import shutil
import sys

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = False
nox.options.sessions = ["tests", "lint"]


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite; async tests run once on asyncio and once on trio."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Static checks: ruff, mypy --strict (config in pyproject) and the import-linter layers."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", ".")
    # No `ruff format --check` yet: not every file in the tree is ruff-formatted.
    session.run("mypy")
    session.run("lint-imports")


@nox.session
def fuzz(session: nox.Session) -> None:
    """The property tests with the long-running hypothesis profile (20k examples each),
    then the network chaos tests with many more cuts (``VOXTA_CHAOS_CUTS``, default
    2000 per backend; ``VOXTA_CHAOS_SEED`` picks the seed)."""
    session.install("-e", ".[test]")
    session.run("pytest", "tests/property", *session.posargs, env={"HYPOTHESIS_PROFILE": "fuzz"})
    cuts = session.env.get("VOXTA_CHAOS_CUTS", "2000")
    session.run("pytest", "tests/client/test_chaos.py", "-p", "no:randomly",
                *session.posargs, env={"VOXTA_CHAOS_CUTS": cuts})


def _voxta_client_venv(session: nox.Session) -> str:
    """Build ``.interop/voxta-client-venv`` with voxta-client 0.2.0; returns its python."""
    venv = ".interop/voxta-client-venv"
    python = f"{venv}/Scripts/python" if sys.platform == "win32" else f"{venv}/bin/python"
    session.run("python", "-m", "venv", venv)
    session.run(python, "-m", "pip", "install", "-q", "voxta-client==0.2.0", external=True)
    return python


def _chromium(session: nox.Session) -> None:
    """The inspector's browser test needs a Chromium: Debian's package, installed here when
    there is none and this runs as root with apt-get (as in CI); elsewhere install it
    yourself (or set CHROMIUM), else the test fails under VOXTA_INTEROP_REQUIRED=1."""
    if shutil.which("chromium") or os.environ.get("CHROMIUM"):
        return
    if sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("apt-get"):
        session.warn("no Chromium found, and not root with apt-get: install Debian's 'chromium'")
        return
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-qq", external=True, env=env)
    session.run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium",
                external=True, env=env)


@nox.session
def interop(session: nox.Session) -> None:
    """Third-party clients against the mock: voxta-client 0.2.0 from PyPI in its own
    virtualenv under ``.interop/`` and @microsoft/signalr from npm (``npm ci`` of the
    committed lock file into ``tests/mock/interop/node/node_modules``), both built here,
    then the interop tests. Needs Node and npm on PATH; VOXTA_INTEROP_REQUIRED=1 makes a
    missing dependency fail the tests instead of skipping them."""
    session.install("-e", ".[test]")
    python = _voxta_client_venv(session)
    session.run("npm", "ci", "--no-audit", "--no-fund", "--prefix", "tests/mock/interop/node",
                external=True)
    _chromium(session)
    session.run("pytest", "-m", "interop", "tests/mock", *session.posargs,
                env={"VOXTA_CLIENT_PYTHON": python, "VOXTA_INTEROP_REQUIRED": "1"})


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation with ``mkdocs build --strict`` (any warning fails it) into
    ``site/``; arguments after ``--`` go to mkdocs, e.g. ``nox -s docs -- --site-dir out``."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", *session.posargs,
                env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks (``python -m benchmarks``): prints a table and writes
    ``benchmarks/results/latest.jsonl``. Arguments go to it, e.g. ``nox -s bench -- --quick``.
    The ``websockets`` extra brings VoxtaClient's second WebSocket engine (and the bare
    loop's library), orjson is a baseline of the decode table; voxta-client 0.2.0 gets a
    virtualenv of its own. Every end-to-end row runs, none is "n/a"."""
    session.install("-e", ".[websockets]", "orjson")
    python = _voxta_client_venv(session)
    session.run("python", "-m", "benchmarks", *session.posargs,
                env={"VOXTA_CLIENT_PYTHON": python})
