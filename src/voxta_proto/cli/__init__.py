"""``voxta``: the command-line tool (also ``python -m voxta_proto``).

``voxta chat`` is a terminal chat. Without ``--url`` it starts the bundled mock server
in the same process and talks to that, so it works with nothing else installed; with
``--url`` (and ``--token`` or ``VOXTA_API_KEY``) it talks to a real Voxta server.
``voxta chat --message TEXT`` sends one message, prints the reply and exits.
``voxta login --url URL`` gets an API key by device flow and stores it; ``voxta chat
--url URL`` then uses it when no ``--token`` (or ``VOXTA_API_KEY``) is given.

Every failure the user can cause (a bad URL, a refused connection, a wrong token, an
unknown character) ends with one ``voxta: error: ...`` line on stderr and a non-zero
status, never a traceback. Set ``VOXTA_DEBUG=1`` to see tracebacks of internal errors.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from importlib.util import find_spec
from urllib.parse import urlsplit

import anyio

from voxta_proto._version import __version__
from voxta_proto.cli_defaults import MOCK_REPLY_DELAY, MOCK_SEED

from .chat import EXIT_ERROR, EXIT_SIGINT, EXIT_USAGE, ChatApp, ChatOptions
from .login import add_login_parser, run_login

__all__ = ["main"]

TOKEN_ENV = "VOXTA_API_KEY"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxta", description="Talk to a Voxta server from the terminal.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chat = commands.add_parser(
        "chat", help="chat with a character (the bundled mock server without --url)",
        description="Chat with a character. Without --url the bundled mock server runs "
                    "in this process, so nothing else is needed.",
        epilog="In the chat: /retry /revert /interrupt /characters /new /help /quit. "
               "Ctrl-C stops a running reply; a second Ctrl-C (or Ctrl-C when idle) quits.")
    server = chat.add_argument_group("server")
    server.add_argument("--url", help="a Voxta server, e.g. http://localhost:5384 "
                                      "(default: start the bundled mock server)")
    server.add_argument("--token", help=f"API key / bearer token (default: ${TOKEN_ENV})")
    server.add_argument("--no-reconnect", action="store_true",
                        help="end the chat when the connection drops (default: retry "
                             "after 0, 2, 10 and 30 s)")
    server.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="give up connecting after this long (default 10)")
    chat.add_argument("--character", "-c", metavar="NAME_OR_ID",
                      help="chat with this character (name, id or list number)")
    chat.add_argument("--message", "-m", action="append", default=[], metavar="TEXT",
                      help="send TEXT, print the reply on stdout and exit; repeat for "
                           "more turns")
    chat.add_argument("--reply-timeout", type=float, default=120.0, metavar="SECONDS",
                      help="how long a reply may take (default 120)")
    chat.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio",
                      help="async library to run on (default asyncio; trio needs "
                           "pip install 'voxta-proto[trio]')")
    add_login_parser(commands)
    mock = chat.add_argument_group("bundled mock server (only without --url)")
    mock.add_argument("--seed", type=int, metavar="N",
                      help=f"seed for the mock's ids and replies (default {MOCK_SEED}, "
                           "as voxta-mock)")
    mock.add_argument("--reply-delay", type=float, metavar="SECONDS",
                      help=f"seconds between streamed chunks (default {MOCK_REPLY_DELAY:g}, "
                           "as voxta-mock)")
    mock.add_argument("--data", metavar="FILE",
                      help="the mock's characters and replies (.json or .toml)")
    return parser


def _check_url(url: str) -> str | None:
    """Why ``url`` cannot be a Voxta server address, or None when it can."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number or too big
    except ValueError as exc:
        return f"bad --url {url!r}: {exc}"
    if parts.scheme not in ("http", "https", "ws", "wss"):
        return f"bad --url {url!r}: use http:// or https:// (e.g. http://localhost:5384)"
    if not parts.hostname:
        return f"bad --url {url!r}: it has no host name"
    return None


def _options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> ChatOptions:
    if args.url is not None:
        problem = _check_url(args.url)
        if problem is not None:
            parser.exit(EXIT_USAGE, f"voxta: error: {problem}\n")
        used = [name for name, value in (("--seed", args.seed), ("--reply-delay",
                args.reply_delay), ("--data", args.data)) if value is not None]
        if used:
            parser.exit(EXIT_USAGE, f"voxta: error: {', '.join(used)} only apply to the "
                                    "bundled mock server (without --url)\n")
    for name, value in (("--reply-delay", args.reply_delay),
                        ("--connect-timeout", args.connect_timeout),
                        ("--reply-timeout", args.reply_timeout)):
        if value is not None and value < 0:
            parser.exit(EXIT_USAGE, f"voxta: error: {name} must be >= 0\n")
    if any(not text.strip() for text in args.message):
        parser.exit(EXIT_USAGE, "voxta: error: --message needs some text\n")
    return ChatOptions(
        url=args.url, token=args.token or os.environ.get(TOKEN_ENV) or None,
        character=args.character, messages=tuple(args.message), seed=args.seed,
        reply_delay=args.reply_delay, data=args.data, connect_timeout=args.connect_timeout,
        reply_timeout=args.reply_timeout, reconnect=() if args.no_reconnect else None)


def _robust_streams() -> None:
    """Never die on a character the terminal's encoding lacks (emoji on a C locale)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``voxta`` with ``argv`` (default: the command line); returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "login":
        problem = _check_url(args.url)
        if problem is not None:
            parser.exit(EXIT_USAGE, f"voxta: error: {problem}\n")
        _robust_streams()
        _quiet_logs()
        try:
            return anyio.run(run_login, args)
        except KeyboardInterrupt:
            return EXIT_SIGINT
    options = _options(parser, args)
    if args.backend == "trio" and find_spec("trio") is None:
        parser.exit(EXIT_USAGE, "voxta: error: --backend trio needs the trio package: "
                                "pip install 'voxta-proto[trio]'\n")
    _robust_streams()
    _quiet_logs()
    app = ChatApp(options)
    try:
        return anyio.run(app.run, backend=args.backend)
    except BaseException as exc:
        leaf = _leaf(exc)
        if isinstance(leaf, KeyboardInterrupt):  # Ctrl-C before the watcher ran, or Windows
            if sys.stdout.isatty():
                print(flush=True)  # the terminal echoed ^C: leave the shell a fresh line
            return EXIT_SIGINT
        if isinstance(leaf, BrokenPipeError):  # ``voxta chat -m hi | head -c1``
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_ERROR
        if isinstance(leaf, ModuleNotFoundError) and leaf.name == "trio":
            print("voxta: error: --backend trio needs the trio package (pip install trio)",
                  file=sys.stderr)
            return EXIT_USAGE
        if not isinstance(exc, Exception) or os.environ.get("VOXTA_DEBUG"):
            raise
        print(f"voxta: error: internal error: {type(leaf).__name__}: {leaf} "
              "(set VOXTA_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_ERROR


def _quiet_logs() -> None:
    """The chat reports connection trouble itself, on its own lines: the library's log
    records would print over the prompt and say it twice. ``VOXTA_DEBUG=1`` shows them."""
    library = logging.getLogger("voxta_proto")
    if os.environ.get("VOXTA_DEBUG"):
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    else:
        library.addHandler(logging.NullHandler())
        library.propagate = False


def _leaf(exc: BaseException) -> BaseException:
    """The one exception inside (nested) exception groups of one, else ``exc``."""
    while True:
        inner = getattr(exc, "exceptions", None)
        if not isinstance(inner, tuple) or len(inner) != 1:
            return exc
        exc = inner[0]
