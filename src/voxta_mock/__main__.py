"""``voxta-mock`` / ``python -m voxta_mock``: run the mock server until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from voxta_mock.data import DEFAULT_DATA, DataError, MockData, load_data
from voxta_mock.server import DEFAULT_HOST, DEFAULT_PORT, MockVoxtaServer

__all__ = ["main", "server_options"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxta-mock", description="Run a mock Voxta server for testing clients offline.")
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="port to listen on (0 picks a free one)")
    parser.add_argument("--data", metavar="FILE",
                        help="characters, chats and scripts (.json or .toml)")
    parser.add_argument("--seed", type=int, default=0, help="seed for ids and replies")
    parser.add_argument("--auth-token", help="require this bearer token")
    parser.add_argument("--reply-delay", type=float, default=0.03,
                        help="seconds between streamed reply chunks")
    parser.add_argument("--preseed-session", action="store_true",
                        help="start with a chat session owned by a virtual UI client")
    parser.add_argument("--client-timeout", type=float, default=30.0,
                        help="drop clients that send nothing (no message, no WebSocket "
                             "ping) this long, in seconds (0 disables)")
    parser.add_argument("--speech", action="store_true",
                        help="text-to-speech: clients with audioOutput Url get audio URLs "
                             "and play the replies themselves")
    parser.add_argument("--log-level", default="WARNING",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper)
    return parser


def server_options(args: argparse.Namespace, data: MockData) -> dict[str, Any]:
    """The ``MockVoxtaServer`` keyword arguments for parsed options."""
    return {"host": args.host, "port": args.port, "data": data, "seed": args.seed,
            "auth_token": args.auth_token, "reply_delay": args.reply_delay,
            "preseed_session": args.preseed_session, "speech": args.speech,
            "client_timeout": args.client_timeout or None}


async def _serve(options: dict[str, Any]) -> None:
    async with MockVoxtaServer(**options) as server:
        print(f"voxta-mock listening on {server.url}", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, run until a signal, and return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["record"]:
        from voxta_mock.record import record_main

        return record_main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0-65535, got {args.port}")
    if args.reply_delay < 0:
        parser.error("--reply-delay must be >= 0")
    if args.client_timeout < 0:
        parser.error("--client-timeout must be >= 0 (0 disables it)")
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    try:
        data = load_data(args.data) if args.data else DEFAULT_DATA
    except DataError as exc:
        print(f"voxta-mock: error: {exc}", file=sys.stderr)
        return 2
    try:
        anyio.run(_serve, server_options(args, data))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"voxta-mock: error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
