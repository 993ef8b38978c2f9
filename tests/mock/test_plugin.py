"""The pytest plugin as a third-party suite gets it: through the ``pytest11`` entry point
of the installed package, in a separate pytest run with no conftest of ours."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

THIRD_PARTY_TESTS = '''
import anyio
import pytest

from voxta_mock import FaultPlan, MockVoxtaServer
from voxta_proto.transports import negotiate

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_server_fixture(voxta_mock_server):
    assert isinstance(voxta_mock_server, MockVoxtaServer)
    with anyio.fail_after(10):
        outcome = await negotiate(voxta_mock_server.hub_url)
    assert outcome.result.connection_token


@pytest.mark.voxta_mock(faults=FaultPlan(refuse_handshake="not today"), seed=5)
async def test_pair_fixture_with_faults_per_test(voxta_mock_pair, voxta_mock_config):
    server, client = voxta_mock_pair
    assert voxta_mock_config["seed"] == 5
    with anyio.fail_after(10):
        await client.send('{"protocol":"json","version":1}\\x1e')
        assert "not today" in await client.receive()
'''


def test_a_third_party_suite_gets_the_fixtures_from_the_entry_point(tmp_path: Path) -> None:
    plugins = {e.name: e.value for e in entry_points(group="pytest11")}
    if plugins.get("voxta_mock") != "voxta_mock.pytest_plugin":
        pytest.skip("voxta-proto is not installed here, so its pytest11 entry point is not")
    (tmp_path / "test_third_party.py").write_text(THIRD_PARTY_TESTS)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error",
         str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
