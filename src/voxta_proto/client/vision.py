"""Answering the server's vision capture requests (``visionCapture: "PostImage"``, API
2025-11 §3.3).

A scenario or the Voxta UI asks the app for an image (``visionCaptureRequest``); the
app captures one and uploads it as ``multipart/form-data`` (one part named ``file``)
to ``POST /api/vision/requests/{id}/send``, or cancels with ``DELETE`` so the server
does not wait. `VisionCapture` always does one of the two:

```python
async def capture(request: VisionCaptureRequest) -> bytes | None:
    return screenshot_jpeg()          # None: nothing to show, cancel

client = VoxtaClient(url, capabilities=vision_capabilities())
async with client, VisionCapture(client, capture):
    ...
```
"""

from __future__ import annotations

import inspect
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from enum import Enum
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

import anyio
import anyio.abc
import msgspec.structs

from voxta_proto.client.rest import rest_request
from voxta_proto.errors import VoxtaProtoError
from voxta_proto.voxta.enums import ComputerVisionSource, VisionCaptureCapability
from voxta_proto.voxta.server_messages import VisionCaptureRequest
from voxta_proto.voxta.shapes import ClientCapabilities

if TYPE_CHECKING:
    from voxta_proto.client.connection import VoxtaClient
    from voxta_proto.client.events import EventStream

__all__ = [
    "CaptureCallback",
    "VisionCapture",
    "cancel_vision_request",
    "multipart_file",
    "upload_vision_image",
    "vision_capabilities",
]

logger = logging.getLogger("voxta_proto.client")

CaptureCallback = Callable[[VisionCaptureRequest], "Awaitable[bytes | None] | bytes | None"]
"""Returns the image for a request, or None to cancel it (sync or async)."""


def vision_capabilities(sources: Sequence[ComputerVisionSource] = (ComputerVisionSource.SCREEN,),
                        base: ClientCapabilities | None = None) -> ClientCapabilities:
    """Capabilities that let the server ask this app for images from ``sources``."""
    return msgspec.structs.replace(base or ClientCapabilities(),
                                   vision_capture=VisionCaptureCapability.POST_IMAGE,
                                   vision_sources=tuple(sources))


def multipart_file(data: bytes, *, filename: str, content_type: str,
                   field: str = "file") -> tuple[str, bytes]:
    """A ``multipart/form-data`` body with one file part; returns ``(content_type, body)``."""
    for text in (filename, content_type, field):
        if any(ch in text for ch in '"\r\n'):
            raise ValueError(f"{text!r}: quotes and line breaks are not allowed here")
    boundary = "voxta-proto-" + secrets.token_hex(16)
    head = (f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n").encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def _request_path(request_id: str, suffix: str, query: dict[str, str]) -> str:
    return f"/api/vision/requests/{quote(request_id, safe='')}{suffix}?{urlencode(query)}"


async def upload_vision_image(client: VoxtaClient, request: VisionCaptureRequest,
                              image: bytes, *, content_type: str = "image/jpeg",
                              filename: str = "capture.jpg", label: str | None = None,
                              source: ComputerVisionSource | str | None = None) -> None:
    """Answer ``request`` with ``image`` (multipart POST, the client's token).

    Args:
        source: the source reported; default the one the server asked for.
        label: optional text shown with the image.

    Raises:
        RestError: the server refused the upload (unknown or answered request, ...).
        TransportError: the request failed.
        ValueError: an empty image, or a quote or line break in ``filename``/``content_type``.
    """
    if not image:
        raise ValueError("an empty image: cancel the request instead")
    kind, body = multipart_file(image, filename=filename, content_type=content_type)
    chosen = source or request.source
    query = {"sessionId": request.session_id,
             "source": chosen.value if isinstance(chosen, Enum) else str(chosen)}
    if label is not None:
        query["label"] = label
    await rest_request("POST", client.url, _request_path(
        request.vision_capture_request_id, "/send", query), options=client.options,
        body=body, headers=[("Content-Type", kind)])


async def cancel_vision_request(client: VoxtaClient, request: VisionCaptureRequest) -> None:
    """Tell the server no image will come (``DELETE``), so it does not wait.

    Raises:
        RestError: the server refused (unknown or already answered request).
        TransportError: the request failed.
    """
    await rest_request("DELETE", client.url, _request_path(
        request.vision_capture_request_id, "", {"sessionId": request.session_id}),
        options=client.options)


class VisionCapture:
    """Answers every ``visionCaptureRequest`` while open: ``capture`` returns the image
    (uploaded) or None (cancelled); a capture that raises is cancelled too, so the
    server never waits for an answer that will not come.

    Args:
        client: a client that advertised ``vision_capabilities()``.
        capture: the callback; each request runs in a task of its own.
        content_type: the type of the images ``capture`` returns.
        filename: the file name of the upload.
        label: optional text sent with every image.
    """

    def __init__(self, client: VoxtaClient, capture: CaptureCallback, *,
                 content_type: str = "image/jpeg", filename: str = "capture.jpg",
                 label: str | None = None) -> None:
        self.client = client
        self.capture = capture
        self.content_type = content_type
        self.filename = filename
        self.label = label
        self._tg: anyio.abc.TaskGroup | None = None
        self._reader = anyio.CancelScope()

    async def __aenter__(self) -> VisionCapture:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._read, self.client.events())
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> bool | None:
        """Stop taking requests, and let the answers under way finish (the server waits
        for them); on an error, cancel them too."""
        assert self._tg is not None
        self._reader.cancel()
        if exc is not None:
            self._tg.cancel_scope.cancel()
        return await self._tg.__aexit__(exc_type, exc, tb)

    async def _read(self, events: EventStream) -> None:
        with self._reader:
            async for event in events:
                if isinstance(event, VisionCaptureRequest):
                    assert self._tg is not None
                    self._tg.start_soon(self.answer, event)

    async def answer(self, request: VisionCaptureRequest) -> bool:
        """Capture and upload, or cancel; True when an image was uploaded. Failures
        are logged (the server's reason included), never raised."""
        try:
            result = self.capture(request)
            image = await result if inspect.isawaitable(result) else result
        except Exception:
            logger.exception("vision capture for %s failed; cancelling",
                             request.vision_capture_request_id)
            image = None
        try:
            if image:
                await upload_vision_image(client=self.client, request=request, image=image,
                                          content_type=self.content_type,
                                          filename=self.filename, label=self.label)
                return True
            await cancel_vision_request(self.client, request)
        except VoxtaProtoError as exc:
            logger.warning("answering vision request %s failed: %s",
                           request.vision_capture_request_id, exc)
        return False
