"""The REST endpoints Voxta clients call (reference §2.4), on top of the engine's state.

* ``POST /api/device/code``, ``/api/device/poll`` (no auth) and ``/api/device/verify``
  (the user's approval, so it needs the server's auth when it has a token): the device
  flow of API 2025-11 §3.6 that gives an app its API key. A code is approved by
  ``verify``, by [`MockRest.approve_device()`][voxta_mock.rest.MockRest.approve_device], or, with
  ``auto_approve``, after its
  first poll (which answers 204 so clients see the pending state once). ``auto_approve``
  defaults to on only for a server without ``auth_token``: with one, nothing is handed
  out without an explicit approval. The key handed out is the server's ``auth_token``
  when it has one, so it opens the hub. Codes expire after ``device_code_lifetime``.
* ``POST /api/auth/test``: 200 when the request got past the server's auth check.
* ``GET /api/chats[?characterId=]``, ``POST /api/chats``, ``GET /api/chats/{id}/summary``.
* ``GET /api/characters/{id}``: the character with ``appConfiguration`` by app.
* ``GET /api/tts/gens/{id}``: the WAV of a ``replyChunk.audioUrl`` (client playback).
* ``POST /api/vision/requests/{id}/send`` (multipart, a part named ``file``) and
  ``DELETE /api/vision/requests/{id}``: the answer to, or cancel of, a vision capture
  request the engine sent; uploads are kept in
  [`MockRest.vision_uploads`][voxta_mock.rest.MockRest.vision_uploads].

The server checks ``auth_token`` before calling
[`MockRest.handle()`][voxta_mock.rest.MockRest.handle] (except for the
paths in [`NO_AUTH_PATHS`][voxta_mock.rest.NO_AUTH_PATHS]). Bad bodies get 400 with ``{"error":
"..."}``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from voxta_mock.engine import MockEngine
from voxta_proto.transports import HttpRequest, HttpResponse

__all__ = ["DEVICE_SCOPES", "NO_AUTH_PATHS", "DeviceCode", "MockRest", "VisionUpload"]

DEVICE_SCOPES: Final = frozenset({"role:app", "role:provider", "role:inspector"})
NO_AUTH_PATHS: Final = frozenset({"/api/device/code", "/api/device/poll"})
"""Paths the server serves without checking ``auth_token``: how a client gets one.
``/api/device/verify`` is not among them: it is the user approving, signed in."""
DEVICE_CODE_LIFETIME: Final = 300.0
"""Seconds a device code stays valid (approved or not), as a default."""
MAX_DEVICE_CODES: Final = 1_000
"""Pending device codes kept at most; the oldest go first."""

_JSON: Final = (("Content-Type", "application/json; charset=utf-8"),)
_TEXT: Final = (("Content-Type", "text/plain; charset=utf-8"),)
_USER_CODE_ALPHABET: Final = "BCDFGHJKLMNPQRSTVWXZ23456789"


@dataclass
class DeviceCode:
    """One device-flow request: what the app asked for and whether it was approved."""

    device_code: str
    user_code: str
    client_id: str
    scope: str
    label: str
    created: float = 0.0
    """When it was issued, on the REST layer's clock."""
    approved: bool = False
    polls: int = 0


@dataclass(frozen=True)
class VisionUpload:
    """What a client posted to ``/api/vision/requests/{id}/send``."""

    request_id: str
    session_id: str | None
    source: str | None
    label: str | None
    content_type: str | None
    """The part's type, e.g. ``image/jpeg``."""
    size: int
    file_name: str | None = None
    data: bytes = b""
    """The image bytes, as posted."""


def _json(status: int, body: object) -> HttpResponse:
    return HttpResponse(status, _JSON, msgspec.json.encode(body))


def _error(status: int, message: str) -> HttpResponse:
    return _json(status, {"error": message})


@dataclass(frozen=True)
class _FilePart:
    file_name: str | None
    content_type: str | None
    data: bytes


def _header_params(value: str) -> tuple[str, dict[str, str]]:
    """``form-data; name="file"`` -> ``("form-data", {"name": "file"})``."""
    main, *params = value.split(";")
    out = {}
    for param in params:
        name, _, raw = param.strip().partition("=")
        out[name.strip().lower()] = raw.strip().strip('"')
    return main.strip().lower(), out


def _multipart_file(content_type: str | None, body: bytes) -> _FilePart | str:
    """The part named ``file`` of a multipart/form-data body, or why there is none."""
    kind, params = _header_params(content_type or "")
    if kind != "multipart/form-data":
        return "expected a multipart/form-data body with a part named 'file'"
    boundary = params.get("boundary", "")
    if not boundary:
        return "the multipart Content-Type has no boundary"
    for part in body.split(b"--" + boundary.encode("latin-1"))[1:]:
        if part.startswith(b"--"):
            break
        head, found, data = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not found:
            return "a multipart part has no end of headers"
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        _, disposition = _header_params(headers.get("content-disposition", ""))
        if disposition.get("name") == "file":
            return _FilePart(disposition.get("filename"), headers.get("content-type"),
                             data.removesuffix(b"\r\n"))
    return "no part named 'file' in the multipart body"


def _body(request: HttpRequest) -> dict[str, Any] | None:
    """The JSON object of the body, or None when it is not one (then the caller says 400)."""
    try:
        decoded = msgspec.json.decode(request.body or b"{}")
    except (msgspec.DecodeError, RecursionError):  # msgspec's error for absurd nesting
        return None
    return decoded if isinstance(decoded, dict) else None


class MockRest:
    """Answers the REST calls of reference §2.4 for one mock server.

    Args:
        engine: the server's engine (chats, TTS clips, vision requests).
        auth_token: the server's token; the device flow hands it out once approved.
        auto_approve: approve a device code after its first poll; by default only when
            there is no ``auth_token`` (tests opt in explicitly otherwise).
        device_code_lifetime: seconds after which a device code is invalid.
        clock: monotonic seconds, for device code expiry.
    """

    def __init__(self, engine: MockEngine, *, auth_token: str | None = None,
                 auto_approve: bool | None = None,
                 device_code_lifetime: float = DEVICE_CODE_LIFETIME,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.auth_token = auth_token
        self.auto_approve = auth_token is None if auto_approve is None else auto_approve
        self.device_code_lifetime = device_code_lifetime
        self._clock = clock
        self.devices: dict[str, DeviceCode] = {}
        """Pending device codes by ``device_code`` (removed once the key was handed out,
        or expired)."""
        self.vision_uploads: list[VisionUpload] = []
        self.vision_cancelled: list[str] = []

    def approve_device(self, user_code: str) -> bool:
        """Approve the pending device code with that user code (what the Voxta UI's
        browser page does); False when there is none."""
        self._expire_devices()
        for device in self.devices.values():
            if device.user_code == user_code.strip().upper():
                device.approved = True
                return True
        return False

    def handle(self, request: HttpRequest) -> HttpResponse | None:
        """The response for an ``/api/...`` request, or None when no endpoint matches."""
        path = request.path.rstrip("/")
        parts = path.split("/")[1:]  # "", "api", ... -> "api", ...
        method = request.method.upper()
        route = self._route(method, parts, request)
        if route is not None:
            return route
        if self._known(parts):
            return HttpResponse(405, _TEXT, b"Method Not Allowed")
        return None

    @staticmethod
    def _known(parts: list[str]) -> bool:
        if parts[:2] == ["api", "device"] and len(parts) == 3:
            return parts[2] in ("code", "poll", "verify")
        if parts == ["api", "auth", "test"] or parts == ["api", "chats"]:
            return True
        if parts[:2] == ["api", "characters"] and len(parts) == 3:
            return True
        if parts[:2] == ["api", "chats"] and len(parts) == 4 and parts[3] == "summary":
            return True
        if parts[:3] == ["api", "tts", "gens"] and len(parts) == 4:
            return True
        return parts[:3] == ["api", "vision", "requests"] and len(parts) in (4, 5)

    def _route(self, method: str, parts: list[str],
               request: HttpRequest) -> HttpResponse | None:
        match (method, parts):
            case ("POST", ["api", "device", "code"]):
                return self._device_code(request)
            case ("POST", ["api", "device", "poll"]):
                return self._device_poll(request)
            case ("POST", ["api", "device", "verify"]):
                body = _body(request)
                code = body.get("user_code") if body else None
                if isinstance(code, str) and self.approve_device(code):
                    return HttpResponse(204)
                return _error(400, "invalid or expired user_code")
            case ("GET", ["api", "characters", character_id]):
                character = self.engine.character_json(character_id)
                if character is None:
                    return _error(404, f"Character {character_id} not found")
                return HttpResponse(200, _JSON, character)
            case ("POST", ["api", "auth", "test"]):
                return HttpResponse(200)
            case ("GET", ["api", "chats"]):
                return HttpResponse(200, _JSON,
                                    self.engine.chats_json(request.query_param("characterId")))
            case ("POST", ["api", "chats"]):
                return self._create_chat(request)
            case ("GET", ["api", "chats", chat_id, "summary"]):
                summary = self.engine.chat_summary(chat_id)
                if summary is None:
                    return _error(404, f"Chat {chat_id} not found")
                return HttpResponse(200, _JSON, summary)
            case ("GET", ["api", "tts", "gens", clip]):
                audio = self.engine.tts_audio(clip)
                if audio is None:
                    return HttpResponse(404, _TEXT, b"Not Found")
                return HttpResponse(200, (("Content-Type", "audio/wav"),), audio)
            case ("POST", ["api", "vision", "requests", request_id, "send"]):
                return self._vision_upload(request_id, request)
            case ("DELETE", ["api", "vision", "requests", request_id]):
                refused = self.engine.answer_vision_request(
                    request_id, request.query_param("sessionId"), uploaded=False)
                if refused is not None:
                    return _error(404 if refused.endswith("not found") else 400, refused)
                self.vision_cancelled.append(request_id)
                return HttpResponse(204)
        return None

    def _vision_upload(self, request_id: str, request: HttpRequest) -> HttpResponse:
        part = _multipart_file(request.header("content-type"), request.body)
        if isinstance(part, str):
            return _error(400, part)
        session_id = request.query_param("sessionId")
        refused = self.engine.answer_vision_request(request_id, session_id, uploaded=True)
        if refused is not None:
            return _error(404 if refused.endswith("not found") else 400, refused)
        self.vision_uploads.append(VisionUpload(
            request_id, session_id, request.query_param("source"), request.query_param("label"),
            part.content_type, len(part.data), part.file_name, part.data))
        return HttpResponse(204)

    def _expire_devices(self) -> None:
        deadline = self._clock() - self.device_code_lifetime
        for code in [c for c, d in self.devices.items() if d.created <= deadline]:
            del self.devices[code]

    def _device_code(self, request: HttpRequest) -> HttpResponse:
        body = _body(request)
        if body is None:
            return _error(400, "the body must be a JSON object")
        client_id, scope, label = (body.get("client_id"), body.get("scope", "role:app"),
                                   body.get("label", ""))
        if not isinstance(client_id, str) or not client_id:
            return _error(400, "client_id is required (a non-empty string)")
        if not isinstance(scope, str) or scope not in DEVICE_SCOPES:
            return _error(400, f"scope must be one of {', '.join(sorted(DEVICE_SCOPES))} "
                               "(a single string)")
        if not isinstance(label, str):
            return _error(400, "label must be a string")
        self._expire_devices()
        while len(self.devices) >= MAX_DEVICE_CODES:
            del self.devices[next(iter(self.devices))]
        user_code = "-".join("".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(4))
                             for _ in range(2))
        device = DeviceCode(secrets.token_urlsafe(24), user_code, client_id, scope, label,
                            created=self._clock())
        self.devices[device.device_code] = device
        host = request.header("host") or "127.0.0.1"
        return _json(200, {"user_code": user_code, "verification_url": f"http://{host}/device",
                           "device_code": device.device_code})

    def _device_poll(self, request: HttpRequest) -> HttpResponse:
        body = _body(request)
        code = body.get("device_code") if body else None
        self._expire_devices()
        device = self.devices.get(code) if isinstance(code, str) else None
        if device is None:
            return _error(400, "invalid or expired device_code")
        device.polls += 1
        if not device.approved:
            if self.auto_approve:
                device.approved = True
            return HttpResponse(204)
        del self.devices[device.device_code]
        return _json(200, {"token": self.auth_token or secrets.token_urlsafe(24)})

    def _create_chat(self, request: HttpRequest) -> HttpResponse:
        body = _body(request)
        characters = body.get("characters") if body else None
        scenario = body.get("scenario") if body else None
        if (body is None or not isinstance(characters, list)
                or not all(isinstance(c, str) for c in characters)
                or not isinstance(scenario, (str, type(None)))):
            return _error(400, "expected {\"characters\": [id, ...], \"scenario\"?: id}")
        try:
            item = self.engine.create_chat(characters, scenario,
                                           ephemeral=body.get("ephemeral") is True)
        except ValueError as exc:
            return _error(400, str(exc))
        return HttpResponse(200, _JSON, item)
