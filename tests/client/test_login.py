"""Device-flow login against the mock (API 2025-11 §3.6) and the token store."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import anyio
import pytest

from voxta_mock import MockVoxtaServer
from voxta_proto.client import VoxtaClient
from voxta_proto.client.login import (
    DeviceCode,
    check_token,
    config_dir,
    device_login,
    forget_token,
    load_token,
    poll_device_token,
    request_device_code,
    store_token,
    token_file,
)
from voxta_proto.errors import HandshakeRejected, NegotiationError, RestError

pytestmark = pytest.mark.anyio

TOKEN = "device-flow-key"
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


def test_config_dir_follows_xdg_config_home(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("APPDATA", str(tmp_path / "appdata"))
    root = tmp_path / ("appdata" if sys.platform == "win32" else "xdg")
    assert config_dir() == root / "voxta-proto"
    if sys.platform != "win32":
        monkeypatch.delenv("XDG_CONFIG_HOME")
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert config_dir() == tmp_path / "home" / ".config" / "voxta-proto"


@POSIX
def test_tokens_are_kept_per_server_for_the_owner_only() -> None:
    path = store_token("http://LocalHost:5384/hub/", "k1")
    store_token("https://other.example", "k2")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert load_token("http://localhost:5384") == "k1"
    assert load_token("ws://localhost:5384/hub") == "k1"
    assert load_token("http://localhost:5385") is None
    assert forget_token("http://localhost:5384")
    assert not forget_token("http://localhost:5384")
    assert load_token("http://localhost:5384") is None
    assert load_token("https://other.example/") == "k2"


def test_a_damaged_token_file_reads_as_empty() -> None:
    token_file().parent.mkdir(parents=True)
    token_file().write_text("[not, json")
    assert load_token("http://localhost:5384") is None
    store_token("http://localhost:5384", "k")
    assert load_token("http://localhost:5384") == "k"


@pytest.mark.voxta_mock(auth_token=TOKEN)
async def test_device_login_polls_until_approved_checks_and_stores(
        voxta_mock_server: MockVoxtaServer) -> None:
    shown: list[DeviceCode] = []

    async def approve_later(code: DeviceCode) -> None:
        shown.append(code)

    async def approver() -> None:
        while not shown:  # noqa: ASYNC110 (the callback above has no event to give)
            await anyio.sleep(0.01)
        device = voxta_mock_server.rest.devices[shown[0].device_code]
        while device.polls < 2:  # noqa: ASYNC110 (the mock counts polls, nothing more)
            await anyio.sleep(0.01)
        assert voxta_mock_server.rest.approve_device(shown[0].user_code)

    with anyio.fail_after(15):
        async with anyio.create_task_group() as tg:
            tg.start_soon(approver)
            token = await device_login(voxta_mock_server.url + "/hub", label="tests",
                                       on_code=approve_later, interval=0.02,
                                       first_delay=0.0)
    assert token == TOKEN
    assert shown[0].verification_url.endswith("/device")
    assert load_token(voxta_mock_server.url) == TOKEN
    with anyio.fail_after(10):
        async with VoxtaClient(voxta_mock_server.url) as client:  # the stored key
            assert client.welcome is not None


@pytest.mark.voxta_mock(auth_token=TOKEN)
async def test_voxta_client_login_uses_the_new_key(voxta_mock_server: MockVoxtaServer) -> None:
    client = VoxtaClient(voxta_mock_server.url, use_stored_token=False)
    with anyio.fail_after(10):
        with pytest.raises((NegotiationError, HandshakeRejected)):
            async with client:
                pass
        token = await client.login(
            on_code=lambda code: voxta_mock_server.rest.approve_device(code.user_code),
            store=False)
        assert token == TOKEN
        async with client:
            assert client.welcome is not None
    assert load_token(voxta_mock_server.url) is None


@pytest.mark.voxta_mock(auth_token=TOKEN)
async def test_expired_codes_and_bad_keys_are_errors(voxta_mock_server: MockVoxtaServer) -> None:
    url = voxta_mock_server.url
    with anyio.fail_after(10):
        with pytest.raises(RestError) as expired:
            await poll_device_token(url, DeviceCode("AAAA-BBBB", "x", "no-such-code"),
                                    first_delay=0.0)
        assert expired.value.status_code == 400
        with pytest.raises(ValueError, match="scope"):
            await request_device_code(url, scope="role:admin")
        assert await check_token(url, TOKEN)
        assert not await check_token(url, "wrong")
        code = await request_device_code(url, label="tests")
        with pytest.raises(TimeoutError):
            await poll_device_token(url, code, first_delay=0.0, interval=0.01, timeout=0.2)
