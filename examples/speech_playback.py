"""Play the character's speech yourself (``audioOutput: "Url"``), with the acks the server
waits for.

    python examples/speech_playback.py                      # the bundled mock, asyncio
    python examples/speech_playback.py --backend trio --no-tts
    python examples/speech_playback.py --url http://localhost:5384 --out clips "Hi!"

A client that advertises ``audioOutput: "Url"`` gets an audio URL on every reply chunk
and must tell the server when it plays them: ``speechPlaybackStart`` per chunk and one
``speechPlaybackComplete`` per reply, or the chat stalls after the first reply.
``SpeechPlayback`` does the fetching, ordering, ``audioGapMs`` waits and acks; this app
only "plays" each clip (it waits a tenth of the clip's length, or writes the WAVs to
``--out``). With ``--no-tts`` the mock behaves like a server without TTS that sends
``silence:N`` placeholders: nothing is fetched, and the acks still go out.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio

from voxta_mock import MockVoxtaServer
from voxta_proto.client import VoxtaClient
from voxta_proto.client.audio_output import SpeechPlayback, playback_capabilities
from voxta_proto.voxta import ChatFlow, ChatFlowStates


async def run(url: str, messages: Sequence[str], out: Path | None) -> int:
    """Chat and play every clip; return how many clips were played."""
    played = 0
    client = VoxtaClient(url, capabilities=playback_capabilities())
    async with client, SpeechPlayback(client) as speech:
        async def play() -> None:
            nonlocal played
            async for clip in speech:
                played += 1
                seconds = clip.duration or 0.0
                print(f"  clip {clip.start_index}-{clip.end_index}: {seconds:.2f} s of audio")
                if out is not None:
                    folder = anyio.Path(out)
                    await folder.mkdir(parents=True, exist_ok=True)
                    name = f"{clip.message_id}-{clip.start_index}.wav"
                    await (folder / name).write_bytes(clip.audio or b"")
                with anyio.move_on_after(seconds / 10):  # fast-forward, or until stopped
                    await clip.stopped.wait()

        async def turn() -> None:
            await client.wait_for(
                ChatFlow, lambda f: f.state is ChatFlowStates.WAITING_FOR_USER_INPUT,
                timeout=30)

        async with anyio.create_task_group() as tg:
            tg.start_soon(play)
            characters = await client.load_characters_list()
            started = await client.start_chat(characters[0].id)
            print(f"Chatting with {characters[0].name} (session {started.session_id})")
            await turn()  # the greeting: the server waits for our speechPlaybackComplete
            for text in messages:
                print(f"> {text}")
                await client.send_message(text)
                await turn()
            tg.cancel_scope.cancel()
    print(f"played {played} clip(s); every reply acknowledged")
    return played


async def main(url: str | None, messages: Sequence[str], out: Path | None, tts: bool) -> None:
    if url is not None:
        await run(url, messages, out)
        return
    async with MockVoxtaServer(port=0, speech=tts, silence_placeholders=not tts,
                               audio_gap_ms=80, reply_delay=0.01) as server:
        await run(server.url, messages, out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Play Voxta speech with playback acks.")
    parser.add_argument("--url", help="a Voxta server; default: the bundled mock")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--out", type=Path, help="write each clip as a WAV file here")
    parser.add_argument("--no-tts", dest="tts", action="store_false",
                        help="mock only: a server without TTS (silence:N placeholders)")
    parser.add_argument("messages", nargs="*", default=["Tell me about the sea."])
    args = parser.parse_args(sys.argv[1:])
    anyio.run(main, args.url, args.messages, args.out, args.tts, backend=args.backend)
