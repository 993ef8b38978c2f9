"""Reconnect by VOXTA_PROTOCOL_2025-11.md §3.7, the sans-IO part (issue 14): a fresh
connection authenticates again, resubscribes only to a chat the server still lists in
``chatsSessionsUpdated``, and reports a chat that is gone as ``ChatLost``."""

from __future__ import annotations

from voxta_proto.voxta.client_messages import Authenticate, SubscribeToChat
from voxta_proto.voxta.server import ClientRequest
from voxta_proto.voxta.server_messages import ChatClosed, ChatStarted
from voxta_proto.voxta.session import (
    ChatLost,
    ChatRef,
    ClientState,
    RequestCompleted,
    RequestFailed,
)

from .session_pair import CHAT, SESSION, Script, SessionPair, of_type


def requests(pair: SessionPair) -> list[type[object]]:
    return [type(e.message) for e in of_type(pair.server_events, ClientRequest)]


def test_a_chat_the_server_still_runs_is_joined_again() -> None:
    script = Script()
    script.running[SESSION] = CHAT  # owned by another connection (we were a subscriber)
    pair = SessionPair(script=script, rejoin=ChatRef(SESSION, CHAT))
    pair.connect()
    assert pair.client.state is ClientState.READY
    assert requests(pair) == [Authenticate, SubscribeToChat]
    (subscribe,) = [e.message for e in of_type(pair.server_events, ClientRequest)
                    if isinstance(e.message, SubscribeToChat)]
    assert subscribe == SubscribeToChat(session_id=SESSION)
    done = of_type(pair.client_events, RequestCompleted)
    assert isinstance(done[-1].reply, ChatStarted)
    assert pair.client.chat.session_id == SESSION
    assert pair.client.chat.chat_id == CHAT
    assert of_type(pair.client_events, ChatLost) == []
    assert pair.client.pending_requests == {}


def test_a_chat_the_server_no_longer_lists_is_lost_without_asking() -> None:
    pair = SessionPair(rejoin=ChatRef(SESSION, CHAT))
    pair.connect()
    assert pair.client.state is ClientState.READY
    assert requests(pair) == [Authenticate]  # authenticated again, nothing else
    assert of_type(pair.client_events, ChatLost) == [
        ChatLost(SESSION, CHAT, "the server no longer runs this chat session")]
    # It comes with the authenticate outcome, before anything else could wait.
    assert isinstance(pair.client_events[-2], RequestCompleted)
    assert pair.client.chat.session_id is None


class _EndsBeforeSubscribe(Script):
    """Lists the session in the welcome burst, then it ends before the subscription."""

    def on_SubscribeToChat(self, request: ClientRequest, message: SubscribeToChat) -> None:
        self.running.clear()
        super().on_SubscribeToChat(request, message)


def test_a_chat_that_ends_before_the_subscription_is_lost() -> None:
    script = _EndsBeforeSubscribe()
    script.running[SESSION] = CHAT
    pair = SessionPair(script=script, rejoin=ChatRef(SESSION, CHAT))
    pair.connect()
    failed = of_type(pair.client_events, RequestFailed)
    assert [type(f.request) for f in failed] == [SubscribeToChat]
    assert isinstance(failed[0].reply, ChatClosed)
    (lost,) = of_type(pair.client_events, ChatLost)
    assert lost.session_id == SESSION
    assert lost.chat_id == CHAT
    assert lost.reason == failed[0].error
    assert pair.client.state is ClientState.READY


def test_without_rejoin_nothing_is_resubscribed() -> None:
    script = Script()
    script.running[SESSION] = CHAT
    pair = SessionPair(script=script)
    pair.connect()
    assert requests(pair) == [Authenticate]
    assert of_type(pair.client_events, ChatLost) == []
    assert pair.client.chat.session_id is None
