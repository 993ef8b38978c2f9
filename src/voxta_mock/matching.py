"""Message patterns: "a ``send`` whose text is 'hi'", shared by journal queries and
expectations so both read a pattern the same way.

A [`MessagePattern`][voxta_mock.matching.MessagePattern] names a message kind (a catalog class, or a
wire ``$type`` name)
and field tests. From Python a field is the attribute name (``session_id``) and its test is
a value (compared with ``==``), a compiled regex (``re.search`` on a string field) or a
predicate. From JSON (the admin API) a field is the wire name (``sessionId``), compared on
the wire form of the message, and its test is a JSON value or ``{"regex": "..."}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from voxta_proto.voxta import (
    InvalidClientMessage,
    InvalidServerMessage,
    UnknownServerMessage,
    VoxtaMessage,
)

__all__ = ["MISSING", "MessagePattern", "PatternError", "message_type_name", "wire_form"]


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final = _Missing()
"""What a field test sees when the message has no such field."""

_RawMessage = (UnknownServerMessage, InvalidServerMessage, InvalidClientMessage)


class PatternError(ValueError):
    """A pattern (usually from JSON) is not valid; the message says which part."""


def message_type_name(message: object) -> str | None:
    """The wire ``$type`` of a catalog message, an unknown or an invalid one."""
    if isinstance(message, VoxtaMessage):
        tag = type(message).__struct_config__.tag
        return tag if isinstance(tag, str) else None
    if isinstance(message, _RawMessage):
        return message.type_name
    return None


def wire_form(message: object) -> Any:
    """The message as the JSON value it is on the wire (camelCase, ``$type`` first)."""
    if isinstance(message, _RawMessage):
        try:
            return msgspec.json.decode(message.raw)
        except msgspec.DecodeError:
            return bytes(message.raw).decode("utf-8", "replace")
    # Through JSON, not ``to_builtins``: fields typed ``msgspec.Raw`` (free-form
    # arguments) only encode to JSON.
    return msgspec.json.decode(msgspec.json.encode(message))


def _describe(test: object) -> str:
    if isinstance(test, re.Pattern):
        return f"/{test.pattern}/"
    if callable(test) and not isinstance(test, type):
        return getattr(test, "__name__", "<predicate>")
    return repr(test)


def _passes(test: object, value: object) -> bool:
    if isinstance(test, re.Pattern):
        return isinstance(value, str) and test.search(value) is not None
    if callable(test) and not isinstance(test, (type, msgspec.Struct)):
        try:
            return bool(test(value))
        except Exception:  # a predicate that fails on this value (None...) is a miss
            return False
    return value is not MISSING and bool(value == test)


@dataclass(frozen=True)
class MessagePattern:
    """Which messages match: a kind and field tests (all must pass).

    Attributes:
        kind: a message class (``isinstance``), a wire ``$type`` name, or None for any.
        fields: field name → test (a value, an ``re.Pattern`` or a predicate).
        wire: field names are wire names tested on [`wire_form()`][voxta_mock.matching.wire_form]
            (JSON patterns); otherwise attribute names tested on the typed message.
    """

    kind: type | str | None = None
    fields: Mapping[str, object] = field(default_factory=dict)
    wire: bool = False

    def kind_matches(self, message: object) -> bool:
        """Whether the message is of this pattern's kind, its fields aside."""
        if self.kind is None:
            return True
        if isinstance(self.kind, str):
            return message_type_name(message) == self.kind
        return isinstance(message, self.kind)

    def value(self, message: object, name: str) -> object:
        """The field a test looks at, or [`MISSING`][voxta_mock.matching.MISSING]."""
        if self.wire:
            form = wire_form(message)
            return form.get(name, MISSING) if isinstance(form, dict) else MISSING
        return getattr(message, name, MISSING)

    def field_misses(self, message: object) -> list[str]:
        """One line per failing field test: what was wanted and what the message has."""
        return [f"{name}: expected {_describe(test)}, got {self.value(message, name)!r}"
                for name, test in self.fields.items()
                if not _passes(test, self.value(message, name))]

    def matches(self, message: object) -> bool:
        """Whether the message is of the kind and passes every field test."""
        if not self.kind_matches(message):
            return False
        return all(_passes(test, self.value(message, name))
                   for name, test in self.fields.items())

    def describe(self) -> str:
        """Short text for error messages, e.g. ``Send(text='hi')``."""
        if self.kind is None:
            name = "any message"
        else:
            name = self.kind if isinstance(self.kind, str) else self.kind.__name__
        tests = ", ".join(f"{k}={_describe(v)}" for k, v in self.fields.items())
        return f"{name}({tests})"

    def to_json(self) -> dict[str, Any]:
        """The JSON form ([`from_json()`][voxta_mock.matching.MessagePattern.from_json] reads it
        back for JSON patterns)."""
        kind = self.kind if isinstance(self.kind, str) or self.kind is None else (
            _class_type_name(self.kind) or self.kind.__name__)
        fields: dict[str, Any] = {}
        for name, test in self.fields.items():
            if isinstance(test, re.Pattern):
                fields[name] = {"regex": test.pattern}
            elif callable(test) and not isinstance(test, (type, msgspec.Struct)):
                fields[name] = {"predicate": _describe(test)}
            else:
                fields[name] = msgspec.to_builtins(test)
        return {"type": kind, "fields": fields}

    @classmethod
    def from_json(cls, data: object) -> MessagePattern:
        """Read ``{"type": "send", "fields": {"text": "hi", "sessionId": {"regex": "^a"}}}``.

        Raises:
            PatternError: not an object, a non-string ``type``, unknown keys, or a bad regex.
        """
        if not isinstance(data, dict):
            raise PatternError("a pattern must be an object like {\"type\": \"send\"}")
        unknown = set(data) - {"type", "fields"}
        if unknown:
            raise PatternError(f"unknown pattern keys {sorted(unknown)}; use 'type', 'fields'")
        kind = data.get("type")
        if kind is not None and not isinstance(kind, str):
            raise PatternError("pattern 'type' must be a $type name string")
        raw_fields = data.get("fields", {})
        if not isinstance(raw_fields, dict):
            raise PatternError("pattern 'fields' must be an object")
        fields: dict[str, object] = {}
        for name, test in raw_fields.items():
            if isinstance(test, dict) and set(test) == {"regex"}:
                if not isinstance(test["regex"], str):
                    raise PatternError(f"field {name!r}: 'regex' must be a string")
                try:
                    fields[name] = re.compile(test["regex"])
                except re.error as exc:
                    raise PatternError(f"field {name!r}: invalid regex: {exc}") from None
            else:
                fields[name] = test
        return cls(kind, fields, wire=True)


def _class_type_name(cls: type) -> str | None:
    """The ``$type`` tag of a catalog class, else None."""
    if issubclass(cls, VoxtaMessage):
        tag = cls.__struct_config__.tag
        return tag if isinstance(tag, str) else None
    return None
