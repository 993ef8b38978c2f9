"""The top-level package: what it exports, and that importing it stays sans-IO."""

from __future__ import annotations

import subprocess
import sys

import voxta_proto


def test_importing_the_core_loads_no_io_library() -> None:
    code = (
        "import sys, voxta_proto, voxta_proto.hub, voxta_proto.voxta\n"
        "loaded = sorted(m for m in ('anyio', 'h11', 'wsproto', 'trio', 'voxta_proto.client',"
        " 'voxta_proto.transports') if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == ""


def test_voxta_client_is_exported_lazily() -> None:
    from voxta_proto.client import VoxtaClient

    assert voxta_proto.VoxtaClient is VoxtaClient


def test_every_name_in_all_exists() -> None:
    missing = [name for name in voxta_proto.__all__ if not hasattr(voxta_proto, name)]
    assert missing == []
