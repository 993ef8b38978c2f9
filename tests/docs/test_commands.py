"""Every command README and the guides show is run, as written, or is on a reviewed list
of the ones this test cannot run (with the reason), and every Python block compiles.

Commands come from ```sh and ```console blocks and from inline code spans that start
like a command (``.venv/bin/...``, ``voxta ...``, ``nox ...``). They assume a checkout
with ``.venv`` set up by the README's first command; here ``.venv/bin`` is a directory of
small scripts that run this interpreter (``voxta`` is ``python -m voxta_proto``...), and
the set-up steps themselves (``python3 -m venv .venv``, ``.venv/bin/pip install ...``) are
checked, not run: what they install must be importable. Whole Python programs run in
``test_guides.py`` and ``tests/test_readme.py``.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "docs" / "index.md", ROOT / "docs" / "getting-started.md",
         *sorted((ROOT / "docs" / "guides").glob("*.md")),
         ROOT / "docs" / "reference" / "mock.md"]

_FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)
_COMMAND = re.compile(r"(\.venv/bin/|python3? |voxta |voxta-mock|pytest |nox |pip |VOXTA_)")

NOT_RUN = {
    "python3 -m venv .venv && .venv/bin/pip install nox && .venv/bin/nox -s tests":
        "CI runs it word for word (.ci/run)",
    "python3 -m venv .venv && .venv/bin/pip install nox && .venv/bin/nox -s bench":
        "minutes of benchmarks; tests/test_benchmarks.py runs their quick mode",
    "python -m benchmarks":
        "minutes of benchmarks; tests/test_benchmarks.py runs their quick mode",
    ".venv/bin/voxta chat --url http://localhost:5384": "needs a real Voxta server",
    "VOXTA_API_KEY=... .venv/bin/voxta chat --url http://localhost:5384":
        "needs a real Voxta server and its key",
    "pip install -e .[test]": "what nox -s tests does; this suite runs in that environment",
    "nox -s tests -- -x -k framing": "a nox session: its own virtualenv from PyPI",
    "pip install voxta-proto pytest": "installs from PyPI; tests/mock/test_plugin_fixtures.py "
        "runs the testing guide's first test with what it brings (no trio, no pytest-timeout)",
    ".venv/bin/voxta-mock record --upstream http://localhost:5384 --out session.voxta.jsonl":
        "needs a real Voxta server; tests/mock/test_record.py runs the proxy against the mock",
    "voxta-mock record": "the command's name in prose; its full form is above",
    "voxta login": "the command's name in prose; tests/cli/test_login_cli.py runs it against "
        "the mock's device flow",
}
"""Reviewed: shown commands this test does not run, and why."""

NOX_SESSIONS = re.compile(r"nox -s (tests|lint|fuzz|interop|docs|bench)( -- --quick)?$")
"""``nox -s NAME`` mentions: each builds a virtualenv from PyPI; CI runs tests, lint,
interop and docs (.ci/run), and the noxfile's own sessions are what they name."""

SERVERS = {".venv/bin/voxta-mock --port 0", "voxta-mock --port 0", "python -m voxta_mock",
           "voxta-mock --port 0 -v",
           ".venv/bin/voxta-mock --port 0 --replay "
           "tests/mock/cassettes/voxta-client-chat.voxta.jsonl"}
"""Commands that serve until Ctrl-C: run until they listen, then stopped with SIGINT."""


def _commands() -> list[tuple[str, str]]:
    """(where, command) for every command the pages show, in order, without repeats."""
    found: dict[str, str] = {}
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        where = str(page.relative_to(ROOT))
        for lang, block in _FENCE.findall(text):
            if lang not in ("sh", "console"):
                continue
            for line in block.splitlines():
                if lang == "console":
                    if not line.startswith("$ "):
                        continue  # the output shown
                    line = line[2:]
                line = re.sub(r"\s+#.*$", "", line).strip()
                if line:
                    found.setdefault(line, where)
        prose = _FENCE.sub("", text)
        for span in re.findall(r"`([^`\n]+)`", prose):
            if _COMMAND.match(span) and " " in span:
                found.setdefault(span, where)
    return [(where, command) for command, where in found.items()]


COMMANDS = _commands()


def _setup_step(step: str) -> str | None:
    """The module a set-up step provides, "" for one with nothing to check, None when
    ``step`` is not a set-up step."""
    if step == "python3 -m venv .venv":
        return ""
    installed = re.fullmatch(r"(?:\.venv/bin/)?pip install (.+)", step)
    if installed is None:
        return None
    what = re.sub("['\"]", "", installed.group(1))
    return {"-e .": "voxta_proto", "-e .[trio]": "trio", "pytest": "pytest",
            "nox": "nox"}.get(what, what)


@pytest.fixture(scope="module")
def venv_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``.venv/bin`` for the commands: scripts that run this interpreter."""
    bin_dir = tmp_path_factory.mktemp("venv") / "bin"
    bin_dir.mkdir()
    runs = {"voxta": "-m voxta_proto", "voxta-mock": "-m voxta_mock", "python": "",
            "python3": "", "pytest": "-m pytest"}
    for name, args in runs.items():
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" {args} "$@"\n')
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def test_the_pages_show_commands() -> None:
    shown = [command for _, command in COMMANDS]
    assert "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/voxta chat" in shown
    assert len(shown) >= 15


@pytest.mark.network
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell scripts")
@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[c for _, c in COMMANDS])
def test_command_runs_as_written(where: str, command: str, venv_bin: Path) -> None:
    if command in NOT_RUN:
        pytest.skip(f"reviewed, not run here: {NOT_RUN[command]}")
    session = NOX_SESSIONS.fullmatch(command)
    if session is not None:
        noxfile = (ROOT / "noxfile.py").read_text(encoding="utf-8")
        assert f"def {session.group(1)}(session" in noxfile, "no such nox session"
        pytest.skip("reviewed, not run here: a nox session builds a virtualenv from PyPI")
    steps = command.split(" && ")
    while steps and (module := _setup_step(steps[0])) is not None:
        if module:  # what the step installs is here (this suite's environment)
            __import__(module.replace("-", "_"))
        steps.pop(0)
    if not steps:
        return
    shell = " && ".join(steps).replace(".venv/bin/", f"{venv_bin}/")
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "NO_COLOR": "1"}
    env.pop("VOXTA_API_KEY", None)
    if command in SERVERS:
        server = subprocess.Popen(["sh", "-c", f"exec {shell}"], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            assert "listening on http://" in server.stdout.readline()
            server.send_signal(signal.SIGINT)
            assert server.wait(timeout=30) == 128 + signal.SIGINT
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
            for stream in (server.stdout, server.stderr):
                if stream is not None:
                    stream.close()
        return
    result = subprocess.run(["sh", "-c", shell], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"{where}: {command}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr


def _python_blocks() -> list[tuple[str, str]]:
    return [(f"{page.relative_to(ROOT)}#{n}", block) for page in PAGES
            for n, (lang, block) in enumerate(_FENCE.findall(page.read_text(encoding="utf-8")))
            if lang == "python"]


@pytest.mark.parametrize(("where", "block"), _python_blocks(), ids=[w for w, _ in _python_blocks()])
def test_python_block_compiles(where: str, block: str) -> None:
    """Fragments (``await`` at the top, names from the text around them) must still be
    Python: the whole programs among them run in test_guides.py and test_readme.py."""
    compile(block, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
