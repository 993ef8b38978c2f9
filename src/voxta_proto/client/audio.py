"""The microphone stream a client opens with ``open_audio_input``."""

from __future__ import annotations

from voxta_proto.transports import (
    MessageTransport,
)


class AudioInputStream:
    """An open microphone stream: raw little-endian PCM chunks, one per buffer."""

    def __init__(self, transport: MessageTransport) -> None:
        self.transport = transport

    async def send(self, pcm: bytes) -> None:
        """Send one chunk of PCM (a binary WebSocket message)."""
        if not pcm:
            return
        await self.transport.send(bytes(pcm))

    async def aclose(self) -> None:
        """End the stream: close the WebSocket normally (1000)."""
        await self.transport.aclose(1000)

    async def __aenter__(self) -> AudioInputStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the stream, as ``aclose()``."""
        await self.aclose()
