"""``python -m voxta_mock``: prints its URL, serves, and exits cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from voxta_proto.transports import negotiate

SRC = str(Path(__file__).resolve().parents[2] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.mark.network
@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM")
def test_cli_serves_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "voxta_mock", "--port", "0"], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("voxta-mock listening on http://127.0.0.1:")
        url = line.split()[-1]

        async def check() -> None:
            with anyio.fail_after(10):
                outcome = await negotiate(f"{url}/hub")
                assert outcome.result.connection_token

        anyio.run(check)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize(("content", "suffix", "expected"), [
    ('{"characters": 3}', ".json", "Expected `array`"),
    ("{not json", ".json", "invalid JSON"),
    ("characters = [", ".toml", "invalid TOML"),
    ("{}", ".yaml", "unknown data file type"),
])
def test_bad_data_file_is_one_clear_line(tmp_path: Path, content: str, suffix: str,
                                         expected: str) -> None:
    path = tmp_path / f"data{suffix}"
    path.write_text(content)
    result = subprocess.run([sys.executable, "-m", "voxta_mock", "--data", str(path)], env=ENV,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_option_fails_without_traceback() -> None:
    result = subprocess.run([sys.executable, "-m", "voxta_mock", "--port", "99999"], env=ENV,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
