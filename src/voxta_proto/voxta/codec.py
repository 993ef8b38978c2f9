"""Voxta messages to and from JSON, and in and out of SignalR invocations; no I/O.

Two directions, two rules for what does not fit the catalog:

* A client reads server messages. An unknown ``$type`` is not an error (newer servers add
  messages): it becomes [`UnknownServerMessage`][voxta_proto.voxta.codec.UnknownServerMessage]. A
  known ``$type`` with wrong fields
  is a [`MessageValidationError`][voxta_proto.errors.MessageValidationError], or, inside a hub
  frame, an
  [`InvalidServerMessage`][voxta_proto.voxta.codec.InvalidServerMessage] so the good messages around
  it survive.
* A server reads client messages. Like the real server's argument binding, it rejects
  unknown ``$type``\\ s as well as bad fields
  ([`InvalidClientMessage`][voxta_proto.voxta.codec.InvalidClientMessage] inside a
  frame), which the server answers with a Completion error.

[`server_codec()`][voxta_proto.voxta.codec.server_codec] and
[`client_codec()`][voxta_proto.voxta.codec.client_codec] plug the catalog into
[`JsonHubCodec`][voxta_proto.hub.codec.JsonHubCodec], so a whole frame of invocations, Voxta
arguments included, is typed by one msgspec call; the per-record fallback only runs for a
frame that holds something unusual.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, TypeVar, Union, get_args

import msgspec

from voxta_proto.errors import MessageValidationError
from voxta_proto.hub.codec import JsonHubCodec
from voxta_proto.hub.messages import Invocation
from voxta_proto.voxta.base import VoxtaMessage
from voxta_proto.voxta.client_messages import AnyClientMessage, ClientMessage
from voxta_proto.voxta.server_messages import AnyServerMessage, ServerMessage

__all__ = [
    "CLIENT_MESSAGE_TYPES",
    "RECEIVE_MESSAGE",
    "SEND_MESSAGE",
    "SERVER_MESSAGE_TYPES",
    "ClientEvent",
    "InvalidClientMessage",
    "InvalidServerMessage",
    "ServerEvent",
    "UnknownServerMessage",
    "client_codec",
    "decode_client_message",
    "decode_server_message",
    "encode_message",
    "server_codec",
    "unwrap_client_message",
    "unwrap_server_message",
    "wrap_client_message",
    "wrap_server_message",
]

ArgT = TypeVar("ArgT")
MessageT = TypeVar("MessageT", bound=VoxtaMessage)
ClientMessageT = TypeVar("ClientMessageT", bound=ClientMessage)
ServerMessageT = TypeVar("ServerMessageT", bound=ServerMessage)

SEND_MESSAGE: Final = "SendMessage"
"""The hub method every client message is sent to."""
RECEIVE_MESSAGE: Final = "ReceiveMessage"
"""The client method every server message is delivered to."""


class UnknownServerMessage(msgspec.Struct, frozen=True, gc=False):
    """A server message whose ``$type`` this catalog does not know; kept, not an error."""

    type_name: str
    raw: msgspec.Raw
    """The message's JSON, untouched."""


class InvalidServerMessage(msgspec.Struct, frozen=True, gc=False):
    """A server message that could not be read: a known ``$type`` with wrong fields, or
    not a message object at all (then ``type_name`` is None)."""

    type_name: str | None
    raw: msgspec.Raw
    error: str
    """What was wrong, with the JSON path msgspec reported."""


class InvalidClientMessage(msgspec.Struct, frozen=True, gc=False):
    """A client message the server cannot bind: unknown ``$type``, wrong or missing
    fields, or not a message object (then ``type_name`` is None)."""

    type_name: str | None
    raw: msgspec.Raw
    error: str


ServerEvent = Union[AnyServerMessage, UnknownServerMessage, InvalidServerMessage]
"""What a client gets as the argument of a ``ReceiveMessage`` invocation."""

ClientEvent = Union[AnyClientMessage, InvalidClientMessage]
"""What a server gets as the argument of a ``SendMessage`` invocation."""


def _tag(cls: type[VoxtaMessage]) -> str:
    tag = cls.__struct_config__.tag
    if not isinstance(tag, str):
        raise TypeError(f"{cls.__name__} has no string $type tag")
    return tag


def _registry(union: object, base: type[MessageT]) -> Mapping[str, type[MessageT]]:
    registry: dict[str, type[MessageT]] = {}
    for cls in get_args(union):
        if not issubclass(cls, base):
            raise TypeError(f"{cls.__name__} is not a {base.__name__}")
        registry[_tag(cls)] = cls
    if len(registry) != len(get_args(union)):
        raise TypeError(f"two {base.__name__} classes share a $type")
    return MappingProxyType(registry)


SERVER_MESSAGE_TYPES: Final[Mapping[str, type[ServerMessage]]] = _registry(
    AnyServerMessage, ServerMessage
)
"""The server message class for each wire ``$type``."""
CLIENT_MESSAGE_TYPES: Final[Mapping[str, type[ClientMessage]]] = _registry(
    AnyClientMessage, ClientMessage
)
"""The client message class for each wire ``$type``."""


class _TypeProbe(msgspec.Struct, gc=False):
    """Reads nothing but ``$type``, to explain why a message did not decode."""

    type_name: str | None = msgspec.field(name="$type", default=None)


_SERVER_DECODER: Final[msgspec.json.Decoder[AnyServerMessage]] = msgspec.json.Decoder(
    AnyServerMessage
)
_CLIENT_DECODER: Final[msgspec.json.Decoder[AnyClientMessage]] = msgspec.json.Decoder(
    AnyClientMessage
)
_PROBE_DECODER: Final = msgspec.json.Decoder(_TypeProbe)
_DECODE_ERRORS: Final = (msgspec.DecodeError, RecursionError)
"""msgspec raises RecursionError for absurdly deep nesting; it counts as bad JSON here."""
_ENCODER: Final = msgspec.json.Encoder()


def _as_raw(data: bytes | msgspec.Raw) -> msgspec.Raw:
    return data if isinstance(data, msgspec.Raw) else msgspec.Raw(data)


def _type_name(data: bytes | msgspec.Raw) -> str:
    """The ``$type`` of a message that failed to decode.

    Raises:
        MessageValidationError: not JSON, not an object, or no string ``$type``.
    """
    try:
        probe = _PROBE_DECODER.decode(data)
    except msgspec.ValidationError as exc:
        raise MessageValidationError(
            f"a Voxta message must be a JSON object with a string '$type': {exc}"
        ) from None
    except _DECODE_ERRORS as exc:
        raise MessageValidationError(f"a Voxta message must be valid JSON: {exc}") from None
    if probe.type_name is None:
        raise MessageValidationError("the message has no '$type'")
    return probe.type_name


def _decode_server(data: bytes | msgspec.Raw) -> AnyServerMessage | UnknownServerMessage:
    try:
        return _SERVER_DECODER.decode(data)
    except _DECODE_ERRORS as exc:
        error = exc
    type_name = _type_name(data)
    if type_name not in SERVER_MESSAGE_TYPES:
        return UnknownServerMessage(type_name, _as_raw(data))
    raise MessageValidationError(f"invalid {type_name!r} message: {error}", type_name=type_name)


def _decode_client(data: bytes | msgspec.Raw) -> AnyClientMessage:
    try:
        return _CLIENT_DECODER.decode(data)
    except _DECODE_ERRORS as exc:
        error = exc
    type_name = _type_name(data)
    if type_name not in CLIENT_MESSAGE_TYPES:
        raise MessageValidationError(
            f"unknown client message type {type_name!r}", type_name=type_name
        )
    raise MessageValidationError(f"invalid {type_name!r} message: {error}", type_name=type_name)


def decode_server_message(data: bytes) -> AnyServerMessage | UnknownServerMessage:
    """Decode one server message (the JSON of a ``ReceiveMessage`` argument).

    Returns:
        The typed message, or [`UnknownServerMessage`][voxta_proto.voxta.codec.UnknownServerMessage]
        for a ``$type`` this catalog does not know.

    Raises:
        MessageValidationError: the JSON is invalid or not an object, has no string
            ``$type``, or has a known ``$type`` with missing or mistyped fields
            (``type_name`` is set in the last case).
    """
    return _decode_server(data)


def decode_client_message(data: bytes) -> AnyClientMessage:
    """Decode one client message (the JSON of a ``SendMessage`` argument).

    Raises:
        MessageValidationError: the JSON is invalid or not an object, has no string
            ``$type``, has an unknown ``$type``, or has missing or mistyped fields.
    """
    return _decode_client(data)


def encode_message(message: VoxtaMessage) -> bytes:
    """The JSON of one message: ``$type`` first, camelCase names, nulls left out."""
    return _ENCODER.encode(message)


def wrap_client_message(
    message: ClientMessageT, *, invocation_id: str | None
) -> Invocation[ClientMessageT]:
    """The ``SendMessage`` invocation that carries ``message``.

    Args:
        message: the Voxta message (an ``AnyClientMessage`` gives an
            ``Invocation[AnyClientMessage]``).
        invocation_id: asks the server for a Completion; None sends fire-and-forget.
    """
    return Invocation(SEND_MESSAGE, (message,), invocation_id)  # positional: faster


def wrap_server_message(message: ServerMessageT) -> Invocation[ServerMessageT]:
    """The ``ReceiveMessage`` invocation (without invocation id) that carries ``message``."""
    return Invocation(target=RECEIVE_MESSAGE, arguments=(message,))


def unwrap_client_message(invocation: Invocation[ArgT]) -> ArgT | None:
    """The Voxta message of a ``SendMessage`` invocation with one argument, else None."""
    if invocation.target != SEND_MESSAGE or len(invocation.arguments) != 1:
        return None
    return invocation.arguments[0]


def unwrap_server_message(invocation: Invocation[ArgT]) -> ArgT | None:
    """The Voxta message of a ``ReceiveMessage`` invocation with one argument, else None."""
    if invocation.target != RECEIVE_MESSAGE or len(invocation.arguments) != 1:
        return None
    return invocation.arguments[0]


def _server_fallback(raw: msgspec.Raw) -> ServerEvent:
    """An argument the single-pass decode rejected; never raises."""
    try:
        return _decode_server(raw)
    except MessageValidationError as exc:
        return InvalidServerMessage(exc.type_name, raw, str(exc))


def _client_fallback(raw: msgspec.Raw) -> ClientEvent:
    """An argument the single-pass decode rejected; never raises."""
    try:
        return _decode_client(raw)
    except MessageValidationError as exc:
        return InvalidClientMessage(exc.type_name, raw, str(exc))


def server_codec() -> JsonHubCodec[ServerEvent]:
    """A hub codec for the CLIENT role: ``ReceiveMessage`` arguments arrive typed.

    Arguments that are not catalog messages become
    [`UnknownServerMessage`][voxta_proto.voxta.codec.UnknownServerMessage] or
    [`InvalidServerMessage`][voxta_proto.voxta.codec.InvalidServerMessage]; decoding them never
    raises.
    """
    return JsonHubCodec(AnyServerMessage, _server_fallback)


def client_codec() -> JsonHubCodec[ClientEvent]:
    """A hub codec for the SERVER role: ``SendMessage`` arguments arrive typed.

    Arguments that do not bind become
    [`InvalidClientMessage`][voxta_proto.voxta.codec.InvalidClientMessage]; decoding them never
    raises.
    """
    return JsonHubCodec(AnyClientMessage, _client_fallback)
