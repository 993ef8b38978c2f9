"""One Voxta REST call with the client's options: URL from the server's base, status check.

The REST paths of API 2025-11 §4 are relative to the server's base URL; a URL given
as ``.../hub`` (as the Minecraft app configures it) is the same server.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from voxta_proto.errors import RestError
from voxta_proto.transports.base import ConnectOptions
from voxta_proto.transports.http import HttpResponse, http_request

__all__ = ["base_url", "rest_request"]


def base_url(url: str) -> str:
    """The server's base URL, without a trailing ``/`` or ``/hub``."""
    url = url.rstrip("/")
    return url.removesuffix("/hub").rstrip("/")


async def rest_request(method: str, url: str, path: str, *,
                       options: ConnectOptions | None = None, json: object = None,
                       body: bytes = b"", headers: Sequence[tuple[str, str]] = (),
                       ) -> HttpResponse:
    """Send ``method path`` to the server at ``url``; a JSON ``json`` becomes the body.

    Returns:
        The response, when its status is 2xx.

    Raises:
        RestError: any other status (with the body as the reason).
        TransportError: the request failed (connect, read, timeout).
    """
    extra = list(headers)
    if json is not None:
        body = msgspec.json.encode(json)
        extra.append(("Content-Type", "application/json"))
    response = await http_request(method, base_url(url) + path, headers=extra, body=body,
                                  options=options or ConnectOptions())
    if not 200 <= response.status < 300:
        text = response.body.decode("utf-8", "replace")[:500]
        raise RestError(f"{method} {path.split('?')[0]}: HTTP {response.status}"
                        + (f": {text}" if text else ""),
                        status_code=response.status, body=text)
    return response
