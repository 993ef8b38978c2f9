"""Register settings forms for the Voxta UI and read what the user filled in.

    python examples/app_forms.py                      # the bundled mock, asyncio
    python examples/app_forms.py --backend trio
    python examples/app_forms.py --url http://localhost:5384

After ``welcome`` an app may describe itself with ``registerApp``, including a
``characterForm``: fields the user fills in per character in the Voxta UI (here a
``bool`` and an ``asset``). The values come back on every ``chatStarted`` as each
character's ``appConfiguration``, a flat map of strings; ``app_configuration()`` reads
them. Against the mock, the example plays the user and sets one value from Python.
The server's API version is printed too: any version works, and one the client was not
tested with is logged once as a warning.
"""

from __future__ import annotations

import argparse
import sys

import anyio

from voxta_mock import MockVoxtaServer
from voxta_proto.client import VoxtaClient
from voxta_proto.voxta.shapes import AppForm, AppFormField

CHARACTER_FORM = AppForm(fields=(
    AppFormField(kind="bool", name="glow", label="Glow", text="Light up while speaking",
                 default_value=False),
    AppFormField(kind="asset", name="skin", label="Skin", text="The character's texture",
                 content_types=("image/*",), none_label="Default skin"),
))
APP = "app-forms-example"
"""The app name sent in ``authenticate``: the server keeps form values per app."""


async def run(url: str, mock: MockVoxtaServer | None = None) -> dict[str, str]:
    """Register the form, start a chat, return the first character's values."""
    async with VoxtaClient(url, client_name=APP) as client:
        print(f"Server API version {client.api_version}")
        await client.register_app("App forms example", character_form=CHARACTER_FORM)
        characters = await client.load_characters_list()
        if mock is not None:  # the user picks a skin in the Voxta UI
            mock.engine.set_app_configuration(
                characters[0].id, APP,
                {"skin": f"urn:voxta:resources:characters:{characters[0].id}:assets:red.png"})
        await client.start_chat(characters[0].id)
        values = client.app_configuration()
    glow = values.get("glow", "false").lower() == "true"  # booleans arrive as strings
    print(f"{characters[0].name}: glow={glow}, skin={values.get('skin', '(default)')}")
    return values


async def main(url: str | None) -> None:
    if url is not None:
        await run(url)
        return
    async with MockVoxtaServer(port=0, reply_delay=0.0) as server:
        await run(server.url, server)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Voxta registerApp forms.")
    parser.add_argument("--url", help="a Voxta server; default: the bundled mock")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args(sys.argv[1:])
    anyio.run(main, args.url, backend=args.backend)
