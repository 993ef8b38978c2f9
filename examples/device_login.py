"""Sign in with the device flow: no key to copy, the user approves the app in a browser.

    python examples/device_login.py                        # the bundled mock, asyncio
    python examples/device_login.py --backend trio
    python examples/device_login.py --url http://localhost:5384   # stores the key

The app asks the server for a code, shows the user the verification URL and the code,
and waits while the user approves it in the Voxta UI; the answer is an API key, which
``VoxtaClient.login`` checks and uses. Against a real server the key is stored in your
config directory (owner-only) for that URL, so the next ``VoxtaClient(url)`` or
``voxta chat --url`` needs no token. Against the mock, which requires a token here, the
example plays the user and approves the code itself, and stores nothing.
"""

from __future__ import annotations

import argparse
import sys

import anyio

from voxta_mock import MockVoxtaServer
from voxta_proto.client import VoxtaClient
from voxta_proto.client.login import DeviceCode


async def run(url: str, *, approve: MockVoxtaServer | None = None) -> str:
    """Log in and connect; returns the name the server knows the user by."""
    client = VoxtaClient(url, client_name="device-login-example", use_stored_token=False)

    def show(code: DeviceCode) -> None:
        print(f"Open {code.verification_url} and enter the code {code.user_code}")
        if approve is not None:  # the mock: approve as the user would in the browser
            approve.rest.approve_device(code.user_code)
            print("(the example approved the code on the mock)")

    await client.login(label="device-login example", on_code=show, store=approve is None)
    print("Logged in; the key works")
    async with client:
        assert client.welcome is not None
        name = client.welcome.user.name
        print(f"Connected as {name} (API {client.api_version})")
    return name


async def main(url: str | None) -> None:
    if url is not None:
        await run(url)
        return
    async with MockVoxtaServer(port=0, auth_token="issued-by-device-flow") as server:
        await run(server.url, approve=server)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Log in to Voxta with the device flow.")
    parser.add_argument("--url", help="a Voxta server; default: the bundled mock")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args(sys.argv[1:])
    anyio.run(main, args.url, backend=args.backend)
