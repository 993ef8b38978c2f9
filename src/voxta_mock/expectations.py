"""Expectations: "when a client sends a message like M, answer with these messages (or
misbehave)", once, n times or every time, in order or not, required or optional.

The server asks [`Expectations.match()`][voxta_mock.expectations.Expectations.match] about every
client message it reads, before
its engine sees it. On a hit it sends the expectation's ``reply`` to the connection that
sent the message (after completing the invocation, if one was asked for), applies its
``fault`` if any, and hands the message to the engine only when ``passthrough`` is set.
At the end of a test, [`Expectations.unmet()`][voxta_mock.expectations.Expectations.unmet] names
every required expectation that did not match as often as it should have.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from voxta_mock.journal import ReceivedMessage
from voxta_mock.matching import MessagePattern, PatternError
from voxta_proto.errors import MessageValidationError
from voxta_proto.voxta import (
    ServerMessage,
    UnknownServerMessage,
    decode_server_message,
    encode_message,
)

__all__ = ["Expectation", "ExpectationError", "Expectations", "FaultAnswer"]

FaultKind = Literal["drop", "close", "silence"]


class ExpectationError(ValueError):
    """An expectation (usually from JSON) is not valid; the message says which part."""


class FaultAnswer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                  rename="camel"):
    """How to misbehave instead of (or after) answering.

    Attributes:
        kind: ``drop`` aborts the connection (no Close, no close frame); ``close`` sends
            a SignalR Close with ``error`` and ``allow_reconnect`` and closes; ``silence``
            sends nothing more on the connection, not even pings.
    """

    kind: FaultKind
    error: str | None = None
    allow_reconnect: bool = False


@dataclass
class Expectation:
    """One registered expectation and how often it matched.

    Attributes:
        id: the handle to remove it by (``DELETE /_mock/expectations/{id}``).
        pattern: the messages it matches.
        reply: server messages to send back to the sending connection, in order.
        fault: what to do wrong after the reply, if anything.
        times: how many matches it answers; None answers every time.
        ordered: matches only after every earlier ordered expectation is satisfied, and
            never again once a later ordered one matched.
        optional: not reported by
            [`Expectations.unmet()`][voxta_mock.expectations.Expectations.unmet] when it never
            matched.
        passthrough: the engine still handles the message after the reply.
        matched: how many messages it answered so far.
    """

    id: str
    pattern: MessagePattern
    reply: tuple[ServerMessage, ...] = ()
    fault: FaultAnswer | None = None
    times: int | None = 1
    ordered: bool = False
    optional: bool = False
    passthrough: bool = False
    matched: int = 0
    _position: int = field(default=0, repr=False)

    @property
    def exhausted(self) -> bool:
        """It answered ``times`` messages and answers no more."""
        return self.times is not None and self.matched >= self.times

    @property
    def satisfied(self) -> bool:
        """It matched as often as required (at least once for ``times=None``)."""
        return self.matched >= (self.times or 1)

    def describe(self) -> str:
        """E.g. ``exp-1: send(text='hi') expected once, matched 0 times``."""
        wanted = ("every time (at least once)" if self.times is None
                  else "once" if self.times == 1 else f"{self.times} times")
        flags = "".join((" [ordered]" if self.ordered else "",
                         " [optional]" if self.optional else ""))
        return (f"{self.id}: {self.pattern.describe()} expected {wanted}, "
                f"matched {self.matched} time{'s' if self.matched != 1 else ''}{flags}")

    def to_json(self) -> dict[str, Any]:
        """The admin API's view of it, with its match count."""
        return {"id": self.id, "match": self.pattern.to_json(),
                "reply": [msgspec.json.decode(encode_message(m)) for m in self.reply],
                "fault": msgspec.to_builtins(self.fault), "times": self.times,
                "ordered": self.ordered, "optional": self.optional,
                "passthrough": self.passthrough, "matched": self.matched}


class _ExpectationJson(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    match: Any
    reply: tuple[Any, ...] = ()
    fault: FaultAnswer | None = None
    times: int | None = 1
    ordered: bool = False
    optional: bool = False
    passthrough: bool = False


def _server_message(data: Any, index: int) -> ServerMessage:
    """A reply from JSON, as the catalog reads it; unknown ``$type``\\ s are refused
    because the server can only send catalog messages."""
    try:
        message = decode_server_message(msgspec.json.encode(data))
    except MessageValidationError as exc:
        raise ExpectationError(f"reply[{index}]: {exc}") from None
    if isinstance(message, UnknownServerMessage):
        raise ExpectationError(f"reply[{index}]: unknown server message type "
                               f"{message.type_name!r}")
    return message


class Expectations:
    """The expectations of one mock server, in the order they were added."""

    def __init__(self) -> None:
        self._items: list[Expectation] = []
        self._ids = itertools.count(1)
        self._positions = itertools.count(1)
        self._cursor = 0
        """Position of the last ordered expectation that matched."""

    def __iter__(self) -> Iterator[Expectation]:
        return iter(tuple(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def add(self, kind: type | str | None = None, /, *,
            reply: Sequence[ServerMessage] = (), fault: FaultAnswer | None = None,
            times: int | None = 1, ordered: bool = False, optional: bool = False,
            passthrough: bool = False, **fields: object) -> Expectation:
        """Expect a client message of ``kind`` whose fields pass ``fields`` (values,
        ``re.compile(...)`` or predicates): ``add(Send, text="hi", reply=[...])``.

        Raises:
            ExpectationError: ``times`` below 1.
        """
        return self._register(MessagePattern(kind, fields), tuple(reply), fault, times,
                              ordered, optional, passthrough)

    def add_json(self, data: bytes) -> Expectation:
        """Add one expectation from the admin API's JSON (see the admin guide).

        Raises:
            ExpectationError: invalid JSON, unknown keys, a bad pattern or reply.
        """
        try:
            spec = msgspec.json.decode(data, type=_ExpectationJson)
        except msgspec.DecodeError as exc:
            raise ExpectationError(f"invalid expectation: {exc}") from None
        try:
            pattern = MessagePattern.from_json(spec.match)
        except PatternError as exc:
            raise ExpectationError(f"match: {exc}") from None
        reply = tuple(_server_message(m, i) for i, m in enumerate(spec.reply))
        return self._register(pattern, reply, spec.fault, spec.times, spec.ordered,
                              spec.optional, spec.passthrough)

    def _register(self, pattern: MessagePattern, reply: tuple[ServerMessage, ...],
                  fault: FaultAnswer | None, times: int | None, ordered: bool,
                  optional: bool, passthrough: bool) -> Expectation:
        if times is not None and times < 1:
            raise ExpectationError("times must be >= 1, or None for every time")
        expectation = Expectation(f"exp-{next(self._ids)}", pattern, reply, fault, times,
                                  ordered, optional, passthrough,
                                  _position=next(self._positions))
        self._items.append(expectation)
        return expectation

    def remove(self, expectation_id: str) -> bool:
        """Forget one expectation; False when there is none with that id."""
        for index, item in enumerate(self._items):
            if item.id == expectation_id:
                del self._items[index]
                return True
        return False

    def clear(self) -> None:
        """Forget every expectation (ids keep counting, so an old id never comes back)."""
        self._items.clear()
        self._cursor = 0

    def _eligible(self, candidate: Expectation) -> bool:
        if candidate.exhausted:
            return False
        if not candidate.ordered:
            return True
        if candidate._position < self._cursor:
            return False
        return all(item.satisfied or item.optional for item in self._items
                   if item.ordered and self._cursor <= item._position < candidate._position)

    def match(self, connection: str, session_id: str | None,
              message: ReceivedMessage) -> Expectation | None:
        """The first expectation (in the order added) that answers this message, its
        match counted; None lets the engine handle the message as usual.

        ``connection`` and ``session_id`` are not matched on (put ``session_id`` in the
        pattern's fields for that); they are part of the hook so the server passes what
        it knows and later rules need no new signature.
        """
        del connection, session_id
        for item in self._items:
            if self._eligible(item) and item.pattern.matches(message):
                item.matched += 1
                if item.ordered:
                    self._cursor = item._position
                return item
        return None

    def unmet(self) -> list[Expectation]:
        """Required expectations that did not match as often as they should have."""
        return [item for item in self._items if not item.optional and not item.satisfied]

    def to_json(self) -> dict[str, Any]:
        """The admin API's list, with match counts."""
        return {"expectations": [item.to_json() for item in self._items]}

