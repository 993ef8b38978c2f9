"""Device-flow login and the stored API keys (API 2025-11 §3.6).

An app asks the server for a code, shows the user ``verification_url`` and
``user_code``, and polls until the user approved it in a browser; the answer is an API
key, checked with ``POST /api/auth/test`` before it is kept. Keys are stored per server
in the user's config directory (``$XDG_CONFIG_HOME/voxta-proto/tokens.json``, else
``~/.config/voxta-proto/``; ``%APPDATA%\\voxta-proto\\`` on Windows), readable by the
owner only (directory 0700, file 0600); ``VoxtaClient`` and ``voxta chat`` use the key
stored for their URL when no other is given.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import anyio
import msgspec

from voxta_proto.client.rest import base_url, rest_request
from voxta_proto.errors import RestError
from voxta_proto.transports.base import ConnectOptions

__all__ = [
    "DEVICE_SCOPES",
    "DeviceCode",
    "check_token",
    "config_dir",
    "device_login",
    "forget_token",
    "load_token",
    "poll_device_token",
    "request_device_code",
    "store_token",
    "token_file",
]

DEVICE_SCOPES = ("role:app", "role:provider", "role:inspector")
"""Scopes a device code may ask for; apps use ``role:app``."""
CLIENT_ID = "voxta"
TOKENS_FILE = "tokens.json"


@dataclass(frozen=True)
class DeviceCode:
    """The answer to ``POST /api/device/code``: show the user the first two."""

    user_code: str
    verification_url: str
    device_code: str


class _CodeBody(msgspec.Struct):
    user_code: str
    verification_url: str
    device_code: str


class _TokenBody(msgspec.Struct):
    token: str | None = None


# -- the device flow -------------------------------------------------------------------

def _anonymous(options: ConnectOptions | None) -> ConnectOptions:
    """The device endpoints take no auth: never send a (stale) key to them."""
    return replace(options or ConnectOptions(), access_token=None)


async def request_device_code(url: str, *, label: str | None = None,
                              scope: str = "role:app",
                              options: ConnectOptions | None = None) -> DeviceCode:
    """Start a login (``POST /api/device/code``).

    Raises:
        ValueError: ``scope`` is not one of `DEVICE_SCOPES`.
        RestError: the server refused, or answered without the three codes.
        TransportError: the request failed.
    """
    if scope not in DEVICE_SCOPES:
        raise ValueError(f"scope {scope!r}: use one of {', '.join(DEVICE_SCOPES)}")
    body: dict[str, str] = {"client_id": CLIENT_ID, "scope": scope}
    if label:
        body["label"] = label
    response = await rest_request("POST", url, "/api/device/code", json=body,
                                  options=_anonymous(options))
    try:
        code = msgspec.json.decode(response.body, type=_CodeBody)
    except msgspec.DecodeError as exc:
        raise RestError(f"POST /api/device/code: unexpected answer ({exc})",
                        status_code=response.status,
                        body=response.body.decode("utf-8", "replace")[:500]) from None
    return DeviceCode(code.user_code, code.verification_url, code.device_code)


async def poll_device_token(url: str, code: DeviceCode, *, interval: float = 1.0,
                            first_delay: float = 1.0, timeout: float | None = 300.0,  # noqa: ASYNC109
                            options: ConnectOptions | None = None) -> str:
    """Poll ``POST /api/device/poll`` until the user approved; returns the API key.
    ``204`` (or a ``200`` without a token) is pending, ``400`` expired or invalid.

    Raises:
        RestError: the code expired or is invalid (400), or another refusal.
        TimeoutError: not approved within ``timeout`` seconds.
        TransportError: a request failed.
    """
    anonymous = _anonymous(options)
    with anyio.fail_after(timeout):
        await anyio.sleep(first_delay)
        while True:
            response = await rest_request("POST", url, "/api/device/poll", options=anonymous,
                                          json={"device_code": code.device_code})
            if response.status == 200 and response.body:
                with contextlib.suppress(msgspec.DecodeError):
                    token = msgspec.json.decode(response.body, type=_TokenBody).token
                    if token:
                        return token
            await anyio.sleep(interval)


async def check_token(url: str, token: str, *, options: ConnectOptions | None = None) -> bool:
    """Whether the server accepts ``token`` (``POST /api/auth/test``: any 2xx).

    Raises:
        RestError: a failure other than 401/403 (the server's own problem).
        TransportError: the request failed.
    """
    try:
        await rest_request("POST", url, "/api/auth/test",
                           options=replace(options or ConnectOptions(), access_token=token))
    except RestError as exc:
        if exc.status_code in (401, 403):
            return False
        raise
    return True


CodeCallback = Callable[[DeviceCode], "Awaitable[object] | object"]


async def device_login(url: str, *, label: str | None = None, scope: str = "role:app",
                       on_code: CodeCallback | None = None, interval: float = 1.0,
                       first_delay: float = 1.0, timeout: float | None = 300.0,  # noqa: ASYNC109
                       options: ConnectOptions | None = None, store: bool = True) -> str:
    """The whole login: get a code, tell ``on_code`` (show it to the user), poll, check
    the key and (``store``) keep it for ``url``; returns the key.

    Raises:
        RestError: the code expired, or the server refused the new key.
        TimeoutError: not approved within ``timeout`` seconds.
        TransportError: a request failed.
        OSError: the key could not be stored.
    """
    code = await request_device_code(url, label=label, scope=scope, options=options)
    if on_code is not None:
        shown = on_code(code)
        if inspect.isawaitable(shown):
            await shown
    token = await poll_device_token(url, code, interval=interval, first_delay=first_delay,
                                    timeout=timeout, options=options)
    if not await check_token(url, token, options=options):
        raise RestError("the server refused the key it just issued (POST /api/auth/test)",
                        status_code=401)
    if store:
        store_token(url, token)
    return token


# -- the token store -------------------------------------------------------------------

def config_dir() -> Path:
    """This toolkit's config directory (not created here)."""
    if sys.platform == "win32":
        root = os.environ.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
    else:
        root = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(root) / "voxta-proto"


def token_file() -> Path:
    """Where the API keys are stored, one per server URL."""
    return config_dir() / TOKENS_FILE


def server_key(url: str) -> str:
    """The URL as the store keys it: ``http(s)://host[:port][/base]``, no ``/hub``."""
    parts = urlsplit(base_url(url))
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower(), parts.scheme.lower())
    return urlunsplit((scheme, parts.netloc.lower(), parts.path, "", ""))


def _read_tokens() -> dict[str, str]:
    try:
        data = msgspec.json.decode(token_file().read_bytes())
    except (OSError, msgspec.DecodeError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def load_token(url: str) -> str | None:
    """The key stored for this server, or None (no file, unreadable, none for it)."""
    return _read_tokens().get(server_key(url))


def _write_tokens(tokens: dict[str, str]) -> Path:
    folder = config_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if sys.platform != "win32":
        folder.chmod(0o700)
    path = folder / TOKENS_FILE
    temp = folder / f".{TOKENS_FILE}.{os.getpid()}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(msgspec.json.format(msgspec.json.encode(tokens)))
        if sys.platform != "win32":
            temp.chmod(0o600)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return path


def store_token(url: str, token: str) -> Path:
    """Keep ``token`` for this server (replacing an older one); returns the file."""
    tokens = _read_tokens()
    tokens[server_key(url)] = token
    return _write_tokens(tokens)


def forget_token(url: str) -> bool:
    """Delete the key stored for this server; True when there was one."""
    tokens = _read_tokens()
    if tokens.pop(server_key(url), None) is None:
        return False
    _write_tokens(tokens)
    return True
