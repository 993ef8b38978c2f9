"""Stateful reconnect at the session level (issues 13/14): a reattach writes the replay
once (never the stale outbox as well), every request is answered exactly once across a
drop, and a full replay buffer on the server is backpressure with ``SendUnblocked``."""

from __future__ import annotations

from voxta_proto.hub import HubConfig, HubState, SendUnblocked
from voxta_proto.voxta.client_messages import LoadCharactersList
from voxta_proto.voxta.server import ClientRequest
from voxta_proto.voxta.server_messages import CharactersListLoaded
from voxta_proto.voxta.session import ClientState, RequestCompleted

from .session_pair import SessionPair, of_type, records

STATEFUL = HubConfig(stateful_reconnect=True, peer_timeout=None)


def stateful_pair(server_hub: HubConfig = STATEFUL) -> SessionPair:
    pair = SessionPair(client_hub=STATEFUL, server_hub=server_hub, handshake_version=2)
    pair.connect()
    assert pair.client.state is ClientState.READY
    assert pair.client.hub.stateful_reconnect
    assert pair.server.hub.stateful_reconnect
    return pair


def drop(pair: SessionPair) -> None:
    pair.client.receive_eof(now=pair.now)
    pair.server.receive_eof(now=pair.now)
    assert pair.client.hub.state is HubState.DETACHED
    assert pair.server.hub.state is HubState.DETACHED


def test_client_reattach_writes_the_replay_and_not_the_stale_outbox() -> None:
    pair = stateful_pair()
    invocation_id = pair.client.send(LoadCharactersList(), now=pair.now)  # never written
    assert invocation_id is not None
    drop(pair)
    pair.client.reattach(now=pair.now)
    (item,) = pair.client.data_to_send()
    first, *rest = records(item)
    assert first.startswith(b'{"type":9,')  # the Sequence comes first
    assert sum(b'"loadCharactersList"' in r for r in rest) == 1  # and the request once
    pair.server.reattach(now=pair.now)
    pair.deliver_to_server(item)
    pair.pump()
    done = of_type(pair.client_events, RequestCompleted)
    assert [d.invocation_id for d in done].count(invocation_id) == 1
    assert isinstance(done[-1].reply, CharactersListLoaded)
    assert len(of_type(pair.server_events, ClientRequest)) == 2  # authenticate, the list
    assert pair.client.pending_requests == {}


def test_server_reattach_writes_the_replay_alone_and_once() -> None:
    pair = stateful_pair()
    pair.client.send(LoadCharactersList(), now=pair.now)
    for item in pair.client.data_to_send():
        pair.deliver_to_server(item)  # answered: reply and Completion sit in the outbox
    drop(pair)
    pair.client.reattach(now=pair.now)
    pair.server.reattach(now=pair.now)
    (item,) = pair.server.data_to_send()
    first, *rest = records(item)
    assert first.startswith(b'{"type":9,')
    assert sum(b'"charactersListLoaded"' in r for r in rest) == 1
    for client_item in pair.client.data_to_send():
        pair.deliver_to_server(client_item)
    for record in records(item):
        pair.deliver_to_client(record)
    pair.pump()
    (done,) = [d for d in of_type(pair.client_events, RequestCompleted)
               if isinstance(d.request, LoadCharactersList)]
    assert isinstance(done.reply, CharactersListLoaded)
    assert pair.client.state is ClientState.READY


def test_server_send_would_block_then_send_unblocked() -> None:
    pair = stateful_pair(HubConfig(stateful_reconnect=True, peer_timeout=None,
                                   max_buffered_bytes=2000))
    server = pair.server

    def blocked() -> bool:
        return server.send_would_block

    sent = 0
    while not blocked():
        server.send(CharactersListLoaded(characters=()), now=pair.now)
        sent += 1
    assert sent > 1
    for item in server.data_to_send():
        for record in records(item):
            pair.deliver_to_client(record)
    pair.advance(1.0)
    pair.client_timer()  # the client's Ack is due
    events: list[object] = []
    for item in pair.client.data_to_send():
        events += pair.deliver_to_server(item)
    assert events == [SendUnblocked()]
    assert not blocked()
    assert len(of_type(pair.client_events, CharactersListLoaded)) == sent
