"""The mock's REST endpoints (reference §2.4) over loopback HTTP."""

from __future__ import annotations

import json

import anyio
import pytest

from voxta_mock import MockEngine, MockVoxtaServer, Step
from voxta_mock.rest import MAX_DEVICE_CODES, MockRest
from voxta_proto.transports import (
    ConnectOptions,
    HttpRequest,
    HttpResponse,
    http_request,
    negotiate,
)
from voxta_proto.voxta import Authenticate, ClientCapabilities, ComputerVisionSource, StartChat

from .wire import fast

pytestmark = [pytest.mark.anyio, pytest.mark.network]

APEX = "22222222-2222-4222-8222-222222222222"
OLD_CHAT = "44444444-4444-4444-8444-444444444444"
SCENARIO = "55555555-5555-4555-8555-555555555555"


AUTH = Authenticate(client="t", scope=("role:app",), capabilities=ClientCapabilities())


def body(payload: object) -> bytes:
    return json.dumps(payload).encode()


async def test_device_flow_with_auth_token_hands_out_nothing_without_approval() -> None:
    with anyio.fail_after(10):
        async with fast(auth_token="s3cret") as server:
            code = await http_request("POST", f"{server.url}/api/device/code", body=body(
                {"client_id": "voxta", "scope": "role:app", "label": "My App"}))
            assert code.status == 200  # no auth needed to start the flow
            started = json.loads(code.body)
            assert set(started) == {"user_code", "verification_url", "device_code"}
            poll = body({"device_code": started["device_code"]})
            for _ in range(3):  # anonymous polling never gets the server's token
                pending = await http_request("POST", f"{server.url}/api/device/poll", body=poll)
                assert pending.status == 204
            verify = body({"user_code": started["user_code"]})
            anonymous = await http_request("POST", f"{server.url}/api/device/verify", body=verify)
            assert anonymous.status == 401  # approving is the signed-in user's act
            signed_in = ConnectOptions(access_token="s3cret")
            approved = await http_request("POST", f"{server.url}/api/device/verify",
                                          body=verify, options=signed_in)
            assert approved.status == 204
            done = await http_request("POST", f"{server.url}/api/device/poll", body=poll)
            assert done.status == 200
            token = json.loads(done.body)["token"]
            assert token == "s3cret"
            again = await http_request("POST", f"{server.url}/api/device/poll", body=poll)
            assert again.status == 400  # handed out once
            # The key opens the hub.
            outcome = await negotiate(server.hub_url, options=ConnectOptions(access_token=token))
            assert outcome.result.connection_token


async def test_device_flow_auto_approval_is_an_explicit_opt_in_with_a_token() -> None:
    with anyio.fail_after(10):
        async with fast(auth_token="s3cret") as server:
            assert server.rest.auto_approve is False
            server.rest.auto_approve = True  # what a test of a login flow opts into
            code = json.loads((await http_request("POST", f"{server.url}/api/device/code",
                                                  body=body({"client_id": "voxta"}))).body)
            poll = body({"device_code": code["device_code"]})
            first = await http_request("POST", f"{server.url}/api/device/poll", body=poll)
            assert first.status == 204  # pending once, then approved
            done = await http_request("POST", f"{server.url}/api/device/poll", body=poll)
            assert json.loads(done.body) == {"token": "s3cret"}


async def test_device_flow_waits_for_verify_when_not_auto_approved() -> None:
    with anyio.fail_after(10):
        async with fast() as server:
            server.rest.auto_approve = False
            code = json.loads((await http_request("POST", f"{server.url}/api/device/code",
                                                  body=body({"client_id": "voxta"}))).body)
            poll = body({"device_code": code["device_code"]})
            for _ in range(3):
                response = await http_request("POST", f"{server.url}/api/device/poll", body=poll)
                assert response.status == 204
            bad = await http_request("POST", f"{server.url}/api/device/verify",
                                     body=body({"user_code": "NOPE-NOPE"}))
            assert bad.status == 400
            ok = await http_request("POST", f"{server.url}/api/device/verify",
                                    body=body({"user_code": code["user_code"].lower()}))
            assert ok.status == 204
            response = await http_request("POST", f"{server.url}/api/device/poll", body=poll)
            assert response.status == 200
            assert json.loads(response.body)["token"]


@pytest.mark.parametrize(("payload", "error"), [
    (b"not json", "JSON object"),
    (body({"scope": "role:app"}), "client_id"),
    (body({"client_id": "voxta", "scope": "role:admin"}), "scope must be one of"),
    (body({"client_id": "voxta", "scope": ["role:app"]}), "scope must be one of"),
    (body({"client_id": "voxta", "scope": {"role": "app"}}), "scope must be one of"),
    (body({"client_id": ["voxta"]}), "client_id"),
    (body({"client_id": "voxta", "label": 7}), "label must be a string"),
    (body(["client_id", "voxta"]), "JSON object"),
])
async def test_device_code_rejects_bad_requests(payload: bytes, error: str) -> None:
    with anyio.fail_after(10):
        async with fast() as server:
            response = await http_request("POST", f"{server.url}/api/device/code", body=payload)
            assert response.status == 400
            assert error in json.loads(response.body)["error"]
            unknown = await http_request("POST", f"{server.url}/api/device/poll",
                                         body=body({"device_code": "nope"}))
            assert unknown.status == 400


async def test_auth_test_endpoint() -> None:
    with anyio.fail_after(10):
        async with fast(auth_token="s3cret") as server:
            url = f"{server.url}/api/auth/test"
            assert (await http_request("POST", url)).status == 401
            wrong = ConnectOptions(access_token="wrong")
            assert (await http_request("POST", url, options=wrong)).status == 401
            good = ConnectOptions(access_token="s3cret")
            assert (await http_request("POST", url, options=good)).status == 200
            # Every other REST endpoint is behind the same check.
            assert (await http_request("GET", f"{server.url}/api/chats")).status == 401


async def test_create_list_and_summarize_chats() -> None:
    with anyio.fail_after(10):
        async with fast() as server:
            created = await http_request("POST", f"{server.url}/api/chats", body=body(
                {"characters": [APEX], "scenario": SCENARIO, "client": "tests"}))
            assert created.status == 200
            item = json.loads(created.body)
            assert item["characters"] == [{"id": APEX, "name": "Apex"}]
            assert item["scenarioId"] == SCENARIO
            assert None not in item.values()
            listed = json.loads((await http_request(
                "GET", f"{server.url}/api/chats?characterId={APEX}")).body)["chats"]
            assert [c["id"] for c in listed] == [item["id"], OLD_CHAT]  # newest first
            summary = await http_request("GET", f"{server.url}/api/chats/{OLD_CHAT}/summary")
            assert summary.status == 200
            parsed = json.loads(summary.body)
            assert parsed["chatId"] == OLD_CHAT
            assert [m["role"] for m in parsed["lastMessages"]] == ["Assistant", "User",
                                                                   "Assistant"]
            assert parsed["scenario"]["name"] == "Default"
            missing = await http_request("GET", f"{server.url}/api/chats/nope/summary")
            assert missing.status == 404


@pytest.mark.parametrize(("payload", "error"), [
    ({"characters": ["99999999-9999-4999-8999-999999999999"]}, "not found"),
    ({"characters": []}, "At least one character"),
    ({"characters": [APEX], "scenario": "nope"}, "Scenario nope not found"),
    ({"characters": "x"}, "expected"),
])
async def test_create_chat_rejects_bad_requests(payload: object, error: str) -> None:
    with anyio.fail_after(10):
        async with fast() as server:
            response = await http_request("POST", f"{server.url}/api/chats", body=body(payload))
            assert response.status == 400
            assert error in json.loads(response.body)["error"]


def multipart(data: bytes, *, name: str = "file",
              boundary: str = "----voxta7") -> tuple[dict[str, str], bytes]:
    """Headers and body of a multipart/form-data upload, as browsers and .NET write it."""
    payload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
               f"filename=\"minecraft.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode()
    payload += data + f"\r\n--{boundary}--\r\n".encode()
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}, payload


JPEG = b"\xff\xd8\xff\xe0 jpeg \r\n--not-the-boundary\r\n bytes \xff\xd9"


async def test_vision_upload_and_cancel_answer_the_engines_requests() -> None:
    with anyio.fail_after(10):
        async with fast() as server:
            server.engine.connect("owner")
            sid, _ = _session(server)
            first, _ = server.engine.request_vision_capture(sid)
            second, _ = server.engine.request_vision_capture(sid, ComputerVisionSource.EYES)
            headers, payload = multipart(JPEG)
            url = (f"{server.url}/api/vision/requests/{first}/send"
                   f"?sessionId={sid}&source=Eyes&label=x")
            sent = await http_request("POST", url, body=payload, headers=headers)
            assert sent.status == 204
            [upload] = server.rest.vision_uploads
            assert (upload.request_id, upload.session_id, upload.source, upload.label) == (
                first, sid, "Eyes", "x")
            assert (upload.file_name, upload.content_type, upload.data) == (
                "minecraft.jpg", "image/jpeg", JPEG)
            assert upload.size == len(JPEG)
            assert server.engine.vision_requests[first].state == "uploaded"
            twice = await http_request("POST", url, body=payload, headers=headers)
            assert twice.status == 400
            assert "already uploaded" in json.loads(twice.body)["error"]
            cancel = f"{server.url}/api/vision/requests/{second}?sessionId={sid}"
            assert (await http_request("DELETE", cancel)).status == 204
            assert server.rest.vision_cancelled == [second]
            assert server.engine.vision_requests[second].state == "cancelled"
            unknown = await http_request("DELETE", f"{server.url}/api/vision/requests/r2")
            assert unknown.status == 404


@pytest.mark.parametrize(("headers", "payload", "error"), [
    ({"Content-Type": "image/jpeg"}, JPEG, "multipart/form-data"),
    ({"Content-Type": "multipart/form-data"}, JPEG, "no boundary"),
    (*multipart(JPEG, name="image"), "no part named 'file'"),
    ({"Content-Type": "multipart/form-data; boundary=b"}, b"--b\r\nno header end",
     "end of headers"),
])
async def test_vision_upload_rejects_bad_bodies(headers: dict[str, str], payload: bytes,
                                                error: str) -> None:
    with anyio.fail_after(10):
        async with fast() as server:
            server.engine.connect("owner")
            sid, _ = _session(server)
            request_id, _ = server.engine.request_vision_capture(sid)
            url = f"{server.url}/api/vision/requests/{request_id}/send?sessionId={sid}"
            response = await http_request("POST", url, body=payload, headers=headers)
            assert response.status == 400
            assert error in json.loads(response.body)["error"]
            assert server.rest.vision_uploads == []
            assert server.engine.vision_requests[request_id].state == "pending"


def _session(server: MockVoxtaServer) -> tuple[str, list[Step]]:
    """A running session owned by the virtual connection ``owner``."""
    list(server.engine.handle("owner", AUTH))
    steps = list(server.engine.handle("owner", StartChat(character_id=APEX)))
    record = server.engine.sessions.owned_by("owner")
    assert record is not None
    return record.session_id, steps


def test_device_codes_expire_and_stay_bounded() -> None:
    now = [1000.0]
    rest = MockRest(MockEngine(), device_code_lifetime=60.0, clock=lambda: now[0])

    def post(path: str, payload: object) -> HttpResponse:
        response = rest.handle(HttpRequest(method="POST", target=path, body=body(payload)))
        assert response is not None
        return response

    code = json.loads(post("/api/device/code", {"client_id": "voxta"}).body)
    now[0] += 59.0
    assert post("/api/device/poll", {"device_code": code["device_code"]}).status == 204
    now[0] += 1.0
    expired = post("/api/device/poll", {"device_code": code["device_code"]})
    assert expired.status == 400
    assert rest.devices == {}
    assert not rest.approve_device(code["user_code"])
    for _ in range(MAX_DEVICE_CODES + 5):
        post("/api/device/code", {"client_id": "voxta"})
    assert len(rest.devices) == MAX_DEVICE_CODES


@pytest.mark.parametrize("path", ["/api/device/code", "/api/device/poll", "/api/device/verify",
                                  "/api/chats"])
def test_absurdly_nested_json_is_a_400_not_a_crash(path: str) -> None:
    rest = MockRest(MockEngine())
    nested = b"[" * 100_000 + b"]" * 100_000
    response = rest.handle(HttpRequest(method="POST", target=path, body=nested))
    assert response is not None
    assert response.status == 400


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/api/device/code", 405),
    ("DELETE", "/api/chats", 405),
    ("GET", "/api/nothing/here", 404),
    ("GET", "/elsewhere", 404),
])
async def test_unknown_routes_and_methods(method: str, path: str, status: int) -> None:
    with anyio.fail_after(10):
        async with fast() as server:
            assert (await http_request(method, f"{server.url}{path}")).status == status
