"""``on()``/``wait_for()`` names: typed per name (mypy sees it), generated from the catalog
(cannot drift), and a name neither knows is an error with a suggestion (issue 17 item 9)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from voxta_proto.client import VoxtaClient, _typed, _typed_gen
from voxta_proto.client.events import EVENT_NAMES, check_event_name
from voxta_proto.voxta.codec import SERVER_MESSAGE_TYPES

CLIENT_EVENTS = {"ready", "reconnecting", "reconnected", "close", "chatLost"}


def test_the_generated_overloads_are_up_to_date() -> None:
    text = Path(_typed.__file__).read_text(encoding="utf-8")
    assert text == _typed_gen.render(), (
        "client/_typed.py is stale: run python -m voxta_proto.client._typed_gen")


def test_there_is_one_overload_per_catalog_name_and_no_other() -> None:
    text = Path(_typed.__file__).read_text(encoding="utf-8")
    on_names = re.findall(r'def on\(self, event_name: Literal\["(\w+)"\], callback: Callable', text)
    wait_names = re.findall(r'def wait_for\(self, event_type: Literal\["(\w+)"\]', text)
    expected = set(SERVER_MESSAGE_TYPES) | CLIENT_EVENTS
    assert sorted(on_names) == sorted(expected)
    assert sorted(wait_names) == sorted(expected)
    assert set(EVENT_NAMES) == expected
    for name, cls in SERVER_MESSAGE_TYPES.items():
        assert f'Literal["{name}"], callback: Callable[[{cls.__name__}], R]' in text
        assert f'Literal["{name}"], predicate: Callable[[{cls.__name__}], bool]' in text


def test_every_known_name_is_accepted_as_call_and_as_decorator() -> None:
    client = VoxtaClient("http://127.0.0.1:1")
    for name in sorted(EVENT_NAMES):
        client.on(name, print)  # type: ignore[call-overload]  # a str, not a literal
        client.on(name)(print)  # type: ignore[call-overload]
        assert client.callbacks[name] == [print, print]


@pytest.mark.parametrize(("typo", "suggestion"), [
    ("replychunk", "'replyChunk'"),       # case only: the case match, nothing else
    ("REPLYEND", "'replyEnd'"),
    ("replyChnk", "'replyChunk'"),
    ("Ready", "'ready'"),
    ("closed", "'close'"),
])
def test_an_unknown_name_raises_with_did_you_mean(typo: str, suggestion: str) -> None:
    client = VoxtaClient("http://127.0.0.1:1")
    with pytest.raises(ValueError, match=f"unknown event name '{typo}'; did you mean {suggestion}"):
        client.on(typo, print)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="did you mean"):
        client.on(typo)  # type: ignore[call-overload]
    assert client.callbacks == {}


def test_voxta_clients_legacy_message_event_says_what_to_use_instead() -> None:
    # voxta-client's README listens for "message"; no server sends it, so it never fired.
    with pytest.raises(ValueError, match=r"never send.*'replyChunk'.*'replyEnd'.*'update'"):
        VoxtaClient("http://127.0.0.1:1").on("message", print)  # type: ignore[call-overload]


def test_a_name_like_nothing_says_what_names_are() -> None:
    with pytest.raises(ValueError, match=r"unknown event name 'xyzzy' \(a server message"):
        check_event_name("xyzzy")
    with pytest.raises(TypeError, match="a str, not int"):
        check_event_name(3)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_wait_for_an_unknown_name_raises_at_once() -> None:
    client = VoxtaClient("http://127.0.0.1:1")
    with pytest.raises(ValueError, match="did you mean 'replyEnd'"):
        await client.wait_for("replyend", timeout=0.01)  # type: ignore[call-overload]


USER_FILE = '''\
from voxta_proto import VoxtaClient
from voxta_proto.voxta import ReplyChunk, ReplyEnd


def on_chunk(chunk: ReplyChunk) -> None:
    print(chunk.text)


def on_end(end: ReplyEnd) -> None:
    print(end.message_id)


async def main(client: VoxtaClient) -> None:
    client.on("replyChunk", on_chunk)
    client.on("replyChunk", on_end)  # line 15: wrong event class
    client.on("replyEnd", lambda end: print(end.message_id))
    client.on("ready", lambda session_id: print(session_id.upper()))

    @client.on("replyChunk")
    async def chunk_handler(chunk: ReplyChunk) -> None:
        print(chunk.text)

    @client.on("replyEnd")  # line 23: wrong event class
    def end_handler(chunk: ReplyChunk) -> None:
        print(chunk.text)

    reveal_type(await client.wait_for("replyEnd"))
    reveal_type(await client.wait_for(ReplyChunk, timeout=1))
    reveal_type(chunk_handler)
    client.on("replychunk", on_chunk)  # line 30: not a name
'''


def test_mypy_strict_sees_the_event_class_of_each_name(tmp_path: Path) -> None:
    (tmp_path / "user.py").write_text(USER_FILE, encoding="utf-8")
    (tmp_path / "mypy.ini").write_text("[mypy]\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", "mypy.ini",
         "--cache-dir", str(tmp_path / "cache"), "--hide-error-context", "--no-pretty",
         "--show-error-codes", "user.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    lines = [line for line in done.stdout.splitlines() if "note:     def" not in line]
    errors = sorted(int(line.split(":")[1]) for line in lines if ": error:" in line)
    revealed = [line.split("Revealed type is ", 1)[1] for line in lines
                if "Revealed type is" in line]
    assert errors == [15, 23, 30], done.stdout[-3000:]
    assert revealed == [
        '"voxta_proto.voxta.server_messages.ReplyEnd"',
        '"voxta_proto.voxta.server_messages.ReplyChunk"',
        '"def (voxta_proto.voxta.server_messages.ReplyChunk) -> '
        'typing.Coroutine[Any, Any, None]"',
    ], done.stdout[-3000:]
    assert "No overload variant of \"on\"" in textwrap.dedent(done.stdout)
