"""The only home of hypothesis strategies for hub messages and their wire form.

Importing this module registers a strategy for ``msgspec.Raw`` (valid JSON values, encoded
the way msgspec writes them, so they round-trip byte for byte), which lets
``st.from_type`` build structs holding Raw fields too.
"""

from __future__ import annotations

import json
from typing import Union

import msgspec
from hypothesis import strategies as st

from voxta_proto.framing import RECORD_SEPARATOR
from voxta_proto.hub import (
    Ack,
    CancelInvocation,
    Close,
    Completion,
    HubMessage,
    Invocation,
    JsonHubCodec,
    Ping,
    Sequence,
    StreamInvocation,
    StreamItem,
)

__all__ = [
    "JsonValue",
    "acks",
    "cancel_invocations",
    "closes",
    "completions",
    "cut_points",
    "hub_messages",
    "invocations",
    "json_record_lists",
    "json_records",
    "json_values",
    "open_traffic",
    "pings",
    "raw_values",
    "sequences",
    "stream_invocations",
    "stream_items",
]

JsonValue = Union[None, bool, int, float, str, list["JsonValue"], dict[str, "JsonValue"]]

BIG_INTS = st.integers(min_value=2**53 + 1, max_value=2**80) | st.integers(
    min_value=-(2**80), max_value=-(2**53) - 1
)
"""Integers a float64 cannot hold exactly (JS loses them); a Raw must keep every digit."""

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def json_values(max_leaves: int = 5) -> st.SearchStrategy[JsonValue]:
    """Any JSON value: scalars (big and non-ASCII ones included), arrays and objects."""
    scalars: st.SearchStrategy[JsonValue] = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        BIG_INTS,
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
    )
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=6), children, max_size=3),
        max_leaves=max_leaves,
    )


def raw_values(max_leaves: int = 4) -> st.SearchStrategy[msgspec.Raw]:
    """A valid JSON value as ``msgspec.Raw`` (``null`` included)."""
    return json_values(max_leaves).map(lambda value: msgspec.Raw(msgspec.json.encode(value)))


st.register_type_strategy(msgspec.Raw, raw_values())

ids = st.text(min_size=1, max_size=6)
"""Invocation and stream ids: non-empty strings (non-ASCII allowed)."""
targets = st.text(min_size=1, max_size=12)
headers = st.none() | st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3)
optional_ids = st.none() | ids
stream_id_lists = st.none() | st.lists(ids, max_size=3).map(tuple)


def invocations() -> st.SearchStrategy[Invocation[msgspec.Raw]]:
    """``Invocation[Raw]``: with or without id, headers and stream ids; ``[]`` arguments too."""
    return st.builds(
        Invocation[msgspec.Raw],
        target=targets,
        arguments=st.lists(raw_values(3), max_size=2).map(tuple),
        invocation_id=optional_ids,
        stream_ids=stream_id_lists,
        headers=headers,
    )


def stream_items() -> st.SearchStrategy[StreamItem]:
    """StreamItem, ``item`` may be ``null``."""
    return st.builds(StreamItem, invocation_id=ids, item=raw_values(), headers=headers)


def completions() -> st.SearchStrategy[Completion]:
    """Completion: a result (``null`` included), an error (``""`` included), or neither."""
    with_result = st.builds(
        Completion,
        invocation_id=ids,
        result=raw_values() | st.just(msgspec.Raw(b"null")),
        headers=headers,
    )
    with_error = st.builds(Completion, invocation_id=ids, error=st.text(max_size=12),
                           headers=headers)
    void = st.builds(Completion, invocation_id=ids, headers=headers)
    return st.one_of(with_result, with_error, void)


def stream_invocations() -> st.SearchStrategy[StreamInvocation]:
    return st.builds(
        StreamInvocation,
        invocation_id=ids,
        target=targets,
        arguments=st.lists(raw_values(3), max_size=2).map(tuple),
        stream_ids=stream_id_lists,
        headers=headers,
    )


def cancel_invocations() -> st.SearchStrategy[CancelInvocation]:
    return st.builds(CancelInvocation, invocation_id=ids, headers=headers)


def pings() -> st.SearchStrategy[Ping]:
    return st.just(Ping())


def closes() -> st.SearchStrategy[Close]:
    """Close with or without error, allowReconnect true or false."""
    return st.builds(Close, error=st.none() | st.text(max_size=12), allow_reconnect=st.booleans())


def acks() -> st.SearchStrategy[Ack]:
    return st.builds(Ack, sequence_id=INT64)


def sequences() -> st.SearchStrategy[Sequence]:
    return st.builds(Sequence, sequence_id=INT64)


def open_traffic() -> st.SearchStrategy[HubMessage]:
    """Every hub message kind except Close, which would end the connection."""
    return st.one_of(
        invocations(),
        stream_items(),
        completions(),
        stream_invocations(),
        cancel_invocations(),
        pings(),
        acks(),
        sequences(),
    )


def hub_messages() -> st.SearchStrategy[HubMessage]:
    """Every hub message kind, Close included."""
    return open_traffic() | closes()


def cut_points() -> st.SearchStrategy[list[int]]:
    """Offsets to cut a byte stream at (see ``helpers.split_at``, taken modulo length)."""
    return st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=12)


# -- arbitrary records -------------------------------------------------------------------

_JSON_WHITESPACE = st.text(alphabet=" \t\r\n", max_size=3)


def _encoded_message() -> st.SearchStrategy[bytes]:
    return hub_messages().map(lambda message: JsonHubCodec.encode(message)[:-1])


def _object_with_type() -> st.SearchStrategy[bytes]:
    """A JSON object whose ``type`` is anything (missing, unknown, a string, a bool...),
    with fields borrowed from real messages holding random values."""
    kinds = st.one_of(
        st.integers(min_value=-1, max_value=11),
        INT64,
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=3),
        st.booleans(),
        st.none(),
    )
    fields = st.dictionaries(
        st.sampled_from(["target", "arguments", "invocationId", "item", "result", "error",
                         "streamIds", "headers", "allowReconnect", "sequenceId", "extra"]),
        json_values(max_leaves=4),
        max_size=4,
    )

    def build(kind: JsonValue, has_type: bool, body: dict[str, JsonValue]) -> bytes:
        obj = dict(body)
        if has_type:
            obj["type"] = kind
        return msgspec.json.encode(obj)

    return st.builds(build, kinds, st.booleans(), fields)


def _mutated_message() -> st.SearchStrategy[bytes]:
    """A real message with one field replaced by a random JSON value (or removed)."""

    def mutate(raw: bytes, key_index: int, value: JsonValue, remove: bool) -> bytes:
        obj = json.loads(raw)
        keys = sorted(obj)
        key = keys[key_index % len(keys)]
        if remove:
            del obj[key]
        else:
            obj[key] = value
        return json.dumps(obj).encode()

    return st.builds(mutate, _encoded_message(), st.integers(0, 10),
                     json_values(max_leaves=3), st.booleans())


def _one_record() -> st.SearchStrategy[bytes]:
    valid = _encoded_message()
    return st.one_of(
        valid,
        valid.map(lambda r: json.dumps(json.loads(r), indent=1).encode()),  # pretty-printed
        st.tuples(_JSON_WHITESPACE, valid, _JSON_WHITESPACE).map(
            lambda parts: parts[0].encode() + parts[1] + parts[2].encode()
        ),
        _object_with_type(),
        _mutated_message(),
        json_values(max_leaves=4).map(msgspec.json.encode),
        _JSON_WHITESPACE.map(str.encode),  # empty and whitespace-only records
        # Two values in one record: never valid, whatever the separator between them.
        st.tuples(valid, st.sampled_from([b",", b" ", b"", b"\n"]), valid).map(b"".join),
        st.binary(max_size=12),
    )


def json_record_lists() -> st.SearchStrategy[list[bytes]]:
    """Lists of single records WITHOUT their separator: valid messages, unknown or bad
    ``type``, broken fields, arbitrary JSON, empty records, two values in one record."""
    return st.lists(_one_record().filter(lambda r: RECORD_SEPARATOR not in r), max_size=6)


def json_records() -> st.SearchStrategy[bytes]:
    """``json_record_lists`` as one byte string, every record 0x1E-terminated."""
    return json_record_lists().map(lambda records: b"".join(r + RECORD_SEPARATOR
                                                            for r in records))
