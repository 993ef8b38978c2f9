"""Cassettes: a recorded Voxta session as JSON lines, and the rules to replay one.

A cassette is what ``voxta-mock record`` writes while it proxies a real server: one JSON
object per line, in the order things happened. The first line is a header; every other
line is an *entry* with a relative time ``t`` (seconds), a connection number ``conn`` and
a ``kind``:

* ``http``: one request and its response (negotiate, REST), bodies as JSON where they are;
* ``ws``: a WebSocket opening (``event: "open"``, its target) or closing (``"close"``,
  who closed, code and reason);
* ``hub``: one SignalR record in one direction (``dir``: ``"client"`` or ``"server"``),
  ``message`` being the record's JSON exactly as it crossed the wire (a message the
  catalog does not know is kept like any other); ``type`` names it for people and
  filters (the Voxta ``$type`` for Voxta messages, else the hub message type);
* ``audio``: one binary audio frame (its size, and the file it was saved to, if any).

Replaying is the mock's side of a recorded hub connection:
[`HubReplay`][voxta_mock.cassette.HubReplay] is handed
each message a client sends and returns what the server sent after the recorded one,
with its delay. Ids the server generated are kept as recorded; ids the client generated
(invocation ids, message ids it chose) are mapped to the ones the live client uses, so a
replay depends on neither. A client that departs from the recording gets
[`ReplayMismatch`][voxta_mock.cassette.ReplayMismatch], which names the first message that differs.

No I/O here except [`load_cassette()`][voxta_mock.cassette.load_cassette], which reads a file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from voxta_proto.hub import HUB_MESSAGE_TYPES

__all__ = [
    "CASSETTE_VERSION",
    "REDACTED",
    "Cassette",
    "CassetteError",
    "HubReplay",
    "ReplayMismatch",
    "ReplayStep",
    "describe_record",
    "load_cassette",
]

CASSETTE_VERSION: Final = 1
"""The ``version`` a cassette's header line carries."""

REDACTED: Final = "<redacted>"
"""What stands in a cassette for a token, a cookie or an ``Authorization`` value."""

HUB_TYPE_NAMES: Final[Mapping[int, str]] = {
    number: kind.__name__ for number, kind in HUB_MESSAGE_TYPES.items()}
"""SignalR hub message type numbers and their names."""

_CLIENT_DRIVEN: Final = frozenset({1, 4, 5})
"""Client messages a replay compares and answers: invocations and their cancellations.
Pings, Acks, Sequences and Completions are the hub's own business on each side."""

_REPLAYED: Final = frozenset({1, 2, 3, 7})
"""Server messages a replay sends again (its own hub makes Pings, Acks and Sequences)."""

_GUID: Final = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


class CassetteError(ValueError):
    """A cassette file that cannot be read: not JSON lines, no header, a newer version."""


class ReplayMismatch(Exception):
    """A client sent something other than what the recording has next.

    Attributes:
        index: which client message of the connection (0-based) differs.
        expected: the recorded message (``None``: the recording had no more).
        received: what the client sent.
        path: where in the message the first difference is (e.g. ``arguments[0].text``).
        connection: which recorded hub connection (0-based), when known.
    """

    def __init__(self, index: int, expected: object, received: object, path: str,
                 connection: int | None = None) -> None:
        self.index = index
        self.expected = expected
        self.received = received
        self.path = path
        self.connection = connection
        if expected is None:
            what = "the recording has no more client messages"
        else:
            what = f"expected {describe_record(expected)}, differing at {path or 'the top'}"
        where = "" if connection is None else f" on hub connection #{connection + 1}"
        super().__init__(
            f"client message #{index + 1}{where} departs from the recording: got "
            f"{describe_record(received)}; {what}\n"
            f"  recorded: {_short(expected)}\n  received: {_short(received)}")


def _short(value: object, limit: int = 300) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_record(record: object) -> str:
    """A short name for a hub record: the Voxta ``$type`` when it carries one, else the
    hub message type (``Ping``, ``Completion``...), else ``handshake``."""
    if not isinstance(record, Mapping):
        return type(record).__name__
    kind = record.get("type")
    if kind in (1, 4):
        arguments = record.get("arguments")
        if isinstance(arguments, list) and arguments and isinstance(arguments[0], Mapping):
            name = arguments[0].get("$type")
            if isinstance(name, str):
                return name
        return f"{HUB_TYPE_NAMES[kind]} {record.get('target')}"
    if isinstance(kind, int):
        return HUB_TYPE_NAMES.get(kind, f"type {kind}")
    return "handshake"


@dataclass(frozen=True, slots=True)
class Cassette:
    """A loaded cassette: its header and its entries in recorded order."""

    header: Mapping[str, Any]
    entries: tuple[Mapping[str, Any], ...]

    def hub_connections(self) -> list[list[Mapping[str, Any]]]:
        """The ``hub`` entries of each connection that carried hub records, connections in
        the order they opened."""
        by_conn: dict[int, list[Mapping[str, Any]]] = {}
        for entry in self.entries:
            if entry.get("kind") == "hub":
                by_conn.setdefault(int(entry["conn"]), []).append(entry)
        return [by_conn[conn] for conn in sorted(by_conn)]

    def http_exchanges(self) -> list[Mapping[str, Any]]:
        """The ``http`` entries (negotiate and REST), in order."""
        return [entry for entry in self.entries if entry.get("kind") == "http"]

    def replays(self) -> Iterator[HubReplay]:
        """One [`HubReplay`][voxta_mock.cassette.HubReplay] per recorded hub connection, in
        order."""
        for number, entries in enumerate(self.hub_connections()):
            yield HubReplay(entries, connection=number)


def load_cassette(path: str | Path) -> Cassette:
    """Read a cassette file.

    Raises:
        CassetteError: the file is not a cassette this version can read.
        OSError: the file cannot be read.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    rows: list[Mapping[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CassetteError(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise CassetteError(f"{path}:{number}: each line must be a JSON object")
        rows.append(row)
    if not rows or rows[0].get("cassette") != "voxta-mock":
        raise CassetteError(f"{path}: no voxta-mock cassette header on the first line")
    version = rows[0].get("version")
    if not isinstance(version, int) or version > CASSETTE_VERSION:
        raise CassetteError(f"{path}: cassette version {version!r} is newer than this "
                            f"voxta-mock reads ({CASSETTE_VERSION})")
    return Cassette(rows[0], tuple(rows[1:]))


@dataclass(frozen=True, slots=True)
class ReplayStep:
    """A recorded server record to send, ``delay`` seconds (as recorded) after the one
    before it (or after the client message that it answers)."""

    delay: float
    message: Mapping[str, Any]


def _is_id_key(key: str) -> bool:
    return key == "invocationId" or key.endswith(("Id", "Ids", "_id")) or key == "id"


@dataclass
class HubReplay:
    """Replays one recorded hub connection, message by message.

    Feed it each hub message the live client sends (its JSON, as a dict) with
    [`on_client()`][voxta_mock.cassette.HubReplay.on_client]; it returns the server records that
    followed the recorded one. Records the server sent before the first client message are in
    [`opening()`][voxta_mock.cassette.HubReplay.opening].
    """

    entries: Sequence[Mapping[str, Any]]
    connection: int | None = None
    """Which recorded hub connection this is (0-based), for error messages."""
    _position: int = 0
    _client_index: int = 0
    _mapping: dict[str, str] = field(default_factory=dict)
    _invocations: dict[str, str] = field(default_factory=dict)
    _server_values: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._skip_handshake()

    def _skip_handshake(self) -> None:
        while self._position < len(self.entries):
            message = self.entries[self._position].get("message")
            if isinstance(message, Mapping) and "type" not in message:
                self._position += 1  # a handshake record: the live hub does its own
            else:
                return

    @property
    def finished(self) -> bool:
        """Every recorded client message has been matched."""
        return self._next_client() is None

    @property
    def matched(self) -> int:
        """How many client messages matched so far."""
        return self._client_index

    def opening(self) -> list[ReplayStep]:
        """Server records sent before the first client message (usually none)."""
        return self._server_run(None)

    def _next_client(self) -> int | None:
        for index in range(self._position, len(self.entries)):
            entry = self.entries[index]
            message = entry.get("message")
            if (entry.get("dir") == "client" and isinstance(message, Mapping)
                    and message.get("type") in _CLIENT_DRIVEN):
                return index
        return None

    def on_client(self, message: Mapping[str, Any]) -> list[ReplayStep]:
        """Match a live client hub message against the recording and return what the
        server answered, with recorded delays and mapped ids.

        Messages the replay does not compare (pings, acks, completions) return ``[]``.

        Raises:
            ReplayMismatch: the message differs from the next recorded client message.
        """
        if message.get("type") not in _CLIENT_DRIVEN:
            return []
        index = self._next_client()
        if index is None:
            raise ReplayMismatch(self._client_index, None, dict(message), "", self.connection)
        expected = self.entries[index]["message"]
        mapping = dict(self._mapping)
        received = dict(message)
        recorded_id, live_id = expected.get("invocationId"), received.pop("invocationId", None)
        expected = {key: value for key, value in expected.items() if key != "invocationId"}
        path = self._compare(expected, received, "", mapping)
        if path is None and (recorded_id is None) != (live_id is None):
            path = "invocationId"  # one waits for a Completion, the other does not
        if path is not None:
            raise ReplayMismatch(self._client_index, self.entries[index]["message"],
                                 dict(message), path, self.connection)
        self._mapping = mapping
        if recorded_id is not None:
            self._invocations[str(recorded_id)] = str(live_id)
        self._client_index += 1
        self._position = index + 1
        return self._server_run(float(self.entries[index].get("t", 0.0)))

    def _server_run(self, since: float | None) -> list[ReplayStep]:
        """The server records from the current position up to the next client-driven
        message, their delays measured from ``since`` (None: no delay for the first)."""
        steps: list[ReplayStep] = []
        stop = self._next_client()
        end = len(self.entries) if stop is None else stop
        previous = since
        for entry in self.entries[self._position:end]:
            message = entry.get("message")
            if entry.get("dir") != "server" or not isinstance(message, Mapping):
                continue
            if message.get("type") not in _REPLAYED:
                continue
            t = float(entry.get("t", 0.0))
            delay = 0.0 if previous is None else max(0.0, t - previous)
            previous = t
            self._remember(message)
            steps.append(ReplayStep(delay, self._substitute(message)))
        self._position = end
        return steps

    def _remember(self, value: object) -> None:
        if isinstance(value, str):
            self._server_values.add(value)
        elif isinstance(value, Mapping):
            for item in value.values():
                self._remember(item)
        elif isinstance(value, list):
            for item in value:
                self._remember(item)

    def _substitute(self, value: Any) -> Any:
        """The record with the client's ids in place of the recorded ones: invocation
        ids only where they stand as ``invocationId``, other ids wherever they occur."""
        if isinstance(value, str):
            return self._mapping.get(value, value)
        if isinstance(value, Mapping):
            return {key: (self._invocations.get(item, item)
                          if key == "invocationId" and isinstance(item, str)
                          else self._substitute(item)) for key, item in value.items()}
        if isinstance(value, list):
            return [self._substitute(item) for item in value]
        return value

    def _compare(self, expected: object, received: object, path: str,
                 mapping: dict[str, str], key: str = "") -> str | None:
        """The path of the first difference, or None; learns client id mappings."""
        if isinstance(expected, Mapping) and isinstance(received, Mapping):
            for name in expected.keys() | received.keys():
                if name not in expected or name not in received:
                    return f"{path}.{name}".lstrip(".")
                found = self._compare(expected[name], received[name], f"{path}.{name}",
                                      mapping, name)
                if found is not None:
                    return found.lstrip(".")
            return None
        if isinstance(expected, list) and isinstance(received, list):
            if len(expected) != len(received):
                return f"{path} (length {len(expected)} recorded, {len(received)} received)"
            for index, (left, right) in enumerate(zip(expected, received, strict=True)):
                found = self._compare(left, right, f"{path}[{index}]", mapping, key)
                if found is not None:
                    return found
            return None
        if isinstance(expected, str) and isinstance(received, str) and expected != received:
            known = mapping.get(expected)
            if known is not None:
                return None if known == received else path
            if expected not in self._server_values and (_is_id_key(key)
                                                        or _GUID.match(expected)):
                mapping[expected] = received  # an id the client chose: follow the live one
                return None
            return path
        if type(expected) is not type(received) or expected != received:
            return path
        return None
