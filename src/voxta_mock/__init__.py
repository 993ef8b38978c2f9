"""voxta_mock: a mock Voxta server built on the voxta_proto sans-IO core.

``async with MockVoxtaServer(port=0) as server:`` runs one in any anyio program;
``voxta-mock`` runs one from the command line; the pytest plugin gives fixtures.
"""

from __future__ import annotations

from voxta_mock.data import (
    DEFAULT_DATA,
    CharacterData,
    ChatData,
    DataError,
    MessageData,
    MockData,
    ReplyScript,
    ScenarioData,
    UserData,
    load_data,
)
from voxta_mock.engine import UI_CONNECTION, Complete, Emit, MockEngine, Step, Wait
from voxta_mock.expectations import Expectation, ExpectationError, Expectations, FaultAnswer
from voxta_mock.faults import FaultPlan
from voxta_mock.journal import Journal
from voxta_mock.rest import DeviceCode, MockRest, VisionUpload
from voxta_mock.server import DEFAULT_HOST, DEFAULT_PORT, AudioStream, MockVoxtaServer
from voxta_mock.testing import assert_received, verify_expectations

__all__ = [
    "DEFAULT_DATA",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "UI_CONNECTION",
    "AudioStream",
    "CharacterData",
    "ChatData",
    "Complete",
    "DataError",
    "DeviceCode",
    "Emit",
    "Expectation",
    "ExpectationError",
    "Expectations",
    "FaultAnswer",
    "FaultPlan",
    "Journal",
    "MessageData",
    "MockData",
    "MockEngine",
    "MockRest",
    "MockVoxtaServer",
    "ReplyScript",
    "ScenarioData",
    "Step",
    "UserData",
    "VisionUpload",
    "Wait",
    "assert_received",
    "load_data",
    "verify_expectations",
]
