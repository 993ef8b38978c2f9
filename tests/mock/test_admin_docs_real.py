"""The admin API guide's examples against a REAL running mock, over HTTP: the page's
connections ``c1``/``c2`` and session ``s1`` are real clients' here, so ids, times and
counts differ; every status, documented header, body shape (keys, and the keys of a
list's first item) and the exact ``error``/``delivered``/``id`` values must hold."""

from __future__ import annotations

import re
from typing import Any

import anyio
import msgspec
import pytest

from voxta_mock import MockVoxtaServer
from voxta_proto import VoxtaClient
from voxta_proto.transports import http_request
from voxta_proto.voxta import decode_client_message

from .test_admin_docs import ClientStep, Message, steps

pytestmark = [pytest.mark.anyio, pytest.mark.network]

_NAMES = re.compile(r"(?<![\w-])(c1|c2|s1)(?![\w-])")
_EXACT = ("error", "delivered", "id")


def _shape_matches(documented: Any, actual: Any, where: str) -> None:
    if isinstance(documented, dict):
        assert isinstance(actual, dict), where
        assert set(documented) == set(actual), f"{where}: {sorted(actual)}"
        for key in _EXACT:
            if key in documented:
                assert documented[key] == actual[key], f"{where}.{key}"
        for key, value in documented.items():
            if isinstance(value, list) and value and actual[key]:
                _shape_matches(value[0], actual[key][0], f"{where}.{key}[0]")
            elif isinstance(value, dict) and key not in ("message", "match", "body"):
                _shape_matches(value, actual[key], f"{where}.{key}")


async def test_the_guides_examples_hold_against_a_real_mock() -> None:
    with anyio.fail_after(60):
        async with MockVoxtaServer(port=0, reply_delay=0.0, auth_token="secret") as server, \
                VoxtaClient(server.url, token="secret", reconnect=()) as c1:
            characters = await c1.load_characters_list()
            started = await c1.start_chat(characters[0].id)
            await c1.send_message("hi")
            await http_request("GET", f"{server.url}/api/chats?characterId={characters[0].id}",
                               headers=[("Authorization", "Bearer secret")])
            # c2, as on the page: connected (handshake done), not authenticated
            c2 = await server.connect_memory()
            await c2.send('{"protocol":"json","version":1}\x1e')
            assert await c2.receive() == "{}\x1e"
            keys = [c.key for c in server.state().connections]
            names = {"c1": keys[0], "c2": keys[1], "s1": started.session_id}
            clients = {"c1": c1}

            def real(text: str) -> str:
                return _NAMES.sub(lambda m: names[m.group(1)], text)

            exchanges = 0
            for step in steps():
                if isinstance(step, ClientStep):
                    await clients[step.key].send(decode_client_message(real(step.json).encode()))
                    continue
                request: Message = step.request
                method, target, _ = request.start.split(" ")
                response = await http_request(method, server.url + real(target),
                                              headers=request.headers,
                                              body=real(request.body.decode()).encode())
                documented = step.response
                where = request.start
                assert response.status == int(documented.start.split(" ")[1]), (
                    f"{where}: {response.body!r}")
                actual_headers = {(k.lower(), v) for k, v in response.headers}
                assert set(documented.headers) <= actual_headers, where
                if documented.body:
                    _shape_matches(msgspec.json.decode(real(documented.body.decode())),
                                   msgspec.json.decode(response.body), where)
                else:
                    assert response.body == b"", where
                exchanges += 1
            assert exchanges >= 10
            await c2.aclose()
