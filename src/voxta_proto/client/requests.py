"""Awaited outcomes (requests, ``wait_for``) and argument conversion; no I/O of their own."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

import anyio
import msgspec

from voxta_proto.voxta.server_messages import (
    ServerMessage,
)
from voxta_proto.voxta.session import (
    ClientState,
    VoxtaClientSession,
)

logger = logging.getLogger("voxta_proto.client")

DEFAULT_REQUEST_TIMEOUT: Final = 30.0
DEFAULT_EVENT_BUFFER: Final = 256
HUB_PATH: Final = "/hub"
AUDIO_INPUT_PATH: Final = "/ws/audio/input/stream"

T = TypeVar("T")
M = TypeVar("M", bound=ServerMessage)
E = TypeVar("E")



# ------------------------------------------------------------------------------ helpers


class _Waiter:
    """One awaited outcome, resolved by the reader without blocking it."""

    def __init__(self, match: Callable[[object], bool] | None = None, *,
                 chat_bound: bool = False) -> None:
        self.match = match
        self.chat_bound = chat_bound
        """Waits on a chat session's message: fails when that chat is lost."""
        self.event = anyio.Event()
        self.value: object = None
        self.error: BaseException | None = None

    def resolve(self, value: object = None, error: BaseException | None = None) -> None:
        if not self.event.is_set():
            self.value, self.error = value, error
            self.event.set()

    async def wait(self, timeout: float | None, what: str) -> object:  # noqa: ASYNC109
        with anyio.move_on_after(math.inf if timeout is None else timeout):
            await self.event.wait()
        if not self.event.is_set():
            raise TimeoutError(f"no answer to {what} within {timeout} s")
        if self.error is not None:
            raise self.error
        return self.value


def _convert(value: object, kind: type[T]) -> T:
    """Accept our shapes or the plain dicts voxta-client users pass."""
    if isinstance(value, kind):
        return value
    return msgspec.convert(value, kind, from_attributes=True)


def _tuple_of(values: Sequence[object] | None, kind: type[T]) -> tuple[T, ...] | None:
    return None if values is None else tuple(_convert(v, kind) for v in values)


def _state(session: VoxtaClientSession) -> ClientState:
    """Re-read the state after calls that change it (defeats mypy's narrowing)."""
    return session.state
