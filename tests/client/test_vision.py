"""VisionCapture against the mock: a capture request is answered with a multipart upload
the mock stores, or cancelled (API 2025-11 §3.3)."""

from __future__ import annotations

import anyio
import pytest

from voxta_mock import MockVoxtaServer
from voxta_proto.client import VoxtaClient
from voxta_proto.client.vision import (
    VisionCapture,
    multipart_file,
    upload_vision_image,
    vision_capabilities,
)
from voxta_proto.errors import RestError
from voxta_proto.voxta import ComputerVisionSource, VisionCaptureRequest

pytestmark = pytest.mark.anyio

APEX = "22222222-2222-4222-8222-222222222222"
TOKEN = "vision-token"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\r\n--not-a-boundary\r\n\xff\xd9"


def test_multipart_refuses_header_injection() -> None:
    with pytest.raises(ValueError, match="line breaks"):
        multipart_file(b"x", filename='a"\r\nX: y', content_type="image/jpeg")


async def wait_answered(server: MockVoxtaServer, request_id: str) -> str:
    # The mock records the answer in its REST handler; it has no event to wait on.
    while (state := server.engine.vision_requests[request_id].state) == "pending":  # noqa: ASYNC110
        await anyio.sleep(0.01)
    return state


@pytest.mark.voxta_mock(auth_token=TOKEN)
async def test_a_capture_is_uploaded_as_multipart_and_stored(
        voxta_mock_server: MockVoxtaServer) -> None:
    asked: list[VisionCaptureRequest] = []

    async def capture(request: VisionCaptureRequest) -> bytes:
        asked.append(request)
        return JPEG

    client = VoxtaClient(voxta_mock_server.url, token=TOKEN,
                         capabilities=vision_capabilities([ComputerVisionSource.EYES]))
    with anyio.fail_after(15):
        async with client, VisionCapture(client, capture, label="desk cam"):
            started = await client.start_chat(APEX)
            request_id = await voxta_mock_server.request_vision_capture(
                started.session_id, ComputerVisionSource.EYES)
            assert await wait_answered(voxta_mock_server, request_id) == "uploaded"
            # A second answer to the same request is refused with the server's reason.
            with pytest.raises(RestError) as refused:
                await upload_vision_image(client, asked[0], JPEG)
            assert refused.value.status_code == 400
            assert "already" in refused.value.body
    assert [r.vision_capture_request_id for r in asked] == [request_id]
    [upload] = voxta_mock_server.rest.vision_uploads
    assert upload.request_id == request_id
    assert upload.session_id == started.session_id
    assert upload.source == "Eyes"
    assert upload.label == "desk cam"
    assert upload.content_type == "image/jpeg"
    assert upload.file_name == "capture.jpg"
    assert upload.data == JPEG


@pytest.mark.parametrize("outcome", ["none", "raises"])
async def test_no_image_or_a_failed_capture_cancels_the_request(
        voxta_mock_server: MockVoxtaServer, outcome: str) -> None:
    def capture(request: VisionCaptureRequest) -> bytes | None:
        if outcome == "raises":
            raise RuntimeError("camera unplugged")
        return None

    client = VoxtaClient(voxta_mock_server.url, capabilities=vision_capabilities())
    with anyio.fail_after(15):
        async with client, VisionCapture(client, capture):
            started = await client.start_chat(APEX)
            request_id = await voxta_mock_server.request_vision_capture(started.session_id)
            assert await wait_answered(voxta_mock_server, request_id) == "cancelled"
    assert voxta_mock_server.rest.vision_uploads == []
    assert voxta_mock_server.rest.vision_cancelled == [request_id]
