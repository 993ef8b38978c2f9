"""anyio transports: h11 for negotiate, wsproto for WebSockets (client and server), and an
in-memory pair; the sans-IO core must never import this package.

Every library exception (anyio, h11, wsproto, ssl, OSError) is mapped to the
[`voxta_proto.errors`][voxta_proto.errors] tree at this edge.
"""

from __future__ import annotations

from voxta_proto.transports.base import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    ConnectOptions,
    Connector,
    HeaderInput,
    MessageTransport,
    map_exceptions,
)
from voxta_proto.transports.http import (
    DEFAULT_HTTP_TIMEOUT,
    USER_AGENT,
    HttpRequest,
    HttpResponse,
    NegotiateOutcome,
    http_request,
    negotiate,
)
from voxta_proto.transports.memory import MemoryTransport, memory_transport_pair
from voxta_proto.transports.websocket import (
    CLOSE_TIMEOUT,
    HttpApp,
    ServerAddress,
    WebSocketHandler,
    WebSocketTransport,
    WebSocketUpgrade,
    connect_websocket,
    serve,
    serve_listener,
)

__all__ = [
    "CLOSE_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_HTTP_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "USER_AGENT",
    "ConnectOptions",
    "Connector",
    "HeaderInput",
    "HttpApp",
    "HttpRequest",
    "HttpResponse",
    "MemoryTransport",
    "MessageTransport",
    "NegotiateOutcome",
    "ServerAddress",
    "WebSocketHandler",
    "WebSocketTransport",
    "WebSocketUpgrade",
    "connect_websocket",
    "http_request",
    "map_exceptions",
    "memory_transport_pair",
    "negotiate",
    "serve",
    "serve_listener",
]
