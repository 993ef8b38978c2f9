"""SignalR JSON hub messages as frozen msgspec Structs; pure data, no I/O.

Each hub message is tagged by its integer ``type``, so one msgspec decoder over the union
types a whole frame in one pass. Only fields the spec marks optional have defaults, so
``omit_defaults`` never drops a required field. Invocations are generic over their
argument type: ``Invocation[msgspec.Raw]`` for a plain hub, ``Invocation[ServerMessage]``
when the Voxta catalog types arguments in the same decode pass.
"""

from __future__ import annotations

from typing import Annotated, Final, Generic, TypeVar, Union

import msgspec

__all__ = [
    "TRACKABLE_TYPES",
    "Ack",
    "CancelInvocation",
    "Close",
    "Completion",
    "HandshakeAccepted",
    "HandshakeRefused",
    "HandshakeRequest",
    "HandshakeResponse",
    "HubMessage",
    "Invocation",
    "Ping",
    "RawHubMessage",
    "Sequence",
    "StreamInvocation",
    "StreamItem",
]

ArgT = TypeVar("ArgT")

NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]
Headers = dict[str, str]


class HubMessage(
    msgspec.Struct,
    tag_field="type",
    rename="camel",
    omit_defaults=True,
    frozen=True,
    kw_only=True,
    gc=False,
):
    """Base of every SignalR hub message; the integer ``type`` is the tag."""


class Invocation(HubMessage, Generic[ArgT], tag=1, frozen=True, gc=False):
    """Call ``target`` on the peer. Without ``invocation_id`` nobody answers (a "send")."""

    target: NonEmptyStr
    arguments: tuple[ArgT, ...]
    invocation_id: str | None = None
    """Present only when the caller wants a Completion back."""
    stream_ids: tuple[str, ...] | None = None
    """Ids of client-to-server upload streams that belong to this call."""
    headers: Headers | None = None


class StreamItem(HubMessage, tag=2, frozen=True, gc=False):
    """One item of a stream; ``item`` may be JSON ``null`` but must be present."""

    invocation_id: str
    item: msgspec.Raw
    headers: Headers | None = None


class Completion(HubMessage, tag=3, frozen=True, gc=False):
    """The end of an invocation: a result, an error, or neither (a void method).

    ``result`` is ``msgspec.UNSET`` when the key was absent; ``"result": null`` decodes to
    ``msgspec.Raw(b"null")``, which still counts as a result.
    """

    invocation_id: str
    result: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    error: str | None = None
    headers: Headers | None = None

    def __post_init__(self) -> None:
        if self.error is not None and self.result is not msgspec.UNSET:
            raise ValueError("a Completion cannot carry both result and error")

    @property
    def has_result(self) -> bool:
        """Whether the ``result`` key was present (``null`` included)."""
        return self.result is not msgspec.UNSET


class StreamInvocation(HubMessage, tag=4, frozen=True, gc=False):
    """Start a server-to-client stream."""

    invocation_id: str
    target: NonEmptyStr
    arguments: tuple[msgspec.Raw, ...]
    stream_ids: tuple[str, ...] | None = None
    headers: Headers | None = None


class CancelInvocation(HubMessage, tag=5, frozen=True, gc=False):
    """Ask the callee to stop a stream (it still sends a Completion)."""

    invocation_id: str
    headers: Headers | None = None


class Ping(HubMessage, tag=6, frozen=True, gc=False):
    """Keep-alive; the receiver need not answer."""


class Close(HubMessage, tag=7, frozen=True, gc=False):
    """The sender is closing the connection, with an optional error."""

    error: str | None = None
    allow_reconnect: bool = False
    """True when the sender considers an automatic reconnect legitimate."""


class Ack(HubMessage, tag=8, frozen=True, gc=False):
    """Stateful reconnect: every trackable message up to ``sequence_id`` was processed."""

    sequence_id: int


class Sequence(HubMessage, tag=9, frozen=True, gc=False):
    """Stateful reconnect: the next trackable message the sender sends has this id."""

    sequence_id: int


class HandshakeRequest(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The client's first record: ``{"protocol":"json","version":1}``."""

    protocol: str
    version: int


class HandshakeAccepted(msgspec.Struct, frozen=True, gc=False):
    """The server's ``{}``; extra fields sent by old servers are ignored."""


class HandshakeRefused(msgspec.Struct, frozen=True, gc=False):
    """The server's ``{"error": ...}``; the server closes the connection after it."""

    error: str


HandshakeResponse = Union[HandshakeAccepted, HandshakeRefused]

RawHubMessage = Union[
    Invocation[msgspec.Raw],
    StreamItem,
    Completion,
    StreamInvocation,
    CancelInvocation,
    Ping,
    Close,
    Ack,
    Sequence,
]
"""Every hub message with arguments left as undecoded JSON."""

TRACKABLE_TYPES: Final[frozenset[type[HubMessage]]] = frozenset(
    {Invocation, StreamItem, Completion, StreamInvocation, CancelInvocation}
)
"""Types 1-5: the messages stateful reconnect numbers, buffers and replays."""
