"""End to end in memory: a client core and a server core talking through HubPair."""

from __future__ import annotations

import msgspec
import pytest

from helpers import HubPair, open_pair, split_at
from voxta_proto.hub import (
    Close,
    Completion,
    HandshakeAccepted,
    HandshakeRequest,
    HubState,
    Invocation,
    KeepAliveDue,
    Ping,
    StreamInvocation,
    StreamItem,
)

Raw = msgspec.Raw
MOTD = Raw('{"motd":"héllo"}'.encode())


def test_a_whole_session() -> None:
    pair = HubPair()
    assert pair.client_sends(HandshakeRequest(protocol="json", version=1)) == [
        HandshakeRequest(protocol="json", version=1)
    ]
    assert pair.server_sends(HandshakeAccepted()) == [HandshakeAccepted()]
    assert pair.states() == (HubState.OPEN, HubState.OPEN)
    # JS clients ping right after the handshake.
    assert pair.client_sends(Ping()) == [Ping()]

    call = pair.client.next_invocation_id()
    got = pair.client_sends(Invocation(target="Add", arguments=(Raw(b"40"), Raw(b"2")),
                                       invocation_id=call))
    request = got[0]
    assert isinstance(request, Invocation)
    assert [bytes(a) for a in request.arguments] == [b"40", b"2"]
    assert pair.client.pending_invocations == {"0"}
    pair.advance(0.25)
    assert pair.server_sends(Completion(invocation_id=request.invocation_id or "",
                                        result=Raw(b"42"))) == [
        Completion(invocation_id="0", result=Raw(b"42"))
    ]
    assert pair.client.pending_invocations == frozenset()

    # A server-to-client stream, then a fire-and-forget broadcast.
    stream = pair.client.next_invocation_id()
    pair.client_sends(StreamInvocation(invocation_id=stream, target="Counter",
                                       arguments=(Raw(b"2"),)))
    pair.server_sends(StreamItem(invocation_id=stream, item=Raw(b"0")),
                      StreamItem(invocation_id=stream, item=Raw(b"1")),
                      Completion(invocation_id=stream))
    pair.server_sends(Invocation(target="Broadcast", arguments=(Raw(b'"hi"'),)))

    # Keep-alive on the shared clock: the client last sent at 0.25 (the stream request).
    assert pair.client.next_deadline() == 15.25
    pair.now = 15.25
    assert pair.client.handle_timer(now=pair.now) == [KeepAliveDue()]
    pair.client_sends(Ping())
    assert pair.client.next_deadline() == 30.25

    pair.server_sends(Close(error="Server shutting down.", allow_reconnect=True))
    assert pair.states() == (HubState.CLOSED, HubState.CLOSED)
    assert pair.client.next_deadline() is None
    assert pair.server.next_deadline() is None


def test_pair_checks_that_messages_come_out_unchanged() -> None:
    pair = open_pair()
    with pytest.raises(AssertionError):
        pair.client_sends(Ping(), expect=[])


@pytest.mark.parametrize("cuts", [[1], [5, 9, 40], list(range(0, 200, 3))])
def test_bytes_cut_anywhere_between_the_cores(cuts: list[int]) -> None:
    pair = HubPair()
    data = pair.client.send(HandshakeRequest(protocol="json", version=1), now=0.0)
    events = [e for piece in split_at(data, cuts) for e in pair.to_server(piece)]
    assert events == [HandshakeRequest(protocol="json", version=1)]
    data = pair.server.send(HandshakeAccepted(), now=0.0) + pair.server.send(
        Invocation(target="Welcome", arguments=(MOTD,)), now=0.0
    )
    events = [e for piece in split_at(data, cuts) for e in pair.to_client(piece)]
    assert events == [HandshakeAccepted(),
                      Invocation(target="Welcome", arguments=(MOTD,))]
