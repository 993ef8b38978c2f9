"""The client role of the Voxta session: states, authenticate, chat state, request
matching, keep-alive and disconnects.

The server side is a real ``VoxtaServerSession`` (through ``SessionPair``) or raw frames
written by hand where a test needs a server that misbehaves or says something unusual.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from voxta_proto.errors import LocalProtocolError
from voxta_proto.hub import HubConfig
from voxta_proto.voxta.client_messages import (
    Authenticate,
    LoadCharactersList,
    RequestSuggestions,
    Send,
    StartChat,
    TypingStart,
)
from voxta_proto.voxta.codec import UnknownServerMessage
from voxta_proto.voxta.enums import AudioOutputCapability
from voxta_proto.voxta.server import ClientRequest, ServerState
from voxta_proto.voxta.server_messages import (
    AuthenticationRequired,
    ChatClosed,
    ChatParticipantsUpdated,
    ChatPaused,
    InterruptSpeech,
    SpeechPlaybackStart,
    Suggestions,
    Welcome,
)
from voxta_proto.voxta.session import (
    CLIENT_TRANSITIONS,
    ClientState,
    Disconnected,
    RequestCompleted,
    RequestFailed,
    VoxtaClientSession,
    default_capabilities,
)
from voxta_proto.voxta.shapes import ClientCapabilities

from .session_pair import (
    CHARACTER,
    CHAT,
    SESSION,
    Script,
    SessionPair,
    make,
    make_welcome,
    of_type,
    records,
    table_allows,
)

OTHER_SESSION = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"


def frame(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\x1e"


def sent(client: VoxtaClientSession) -> list[dict[str, Any]]:
    """Every record the client queued, decoded (the handshake included)."""
    return [json.loads(r[:-1]) for item in client.data_to_send() for r in records(item)]


def state_of(client: VoxtaClientSession) -> ClientState:
    """``client.state`` through a call, so mypy does not narrow it across calls."""
    return client.state


def ready_pair(script: Script | None = None) -> SessionPair:
    pair = SessionPair(script=script)
    pair.connect()
    assert pair.client.state is ClientState.READY
    return pair


def authenticating_client() -> VoxtaClientSession:
    client = VoxtaClientSession(now=0.0)
    client.start(now=0.0)
    client.data_to_send()
    assert client.receive_data(b"{}\x1e", now=0.0) == []
    return client


# -- start and authenticate ------------------------------------------------------------

def test_start_queues_the_handshake() -> None:
    client = VoxtaClientSession(now=0.0)
    assert client.state is ClientState.NEW
    client.start(now=0.0)
    assert state_of(client) is ClientState.HANDSHAKING
    assert client.data_to_send() == [b'{"protocol":"json","version":1}\x1e']


def test_handshake_version_2() -> None:
    client = VoxtaClientSession(now=0.0, handshake_version=2)
    client.start(now=0.0)
    assert sent(client) == [{"protocol": "json", "version": 2}]
    assert client.hub.config.stateful_reconnect is True


def test_authenticate_goes_out_right_after_the_handshake() -> None:
    client = authenticating_client()
    assert client.state is ClientState.AUTHENTICATING
    (record,) = sent(client)
    assert record == {
        "type": 1, "invocationId": "0", "target": "SendMessage",
        "arguments": [{"$type": "authenticate", "client": "voxta-proto",
                       "scope": ["role:app"],
                       "capabilities": {"audioInput": "None", "audioOutput": "None",
                                        "visionCapture": "None"},
                       "clientVersion": client.authenticate_message.client_version}],
    }
    assert client.pending_requests == {"0": client.authenticate_message}


def test_authenticate_settings() -> None:
    capabilities = ClientCapabilities(
        audio_input=default_capabilities().audio_input,
        audio_output=AudioOutputCapability.URL,
        vision_capture=default_capabilities().vision_capture,
        accepted_audio_content_types=("audio/mpeg",),
    )
    client = VoxtaClientSession(now=0.0, client="MyApp", client_version="1.0",
                                scope=("role:app", "role:inspector"), capabilities=capabilities)
    client.start(now=0.0)
    client.data_to_send()
    client.receive_data(b"{}\x1e", now=0.0)
    (record,) = sent(client)
    message = record["arguments"][0]
    assert message["client"] == "MyApp"
    assert message["clientVersion"] == "1.0"
    assert message["scope"] == ["role:app", "role:inspector"]
    assert message["capabilities"]["audioOutput"] == "Url"
    assert message["capabilities"]["acceptedAudioContentTypes"] == ["audio/mpeg"]


def test_handshake_and_welcome_in_one_transport_message() -> None:
    client = VoxtaClientSession(now=0.0)
    client.start(now=0.0)
    client.data_to_send()
    welcome = frame({"type": 1, "target": "ReceiveMessage", "arguments": [
        {"$type": "welcome", "voxtaServerVersion": "1.2.1", "apiVersion": "2025-11",
         "user": {"id": "u", "name": "User"}}]})
    events = client.receive_data(b"{}\x1e" + welcome, now=0.0)
    assert [type(e) for e in events] == [Welcome]
    assert client.state is ClientState.READY
    # The reply is held until the Completion names the request it answers.
    (done,) = client.receive_data(frame({"type": 3, "invocationId": "0"}), now=0.0)
    assert isinstance(done, RequestCompleted)
    assert done.reply is events[0]


@pytest.mark.parametrize("message", [
    LoadCharactersList(), StartChat(character_id=CHARACTER), TypingStart(session_id=SESSION),
])
def test_nothing_but_authenticate_before_welcome(message: LoadCharactersList | StartChat
                                                 | TypingStart) -> None:
    client = VoxtaClientSession(now=0.0)
    with pytest.raises(LocalProtocolError):
        client.send(message, now=0.0)
    client.start(now=0.0)
    with pytest.raises(LocalProtocolError):
        client.send(message, now=0.0)
    client.data_to_send()
    client.receive_data(b"{}\x1e", now=0.0)
    with pytest.raises(LocalProtocolError):
        client.send(message, now=0.0)
    assert list(client.pending_requests.values()) == [client.authenticate_message]


def test_handshake_refused() -> None:
    pair = SessionPair(refuse_handshake="Handshake was canceled.")
    pair.connect()
    (event,) = pair.client_events
    assert event == Disconnected(error="handshake refused: Handshake was canceled.",
                                 allow_reconnect=False)
    assert pair.client.state is ClientState.CLOSED
    assert pair.client_states == [ClientState.NEW, ClientState.HANDSHAKING, ClientState.CLOSED]
    assert pair.server.state is ServerState.CLOSED
    # No authenticate was sent: only the handshake went to the server.
    assert pair.to_server == [b'{"protocol":"json","version":1}\x1e']


def test_authentication_required() -> None:
    client = authenticating_client()
    client.data_to_send()
    message = frame({"type": 1, "target": "ReceiveMessage",
                     "arguments": [{"$type": "authenticationRequired"}]})
    events = client.receive_data(message, now=0.0)
    assert isinstance(events[0], AuthenticationRequired)
    failed = events[1]
    assert isinstance(failed, RequestFailed)
    assert isinstance(failed.request, Authenticate)
    assert failed.reply is events[0]
    # the session is over: a Disconnected says so, with a reason and no reconnect
    assert events[2:] == [Disconnected(
        error="authentication failed: the server answered authenticationRequired",
        allow_reconnect=False)]
    assert client.authentication_error == events[2].error  # type: ignore[union-attr]
    assert client.state is ClientState.CLOSED
    assert client.pending_requests == {}


def test_client_transitions_come_from_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    import voxta_proto.voxta.session as session_module

    table = dict(CLIENT_TRANSITIONS)
    del table[(ClientState.AUTHENTICATING, Welcome)]
    monkeypatch.setattr(session_module, "CLIENT_TRANSITIONS", table)
    client = authenticating_client()
    client.data_to_send()
    welcome = frame({"type": 1, "target": "ReceiveMessage", "arguments": [
        {"$type": "welcome", "voxtaServerVersion": "1.2.1", "apiVersion": "2025-11",
         "user": {"id": "u", "name": "User"}}]})
    client.receive_data(welcome, now=0.0)
    assert client.state is ClientState.AUTHENTICATING
    with pytest.raises(LocalProtocolError):
        client.send(LoadCharactersList(), now=0.0)


def test_every_row_of_the_client_table_is_a_real_move() -> None:
    for (state, _), target in CLIENT_TRANSITIONS.items():
        assert table_allows(CLIENT_TRANSITIONS, state, target)
    # READY is never left except to CLOSED, or to DETACHED by stateful reconnect.
    assert {t for (s, _), t in CLIENT_TRANSITIONS.items() if s is ClientState.READY} == {
        ClientState.READY, ClientState.CLOSED, ClientState.DETACHED}
    # Only welcome makes a session READY from AUTHENTICATING.
    assert [w for (s, w), t in CLIENT_TRANSITIONS.items()
            if s is ClientState.AUTHENTICATING and t is ClientState.READY] == [Welcome]


# -- request matching ------------------------------------------------------------------

def test_completion_error_fails_the_request() -> None:
    pair = ready_pair()
    mark = pair.mark()
    invocation_id = pair.send(Send(session_id="", text="hi"))
    (failed,) = pair.since(mark)
    assert failed == RequestFailed(str(invocation_id), Send(session_id="", text="hi"),
                                   "Missing SessionId on message send")
    assert pair.client.state is ClientState.READY


def test_completion_error_fails_a_request_that_expects_a_reply() -> None:
    script = Script()
    pair = ready_pair(script)
    pair.client.send(LoadCharactersList(), now=pair.now)
    pair.pump(answer=False)
    (request,) = of_type(pair.server_events[1:], ClientRequest)
    assert request.invocation_id is not None
    pair.server.complete(request.invocation_id, now=pair.now, error="You need scope X")
    mark = pair.mark()
    pair.pump()
    (failed,) = pair.since(mark)
    assert isinstance(failed, RequestFailed)
    assert failed.error == "You need scope X"
    assert failed.reply is None
    assert pair.client.pending_requests == {}


def test_fire_and_forget() -> None:
    pair = ready_pair()
    mark = pair.mark()
    assert pair.send(TypingStart(session_id=SESSION), expect_reply=False) is None
    assert pair.since(mark) == []
    assert pair.client.pending_requests == {}
    assert pair.server_events[-1] == ClientRequest(None, TypingStart(session_id=SESSION))
    assert b"invocationId" not in pair.to_server[-1]


def test_replies_are_matched_by_session() -> None:
    pair = ready_pair()
    pair.client.send(RequestSuggestions(session_id=SESSION), now=pair.now)
    pair.pump(answer=False)
    (request,) = of_type(pair.server_events[1:], ClientRequest)
    assert request.invocation_id is not None
    pair.server.complete(request.invocation_id, now=pair.now)
    pair.server.send(make(Suggestions, suggestions=["no"], sessionId=OTHER_SESSION),
                     now=pair.now)
    mark = pair.mark()
    pair.pump()
    assert [type(e) for e in pair.since(mark)] == [Suggestions]
    assert len(pair.client.pending_requests) == 1
    pair.server.send(make(Suggestions, suggestions=["yes"], sessionId=SESSION), now=pair.now)
    pair.pump()
    (done,) = of_type(pair.since(mark), RequestCompleted)
    assert isinstance(done.reply, Suggestions)
    assert done.reply.suggestions == ("yes",)
    assert pair.client.pending_requests == {}


def test_unknown_server_message_passes_through() -> None:
    pair = ready_pair()
    pair.server.send(make_welcome(), now=pair.now)
    before = pair.client.chat
    data = frame({"type": 1, "target": "ReceiveMessage",
                  "arguments": [{"$type": "somethingNew", "sessionId": SESSION}]})
    (event,) = pair.deliver_to_client(data)
    assert isinstance(event, UnknownServerMessage)
    assert event.type_name == "somethingNew"
    assert pair.client.chat == before
    assert pair.client.state is ClientState.READY


# -- chat state ---------------------------------------------------------------------------

def test_chat_state_updates() -> None:
    pair = ready_pair()
    pair.send(StartChat(character_id=CHARACTER))
    chat = pair.client.chat
    server = pair.server

    def push(kind: Any, **fields: Any) -> None:
        server.send(make(kind, **fields), now=pair.now)
        pair.pump()

    push(SpeechPlaybackStart, messageId="m1", startIndex=0, duration=1.5, sessionId=SESSION)
    assert (chat.is_speaking, chat.last_message_id) == (True, "m1")
    push(InterruptSpeech, messageId="m1", sessionId=SESSION)
    assert (chat.is_speaking, chat.is_thinking) == (False, False)
    push(ChatPaused, paused=True, sessionId=SESSION)
    assert chat.paused is True
    push(ChatParticipantsUpdated, characters=[{"id": "x", "name": "Other"}],
         sessionId=OTHER_SESSION)
    assert [p.id for p in chat.participants] == [CHARACTER]
    push(ChatParticipantsUpdated, characters=[{"id": CHARACTER, "name": "Apex"},
                                              {"id": "b", "name": "Bea"}], sessionId=SESSION)
    assert [p.name for p in chat.participants] == ["Apex", "Bea"]
    push(ChatClosed, chatId="c", sessionId=OTHER_SESSION)
    assert chat.session_id == SESSION
    push(ChatClosed, chatId=CHAT, sessionId=SESSION)
    closed = pair.client.chat
    assert closed.session_id is None
    assert closed.chat_id is None
    assert closed.participants == ()


# -- keep-alive, timeouts, close ------------------------------------------------------------

def test_keepalive_ping_after_15_seconds_of_not_sending() -> None:
    pair = ready_pair()
    deadline = pair.client.next_deadline()
    assert deadline == 15.0
    pair.advance(14.9)
    assert pair.client_timer() == []
    assert pair.client.data_to_send() == []
    pair.advance(0.1)
    assert pair.client_timer() == []
    assert pair.client.data_to_send() == [b'{"type":6}\x1e']
    assert pair.client.state is ClientState.READY


def test_silent_server_times_out() -> None:
    pair = ready_pair()
    pair.client.send(LoadCharactersList(), now=pair.now)
    for item in pair.client.data_to_send():
        pair.to_server.append(item)  # never delivered: the server is gone
    events = []
    for _ in range(3):
        pair.advance(10.0)
        events += pair.client_timer()
        pair.client.data_to_send()
    failed, disconnected = events
    assert isinstance(failed, RequestFailed)
    assert failed.request == LoadCharactersList()
    assert isinstance(disconnected, Disconnected)
    assert disconnected.allow_reconnect is True
    assert disconnected.error is not None
    assert "30.0 s" in disconnected.error
    assert pair.client.state is ClientState.CLOSED
    assert pair.client.pending_requests == {}


def test_transport_eof() -> None:
    pair = ready_pair()
    pair.client.send(LoadCharactersList(), now=pair.now)
    events = pair.client.receive_eof(now=pair.now)
    assert [type(e) for e in events] == [RequestFailed, Disconnected]
    assert events[1] == Disconnected(error="connection lost", allow_reconnect=True)
    assert pair.client.state is ClientState.CLOSED


def test_transport_eof_inside_a_record_is_a_reconnectable_loss() -> None:
    """Issue 14: a drop while a record spans WebSocket messages ends the connection as
    a network loss (reconnect), not as "the server broke the protocol"."""
    pair = ready_pair()
    pair.client.send(LoadCharactersList(), now=pair.now)
    assert pair.client.receive_data(b'{"type":1,"target":"ReceiveMess', now=pair.now) == []
    events = pair.client.receive_eof(now=pair.now)
    assert [type(e) for e in events] == [RequestFailed, Disconnected]
    assert events[1] == Disconnected(error="connection lost", allow_reconnect=True)


def test_server_close_with_allow_reconnect() -> None:
    pair = ready_pair()
    first = pair.client.send(LoadCharactersList(), now=pair.now)
    second = pair.client.send(StartChat(character_id=CHARACTER), now=pair.now)
    pair.pump(answer=False)
    pair.server.close(now=pair.now, error="Server restarting", allow_reconnect=True)
    mark = pair.mark()
    pair.pump()
    events = pair.since(mark)
    assert events == [
        RequestFailed(str(first), LoadCharactersList(), "Server restarting",
                      connection_ended=True),
        RequestFailed(str(second), StartChat(character_id=CHARACTER), "Server restarting",
                      connection_ended=True),
        Disconnected(error="Server restarting", allow_reconnect=True),
    ]
    assert pair.client.state is ClientState.CLOSED
    assert pair.client.pending_requests == {}
    with pytest.raises(LocalProtocolError):
        pair.client.send(LoadCharactersList(), now=pair.now)


def test_server_close_without_error() -> None:
    pair = ready_pair()
    pair.server.close(now=pair.now)
    pair.pump()
    assert pair.client_events[-1] == Disconnected(error=None, allow_reconnect=False)


def test_client_close() -> None:
    pair = ready_pair()
    invocation_id = pair.client.send(LoadCharactersList(), now=pair.now)
    failed = pair.client.close(now=pair.now, error="bye")
    # the pending request is reported failed, not dropped
    assert failed == [RequestFailed(str(invocation_id), LoadCharactersList(), "bye",
                                    connection_ended=True)]
    assert pair.client.state is ClientState.CLOSED
    assert pair.client.pending_requests == {}
    assert sent(pair.client)[-1] == {"type": 7, "error": "bye"}
    with pytest.raises(LocalProtocolError):
        pair.client.send(LoadCharactersList(), now=pair.now)


def test_server_invocation_with_an_id_gets_no_client_result() -> None:
    pair = ready_pair()
    data = frame({"type": 1, "invocationId": "s1", "target": "GetClientStatus",
                  "arguments": []})
    assert pair.deliver_to_client(data) == []
    assert sent(pair.client) == [{"type": 3, "invocationId": "s1",
                                  "error": "Client didn't provide a result."}]
    # Without an id there is nothing to answer.
    data = frame({"type": 1, "target": "GetClientStatus", "arguments": []})
    pair.deliver_to_client(data)
    assert sent(pair.client) == []
    assert pair.client.state is ClientState.READY


# -- stateful reconnect -------------------------------------------------------------------

def _stateful_pair() -> SessionPair:
    config = HubConfig(stateful_reconnect=True)
    return SessionPair(client_hub=config, server_hub=config, handshake_version=2)


def test_reattachable_loss_and_reattach() -> None:
    pair = _stateful_pair()
    pair.connect()
    assert pair.client.state is ClientState.READY
    assert pair.client.hub.stateful_reconnect is True
    (event,) = pair.client.receive_eof(now=pair.now)
    assert event == Disconnected(error="connection lost", allow_reconnect=True,
                                 reattachable=True)
    pair.log([])  # check the move against the table
    assert state_of(pair.client) is ClientState.DETACHED
    # Requests may still be queued; they go out with the replay.
    invocation_id = pair.client.send(LoadCharactersList(), now=pair.now)
    assert pair.client.data_to_send() == []
    pair.client.reattach(now=pair.now)
    replay = pair.client.data_to_send()
    assert b'"type":9' in replay[0]
    assert b"loadCharactersList" in replay[0]
    pair.deliver_to_client(b'{"type":9,"sequenceId":1}\x1e')
    assert state_of(pair.client) is ClientState.READY
    assert list(pair.client.pending_requests) == [invocation_id]


def test_reattach_before_welcome_still_waits_for_welcome() -> None:
    pair = _stateful_pair()
    pair.client.start(now=pair.now)
    pair.check_states()
    for item in pair.client.data_to_send():
        pair.deliver_to_server(item, answer=False)
    for item in pair.server.data_to_send():
        pair.deliver_to_client(item)
    assert pair.client.state is ClientState.AUTHENTICATING
    pair.client.data_to_send()  # authenticate: lost with the transport
    pair.log(pair.client.receive_eof(now=pair.now))
    pair.client.reattach(now=pair.now)
    pair.client.data_to_send()
    pair.deliver_to_client(b'{"type":9,"sequenceId":1}\x1e')
    # No welcome yet: the session must not claim to be READY.
    assert state_of(pair.client) is ClientState.AUTHENTICATING
    with pytest.raises(LocalProtocolError):
        pair.client.send(LoadCharactersList(), now=pair.now)
