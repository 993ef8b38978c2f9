"""Tests of the greeter bot against the voxta_mock fixtures.

Run them with ``pytest examples/bot_testing``.
"""

from __future__ import annotations

import pytest

from voxta_mock import DEFAULT_DATA, CharacterData, FaultPlan, MockData, ReplyScript
from voxta_proto import VoxtaClient

from .greeter_bot import ask

pytestmark = pytest.mark.anyio

ROBOT = MockData(
    characters=(CharacterData(id="9f6b8c1e-0000-4000-8000-000000000001", name="Robo",
                              greeting="Beep. Ready."),),
    replies=("Beep boop.",),
    scripts=(ReplyScript(keyword="dance", reply="Watch this!", action="dance"),),
)


async def test_the_bot_gets_one_of_the_canned_replies(client: VoxtaClient) -> None:
    reply = await ask(client, "How are you?")
    assert reply.text in DEFAULT_DATA.replies
    assert reply.actions == []


@pytest.mark.voxta_mock(data=ROBOT)
async def test_a_keyword_script_makes_the_character_act(client: VoxtaClient) -> None:
    reply = await ask(client, "Can you dance?", character="Robo")
    assert reply.text == "Watch this!"
    assert reply.actions == ["dance"]


@pytest.mark.voxta_mock(data=ROBOT)
async def test_an_unknown_character_is_an_error(client: VoxtaClient) -> None:
    with pytest.raises(LookupError):
        await ask(client, "Hello?", character="Nobody")


# --8<-- [start:split]
@pytest.mark.voxta_mock(faults=FaultPlan(split_every=7))
async def test_the_bot_survives_records_split_across_frames(client: VoxtaClient) -> None:
    reply = await ask(client, "Tell me something.")
    assert reply.text in DEFAULT_DATA.replies
# --8<-- [end:split]


async def test_the_bot_works_in_memory_too(memory_client: VoxtaClient) -> None:
    reply = await ask(memory_client, "How are you?")
    assert reply.text in DEFAULT_DATA.replies
