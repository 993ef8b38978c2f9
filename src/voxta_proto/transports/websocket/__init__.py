"""WebSockets over anyio: the transport and
[`connect_websocket()`][voxta_proto.transports.websocket.transport.connect_websocket]
(``transport``),
the HTTP/WebSocket server (``server``), the upgrade over h11 (``handshake``) and the
pluggable sans-IO framing engines, wsproto or websockets (``engine``).

Imports anyio, h11 and the engines; the sans-IO core must never import this package.
"""

from __future__ import annotations

from voxta_proto.transports.websocket.engine import ENGINES, WebSocketEngine, create_engine
from voxta_proto.transports.websocket.server import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_MAX_PENDING_CONNECTIONS,
    DEFAULT_REQUEST_TIMEOUT,
    HttpApp,
    ServerAddress,
    WebSocketHandler,
    WebSocketUpgrade,
    serve,
    serve_listener,
)
from voxta_proto.transports.websocket.transport import (
    CLOSE_TIMEOUT,
    WRITE_TIMEOUT,
    WebSocketTransport,
    connect_websocket,
)

__all__ = [
    "CLOSE_TIMEOUT",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_MAX_PENDING_CONNECTIONS",
    "DEFAULT_REQUEST_TIMEOUT",
    "ENGINES",
    "WRITE_TIMEOUT",
    "HttpApp",
    "ServerAddress",
    "WebSocketEngine",
    "WebSocketHandler",
    "WebSocketTransport",
    "WebSocketUpgrade",
    "connect_websocket",
    "create_engine",
    "serve",
    "serve_listener",
]
