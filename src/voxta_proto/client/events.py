"""Events the client makes about its connection, their ``on()`` names, and ``events()``."""

from __future__ import annotations

import difflib
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Union

import anyio

from voxta_proto.voxta.codec import SERVER_MESSAGE_TYPES
from voxta_proto.voxta.server_messages import (
    ReplyThinking,
    ServerMessage,
)
from voxta_proto.voxta.session import ChatLost as ChatLost  # re-exported: a client event

# ------------------------------------------------------------------------ client events


@dataclass(frozen=True)
class Ready:
    """A chat session is pinned (``chatStarted`` or auto-subscribe); ``on("ready")`` gets
    the session id, like voxta-client, while ``events()`` yields this object."""

    session_id: str


@dataclass(frozen=True)
class Reconnecting:
    """The connection dropped; attempt ``attempt`` starts after ``delay`` seconds."""

    attempt: int
    delay: float
    error: str | None


@dataclass(frozen=True)
class Reconnected:
    """We are back: ``stateful`` means the same session resumed with nothing lost."""

    stateful: bool


@dataclass(frozen=True)
class Closed:
    """The connection is over for good (``close()``, refusal, or reconnect gave up)."""

    error: str | None


ConnectionEvent = Union[Ready, Reconnecting, Reconnected, Closed, ChatLost]
"""Events the client itself makes about its connection, next to the server's messages
(not to be confused with
[`voxta_proto.voxta.codec.ClientEvent`][voxta_proto.voxta.codec.ClientEvent], what a client
sends)."""

_CLIENT_EVENT_NAMES: Final[Mapping[type[object], str]] = {
    Ready: "ready",
    Reconnecting: "reconnecting",
    Reconnected: "reconnected",
    Closed: "close",
    ChatLost: "chatLost",
}


EVENT_NAMES: Final[frozenset[str]] = frozenset(
    (*SERVER_MESSAGE_TYPES, *_CLIENT_EVENT_NAMES.values()))
"""Every name ``on()`` and ``wait_for()`` accept: each server message's ``$type`` in the
catalog, and the client's own ``ready``/``reconnecting``/``reconnected``/``close``."""


def check_event_name(name: str) -> str:
    """``name`` if it is in [`EVENT_NAMES`][voxta_proto.client.events.EVENT_NAMES]; else
    ValueError with the closest names, so a typo (``"replychunk"``) fails at once instead
    of registering a callback that never fires."""
    if not isinstance(name, str):
        raise TypeError(f"an event name is a str, not {type(name).__name__}")
    if name in EVENT_NAMES:
        return name
    if name == "message":
        raise ValueError("'message' is a legacy voxta-client event name that Voxta servers "
                         "never send: a character's reply arrives as 'replyChunk' pieces and "
                         "'replyEnd', a changed message as 'update'")
    folded = {known.casefold(): known for known in EVENT_NAMES}
    close = ([folded[name.casefold()]] if name.casefold() in folded
             else difflib.get_close_matches(name, sorted(EVENT_NAMES), n=3))
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"unknown event name {name!r}{hint} (a server message $type such "
                     f"as 'replyChunk', or ready/reconnecting/reconnected/close)")


_EVENT_NAMES: dict[type[object], str] = {**_CLIENT_EVENT_NAMES, ReplyThinking: "replyThink"}
"""Every event class's name, filled in as messages arrive (one lookup per event).
``replyThinking`` is an alias of ``replyThink`` (API 2025-11 §5), so callbacks and
``wait_for("replyThink")`` see both."""


def event_name(event: ServerMessage | ConnectionEvent) -> str:
    """The name ``on()`` uses for an event: a message's ``$type`` or ``ready``/``close``/..."""
    kind = type(event)
    name = _EVENT_NAMES.get(kind)
    if name is None:
        if not isinstance(event, ServerMessage):
            raise KeyError(kind)
        tag = type(event).__struct_config__.tag
        name = _EVENT_NAMES[kind] = tag if isinstance(tag, str) else kind.__name__
    return name



Callback = Callable[[Any], Any]



class _EventQueue:
    """A bounded FIFO without anyio resources, so a consumer that just stops iterating
    (``break``) leaks nothing and warns about nothing."""

    def __init__(self, size: int) -> None:
        self.items: deque[ServerMessage | ConnectionEvent] = deque()
        self.size = max(1, size)
        self.closed = False
        self.not_empty = anyio.Event()
        self.not_full = anyio.Event()

    async def put(self, item: ServerMessage | ConnectionEvent) -> None:
        while len(self.items) >= self.size and not self.closed:
            self.not_full = anyio.Event()
            await self.not_full.wait()
        if not self.closed:
            self.items.append(item)
            self.not_empty.set()

    async def get(self) -> ServerMessage | ConnectionEvent:
        while not self.items:
            if self.closed:
                raise StopAsyncIteration
            self.not_empty = anyio.Event()
            await self.not_empty.wait()
        item = self.items.popleft()
        self.not_full.set()
        return item

    def close(self) -> None:
        self.closed = True
        self.not_empty.set()
        self.not_full.set()


class EventStream:
    """``client.events()``: an async iterator over one bounded queue; dropping or
    closing it unsubscribes (so it never blocks the dispatcher)."""

    def __init__(self, size: int) -> None:
        self._queue = _EventQueue(size)
        weakref.finalize(self, self._queue.close)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> ServerMessage | ConnectionEvent:
        return await self._queue.get()

    async def aclose(self) -> None:
        """Unsubscribe: iteration ends after what is already queued."""
        self._queue.close()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Unsubscribe, as ``aclose()``."""
        self._queue.close()
