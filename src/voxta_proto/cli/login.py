"""``voxta login --url URL``: get an API key by device flow and store it for that server
(API 2025-11 §3.6); ``voxta chat --url URL`` then uses it without ``--token``."""

from __future__ import annotations

import argparse
import sys

from voxta_proto.client.login import (
    DEVICE_SCOPES,
    DeviceCode,
    device_login,
    token_file,
)
from voxta_proto.errors import RestError, VoxtaProtoError

from .chat import EXIT_ERROR, EXIT_OK

__all__ = ["add_login_parser", "run_login"]


def add_login_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``login`` subcommand and its options."""
    login = commands.add_parser(
        "login", help="sign in to a Voxta server and store its API key",
        description="Get an API key by device flow: open the URL shown, enter the code, "
                    "approve; the key is checked and stored (owner-only) in the user's "
                    "config directory, where voxta chat and VoxtaClient find it.")
    login.add_argument("--url", required=True,
                       help="the Voxta server, e.g. http://localhost:5384")
    login.add_argument("--label", default="voxta-proto CLI",
                       help="how the key is named in Voxta (default: %(default)s)")
    login.add_argument("--scope", choices=DEVICE_SCOPES, default="role:app",
                       help="the key's role (default: %(default)s)")
    login.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                       help="give up waiting for approval after this long (default 300)")
    login.add_argument("--poll-interval", type=float, default=1.0, metavar="SECONDS",
                       help=argparse.SUPPRESS)


async def run_login(args: argparse.Namespace) -> int:
    """Show the code, wait for approval, store the key; one error line on failure."""
    def show(code: DeviceCode) -> None:
        print(f"To sign in, open {code.verification_url}\nand enter the code: "
              f"{code.user_code}\nWaiting for approval…", flush=True)

    try:
        await device_login(args.url, label=args.label, scope=args.scope, on_code=show,
                           interval=args.poll_interval, first_delay=args.poll_interval,
                           timeout=args.timeout)
    except RestError as exc:
        reason = ("the code expired or was refused" if exc.status_code == 400 else str(exc))
        print(f"voxta: error: login failed: {reason}", file=sys.stderr)
        return EXIT_ERROR
    except TimeoutError:
        print(f"voxta: error: login failed: not approved within {args.timeout:g} s",
              file=sys.stderr)
        return EXIT_ERROR
    except (VoxtaProtoError, OSError) as exc:
        print(f"voxta: error: login failed: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"Logged in; the key is stored in {token_file()}", flush=True)
    return EXIT_OK
