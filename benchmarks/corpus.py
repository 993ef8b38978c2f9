"""Seeded corpora of Voxta server traffic, written the way the .NET server writes it.

Every message is built as a catalog Struct (so field names and required fields are the
real ones), turned into builtins, and serialized by :func:`net_json`, which escapes like
``System.Text.Json``'s default encoder: ``'``, ``"``, ``<``, ``>``, ``&``, ``+``, control
characters and everything outside ASCII become ``\\uXXXX``. Records are packed 1 to 20 per
WebSocket frame. The same seed always gives the same bytes.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from voxta_proto.voxta import (
    Action,
    ActionInvocationArgument,
    CharactersListItem,
    CharactersListLoaded,
    ChatFlow,
    ChatFlowStates,
    ChatMessageRole,
    ReplyChunk,
    ReplyEnd,
    ReplyGenerating,
    ReplyStart,
    SpeechPlaybackStart,
)
from voxta_proto.voxta.server_messages import ServerMessage

__all__ = ["Corpus", "characters_list", "conversation", "invocation", "net_json", "pings"]

RS = b"\x1e"
_SAFE = frozenset(
    chr(c) for c in range(0x20, 0x7F) if chr(c) not in "\"\\'<>&+`"
)


def _net_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in _SAFE:
            out.append(ch)
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        else:
            code = ord(ch)
            if code > 0xFFFF:  # a surrogate pair, as UTF-16 strings hold it
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04X}\\u{0xDC00 + (code & 0x3FF):04X}")
            else:
                out.append(f"\\u{code:04X}")
    out.append('"')
    return "".join(out)


def net_json(value: Any) -> str:
    """Compact JSON with .NET's default escaping (``JavaScriptEncoder.Default``)."""
    if isinstance(value, str):
        return _net_string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_net_string(k)}:{net_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(net_json(v) for v in value) + "]"
    raise TypeError(f"cannot serialize {type(value).__name__}")


def invocation(message: ServerMessage) -> bytes:
    """One ``ReceiveMessage`` record carrying ``message``, as the .NET server writes it."""
    body = {"type": 1, "target": "ReceiveMessage",
            "arguments": [msgspec.to_builtins(message)]}
    return net_json(body).encode("ascii") + RS


PING: bytes = b'{"type":6}' + RS


def _completion(invocation_id: int) -> bytes:
    return net_json({"type": 3, "invocationId": str(invocation_id)}).encode("ascii") + RS


@dataclass(frozen=True)
class Corpus:
    """Frames of one workload and what they hold."""

    name: str
    frames: tuple[bytes, ...]
    messages: int
    """Records in all frames."""
    completions: int = 0
    """Completions for invocation ids "0", "1", ... (the receiver must have sent those)."""

    @property
    def size(self) -> int:
        return sum(map(len, self.frames))


def _pack(rng: random.Random, records: list[bytes], low: int = 1, high: int = 20
          ) -> tuple[bytes, ...]:
    frames = []
    i = 0
    while i < len(records):
        n = rng.randint(low, high)
        frames.append(b"".join(records[i:i + n]))
        i += n
    return tuple(frames)


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


_WORDS = ("the", "night", "was", "quiet", "and", "I", "could", "hear", "rain", "on", "glass",
          "you're", "café", "naïve", "smiled", "softly", "\u2014", "it's", "fine", "don't",
          "worry", "über", "déjà", "vu", "maybe", "tomorrow", "we'll", "see", "stars", "<3",
          "Q&A", "1+1", "\u2026", "\U0001F60A", "\u201chello\u201d", "tea", "garden", "map")


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(4, 18))]
    return " ".join(words).capitalize() + rng.choice((".", "!", "?", "...")) + " "


def _turn(rng: random.Random, session: str, character: str, user: str,
          completion_id: int) -> Iterator[bytes]:
    message = _guid(rng)
    yield _completion(completion_id)  # the user's `send` was accepted
    yield invocation(ChatFlow(session_id=session,
                               state=ChatFlowStates.PROCESSING_ASSISTANT_REPLY))
    yield invocation(ReplyGenerating(session_id=session, message_id=message,
                                      sender_id=character, role=ChatMessageRole.ASSISTANT,
                                      is_narration=False))
    yield invocation(ReplyStart(session_id=session, message_id=message, sender_id=character,
                                 chat_time=rng.randint(1_000, 10_000_000)))
    offset = 0
    for _ in range(rng.randint(6, 17)):
        text = _sentence(rng)
        yield invocation(ReplyChunk(
            session_id=session, message_id=message, sender_id=character, text=text,
            start_index=offset, end_index=offset + len(text),
            audio_url=f"/api/tts/gens/{_guid(rng)}.wav?cache=true", is_narration=False,
            audio_gap_ms=rng.choice((None, 0, 150))))
        offset += len(text)
        if rng.random() < 0.03:
            yield PING
    yield invocation(ReplyEnd(session_id=session, message_id=message, sender_id=character,
                               tokens=offset // 4, message_index=rng.randint(0, 500),
                               conversation_index=rng.randint(0, 500)))
    yield invocation(SpeechPlaybackStart(session_id=session, message_id=message,
                                          start_index=0, duration=rng.uniform(0.5, 30.0)))
    if rng.random() < 0.3:
        yield invocation(Action(
            session_id=session, value=rng.choice(("smile", "wave", "look_away")),
            role=ChatMessageRole.ASSISTANT, sender_id=character, layer="Default",
            context_key="_scenario",
            arguments=(ActionInvocationArgument(name="intensity", value="0.7"),)))
    yield invocation(ChatFlow(session_id=session, state=ChatFlowStates.WAITING_FOR_USER_INPUT))
    if rng.random() < 0.2:
        yield PING
    del user


def conversation(messages: int = 100_000, *, seed: int = 1) -> Corpus:
    """A streamed conversation: about 60% ``replyChunk``, packed 1 to 20 per frame.

    Every turn starts with the Completion of the user's ``send`` (ids "0", "1", ...).
    """
    rng = random.Random(seed)
    session, character, user = _guid(rng), _guid(rng), _guid(rng)
    records: list[bytes] = []
    turns = 0
    while len(records) < messages:
        records.extend(_turn(rng, session, character, user, turns))
        turns += 1
    del records[messages:]
    completions = sum(1 for r in records if r.startswith(b'{"type":3'))
    return Corpus("conversation", _pack(rng, records), len(records), completions)


def pings(messages: int = 100_000, *, seed: int = 2) -> Corpus:
    """Nothing but keep-alive pings, packed 1 to 20 per frame."""
    rng = random.Random(seed)
    return Corpus("pings", _pack(rng, [PING] * messages), messages)


def _character(rng: random.Random) -> CharactersListItem:
    name = rng.choice(("Aélis", "Kaito", "Mira O'Neil", "Zoë", "Björn", "Sakura 桜", "Riley"))
    created = f"2025-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T1{rng.randint(0, 9)}:03:41.2Z"
    return CharactersListItem(
        id=_guid(rng), name=name, app_controlled=False, date_created=created,
        date_created_ago=f"{rng.randint(2, 11)} months ago", date_modified=created,
        date_modified_ago=f"{rng.randint(1, 30)} days ago", culture="en-US",
        explicit_content=rng.random() < 0.2, favorite=rng.random() < 0.1, hidden=False,
        scenario_only=False, version="1.0.0", thumbnail_url=f"/api/characters/{_guid(rng)}"
        "/thumbnail?etag=638712345678901234", creator=rng.choice(("Voxta", "anon", "Jürgen")),
        creator_notes=_sentence(rng)[:80], imported_from="voxta",
        tags=tuple(rng.sample(("fantasy", "sci-fi", "friendly", "café", "romance", "mystery",
                               "assistant", "comedy"), 3)),
        package_id=_guid(rng), package_name=f"{name}'s pack", package_version="1.2.0")


def characters_list(messages: int = 40, *, characters: int = 500, seed: int = 3) -> Corpus:
    """The worst case: ``charactersListLoaded`` with 500 characters, one per frame."""
    rng = random.Random(seed)
    frames = tuple(
        invocation(CharactersListLoaded(characters=tuple(_character(rng)
                                                          for _ in range(characters))))
        for _ in range(messages))
    return Corpus("charactersListLoaded", frames, messages)
