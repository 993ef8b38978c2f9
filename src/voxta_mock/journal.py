"""The journal: what the mock saw and said, so a test can ask what a client sent.

The server records every hub message in both directions, every REST call and every
audio-stream frame, each with a sequence number and a time from the server's clock. The
journal is bounded: past ``maxlen`` the oldest entries go and
[`Journal.dropped`][voxta_mock.journal.Journal.dropped]
counts them, so a long-running mock in CI cannot grow without limit.

The server calls (see the admin guide for where):

* [`Journal.record_received()`][voxta_mock.journal.Journal.record_received] /
  [`Journal.record_sent()`][voxta_mock.journal.Journal.record_sent] for hub messages;
* [`Journal.record_rest()`][voxta_mock.journal.Journal.record_rest] for each ``/api/...`` call (not
  for ``/_mock/...``);
* [`Journal.record_audio()`][voxta_mock.journal.Journal.record_audio] for each audio-stream frame.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, TypeVar, Union, overload

import msgspec

from voxta_mock.matching import MessagePattern, message_type_name, wire_form
from voxta_proto.transports import HttpRequest, HttpResponse
from voxta_proto.voxta import (
    ClientMessage,
    InvalidClientMessage,
    InvalidServerMessage,
    ServerMessage,
    UnknownServerMessage,
)

__all__ = [
    "DEFAULT_MAXLEN",
    "AudioEntry",
    "Direction",
    "HubEntry",
    "Journal",
    "JournalEntry",
    "ReceivedMessage",
    "RestEntry",
    "SentMessage",
    "entry_json",
]

DEFAULT_MAXLEN: Final = 10_000
MessageT = TypeVar("MessageT")

ReceivedMessage = Union[ClientMessage, InvalidClientMessage]
"""A client message as the server read it (one that did not bind is kept too)."""
SentMessage = Union[ServerMessage, UnknownServerMessage, InvalidServerMessage]
"""A server message as queued for a client."""


class Direction(str, Enum):
    """Seen from the mock: ``received`` from a client, ``sent`` to one."""

    RECEIVED = "received"
    SENT = "sent"


@dataclass(frozen=True)
class HubEntry:
    """One Voxta hub message (``SendMessage`` argument in, ``ReceiveMessage`` out)."""

    seq: int
    time: float
    direction: Direction
    connection: str
    session_id: str | None
    message: ReceivedMessage | SentMessage

    @property
    def type_name(self) -> str | None:
        """The message's wire ``$type``."""
        return message_type_name(self.message)


@dataclass(frozen=True)
class RestEntry:
    """One REST call and the status it got; ``body`` is the decoded JSON when it was JSON."""

    seq: int
    time: float
    connection: str | None
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    status: int
    body: Any
    direction: Direction = Direction.RECEIVED
    session_id: str | None = None


@dataclass(frozen=True)
class AudioEntry:
    """One frame of an audio input stream: its size, and the stream's spec when known."""

    seq: int
    time: float
    connection: str
    session_id: str | None
    size: int
    spec: Any
    binary: bool = True
    """False for a text frame (the JSON spec)."""
    direction: Direction = Direction.RECEIVED


JournalEntry = Union[HubEntry, RestEntry, AudioEntry]

_KINDS: Final = {"rest": RestEntry, "audio": AudioEntry}
"""``type`` filter names that select a whole entry class rather than a ``$type``."""


def _json_body(request: HttpRequest) -> Any:
    if not request.body:
        return None
    content_type = (request.header("content-type") or "").lower()
    if "json" not in content_type and request.body[:1] not in (b"{", b"["):
        return None
    try:
        return msgspec.json.decode(request.body)
    except msgspec.DecodeError:
        return None


class Journal:
    """A bounded, ordered record of the mock's traffic.

    Args:
        clock: the server's clock (seconds); every entry gets its time from it.
        maxlen: how many entries to keep; older ones are dropped and counted.
    """

    def __init__(self, *, clock: Callable[[], float], maxlen: int = DEFAULT_MAXLEN) -> None:
        if maxlen < 1:
            raise ValueError("maxlen must be >= 1")
        self._clock = clock
        self._entries: deque[JournalEntry] = deque(maxlen=maxlen)
        self._seq = 0
        self.dropped = 0
        """Entries pushed out by ``maxlen`` since the last
        [`clear()`][voxta_mock.journal.Journal.clear]."""

    @property
    def maxlen(self) -> int:
        """How many entries are kept."""
        maxlen = self._entries.maxlen
        assert maxlen is not None  # always set in __init__
        return maxlen

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest entry ever recorded (0 before any)."""
        return self._seq

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[JournalEntry]:
        """The entries kept, oldest first (a snapshot: recording meanwhile is safe)."""
        return iter(tuple(self._entries))

    def _next(self) -> tuple[int, float]:
        self._seq += 1
        if len(self._entries) == self.maxlen:
            self.dropped += 1
        return self._seq, self._clock()

    def _hub(self, direction: Direction, connection: str, message: ReceivedMessage | SentMessage,
             session_id: str | None) -> HubEntry:
        seq, now = self._next()
        if session_id is None:
            found = getattr(message, "session_id", None)
            session_id = found if isinstance(found, str) else None
        entry = HubEntry(seq, now, direction, connection, session_id, message)
        self._entries.append(entry)
        return entry

    def record_received(self, connection: str, message: ReceivedMessage, *,
                        session_id: str | None = None) -> HubEntry:
        """A client message the server read (invalid ones too). ``session_id`` defaults
        to the message's own ``sessionId``."""
        return self._hub(Direction.RECEIVED, connection, message, session_id)

    def record_sent(self, connection: str, message: SentMessage, *,
                    session_id: str | None = None) -> HubEntry:
        """A server message queued for a connection."""
        return self._hub(Direction.SENT, connection, message, session_id)

    def record_rest(self, request: HttpRequest, response: HttpResponse, *,
                    connection: str | None = None) -> RestEntry:
        """A REST call and its response; ``connection`` defaults to the peer address."""
        seq, now = self._next()
        if connection is None and request.client is not None:
            connection = f"{request.client[0]}:{request.client[1]}"
        entry = RestEntry(seq, now, connection, request.method.upper(), request.path,
                          request.query, response.status, _json_body(request))
        self._entries.append(entry)
        return entry

    def record_audio(self, connection: str, *, session_id: str | None, size: int,
                     spec: Any = None, binary: bool = True) -> AudioEntry:
        """One audio-stream frame (``binary`` False for the JSON spec frame)."""
        seq, now = self._next()
        entry = AudioEntry(seq, now, connection, session_id, size, spec, binary)
        self._entries.append(entry)
        return entry

    def clear(self) -> None:
        """Forget every entry and the dropped count; sequence numbers keep rising, so a
        client polling with ``since`` never sees a number twice."""
        self._entries.clear()
        self.dropped = 0

    # -- queries -----------------------------------------------------------------------

    def entries(self, *, kind: type | str | None = None, direction: Direction | None = None,
                session_id: str | None = None, connection: str | None = None,
                since: int = 0, **fields: object) -> list[JournalEntry]:
        """Entries that pass every filter given.

        Args:
            kind: a message class, a ``$type`` name, or ``"rest"``/``"audio"`` for those
                entries.
            direction: received or sent.
            session_id: the Voxta session id.
            connection: the connection key.
            since: only entries with a greater sequence number.
            fields: field tests on the message (see
                [`MessagePattern`][voxta_mock.matching.MessagePattern]).
        """
        return self._select(kind, direction, session_id, connection, since, fields)

    def _select(self, kind: type | str | None, direction: Direction | None,
                session_id: str | None, connection: str | None, since: int,
                fields: dict[str, object]) -> list[JournalEntry]:
        entry_class = _KINDS.get(kind) if isinstance(kind, str) else None
        pattern = (MessagePattern(kind, fields)
                   if entry_class is None and (kind is not None or fields) else None)
        found: list[JournalEntry] = []
        for entry in self._entries:
            if entry.seq <= since or (direction is not None and entry.direction != direction):
                continue
            if session_id is not None and entry.session_id != session_id:
                continue
            if connection is not None and entry.connection != connection:
                continue
            if entry_class is not None and not isinstance(entry, entry_class):
                continue
            if pattern is not None and not (isinstance(entry, HubEntry)
                                            and pattern.matches(entry.message)):
                continue
            found.append(entry)
        return found

    @overload
    def received(self, kind: type[MessageT], /, *, session_id: str | None = None,
                 connection: str | None = None, **fields: object) -> list[MessageT]: ...
    @overload
    def received(self, kind: str | None = None, /, *, session_id: str | None = None,
                 connection: str | None = None, **fields: object) -> list[ReceivedMessage]: ...

    def received(self, kind: type | str | None = None, /, *, session_id: str | None = None,
                 connection: str | None = None, **fields: object) -> list[Any]:
        """The client messages that match, oldest first: ``received(Send, text="hi")``."""
        return self._messages(Direction.RECEIVED, kind, session_id, connection, fields)

    @overload
    def sent(self, kind: type[MessageT], /, *, session_id: str | None = None,
             connection: str | None = None, **fields: object) -> list[MessageT]: ...
    @overload
    def sent(self, kind: str | None = None, /, *, session_id: str | None = None,
             connection: str | None = None, **fields: object) -> list[SentMessage]: ...

    def sent(self, kind: type | str | None = None, /, *, session_id: str | None = None,
             connection: str | None = None, **fields: object) -> list[Any]:
        """The server messages that match, oldest first."""
        return self._messages(Direction.SENT, kind, session_id, connection, fields)

    def _messages(self, direction: Direction, kind: type | str | None,
                  session_id: str | None, connection: str | None,
                  fields: dict[str, object]) -> list[Any]:
        return [entry.message
                for entry in self._select(kind, direction, session_id, connection, 0, fields)
                if isinstance(entry, HubEntry)]

    # -- JSON --------------------------------------------------------------------------

    def to_json(self, entries: Iterable[JournalEntry] | None = None) -> dict[str, Any]:
        """The admin API's journal body: entries (hub messages in their wire form),
        ``dropped`` and ``lastSeq`` (pass it back as ``since`` to poll)."""
        chosen = self._entries if entries is None else entries
        return {"entries": [entry_json(e) for e in chosen], "dropped": self.dropped,
                "lastSeq": self._seq}


def entry_json(entry: JournalEntry) -> dict[str, Any]:
    """One entry as JSON-ready builtins; a hub message keeps its wire form."""
    head: dict[str, Any] = {"seq": entry.seq, "time": entry.time,
                            "direction": entry.direction.value,
                            "connection": entry.connection, "sessionId": entry.session_id}
    if isinstance(entry, HubEntry):
        head.update(kind="hub", type=entry.type_name, message=wire_form(entry.message))
        if isinstance(entry.message, (InvalidClientMessage, InvalidServerMessage)):
            head["error"] = entry.message.error
        return head
    if isinstance(entry, RestEntry):
        head.update(kind="rest", method=entry.method, path=entry.path,
                    query=[list(pair) for pair in entry.query], status=entry.status,
                    body=entry.body)
        return head
    head.update(kind="audio", size=entry.size, binary=entry.binary, spec=entry.spec)
    return head
