"""The inspector: a small page that shows what flows through the mock (or through
``voxta-mock record``) live, and the feed behind it.

The page (``inspector.html``, shipped in the wheel, no build step, nothing from a CDN)
opens a WebSocket to ``/_mock/live`` and gets one JSON object per journal entry:
``seq``, ``time``, ``connection``, ``direction``, ``type``, ``session_id`` and the
message itself. [`LiveFeed`][voxta_mock.inspector.LiveFeed] keeps the newest entries (so a page
opened late sees
what came before it, from ``?since=<seq>``) and hands new ones to every open page; a page
that cannot keep up loses its socket, never the server's time.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from importlib.resources import files
from typing import Any, Final

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from voxta_proto.errors import TransportError
from voxta_proto.transports import MessageTransport
from voxta_proto.transports.http import HttpRequest, HttpResponse

__all__ = ["INSPECTOR_PATHS", "LiveFeed", "inspector_page"]

logger = logging.getLogger("voxta_mock.inspector")

INSPECTOR_PATHS: Final = frozenset({"/", "/_mock", "/_mock/inspector"})
"""Paths that serve the page (the recorder leaves ``/`` to the upstream server)."""

_PAGE_BUFFER: Final = 1000
"""Entries queued for one page before it counts as not keeping up."""


def inspector_page() -> HttpResponse:
    """The page, from the package's files."""
    body = files("voxta_mock").joinpath("inspector.html").read_bytes()
    return HttpResponse(200, (("Content-Type", "text/html; charset=utf-8"),
                              ("Cache-Control", "no-store")), body)


class LiveFeed:
    """The newest entries, and every page that follows them.

    Args:
        maxlen: how many entries a late page can still catch up on.
        backlog: where a late page's entries after a ``seq`` come from instead (the mock's
            journal): then nothing is kept here, and `watched` tells the publisher
            whether building an entry is worth it.
    """

    def __init__(self, maxlen: int = 5000, *,
                 backlog: Callable[[int], Iterable[Mapping[str, Any]]] | None = None) -> None:
        self._entries: deque[Mapping[str, Any]] = deque(maxlen=0 if backlog else maxlen)
        self._backlog = backlog
        self._pages: set[MemoryObjectSendStream[Mapping[str, Any]]] = set()
        self._seq = 0

    @property
    def watched(self) -> bool:
        """Whether a page is open (with a ``backlog``, nothing else needs an entry)."""
        return bool(self._pages) or self._backlog is None

    def publish(self, entry: Mapping[str, Any]) -> None:
        """Add an entry (given a ``seq`` here when it has none) and pass it to every page."""
        if "seq" not in entry:
            self._seq += 1
            entry = {"seq": self._seq, **entry}
        else:
            self._seq = max(self._seq, int(entry["seq"]))
        self._entries.append(entry)
        for page in list(self._pages):
            try:
                page.send_nowait(entry)
            except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                page.close()  # too slow, or gone: its socket ends, the page reconnects
                self._pages.discard(page)

    def clear(self) -> None:
        """Forget the entries kept for late pages."""
        self._entries.clear()

    async def serve_page(self, transport: MessageTransport, request: HttpRequest) -> None:
        """The ``/_mock/live`` WebSocket: the entries after ``?since=``, then each new one."""
        since = request.query_param("since") or "0"
        after = int(since) if since.isdigit() else 0
        send, receive = anyio.create_memory_object_stream[Mapping[str, Any]](_PAGE_BUFFER)
        backlog = (list(self._backlog(after)) if self._backlog is not None
                   else [entry for entry in self._entries if int(entry["seq"]) > after])
        self._pages.add(send)
        try:
            for entry in backlog:
                await transport.send(json.dumps(entry, separators=(",", ":"), default=str))
            async with receive:
                async for entry in receive:
                    await transport.send(json.dumps(entry, separators=(",", ":"), default=str))
        except TransportError as exc:
            logger.debug("an inspector page went away: %s", exc)
        finally:
            self._pages.discard(send)
            send.close()
