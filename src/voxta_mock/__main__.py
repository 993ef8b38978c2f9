"""``voxta-mock`` / ``python -m voxta_mock``: run the mock server until Ctrl-C or SIGTERM.

Ctrl-C (SIGINT) ends it with status 130 and SIGTERM with 143, as a shell reports a
program stopped by those signals; a line on stderr says it stopped.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from voxta_mock.cassette import CassetteError, load_cassette
from voxta_mock.data import DEFAULT_DATA, DataError, MockData, load_data
from voxta_mock.journal import DEFAULT_MAXLEN
from voxta_mock.server import DEFAULT_HOST, DEFAULT_PORT, MockVoxtaServer, traffic_logger
from voxta_proto import __version__
from voxta_proto.cli_defaults import MOCK_REPLY_DELAY, MOCK_SEED

__all__ = ["main", "server_options"]

EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxta-mock", description="Run a mock Voxta server for testing clients offline.",
        epilog="Ctrl-C or SIGTERM stops it. Example: voxta-mock --port 0 --preseed-session")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--host", default=DEFAULT_HOST, metavar="ADDRESS",
                        help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="PORT",
                        help="port to listen on; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--data", metavar="FILE",
                        help="characters, chats and scripts (.json or .toml; default: the "
                             "built-in characters Apex and Bea)")
    parser.add_argument("--seed", type=int, default=MOCK_SEED, metavar="N",
                        help="seed for ids and replies (default: %(default)s, as voxta chat)")
    parser.add_argument("--auth-token", metavar="TOKEN",
                        help="require this bearer token (default: no authentication)")
    parser.add_argument("--admin-token", metavar="TOKEN",
                        help="the bearer token the admin API (/_mock/...) and the inspector's "
                             "feed need (default: the --auth-token; neither: open)")
    parser.add_argument("--journal-size", type=int, default=DEFAULT_MAXLEN, metavar="N",
                        help="journal entries kept for the admin API and the inspector "
                             "(default: %(default)s)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="-v: one line per message in each direction on stderr; "
                             "-vv: with the payload, tokens redacted")
    parser.add_argument("--reply-delay", type=float, default=MOCK_REPLY_DELAY,
                        metavar="SECONDS", help="seconds between streamed reply chunks "
                                                "(default: %(default)s, as voxta chat)")
    parser.add_argument("--preseed-session", action="store_true",
                        help="start with a chat session owned by a virtual UI client")
    parser.add_argument("--client-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="drop clients that send nothing (no message, no WebSocket "
                             "ping) this long; 0 disables (default: %(default)s)")
    parser.add_argument("--speech", action="store_true",
                        help="text-to-speech: clients with audioOutput Url get audio URLs "
                             "and play the replies themselves")
    parser.add_argument("--replay", metavar="FILE",
                        help="answer hub clients from a cassette of `voxta-mock record` "
                             "instead of the built-in engine")
    parser.add_argument("--speed", type=float, default=1.0, metavar="N",
                        help="with --replay: recorded delays divided by N; 0 or inf: as "
                             "fast as possible (default: %(default)s, as recorded)")
    parser.add_argument("--silence-placeholders", action="store_true",
                        help="without --speech, send silence:N audio URLs to clients with "
                             "audioOutput Url and wait for their playback acks")
    parser.add_argument("--audio-gap-ms", type=int, metavar="MS",
                        help="write replyChunk.audioGapMs (minimum ms between clips)")
    parser.add_argument("--app-trigger-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="how long a queued appTrigger holds the session without an "
                             "appTriggerComplete (default: %(default)s)")
    parser.add_argument("--log-level", default="WARNING", metavar="LEVEL",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper,
                        help="what the server logs on stderr: DEBUG, INFO, WARNING or "
                             "ERROR (default: %(default)s)")
    return parser


def server_options(args: argparse.Namespace, data: MockData) -> dict[str, Any]:
    """The ``MockVoxtaServer`` keyword arguments for parsed options."""
    return {"host": args.host, "port": args.port, "data": data, "seed": args.seed,
            "auth_token": args.auth_token, "reply_delay": args.reply_delay,
            "preseed_session": args.preseed_session, "speech": args.speech,
            "client_timeout": args.client_timeout or None,
            "admin_token": args.admin_token, "journal_size": args.journal_size,
            "verbose": args.verbose,
            "silence_placeholders": args.silence_placeholders,
            "audio_gap_ms": args.audio_gap_ms,
            "app_trigger_timeout": args.app_trigger_timeout,
            **({"replay": args.replay, "replay_speed": args.speed} if args.replay else {})}


def _show_traffic() -> None:
    """``-v``: the traffic lines on stderr, bare, whatever ``--log-level`` says."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    traffic_logger.addHandler(handler)
    traffic_logger.setLevel(logging.INFO)
    traffic_logger.propagate = False


def _stopped(signame: str) -> None:
    # On a terminal "^C" was echoed after the last line: start a fresh one.
    fresh = "\n" if sys.stderr.isatty() else ""
    print(f"{fresh}voxta-mock: stopped ({signame})", file=sys.stderr, flush=True)


async def _serve(options: dict[str, Any]) -> int:
    """Serve until SIGINT or SIGTERM; returns the exit status that signal means."""
    async with MockVoxtaServer(**options) as server:
        header = server.replay.cassette.header if server.replay is not None else None
        replaying = "" if header is None else (
            f" (replaying {header.get('upstream', 'a server')}, recorded "
            f"{header.get('recorded_at', 'at an unknown time')})")
        print(f"voxta-mock listening on {server.url}{replaying}", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            signum = await signals.__anext__()
    _stopped(signal.Signals(signum).name)
    return EXIT_SIGINT if signum == signal.SIGINT else EXIT_SIGTERM


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
    if args.journal_size < 1:
        parser.error("--journal-size must be >= 1")
    if math.isnan(args.speed) or args.speed < 0:
        parser.error("--speed must be >= 0 (0: as fast as possible)")
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose:
        _show_traffic()
    try:
        data = load_data(args.data) if args.data else DEFAULT_DATA
    except DataError as exc:
        print(f"voxta-mock: error: {exc}", file=sys.stderr)
        return 2
    options = server_options(args, data)
    if args.replay:
        try:
            options["replay"] = load_cassette(args.replay)
        except CassetteError as exc:
            print(f"voxta-mock: error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"voxta-mock: error: cannot read {args.replay}: {exc.strerror or exc}",
                  file=sys.stderr)
            return 2
    try:
        return anyio.run(_serve, options)
    except KeyboardInterrupt:  # before the signal receiver was installed
        _stopped("SIGINT")
        return EXIT_SIGINT
    except OSError as exc:
        print(f"voxta-mock: error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
