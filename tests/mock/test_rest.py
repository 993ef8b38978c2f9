"""The mock's REST endpoints (reference §2.4) over loopback HTTP."""

from __future__ import annotations

import json

import anyio
import pytest

from voxta_proto.transports import ConnectOptions, http_request, negotiate

from .wire import fast

pytestmark = [pytest.mark.anyio, pytest.mark.network]

APEX = "22222222-2222-4222-8222-222222222222"
OLD_CHAT = "44444444-4444-4444-8444-444444444444"
SCENARIO = "55555555-5555-4555-8555-555555555555"


def body(payload: object) -> bytes:
    return json.dumps(payload).encode()


async def test_device_flow_hands_out_the_servers_token() -> None:
    with anyio.fail_after(10):
        async with fast(auth_token="s3cret") as server:
            code = await http_request("POST", f"{server.url}/api/device/code", body=body(
                {"client_id": "voxta", "scope": "role:app", "label": "My App"}))
            assert code.status == 200  # no auth needed to start the flow
            started = json.loads(code.body)
            assert set(started) == {"user_code", "verification_url", "device_code"}
            poll = body({"device_code": started["device_code"]})
            pending = await http_request("POST", f"{server.url}/api/device/poll", body=poll)
            assert pending.status == 204  # auto-approved after this first poll
            done = await http_request("POST", f"{server.url}/api/device/poll", body=poll)
            assert done.status == 200
            token = json.loads(done.body)["token"]
            assert token == "s3cret"
            again = await http_request("POST", f"{server.url}/api/device/poll", body=poll)
            assert again.status == 400  # handed out once
            # The key opens the hub.
            outcome = await negotiate(server.hub_url, options=ConnectOptions(access_token=token))
            assert outcome.result.connection_token


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
    (body({"client_id": "voxta", "scope": "role:admin"}), "Unknown scope"),
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


async def test_vision_upload_and_cancel_are_recorded() -> None:
    with anyio.fail_after(10):
        async with fast() as server:
            url = f"{server.url}/api/vision/requests/r1/send?sessionId=s&source=Screen&label=x"
            sent = await http_request("POST", url, body=b"\xff\xd8jpeg bytes",
                                      headers={"Content-Type": "multipart/form-data; b=1"})
            assert sent.status == 204
            upload = server.rest.vision_uploads[0]
            assert (upload.request_id, upload.session_id, upload.source, upload.size) == (
                "r1", "s", "Screen", 12)
            cancelled = await http_request("DELETE", f"{server.url}/api/vision/requests/r2")
            assert cancelled.status == 204
            assert server.rest.vision_cancelled == ["r2"]


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
