"""Tests for voxta_proto.hub.state: the one transition table both roles share."""

from __future__ import annotations

import pytest

from voxta_proto.hub import (
    TRANSITIONS,
    Ack,
    CancelInvocation,
    Close,
    Completion,
    HandshakeAccepted,
    HandshakeRefused,
    HandshakeRequest,
    HubState,
    Invocation,
    Ping,
    Role,
    Sequence,
    StreamInvocation,
    StreamItem,
)
from voxta_proto.hub.state import EndOfStream, Reattach, TimedOut, TransportLost

C, S = Role.CLIENT, Role.SERVER
NEW, HANDSHAKING, OPEN = HubState.NEW, HubState.HANDSHAKING, HubState.OPEN
DETACHED, REATTACHING = HubState.DETACHED, HubState.REATTACHING
CLOSED, ERROR = HubState.CLOSED, HubState.ERROR

REPLAYABLE = (Invocation, StreamItem, Completion, StreamInvocation, CancelInvocation)
TRAFFIC = (*REPLAYABLE, Ping, Ack, Sequence)
HANDSHAKE = (HandshakeRequest, HandshakeAccepted, HandshakeRefused)
ALL_INPUTS: tuple[type[object], ...] = (
    *TRAFFIC, Close, *HANDSHAKE, EndOfStream, TransportLost, Reattach, TimedOut
)


def test_role_peer() -> None:
    assert Role.CLIENT.peer is Role.SERVER
    assert Role.SERVER.peer is Role.CLIENT


def test_handshake_rows() -> None:
    assert TRANSITIONS[(NEW, C, HandshakeRequest)] is HANDSHAKING
    assert TRANSITIONS[(HANDSHAKING, S, HandshakeAccepted)] is OPEN
    assert TRANSITIONS[(HANDSHAKING, S, HandshakeRefused)] is CLOSED
    # Only the client asks and only the server answers, once.
    for state in HubState:
        assert (state, S, HandshakeRequest) not in TRANSITIONS
        assert (state, C, HandshakeAccepted) not in TRANSITIONS
        assert (state, C, HandshakeRefused) not in TRANSITIONS
    assert [key for key in TRANSITIONS if key[2] in HANDSHAKE] == [
        (NEW, C, HandshakeRequest),
        (HANDSHAKING, S, HandshakeAccepted),
        (HANDSHAKING, S, HandshakeRefused),
    ]


@pytest.mark.parametrize("who", [C, S])
@pytest.mark.parametrize("kind", TRAFFIC)
def test_open_traffic_keeps_the_connection_open(who: Role, kind: type[object]) -> None:
    assert TRANSITIONS[(OPEN, who, kind)] is OPEN


@pytest.mark.parametrize("who", [C, S])
@pytest.mark.parametrize("state", [OPEN, DETACHED, REATTACHING])
def test_close_ends_it(who: Role, state: HubState) -> None:
    assert TRANSITIONS[(state, who, Close)] is CLOSED


@pytest.mark.parametrize("who", [C, S])
@pytest.mark.parametrize("kind", [*TRAFFIC, Close])
@pytest.mark.parametrize("state", [NEW, HANDSHAKING, CLOSED, ERROR])
def test_no_hub_traffic_outside_a_connection(
    who: Role, kind: type[object], state: HubState
) -> None:
    assert (state, who, kind) not in TRANSITIONS


@pytest.mark.parametrize("who", [C, S])
@pytest.mark.parametrize("state", [DETACHED, REATTACHING])
def test_detached_and_reattaching_buffer_replayable_pings_and_acks(
    who: Role, state: HubState
) -> None:
    for kind in (*REPLAYABLE, Ping, Ack):
        assert TRANSITIONS[(state, who, kind)] is state
    assert (DETACHED, who, Sequence) not in TRANSITIONS
    assert TRANSITIONS[(REATTACHING, who, Sequence)] is OPEN


@pytest.mark.parametrize("who", [C, S])
def test_reattach_rows(who: Role) -> None:
    assert TRANSITIONS[(DETACHED, who, Reattach)] is REATTACHING
    for state in HubState:
        if state is not DETACHED:
            assert (state, who, Reattach) not in TRANSITIONS
    assert TRANSITIONS[(OPEN, who, TransportLost)] is DETACHED
    assert TRANSITIONS[(REATTACHING, who, TransportLost)] is DETACHED
    for state in (NEW, HANDSHAKING, DETACHED, CLOSED, ERROR):
        assert (state, who, TransportLost) not in TRANSITIONS


@pytest.mark.parametrize("who", [C, S])
def test_end_of_stream_and_timeouts(who: Role) -> None:
    for state in (NEW, HANDSHAKING, OPEN, REATTACHING, CLOSED):
        assert TRANSITIONS[(state, who, EndOfStream)] is CLOSED
    assert (DETACHED, who, EndOfStream) not in TRANSITIONS
    for state in (NEW, HANDSHAKING, OPEN, DETACHED, REATTACHING):
        assert TRANSITIONS[(state, who, TimedOut)] is CLOSED
    assert (CLOSED, who, TimedOut) not in TRANSITIONS


def test_error_is_a_dead_end_and_never_a_table_target() -> None:
    assert all(state is not ERROR for state, _, _ in TRANSITIONS)
    assert ERROR not in set(TRANSITIONS.values())
    assert {target for (state, _, _), target in TRANSITIONS.items() if state is CLOSED} == {
        CLOSED
    }


def test_table_is_role_symmetric_after_the_handshake() -> None:
    for (state, who, kind), target in TRANSITIONS.items():
        if kind in HANDSHAKE:
            continue
        assert TRANSITIONS[(state, who.peer, kind)] is target, (state, who, kind)


def test_table_keys_are_well_formed() -> None:
    handshake = 3
    per_role = {
        OPEN: len(TRAFFIC) + 1,  # + Close
        DETACHED: len(REPLAYABLE) + 2 + 2,  # + Ping, Ack; Close, Reattach
        REATTACHING: len(REPLAYABLE) + 2 + 2,  # + Ping, Ack; Sequence, Close
    }
    end_of_stream, transport_lost, timed_out = 5, 2, 5
    assert len(TRANSITIONS) == handshake + 2 * (
        sum(per_role.values()) + end_of_stream + transport_lost + timed_out
    )
    for state, who, kind in TRANSITIONS:
        assert isinstance(state, HubState)
        assert isinstance(who, Role)
        assert kind in ALL_INPUTS


def test_closed_is_reachable_from_every_live_state() -> None:
    live = {NEW, HANDSHAKING, OPEN, DETACHED, REATTACHING}
    for state in live:
        assert any(TRANSITIONS.get((state, C, kind)) is CLOSED for kind in ALL_INPUTS)
