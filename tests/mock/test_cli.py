"""``python -m voxta_mock``: prints its URL, serves, and exits cleanly on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from voxta_mock import DEFAULT_DATA
from voxta_mock.__main__ import _parser, server_options
from voxta_proto import NegotiationError, VoxtaClient
from voxta_proto.transports import ConnectOptions, http_request, negotiate

SRC = str(Path(__file__).resolve().parents[2] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.mark.network
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])  # SIGINT: Ctrl-C
def test_cli_serves_and_stops_cleanly_on_a_signal(stop: signal.Signals) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "voxta_mock", "--port", "0", "--seed", "3",
                             "--reply-delay", "0", "--log-level", "info", "--auth-token", "k"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("voxta-mock listening on http://127.0.0.1:")
        url = line.split()[-1]

        async def check() -> None:
            with anyio.fail_after(10):
                with pytest.raises(NegotiationError):  # --auth-token is in force
                    await negotiate(f"{url}/hub")
                options = ConnectOptions(access_token="k")
                outcome = await negotiate(f"{url}/hub", options=options)
                assert outcome.result.connection_token

        anyio.run(check)
        proc.send_signal(stop)
        assert proc.wait(timeout=10) == 128 + stop  # as a shell reports a signalled program
        assert proc.stderr is not None
        err = proc.stderr.read()
        assert f"voxta-mock: stopped ({stop.name})" in err
        assert "Traceback" not in err
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


@pytest.mark.parametrize(("argv", "expected"), [
    (["--port", "99999"], "--port must be 0-65535"),
    (["--port", "x"], "invalid int value"),
    (["--reply-delay", "-1"], "--reply-delay must be >= 0"),
    (["--client-timeout", "-1"], "--client-timeout must be >= 0"),
    (["--log-level", "loud"], "invalid choice"),
    (["--no-such-option"], "unrecognized arguments"),
])
def test_bad_option_fails_without_traceback(argv: list[str], expected: str) -> None:
    result = subprocess.run([sys.executable, "-m", "voxta_mock", *argv], env=ENV,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.network
def test_port_in_use_is_one_clear_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "voxta_mock", "--port", str(port)],
                                env=ENV, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"voxta-mock: error: cannot listen on 127.0.0.1:{port}: ")


def test_options_map_to_the_server() -> None:
    defaults = server_options(_parser().parse_args([]), DEFAULT_DATA)
    assert (defaults["host"], defaults["port"], defaults["client_timeout"]) == (
        "127.0.0.1", 5384, 30.0)
    assert defaults["speech"] is False
    args = _parser().parse_args(["--host", "0.0.0.0", "--port", "0", "--seed", "9",
                                 "--auth-token", "t", "--reply-delay", "0.5",
                                 "--client-timeout", "0", "--speech", "--preseed-session",
                                 "--audio-gap-ms", "120", "--app-trigger-timeout", "2.5"])
    assert server_options(args, DEFAULT_DATA) == {
        "host": "0.0.0.0", "port": 0, "data": DEFAULT_DATA, "seed": 9, "auth_token": "t",
        "reply_delay": 0.5, "preseed_session": True, "speech": True,
        "client_timeout": None,  # 0 disables the silent-client drop
        "admin_token": None, "journal_size": 10_000, "verbose": 0,
        "silence_placeholders": False, "audio_gap_ms": 120, "app_trigger_timeout": 2.5}
    assert defaults["audio_gap_ms"] is None
    assert defaults["app_trigger_timeout"] == 10.0
    placeholders = server_options(_parser().parse_args(["--silence-placeholders"]),
                                  DEFAULT_DATA)
    assert placeholders["silence_placeholders"] is True
    assert placeholders["speech"] is False
    args = _parser().parse_args(["-vv", "--admin-token", "a", "--journal-size", "7"])
    options = server_options(args, DEFAULT_DATA)
    assert (options["verbose"], options["admin_token"], options["journal_size"]) == (2, "a", 7)


@pytest.mark.network
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_verbose_prints_each_message_and_vv_the_payload_redacted() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "voxta_mock", "--port", "0", "-vv",
                             "--reply-delay", "0", "--auth-token", "k"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[-1]

        async def talk() -> None:
            with anyio.fail_after(10):
                async with VoxtaClient(url, token="k", reconnect=()) as client:
                    await client.load_characters_list()
                await http_request("POST", url + "/api/nothing",
                                   body=b'{"apiKey":"s3cret","note":"kept"}',
                                   headers=[("Content-Type", "application/json")],
                                   options=ConnectOptions(access_token="k"))

        anyio.run(talk)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        assert proc.stderr is not None
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    lines = err.splitlines()
    assert any(re.search(r" <- authenticate \d+B \{", line) for line in lines), err
    assert any(re.search(r" -> welcome \d+B \{", line) for line in lines), err
    assert any(" <- loadCharactersList " in line for line in lines), err
    (rest,) = [line for line in lines if "POST /api/nothing" in line]
    assert "kept" in rest
    assert "s3cret" not in err


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / ("voxta-mock.exe" if sys.platform == "win32"
                                            else "voxta-mock")
    if not script.exists():
        pytest.skip(f"{script} not installed (the package is not installed in this venv)")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 0
    for option in ("--host", "--port", "--data", "--seed", "--auth-token", "--reply-delay",
                   "--log-level"):
        assert option in result.stdout
