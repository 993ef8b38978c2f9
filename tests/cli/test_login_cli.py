"""``voxta login`` in a subprocess against an in-process mock whose device codes are
approved explicitly (``rest.approve_device``), then ``voxta chat`` with the stored key."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import anyio
import msgspec
import pytest

from voxta_mock import MockVoxtaServer

from .programs import ENV, VOXTA

pytestmark = [pytest.mark.anyio, pytest.mark.network]

TOKEN = "cli-device-key"


def isolated_env(tmp_path: Path) -> dict[str, str]:
    """HOME and the config directories inside ``tmp_path``."""
    return {**ENV, "HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
            "APPDATA": str(tmp_path / "xdg")}


async def test_login_prints_the_code_waits_for_approval_and_chat_uses_the_key(
        tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    async with MockVoxtaServer(port=0, auth_token=TOKEN, reply_delay=0) as server:
        with anyio.fail_after(60):
            process = await anyio.open_process(
                [sys.executable, *VOXTA, "login", "--url", server.url + "/hub",
                 "--label", "cli test", "--poll-interval", "0.05"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            async with process:
                assert process.stdout is not None
                output = b""
                while b"Waiting for approval" not in output:
                    chunk = await process.stdout.receive()
                    output += chunk
                text = output.decode()
                code = text.split("enter the code: ")[1].split()[0]
                assert f"open {server.url}/device" in text
                [device] = server.rest.devices.values()
                assert device.label == "cli test"
                await anyio.sleep(0.2)
                assert device.polls >= 1  # pending polls came first
                assert server.rest.approve_device(code)
                rest = b""
                async for chunk in process.stdout:
                    rest += chunk
                status = await process.wait()
        assert status == 0, rest
        stored = tmp_path / "xdg" / "voxta-proto" / "tokens.json"
        assert f"the key is stored in {stored}" in rest.decode()
        assert msgspec.json.decode(stored.read_bytes()) == {server.url: TOKEN}
        if sys.platform != "win32":
            assert stat.S_IMODE(os.stat(stored).st_mode) == 0o600
            assert stat.S_IMODE(os.stat(stored.parent).st_mode) == 0o700

        with anyio.fail_after(60):
            chat = await anyio.run_process(
                [sys.executable, *VOXTA, "chat", "--url", server.url, "-m", "hi"],
                env=env, check=False)
        assert chat.returncode == 0, chat.stderr.decode()
        assert chat.stdout.strip()

        with anyio.fail_after(60):  # another user (no stored key): refused, with a hint
            other = await anyio.run_process(
                [sys.executable, *VOXTA, "chat", "--url", server.url, "-m", "hi"],
                env=isolated_env(tmp_path / "other"), check=False)
        assert other.returncode == 1
        assert "run voxta login --url" in other.stderr.decode()


async def test_an_unapproved_login_times_out_with_one_error_line(tmp_path: Path) -> None:
    async with MockVoxtaServer(port=0, auth_token=TOKEN, reply_delay=0) as server:
        with anyio.fail_after(60):
            result = await anyio.run_process(
                [sys.executable, *VOXTA, "login", "--url", server.url, "--timeout", "0.3",
                 "--poll-interval", "0.05"], env=isolated_env(tmp_path), check=False)
    assert result.returncode == 1
    err = result.stderr.decode().strip().splitlines()
    assert err == ["voxta: error: login failed: not approved within 0.3 s"]
    assert not (tmp_path / "xdg" / "voxta-proto" / "tokens.json").exists()
