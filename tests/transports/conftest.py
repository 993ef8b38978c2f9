"""Fixtures for the transport tests: a clean proxy environment and test-time TLS certificates."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback tests must not go through whatever proxy the CI box has configured."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_ssl_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost", "::1").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def client_ssl_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(context)
    return context


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(params=["wsproto", "websockets"])
def websocket_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test once per WebSocket engine: every connection it opens or serves (client
    and server side) uses that engine, whatever the code under test asked for."""
    from voxta_proto.transports.websocket import engine, server, transport

    name: str = request.param
    real = engine.create_engine

    def forced(_name: str, **kwargs: Any) -> engine.WebSocketEngine:
        return real(name, **kwargs)

    monkeypatch.setattr(transport, "create_engine", forced)
    monkeypatch.setattr(server, "create_engine", forced)
    return name
