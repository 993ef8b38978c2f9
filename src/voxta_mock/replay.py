"""Replaying a cassette in the mock: ``MockVoxtaServer(replay=...)``, ``voxta-mock --replay``.

Each hub connection takes the next recorded hub connection (in the order the recorded ones
opened), when it sends its first message. Every Voxta message a client sends is turned
back into its wire form and matched against the recording (`HubReplay`); what the
recorded server sent next goes out as recorded (ids mapped), its delays divided by
``speed``. Both sides pass through the catalog first, so a field one client leaves out and
another sends with its default value is no difference. Records go out raw: a message the
catalog does not know is sent unchanged.

Negotiate, the handshake, pings and REST calls are the mock's own. A client that departs
from the recording gets, for that message, an error Completion (when it waits for one) and
an ``error`` message naming the first difference; the mismatch is logged at WARNING and
kept in `Replayer.errors`, which the pytest plugin checks at teardown. The recording
is not followed further on that connection: later messages get the same error.
"""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Union

import anyio

from voxta_mock.cassette import Cassette, HubReplay, ReplayMismatch, ReplayStep, load_cassette
from voxta_mock.connection import HubConn
from voxta_proto.errors import MessageValidationError, ProtocolError
from voxta_proto.framing import RECORD_SEPARATOR
from voxta_proto.hub import Close, Completion, Invocation, StreamItem, raw_codec
from voxta_proto.voxta import ErrorMessage, decode_client_message, encode_message
from voxta_proto.voxta.codec import SEND_MESSAGE, server_codec
from voxta_proto.voxta.server import ClientRequest, ServerState

__all__ = ["REPLAY_ERROR_CODE", "Replayer", "client_record", "normalise_client_record"]

logger = logging.getLogger("voxta_mock.replay")

REPLAY_ERROR_CODE: Final = "ReplayMismatch"
"""The ``code`` of the ``error`` message a departing client gets."""

_RAW: Final = raw_codec()
_TYPED: Final = server_codec()


def client_record(request: ClientRequest) -> dict[str, Any]:
    """A client request as the wire dict of its ``SendMessage`` invocation, through the
    catalog's encoder (defaults left out, as `normalise_client_record` does)."""
    record: dict[str, Any] = {"type": 1, "target": SEND_MESSAGE,
                              "arguments": [json.loads(encode_message(request.message))]}
    if request.invocation_id is not None:
        record["invocationId"] = request.invocation_id
    return record


def normalise_client_record(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """A recorded client ``SendMessage`` invocation as `client_record` would give
    it: each argument decoded and encoded again by the catalog (one it cannot read is left
    as recorded), only the keys a request carries. Other records are returned as they are."""
    if record.get("type") != 1 or record.get("target") != SEND_MESSAGE:
        return record
    arguments = []
    for argument in record.get("arguments") or ():
        try:
            message = decode_client_message(json.dumps(argument).encode())
        except MessageValidationError:
            arguments.append(argument)
        else:
            arguments.append(json.loads(encode_message(message)))
    return {key: value for key, value in (("type", 1), ("target", SEND_MESSAGE),
                                          ("arguments", arguments),
                                          ("invocationId", record.get("invocationId")))
            if value is not None}


def _normalised(entries: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [{**entry, "message": normalise_client_record(entry["message"])}
            if entry.get("dir") == "client" and isinstance(entry.get("message"), Mapping)
            else entry for entry in entries]


@dataclass(frozen=True)
class _Refusal:
    """Answer to a message that departs from the recording."""

    invocation_id: str | None
    text: str


_Item = Union[ReplayStep, _Refusal]


@dataclass
class _Lane:
    """One live hub connection's replay: its recording and what waits to be sent."""

    replay: HubReplay
    queue: deque[_Item] = field(default_factory=deque)
    playing: bool = False
    failed: ReplayMismatch | None = None


class Replayer:
    """Answers hub connections from a cassette; see the module docstring.

    Args:
        cassette: a loaded cassette or the path of one.
        speed: recorded delays are divided by this; ``0`` or ``inf``: no delays.

    Raises:
        ValueError: ``speed`` is negative or NaN.
        CassetteError, OSError: the file is not a cassette or cannot be read.
    """

    def __init__(self, cassette: Cassette | str | Path, *, speed: float = 1.0) -> None:
        if math.isnan(speed) or speed < 0:
            raise ValueError(f"replay speed must be >= 0 (0: as fast as possible), got {speed}")
        self.cassette = cassette if isinstance(cassette, Cassette) else load_cassette(cassette)
        self.speed = speed
        self.errors: list[ReplayMismatch] = []
        """Every connection's first departure from the recording, in order."""
        self._recorded = [_normalised(entries) for entries in self.cassette.hub_connections()]
        self._lanes: dict[str, _Lane] = {}

    def _lane(self, key: str) -> _Lane:
        lane = self._lanes.get(key)
        if lane is None:
            number = len(self._lanes)
            entries = self._recorded[number] if number < len(self._recorded) else []
            lane = self._lanes[key] = _Lane(HubReplay(entries, connection=number))
            lane.queue.extend(lane.replay.opening())
        return lane

    def receive(self, conn: HubConn, request: ClientRequest) -> bool:
        """Match one client request and queue the answer; True when the caller must
        start `play` for ``conn`` (no player runs for it)."""
        lane = self._lane(conn.key)
        if lane.failed is None:
            try:
                lane.queue.extend(lane.replay.on_client(client_record(request)))
            except ReplayMismatch as exc:
                lane.failed = exc
                self.errors.append(exc)
                logger.warning("replay: %s", exc)
                lane.queue.append(_Refusal(request.invocation_id, str(exc)))
        else:
            lane.queue.append(_Refusal(
                request.invocation_id,
                f"replay stopped on this connection at an earlier departure: {lane.failed}"))
        if lane.playing or not lane.queue:
            return False
        lane.playing = True
        return True

    async def play(self, conn: HubConn) -> None:
        """Send what is queued for ``conn``, in order, waiting the scaled delays."""
        lane = self._lanes[conn.key]
        try:
            while lane.queue and not conn.dead:
                item = lane.queue.popleft()
                if isinstance(item, ReplayStep):
                    delay = self._scaled(item.delay)
                    if delay > 0:
                        await anyio.sleep(delay)
                    if not conn.alive():  # gone while we waited
                        return
                    await self._send(conn, item.message)
                else:
                    self._refuse(conn, item)
                if conn.driver is not None:
                    conn.driver.transmit()
        finally:
            lane.playing = False

    def _scaled(self, delay: float) -> float:
        return 0.0 if self.speed in (0, math.inf) else delay / self.speed

    async def _send(self, conn: HubConn, record: Mapping[str, Any]) -> None:
        now = anyio.current_time()
        data = json.dumps(record, ensure_ascii=False).encode() + RECORD_SEPARATOR
        (message,) = _RAW.decode_records(data)
        if isinstance(message, Close):
            conn.session.close(now=now, error=message.error,
                               allow_reconnect=message.allow_reconnect)
            if conn.driver is not None:
                await conn.driver.close()
            conn.dead = True
            return
        assert isinstance(message, (Invocation, StreamItem, Completion))  # HubReplay's
        if conn.session.state is ServerState.CLOSED:
            return
        try:
            conn.session.send_raw(message, now=now)
        except ProtocolError as exc:  # e.g. the client is gone mid-replay
            logger.info("replay: connection %s cannot take %s: %s", conn.key, record, exc)
            conn.dead = True
            return
        self._journal(conn, data)

    def _refuse(self, conn: HubConn, refusal: _Refusal) -> None:
        now = anyio.current_time()
        if (refusal.invocation_id is not None
                and refusal.invocation_id in conn.session.owed_completions):
            conn.session.complete(refusal.invocation_id, now=now, error=refusal.text)
        message = ErrorMessage(message=refusal.text, code=REPLAY_ERROR_CODE, retry=False)
        conn.send(message, now=now)  # journalled

    @staticmethod
    def _journal(conn: HubConn, data: bytes) -> None:
        """Tell the server's journal (``conn.on_sent``) of a replayed Voxta message, typed
        by the catalog (``UnknownServerMessage`` if it is not)."""
        on_sent = conn.on_sent
        if on_sent is None:
            return
        for message in _TYPED.decode_records(data):
            if isinstance(message, Invocation):
                for argument in message.arguments:
                    on_sent(conn, argument)
