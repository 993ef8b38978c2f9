"""In-process benchmarks: the same frame bytes through four receive paths, and encoding.

Every path is a *factory*: it does its setup (a fresh connection in the OPEN state, with
the invocations sent that the corpus's Completions answer) outside the timed part, and
returns the callable that is timed. Paths run interleaved, A B C D A B C D ..., and the
median of each is reported. Times are this thread's CPU time (``time.thread_time``), which
other busy processes on a shared machine disturb far less than the wall clock.
"""

from __future__ import annotations

import gc
import json
import statistics
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from benchmarks.corpus import Corpus, net_json
from voxta_proto.hub import HandshakeRequest, HubConnection, Role
from voxta_proto.voxta import (
    ChatParticipantInfo,
    Send,
    Welcome,
    server_codec,
    wrap_client_message,
)
from voxta_proto.voxta.session import VoxtaClientSession

try:  # optional: the orjson row is skipped without it
    import orjson

    ORJSON_LOADS: Callable[[Any], Any] | None = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    ORJSON_LOADS = None

__all__ = ["Row", "compare", "decode_paths", "encode_paths"]

Run = Callable[[], int]
"""One timed pass; returns how many messages it produced (a sanity check)."""
Factory = Callable[[], Run]


@dataclass(frozen=True)
class Row:
    """Median seconds of one path over the interleaved repeats."""

    workload: str
    path: str
    seconds: float
    count: int
    runs: int


def compare(workload: str, paths: dict[str, Factory], repeats: int) -> dict[str, Row]:
    """Time every path ``repeats`` times, interleaved, after one untimed warm-up run
    each; medians per path. Times are this thread's CPU time."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    counts: dict[str, int] = {}
    for factory in paths.values():
        factory()()
    for _ in range(repeats):
        for name, factory in paths.items():
            run = factory()
            gc.collect()
            start = time.thread_time()
            counts[name] = run()
            times[name].append(time.thread_time() - start)
            del run
    return {name: Row(workload, name, statistics.median(ts), counts[name], len(ts))
            for name, ts in times.items()}


# -- receive paths ------------------------------------------------------------------------

def _open_hub(completions: int) -> HubConnection[Any]:
    """A client connection past the handshake that has sent ``completions`` invocations
    (ids "0", "1", ...), so the corpus's Completions match something."""
    conn = HubConnection(Role.CLIENT, now=0.0, codec=server_codec())
    conn.send(HandshakeRequest(protocol="json", version=1), now=0.0)
    conn.receive_data(b"{}\x1e", now=0.0)
    for _ in range(completions):
        message = Send(session_id="s", text="hi")
        conn.send(wrap_client_message(message, invocation_id=conn.next_invocation_id()),
                  now=0.0)
    return conn


def _welcome_record() -> bytes:
    welcome = Welcome(voxta_server_version="1.2.1", api_version="2025-08",
                      user=ChatParticipantInfo(id="4c8a0e6e-0000-4000-8000-000000000001",
                                               name="User"))
    body = {"type": 1, "target": "ReceiveMessage", "arguments": [msgspec.to_builtins(welcome)]}
    return net_json(body).encode() + b"\x1e"


def _ready_session() -> VoxtaClientSession:
    """A session past ``welcome``. It sends no requests, so the corpus's Completions
    answer nothing and are dropped: with thousands of requests pending, matching
    replies to them would dominate (real clients have a few)."""
    session = VoxtaClientSession(now=0.0)
    session.start(now=0.0)
    # welcome, then the Completion of authenticate (id "0"), as a server sends them
    session.receive_data(b"{}\x1e" + _welcome_record() + b'{"type":3,"invocationId":"0"}\x1e',
                         now=0.0)
    session.data_to_send()
    assert not session.pending_requests
    return session


def ours_hub(frames: tuple[bytes, ...], completions: int) -> Factory:
    """HubConnection with the catalog codec: frame bytes -> typed Voxta messages."""
    def factory() -> Run:
        receive = _open_hub(completions).receive_data

        def run() -> int:
            n = 0
            for frame in frames:
                n += len(receive(frame, now=0.0))
            return n
        return run
    return factory


def ours_session(frames: tuple[bytes, ...]) -> Factory:
    """VoxtaClientSession: the above plus chat state and request matching."""
    def factory() -> Run:
        receive = _ready_session().receive_data

        def run() -> int:
            n = 0
            for frame in frames:
                n += len(receive(frame, now=0.0))
            return n
        return run
    return factory


def _dispatch(message: dict[str, Any], out: list[Any]) -> None:
    """What existing clients do with a record: invocations hand their argument on."""
    if message.get("type") == 1 and message.get("target") == "ReceiveMessage":
        payload = message["arguments"][0]
        if payload.get("$type"):
            out.append(payload)
    else:
        out.append(message)


def loop_json(frames: tuple[bytes, ...], loads: Callable[[Any], Any] = json.loads) -> Factory:
    """The loop of existing clients: decode, split on 0x1E, strip, loads, dispatch."""
    def factory() -> Run:
        def run() -> int:
            out: list[Any] = []
            for frame in frames:
                for raw in frame.decode("utf-8").split("\x1e"):
                    if not raw.strip():
                        continue
                    _dispatch(loads(raw), out)
            return len(out)
        return run
    return factory


def floor(frames: tuple[bytes, ...]) -> Factory:
    """What msgspec alone costs, as the issue defines it: split, then
    ``msgspec.json.decode(part, type=msgspec.Raw)`` for each record (no typing at all)."""
    decode = msgspec.json.decode
    raw = msgspec.Raw

    def factory() -> Run:
        def run() -> int:
            n = 0
            for frame in frames:
                for part in frame.split(b"\x1e"):
                    if part:
                        decode(part, type=raw)
                        n += 1
            return n
        return run
    return factory


OURS = "ours: HubConnection.receive_data"
SESSION = "ours: VoxtaClientSession.receive_data"
LOOP = "loop: str.split + json.loads"
LOOP_ORJSON = "loop: str.split + orjson.loads"
FLOOR = "floor: bytes.split + msgspec Raw"


def decode_paths(corpus: Corpus, *, session: bool = True) -> dict[str, Factory]:
    paths: dict[str, Factory] = {OURS: ours_hub(corpus.frames, corpus.completions)}
    if session:
        paths[SESSION] = ours_session(corpus.frames)
    paths[LOOP] = loop_json(corpus.frames)
    if ORJSON_LOADS is not None:
        paths[LOOP_ORJSON] = loop_json(corpus.frames, ORJSON_LOADS)
    paths[FLOOR] = floor(corpus.frames)
    return paths


# -- encode -------------------------------------------------------------------------------

ENCODE_OURS = "ours: HubConnection.send(Invocation[Send])"
ENCODE_JSON = "json.dumps(dict) + uuid4"
SESSION_ID = "7b1f7c36-5c1a-4f5e-9d0b-2f4a8f0c9e11"
TEXT = "Hello there! How's the weather in Zürich today?"


def _our_encoder(count: int) -> Factory:
    def factory() -> Run:
        conn = _open_hub(0)
        send, next_id = conn.send, conn.next_invocation_id

        def run() -> int:
            n = 0
            for _ in range(count):
                n += len(send(wrap_client_message(
                    Send(session_id=SESSION_ID, text=TEXT, do_reply=True,
                         do_user_action_inference=True, do_character_action_inference=True),
                    invocation_id=next_id()), now=0.0)) > 0
            return n
        return run
    return factory


def _json_encoder(count: int) -> Factory:
    def factory() -> Run:
        def run() -> int:
            n = 0
            for _ in range(count):
                payload = {"type": 1, "target": "SendMessage", "arguments": [
                    {"$type": "send", "sessionId": SESSION_ID, "text": TEXT, "doReply": True,
                     "doUserActionInference": True, "doCharacterActionInference": True}],
                    "invocationId": str(uuid.uuid4())}
                n += len((json.dumps(payload) + "\x1e").encode("utf-8")) > 0
            return n
        return run
    return factory


def encode_paths(count: int) -> dict[str, Factory]:
    return {ENCODE_OURS: _our_encoder(count), ENCODE_JSON: _json_encoder(count)}


def check_corpus(corpus: Corpus) -> None:
    """Every record decodes to a catalog message (no Unknown/Invalid), or it is a
    Ping or Completion; raises AssertionError otherwise."""
    from voxta_proto.hub import Completion, Invocation, Ping
    from voxta_proto.voxta import ServerMessage

    conn = _open_hub(corpus.completions)
    seen = 0
    for frame in corpus.frames:
        for event in conn.receive_data(frame, now=0.0):
            seen += 1
            if isinstance(event, Invocation):
                if not all(isinstance(arg, ServerMessage) for arg in event.arguments):
                    raise AssertionError(f"not a catalog message: {event.arguments!r:.300}")
            elif not isinstance(event, (Ping, Completion)):
                raise AssertionError(f"unexpected event {event!r:.200}")
    if seen != corpus.messages:
        raise AssertionError(f"{seen} events from {corpus.messages} records")


def ratios(rows: dict[str, Row], ours: str, others: Iterable[str]) -> dict[str, float]:
    return {other: rows[other].seconds / rows[ours].seconds for other in others if other in rows}
