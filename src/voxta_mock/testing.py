"""Assertions for tests against the mock, with failures that show what happened instead.

Both raise ``AssertionError`` (pytest shows the message as is) and import nothing from
pytest, so they work under any runner. The pytest plugin calls
[`verify_expectations()`][voxta_mock.testing.verify_expectations] when a test that used the mock
tears down.
"""

from __future__ import annotations

from typing import Any, Final, Protocol, TypeVar, overload

import msgspec

from voxta_mock.expectations import Expectations
from voxta_mock.journal import Direction, HubEntry, Journal, ReceivedMessage
from voxta_mock.matching import MessagePattern, message_type_name, wire_form

__all__ = ["HasJournal", "assert_received", "verify_expectations"]

MessageT = TypeVar("MessageT")
_CLOSEST: Final = 3
_LISTED: Final = 20
_WIDTH: Final = 160


class HasJournal(Protocol):
    """Anything with a journal: the mock server, or a test double."""

    @property
    def journal(self) -> Journal: ...


def _journal(source: Journal | HasJournal) -> Journal:
    return source if isinstance(source, Journal) else source.journal


def _short(value: object) -> str:
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= _WIDTH else text[:_WIDTH - 3] + "..."


def _where(entry: HubEntry) -> str:
    session = f", session {entry.session_id}" if entry.session_id else ""
    return f"#{entry.seq} {entry.type_name} [connection {entry.connection}{session}]"


def _received(journal: Journal) -> list[HubEntry]:
    return [e for e in journal.entries(direction=Direction.RECEIVED) if isinstance(e, HubEntry)]


def _listing(entries: list[HubEntry]) -> list[str]:
    if not entries:
        return ["the mock received no hub messages"]
    shown = entries[-_LISTED:]
    head = f"the mock received {len(entries)} hub message(s)"
    head += f", the last {len(shown)}:" if len(shown) < len(entries) else ":"
    return [head, *(f"  {_where(e)} {_short(wire_form(e.message))}" for e in shown)]


def verify_expectations(expectations: Expectations, journal: Journal | None = None) -> None:
    """Fail when a required expectation did not match as often as it should have,
    naming each one and listing what the mock received.

    Raises:
        AssertionError: at least one unmet expectation.
    """
    __tracebackhide__ = True
    unmet = expectations.unmet()
    if not unmet:
        return
    lines = [f"{len(unmet)} expectation(s) of the mock were not met:",
             *(f"  {item.describe()}" for item in unmet)]
    if journal is not None:
        lines += _listing(_received(journal))
    raise AssertionError("\n".join(lines))


@overload
def assert_received(source: Journal | HasJournal, kind: type[MessageT], /, *,
                    session_id: str | None = None, connection: str | None = None,
                    **fields: object) -> MessageT: ...
@overload
def assert_received(source: Journal | HasJournal, kind: str | None = None, /, *,
                    session_id: str | None = None, connection: str | None = None,
                    **fields: object) -> ReceivedMessage: ...


def assert_received(source: Journal | HasJournal, kind: type | str | None = None, /, *,
                    session_id: str | None = None, connection: str | None = None,
                    **fields: object) -> Any:
    """The first message a client sent that matches; else fail with the closest ones
    and, field by field, how they differ.

    ``assert_received(server, Send, text="hi")``: ``kind`` is a catalog class or a
    ``$type`` name, ``fields`` are attribute names with a value, an ``re.Pattern`` or a
    predicate (see [`MessagePattern`][voxta_mock.matching.MessagePattern]).

    Raises:
        AssertionError: nothing matches.
    """
    __tracebackhide__ = True
    journal = _journal(source)
    found = journal.received(kind, session_id=session_id, connection=connection, **fields)
    if found:
        return found[0]
    pattern = MessagePattern(kind, fields)
    wanted = pattern.describe()
    scope = "".join((f" in session {session_id!r}" if session_id is not None else "",
                     f" on connection {connection!r}" if connection is not None else ""))
    lines = [f"no received message matches {wanted}{scope}"]
    received = _received(journal)
    candidates = [e for e in received
                  if (session_id is None or e.session_id == session_id)
                  and (connection is None or e.connection == connection)]
    if not candidates:
        lines += _listing(received)
        raise AssertionError("\n".join(lines))

    def closeness(entry: HubEntry) -> tuple[bool, int, int]:
        misses = len(pattern.field_misses(entry.message))
        return pattern.kind_matches(entry.message), -misses, entry.seq

    closest = sorted(candidates, key=closeness, reverse=True)[:_CLOSEST]
    lines.append(f"closest of {len(candidates)} received message(s):")
    for entry in closest:
        lines.append(f"  {_where(entry)}")
        if not pattern.kind_matches(entry.message):
            lines.append(f"      type: expected {wanted.partition('(')[0]}, "
                         f"got {message_type_name(entry.message)}")
        lines += [f"      {miss}" for miss in pattern.field_misses(entry.message)]
    raise AssertionError("\n".join(lines))
