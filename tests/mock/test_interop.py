"""Third-party clients against the mock: voxta-client (PyPI) in its own virtualenv.

Run by ``nox -s interop``, which builds ``.interop/voxta-client-venv``; the default test
run skips these unless that virtualenv (or ``VOXTA_CLIENT_PYTHON``) exists.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest

from voxta_mock import MockVoxtaServer

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent / "interop"
_VENV_BIN = "Scripts" if sys.platform == "win32" else "bin"
CLIENT_PYTHON = Path(os.environ.get("VOXTA_CLIENT_PYTHON")
                     or ROOT / ".interop" / "voxta-client-venv" / _VENV_BIN / "python")

pytestmark = [pytest.mark.interop, pytest.mark.network, pytest.mark.anyio]


@pytest.mark.skipif(not CLIENT_PYTHON.exists(), reason="voxta-client virtualenv not built "
                    "(nox -s interop)")
async def test_voxta_client_quick_start() -> None:
    with anyio.fail_after(60):
        async with MockVoxtaServer(port=0, preseed_session=True, reply_delay=0.01) as server:
            result = await anyio.run_process(
                [str(CLIENT_PYTHON), str(HERE / "voxta_client_quickstart.py"), server.url],
                check=False)
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0, output
    assert "reply:" in output
