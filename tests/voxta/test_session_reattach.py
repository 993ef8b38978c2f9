"""Stateful reconnect at the session level (issues 13/14): a reattach writes the replay
once (never the stale outbox as well), every request is answered exactly once across a
drop, and a full replay buffer on the server is backpressure with ``SendUnblocked``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from voxta_proto.hub import HubConfig, HubState, SendUnblocked
from voxta_proto.voxta.client_messages import (
    LoadCharactersList,
    LoadChatsList,
    LoadScenariosList,
)
from voxta_proto.voxta.server import ClientRequest
from voxta_proto.voxta.server_messages import (
    CharactersListLoaded,
    ChatsListLoaded,
    ScenariosListLoaded,
)
from voxta_proto.voxta.session import ClientState, RequestCompleted, RequestFailed

from .session_pair import CHARACTER, SessionPair, of_type, records

REPLY_OF: dict[type[object], type[object]] = {
    LoadCharactersList: CharactersListLoaded,
    LoadScenariosList: ScenariosListLoaded,
    LoadChatsList: ChatsListLoaded,
}

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


# -- every request answered exactly once across cuts at random byte offsets --------------

CUT_STEPS = st.lists(st.one_of(
    st.tuples(st.just("request"), st.integers(0, 2)),
    st.tuples(st.just("to server"), st.integers(0, 600)),
    st.tuples(st.just("to client"), st.integers(0, 600)),
    st.tuples(st.just("cut to server"), st.integers(0, 600)),
    st.tuples(st.just("cut to client"), st.integers(0, 600)),
    st.tuples(st.just("tick"), st.just(0)),
    st.tuples(st.just("reattach"), st.just(0)),
), max_size=40)

REQUESTS = (LoadCharactersList(), LoadScenariosList(), LoadChatsList(character_id=CHARACTER))


@settings(max_examples=200, deadline=None)
@given(steps=CUT_STEPS)
def test_requests_are_answered_exactly_once_across_random_cuts(
    steps: list[tuple[str, int]],
) -> None:
    """Both Voxta sessions over stateful reconnect, the transport cut at random byte
    offsets either way (one end noticing before the other): every request reaches the
    server once and gets exactly one outcome, its own reply, none lost (issue 14)."""
    pair = stateful_pair()
    client, server = pair.client, pair.server
    to_server, to_client = b"", b""
    open_to = {"server": True, "client": True}
    sent: dict[str, type[object]] = {}

    def flush() -> None:
        nonlocal to_server, to_client
        for item in client.data_to_send():
            if open_to["server"]:
                to_server += item
        for item in server.data_to_send():
            if open_to["client"]:
                to_client += item

    def feed_server(size: int) -> None:
        nonlocal to_server
        if open_to["server"] and server.hub.state is not HubState.DETACHED:
            piece, to_server = to_server[:size], to_server[size:]
            pair.deliver_to_server(piece)  # the Script answers each request
        flush()

    def feed_client(size: int) -> None:
        nonlocal to_client
        if open_to["client"] and client.hub.state is not HubState.DETACHED:
            piece, to_client = to_client[:size], to_client[size:]
            pair.deliver_to_client(piece)
        flush()

    def cut(end: str, size: int) -> None:
        nonlocal to_server, to_client
        if not open_to[end]:
            return
        if end == "server":
            feed_server(size)
            to_server = b""
            if server.hub.state is not HubState.DETACHED:
                pair.server_events.extend(server.receive_eof(now=pair.now))
        else:
            feed_client(size)
            to_client = b""
            if client.hub.state is not HubState.DETACHED:
                pair.log(client.receive_eof(now=pair.now))
        open_to[end] = False

    def reattach() -> None:
        nonlocal to_server, to_client
        cut("server", 0)
        cut("client", 0)
        open_to.update(server=True, client=True)
        client.reattach(now=pair.now)
        server.reattach(now=pair.now)
        flush()

    for action, arg in steps:
        if action == "request":
            invocation_id = client.send(REQUESTS[arg], now=pair.now)
            assert invocation_id is not None
            sent[invocation_id] = type(REQUESTS[arg])
            flush()
        elif action == "to server":
            feed_server(arg)
        elif action == "to client":
            feed_client(arg)
        elif action == "cut to server":
            cut("server", arg)
        elif action == "cut to client":
            cut("client", arg)
        elif action == "tick":
            pair.advance(1.0)
            pair.client_timer()
            pair.server_timer()
            flush()
        elif action == "reattach" and not all(open_to.values()):
            reattach()

    if not all(open_to.values()):
        reattach()
    for _ in range(20):
        if not (to_server or to_client):
            break
        feed_server(len(to_server))
        feed_client(len(to_client))
    assert not to_server
    assert not to_client
    handled = [r.invocation_id for r in pair.script.handled]
    assert sorted(i for i in handled if i in sent) == sorted(sent)  # each reached it once
    outcomes = [e for e in pair.client_events if isinstance(e, (RequestCompleted,
                                                                 RequestFailed))]
    mine = [e for e in outcomes if e.invocation_id in sent]
    assert not [e for e in mine if isinstance(e, RequestFailed)]
    assert sorted(e.invocation_id for e in mine) == sorted(sent)  # once each
    for event in mine:
        assert isinstance(event, RequestCompleted)
        assert type(event.reply) is REPLY_OF[sent[event.invocation_id]]
    assert client.pending_requests == {}
    assert client.state is ClientState.READY
