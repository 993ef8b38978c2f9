"""``voxta-mock record``: a transparent proxy that writes a real server's session to a
cassette (see `voxta_mock.cassette` for the format).

Every request a client makes is forwarded to the upstream server and answered with the
upstream's answer: negotiate and REST calls as HTTP exchanges, the hub and the audio
stream as WebSockets relayed message by message, untouched (a message the catalog does
not know passes like any other). What crosses is written down in order. Tokens, cookies
and ``Authorization`` values are redacted unless ``redact=False``; audio frames are saved
as files beside the cassette, or left out with ``audio=False``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit

import anyio

from voxta_mock.cassette import CASSETTE_VERSION, HUB_TYPE_NAMES, REDACTED, describe_record
from voxta_mock.inspector import LiveFeed, inspector_page
from voxta_proto.errors import HandshakeRejected, TransportError
from voxta_proto.framing import RECORD_SEPARATOR
from voxta_proto.transports import ConnectOptions, MessageTransport
from voxta_proto.transports.http import HttpRequest, HttpResponse, http_request
from voxta_proto.transports.websocket import WebSocketUpgrade, connect_websocket, serve

__all__ = ["Recorder", "record_main"]

logger = logging.getLogger("voxta_mock.record")

_HOP_BY_HOP: Final = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
    "te", "trailer", "proxy-authorization", "proxy-authenticate", "user-agent",
    "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
    "sec-websocket-accept", "sec-websocket-protocol",
})
"""Headers that belong to one hop: the proxy's own HTTP and WebSocket code sets them."""

_SECRET_HEADERS: Final = frozenset({"authorization", "cookie", "set-cookie", "x-api-key"})
_SECRET_QUERY: Final = frozenset({"access_token", "id"})
_SECRET_KEY: Final = re.compile(r"token|secret|password|apikey|api_key", re.IGNORECASE)


def _redact_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: (REDACTED if _SECRET_KEY.search(key) and isinstance(item, str)
                      else _redact_json(item)) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact_json(item) for item in value]
    return value


class Recorder:
    """The recording proxy's HTTP app; serve it with ``serve(recorder.app, ...)``.

    Args:
        upstream: the real server's base URL, e.g. ``http://localhost:5384``.
        out: the cassette to write (created or truncated).
        token: a bearer token added to every upstream request that has none (so a client
            without credentials can be recorded against a server that wants them).
        redact: replace tokens, cookies and ``Authorization`` values in the cassette.
        audio: save audio frames as files in ``<out>.audio/``; False leaves them out.
        clock: monotonic seconds, for the entries' relative times.
    """

    def __init__(self, upstream: str, out: str | Path, *, token: str | None = None,
                 redact: bool = True, audio: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        split = urlsplit(upstream)
        if split.scheme not in ("http", "https") or not split.netloc:
            raise ValueError(f"the upstream must be an http:// or https:// URL, not {upstream!r}")
        self.upstream = f"{split.scheme}://{split.netloc}{split.path.rstrip('/')}"
        self.out = Path(out)
        self.token = token
        self.redact = redact
        self.audio_dir: Path | None = (self.out.with_name(self.out.name + ".audio")
                                       if audio else None)
        self._clock = clock
        self._start = clock()
        self._conns = itertools.count(1)
        self._file: IO[str] | None = None
        self._open: dict[int, str] = {}  # WebSockets being relayed: conn -> target
        self.entries = 0
        """Entries written so far (the header not counted)."""
        self.feed = LiveFeed()
        """What the inspector page (``/_mock/inspector`` on the proxy) shows live."""

    # -- the cassette --------------------------------------------------------------------

    def open(self) -> None:
        """Create the cassette and write its header line."""
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.out.open("w", encoding="utf-8")
        self._line({"cassette": "voxta-mock", "version": CASSETTE_VERSION,
                    "upstream": self.upstream,
                    "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "redacted": self.redact})

    def close(self) -> None:
        """Flush and close the cassette."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Recorder:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _line(self, row: Mapping[str, Any]) -> None:
        if self._file is None:
            raise RuntimeError("the cassette is not open (use 'with recorder:')")
        self._file.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._file.flush()

    def _entry(self, conn: int, kind: str, **fields: Any) -> None:
        self.entries += 1
        t = round(self._clock() - self._start, 6)
        self._line({"t": t, "conn": conn, "kind": kind, **fields})
        message = fields.get("message")
        arguments = message.get("arguments") if isinstance(message, dict) else None
        first = arguments[0] if isinstance(arguments, list) and arguments else None
        session = first.get("sessionId") if isinstance(first, dict) else None
        self.feed.publish({"time": t, "connection": str(conn), "kind": kind,
                           "session_id": session,
                           "direction": fields.get("dir"),
                           "type": fields.get("type") or fields.get("event") or kind,
                           **{k: v for k, v in fields.items() if k not in ("dir", "type")}})

    def _target(self, target: str) -> str:
        if not self.redact or "?" not in target:
            return target
        path, _, query = target.partition("?")
        pairs = [(key, REDACTED if key.lower() in _SECRET_QUERY else value)
                 for key, value in parse_qsl(query, keep_blank_values=True)]
        return f"{path}?{urlencode(pairs, safe='<>')}"

    def _headers(self, headers: Any) -> list[list[str]]:
        return [[name, REDACTED if self.redact and name.lower() in _SECRET_HEADERS else value]
                for name, value in headers]

    def _body(self, body: bytes, content_type: str | None) -> Any:
        if not body:
            return None
        if content_type and "json" in content_type:
            try:
                value = json.loads(body)
            except ValueError:
                pass
            else:
                return _redact_json(value) if self.redact else value
        try:
            return {"text": body.decode("utf-8")}
        except UnicodeDecodeError:
            return {"bytes": len(body)}

    # -- proxying ------------------------------------------------------------------------

    def _options(self, request: HttpRequest) -> ConnectOptions:
        headers = [(name, value) for name, value in request.headers
                   if name.lower() not in _HOP_BY_HOP]
        has_auth = any(name.lower() == "authorization" for name, _ in headers)
        return ConnectOptions(headers=headers, access_token=None if has_auth else self.token,
                              proxy="")

    async def app(self, request: HttpRequest) -> HttpResponse | WebSocketUpgrade:
        """Forward one request upstream and record the exchange."""
        path = request.path.rstrip("/")
        if path in ("/_mock", "/_mock/inspector"):
            return inspector_page()
        if path == "/_mock/live" and request.is_websocket_upgrade:
            return WebSocketUpgrade(self.feed.serve_page)
        if path == "/_mock/state":
            state = {"mode": "record", "upstream": self.upstream,
                     "connections": [{"connection": str(conn), "state": "open", "target": target}
                                     for conn, target in self._open.items()]}
            return HttpResponse(200, (("Content-Type", "application/json"),),
                                json.dumps(state).encode())
        conn = next(self._conns)
        if request.is_websocket_upgrade:
            return await self._upgrade(conn, request)
        try:
            response = await http_request(request.method, self.upstream + request.target,
                                          body=request.body, options=self._options(request))
        except (TransportError, ValueError) as exc:
            logger.warning("upstream %s %s failed: %s", request.method, request.path, exc)
            self._entry(conn, "http", method=request.method,
                        target=self._target(request.target), error=str(exc))
            return HttpResponse(502, (("Content-Type", "text/plain; charset=utf-8"),),
                                f"voxta-mock record: upstream failed: {exc}".encode())
        self._entry(conn, "http", method=request.method, target=self._target(request.target),
                    request={"headers": self._headers(request.headers),
                             "body": self._body(request.body, request.header("content-type"))},
                    status=response.status,
                    response={"headers": self._headers(response.headers),
                              "body": self._body(response.body,
                                                 response.header("content-type"))})
        headers = [(name, value) for name, value in response.headers
                   if name.lower() not in _HOP_BY_HOP]
        return HttpResponse(response.status, headers, response.body)

    async def _upgrade(self, conn: int, request: HttpRequest) -> HttpResponse | WebSocketUpgrade:
        url = "ws" + self.upstream[4:] + request.target
        try:
            upstream = await connect_websocket(url, options=self._options(request))
        except HandshakeRejected as exc:
            status = exc.status_code or 502
            self._entry(conn, "ws", event="rejected", target=self._target(request.target),
                        status=status)
            return HttpResponse(status, (("Content-Type", "text/plain; charset=utf-8"),),
                                str(exc).encode())
        except (TransportError, ValueError) as exc:
            logger.warning("upstream WebSocket %s failed: %s", request.path, exc)
            return HttpResponse(502, (("Content-Type", "text/plain; charset=utf-8"),),
                                f"voxta-mock record: upstream failed: {exc}".encode())
        self._entry(conn, "ws", event="open", target=self._target(request.target))
        audio = not request.path.rstrip("/").endswith("/hub")

        async def relay(client: MessageTransport, _request: HttpRequest) -> None:
            self._open[conn] = self._target(request.target)
            try:
                await self._relay(conn, client, upstream, audio=audio)
            finally:
                self._open.pop(conn, None)

        return WebSocketUpgrade(relay)

    async def _relay(self, conn: int, client: MessageTransport, upstream: MessageTransport,
                     *, audio: bool) -> None:
        """Pump both directions until one side closes, then close the other alike."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._pump, conn, "client", client, upstream, audio, tg.cancel_scope)
            tg.start_soon(self._pump, conn, "server", upstream, client, audio, tg.cancel_scope)
        with anyio.CancelScope(shield=True), anyio.move_on_after(2):
            await upstream.aclose()

    async def _pump(self, conn: int, direction: str, source: MessageTransport,
                    sink: MessageTransport, audio: bool, scope: anyio.CancelScope) -> None:
        pending = b""
        frames = itertools.count(1)
        try:
            while True:
                message = await source.receive()
                await sink.send(message)
                data = message.encode() if isinstance(message, str) else message
                if audio or isinstance(message, bytes):
                    self._audio(conn, direction, data, next(frames), isinstance(message, str))
                    continue
                pending += data
                *records, pending = pending.split(RECORD_SEPARATOR)
                for record in records:
                    self._record(conn, direction, record)
        except TransportError as exc:
            code = getattr(exc, "code", None)
            reason = getattr(exc, "reason", "") or ""
            self._entry(conn, "ws", event="close", dir=direction, code=code, reason=reason)
            with anyio.CancelScope(shield=True), anyio.move_on_after(2), \
                    contextlib.suppress(TransportError):
                await sink.aclose(code if isinstance(code, int) and code != 1006 else 1000, reason)
            scope.cancel()

    def _record(self, conn: int, direction: str, record: bytes) -> None:
        try:
            message = json.loads(record)
        except ValueError:
            self._entry(conn, "hub", dir=direction, type="invalid",
                        raw=record.decode("utf-8", "replace"))
            return
        kind = message.get("type") if isinstance(message, dict) else None
        hub = HUB_TYPE_NAMES.get(kind, str(kind)) if isinstance(kind, int) else "handshake"
        if self.redact:
            message = _redact_json(message)
        self._entry(conn, "hub", dir=direction, type=describe_record(message), hub=hub,
                    message=message)

    def _audio(self, conn: int, direction: str, data: bytes, number: int, text: bool) -> None:
        if text:  # the audio stream's JSON spec comes as text
            try:
                spec = json.loads(data)
            except ValueError:
                spec = {"text": data.decode("utf-8", "replace")}
            self._entry(conn, "audio", dir=direction, spec=spec)
            return
        fields: dict[str, Any] = {"size": len(data)}
        if self.audio_dir is not None:
            self.audio_dir.mkdir(parents=True, exist_ok=True)
            name = f"{conn}-{direction}-{number:06d}.bin"
            (self.audio_dir / name).write_bytes(data)
            fields["file"] = f"{self.audio_dir.name}/{name}"
        self._entry(conn, "audio", dir=direction, **fields)


# ------------------------------------------------------------------------------ command


def _record_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxta-mock record",
        description="Proxy a real Voxta server and write the session to a cassette, for "
                    "`voxta-mock --replay` later. Point your client at this proxy instead "
                    "of the server.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--upstream", required=True, metavar="URL",
                        help="the real server, e.g. http://localhost:5384")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="the cassette to write, e.g. session.voxta.jsonl")
    parser.add_argument("--token", metavar="TOKEN", default=os.environ.get("VOXTA_API_KEY"),
                        help="bearer token for upstream requests that carry none "
                             "(default: $VOXTA_API_KEY)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=5385,
                        help="port to listen on (0 picks a free one)")
    parser.add_argument("--no-audio", action="store_true",
                        help="leave audio frames out of the cassette (default: saved as files "
                             "in <FILE>.audio/)")
    parser.add_argument("--no-redact", action="store_true",
                        help="keep tokens, cookies and Authorization values in the cassette")
    parser.add_argument("--log-level", default="WARNING", type=str.upper,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="what to log on stderr")
    return parser


async def _run_recorder(recorder: Recorder, host: str, port: int) -> None:
    async with anyio.create_task_group() as tg:
        address = await tg.start(partial(serve, recorder.app, host=host, port=port))
        base = address.url("http", "").rstrip("/")
        print(f"voxta-mock record: proxying {base} -> {recorder.upstream}, writing "
              f"{recorder.out}\n  inspector: {base}/_mock/inspector  (Ctrl-C stops)",
              flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
        tg.cancel_scope.cancel()


def record_main(argv: Sequence[str]) -> int:
    """``voxta-mock record ...``: run the recording proxy until Ctrl-C or SIGTERM."""
    parser = _record_parser()
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0-65535, got {args.port}")
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    try:
        recorder = Recorder(args.upstream, args.out, token=args.token,
                            redact=not args.no_redact, audio=not args.no_audio)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        with recorder:
            anyio.run(_run_recorder, recorder, args.host, args.port)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"voxta-mock record: error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"voxta-mock record: {recorder.entries} entries written to {recorder.out}",
          file=sys.stderr)
    return 0
