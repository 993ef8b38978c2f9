"""``VoxtaClient``: the async facade over the sans-IO session and the anyio transports.

Keeps the method names, parameters and defaults of the ``voxta-client`` package, and
adds what it lacked: typed events, awaitable results, keep-alive and server timeout,
automatic (and stateful) reconnect, and errors instead of silent no-ops. It runs on
asyncio and trio (anyio); all protocol logic stays in `VoxtaClientSession`.

Two ways to use it:

```python
async with VoxtaClient("http://localhost:5384") as client:   # negotiate, connect, welcome
    started = await client.start_chat(character_id)

client = VoxtaClient("http://localhost:5384")                # the voxta-client way
token, cookies = await client.negotiate()
task = asyncio.create_task(client.connect(token, cookies))   # runs until close()
```
"""

from voxta_proto.client.api import VoxtaApi
from voxta_proto.client.audio import AudioInputStream
from voxta_proto.client.connection import VoxtaClient
from voxta_proto.client.events import (
    Closed,
    ConnectionEvent,
    EventStream,
    Ready,
    Reconnected,
    Reconnecting,
    event_name,
)
from voxta_proto.client.requests import DEFAULT_EVENT_BUFFER, DEFAULT_REQUEST_TIMEOUT
from voxta_proto.hub_client import DEFAULT_RECONNECT_DELAYS, ReconnectPolicy
from voxta_proto.voxta.session import ChatLost

__all__ = [
    "DEFAULT_EVENT_BUFFER",
    "DEFAULT_RECONNECT_DELAYS",
    "DEFAULT_REQUEST_TIMEOUT",
    "AudioInputStream",
    "ChatLost",
    "Closed",
    "ConnectionEvent",
    "EventStream",
    "Ready",
    "Reconnected",
    "Reconnecting",
    "ReconnectPolicy",
    "VoxtaApi",
    "VoxtaClient",
    "event_name",
]
