"""Give the character eyes: answer the server's vision capture requests with images.

    python examples/vision_capture.py                     # the bundled mock, asyncio
    python examples/vision_capture.py --backend trio --blind
    python examples/vision_capture.py --url http://localhost:5384 --image photo.jpg "Look!"

An app that advertises ``visionCapture: "PostImage"`` may get a ``visionCaptureRequest``
at any time; it uploads an image for it (multipart POST) or cancels it, and the server
waits for one or the other. ``VisionCapture`` runs the callback and does the REST part;
here the callback returns a small generated PNG (or ``--image``), and ``--blind``
returns None, which cancels. Against the mock, a message containing "look" makes the
mock's stand-in scenario script ask for a screen capture.
"""

from __future__ import annotations

import argparse
import struct
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path

import anyio
import msgspec

from voxta_mock import DEFAULT_DATA, MockVoxtaServer, ReplyScript
from voxta_proto.client import VoxtaClient
from voxta_proto.client.vision import VisionCapture, vision_capabilities
from voxta_proto.voxta import ChatFlow, ChatFlowStates, VisionCaptureRequest

LOOKING = msgspec.structs.replace(DEFAULT_DATA, scripts=(
    *DEFAULT_DATA.scripts,
    ReplyScript(keyword="look", reply="Let me see.", vision_capture="Screen")))
"""The mock's data plus a stand-in for a scenario script that asks for an image."""


def tiny_png(width: int = 4, height: int = 4) -> bytes:
    """A grey PNG, so the example needs no imaging library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


async def run(url: str, messages: Sequence[str], image: bytes | None) -> list[str]:
    """Chat; answer every capture request with ``image`` (None: cancel)."""
    answered: list[str] = []

    def capture(request: VisionCaptureRequest) -> bytes | None:
        verb = "uploading" if image else "cancelling"
        source = getattr(request.source, "value", request.source)  # an enum, or a newer name
        answered.append(f"{source} capture {verb}")
        print(f"  [{source} capture requested: {verb}"
              f"{f' {len(image)} bytes' if image else ''}]")
        return image

    client = VoxtaClient(url, capabilities=vision_capabilities())
    async with client, VisionCapture(client, capture, content_type="image/png",
                                     filename="capture.png"):
        characters = await client.load_characters_list()
        await client.start_chat(characters[0].id)
        for text in messages:
            print(f"> {text}")
            await client.send_message(text)
            await client.wait_for(
                ChatFlow, lambda f: f.state is ChatFlowStates.WAITING_FOR_USER_INPUT,
                timeout=30)
    return answered


async def main(url: str | None, messages: Sequence[str], image: bytes | None) -> None:
    if url is not None:
        await run(url, messages, image)
        return
    async with MockVoxtaServer(port=0, data=LOOKING, reply_delay=0.0) as server:
        await run(server.url, messages, image)  # returns once every answer is in
        for upload in server.rest.vision_uploads:
            print(f"mock stored {upload.size} bytes of {upload.content_type} "
                  f"({upload.file_name}) for source {upload.source}")
        for request_id in server.rest.vision_cancelled:
            print(f"mock saw request {request_id[:8]}... cancelled")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Answer Voxta vision capture requests.")
    parser.add_argument("--url", help="a Voxta server; default: the bundled mock")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--image", type=Path, help="send this file (default: a tiny PNG)")
    parser.add_argument("--blind", action="store_true", help="cancel every request")
    parser.add_argument("messages", nargs="*", default=["Take a look at this."])
    args = parser.parse_args(sys.argv[1:])
    picture = None if args.blind else (args.image.read_bytes() if args.image else tiny_png())
    anyio.run(main, args.url, args.messages, picture, backend=args.backend)
