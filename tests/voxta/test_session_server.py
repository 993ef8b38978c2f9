"""The server role of the Voxta session: handshake, checks with the real server's error
texts, authentication, Completions exactly once, keep-alive and disconnects.

Most tests feed raw client frames, as a third-party client would write them, and read the
server's output back as JSON; the last ones use the in-memory pair.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from voxta_proto.errors import LocalProtocolError
from voxta_proto.hub import Completion, HubConfig, Invocation
from voxta_proto.voxta.client_messages import (
    Authenticate,
    Interrupt,
    LoadCharactersList,
    Send,
    TypingStart,
)
from voxta_proto.voxta.server import (
    SERVER_TRANSITIONS,
    ClientRequest,
    ServerState,
    VoxtaServerSession,
    session_scoped,
)
from voxta_proto.voxta.server_messages import ChatFlow
from voxta_proto.voxta.session import Disconnected

from .session_pair import SESSION, SessionPair, make, records

HANDSHAKE = b'{"protocol":"json","version":1}\x1e'
AUTHENTICATE: dict[str, Any] = {
    "$type": "authenticate", "client": "MyApp", "clientVersion": "1.0.0",
    "scope": ["role:app"],
    "capabilities": {"audioInput": "None", "audioOutput": "Url",
                     "acceptedAudioContentTypes": ["audio/x-wav", "audio/mpeg"],
                     "visionCapture": "None"},
}
BINDING = ("Failed to invoke 'SendMessage' due to an error on the server. "
           "InvalidDataException: Error binding arguments. ")


def frame(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\x1e"


def invoke(message: object, invocation_id: str | None = "1",
           target: str = "SendMessage") -> bytes:
    obj: dict[str, Any] = {"type": 1, "target": target, "arguments": [message]}
    if invocation_id is not None:
        obj["invocationId"] = invocation_id
    return frame(obj)


def output(server: VoxtaServerSession) -> list[dict[str, Any]]:
    """Every record the server queued, decoded."""
    out: list[dict[str, Any]] = []
    for item in server.data_to_send():
        out.extend(json.loads(record[:-1]) for record in records(item))
    return out


def completion(server: VoxtaServerSession) -> dict[str, Any]:
    (record,) = [r for r in output(server) if r.get("type") == 3]
    return record


def state_of(server: VoxtaServerSession) -> ServerState:
    """``server.state`` through a call, so mypy does not narrow it across calls."""
    return server.state


def connected_server(**kwargs: Any) -> VoxtaServerSession:
    server = VoxtaServerSession(now=0.0, **kwargs)
    assert server.receive_data(HANDSHAKE, now=0.0) == []
    assert output(server) == [{}]
    assert server.state is ServerState.CONNECTED
    return server


def authenticated_server() -> VoxtaServerSession:
    server = connected_server()
    (request,) = server.receive_data(invoke(AUTHENTICATE, "0"), now=0.0)
    assert isinstance(request, ClientRequest)
    server.complete("0", now=0.0)
    assert output(server) == [{"type": 3, "invocationId": "0"}]
    assert server.state is ServerState.AUTHENTICATED
    return server


# -- handshake --------------------------------------------------------------------------

@pytest.mark.parametrize("version", [0, 1, 2])
def test_handshake_versions_accepted(version: int) -> None:
    server = VoxtaServerSession(now=0.0)
    server.receive_data(frame({"protocol": "json", "version": version}), now=0.0)
    assert server.data_to_send() == [b"{}\x1e"]
    assert server.state is ServerState.CONNECTED


@pytest.mark.parametrize(("request_", "error"), [
    ({"protocol": "json", "version": 3},
     "The server does not support version 3 of the 'json' protocol."),
    ({"protocol": "messagepack", "version": 1}, "The protocol 'messagepack' is not supported."),
])
def test_handshake_refused(request_: dict[str, Any], error: str) -> None:
    server = VoxtaServerSession(now=0.0)
    assert server.receive_data(frame(request_), now=0.0) == []
    assert server.data_to_send() == [frame({"error": error})]
    assert server.state is ServerState.CLOSED
    # Nothing the client sends afterwards is processed.
    assert server.receive_data(invoke(AUTHENTICATE), now=0.0) == []
    assert server.data_to_send() == []


def test_refuse_handshake_option() -> None:
    server = VoxtaServerSession(now=0.0, refuse_handshake="An unexpected error occurred.")
    server.receive_data(HANDSHAKE, now=0.0)
    assert server.data_to_send() == [b'{"error":"An unexpected error occurred."}\x1e']
    assert server.state is ServerState.CLOSED


def test_handshake_reply_is_its_own_transport_message() -> None:
    server = VoxtaServerSession(now=0.0)
    server.receive_data(HANDSHAKE, now=0.0)
    (request,) = server.receive_data(invoke(AUTHENTICATE, "0"), now=0.0)
    assert isinstance(request, ClientRequest)
    server.send(make(ChatFlow, state="WaitingForUserInput", sessionId=SESSION), now=0.0)
    server.complete("0", now=0.0)
    items = server.data_to_send()
    assert items[0] == b"{}\x1e"
    assert len(items) == 2
    assert len(records(items[1])) == 2


# -- authentication and checks ------------------------------------------------------------

def test_message_before_authenticate_fails() -> None:
    server = connected_server()
    events = server.receive_data(invoke({"$type": "loadCharactersList"}, "5"), now=0.0)
    assert events == []
    assert completion(server) == {"type": 3, "invocationId": "5",
                                  "error": "Call authenticate first"}
    assert server.state is ServerState.CONNECTED
    assert server.owed_completions == frozenset()
    # A session message without sessionId fails the authenticate check first.
    server.receive_data(invoke({"$type": "send", "text": "hi"}, "6"), now=0.0)
    assert completion(server)["error"] == "Call authenticate first"


def test_authenticate_is_reported_and_moves_the_state() -> None:
    server = connected_server()
    (request,) = server.receive_data(invoke(AUTHENTICATE, "0"), now=0.0)
    assert isinstance(request, ClientRequest)
    assert request.invocation_id == "0"
    assert isinstance(request.message, Authenticate)
    assert request.message.client == "MyApp"
    assert server.authenticate == request.message
    assert server.state is ServerState.AUTHENTICATED
    assert server.owed_completions == {"0"}
    # A second authenticate is allowed and keeps the state.
    (again,) = server.receive_data(invoke(AUTHENTICATE, "1"), now=0.0)
    assert isinstance(again, ClientRequest)
    assert server.state is ServerState.AUTHENTICATED
    assert server.owed_completions == {"0", "1"}


def test_send_raw_sends_arguments_untouched_and_settles_a_completion() -> None:
    """The mock's replay path: a recorded record goes out as given (a ``$type`` the
    catalog lacks included), and a raw Completion counts as the one owed."""
    server = connected_server()
    server.receive_data(invoke(AUTHENTICATE, "0"), now=0.0)
    unknown = b'{"$type":"notInTheCatalog","x":[1,null,"y"]}'
    server.send_raw(Invocation("ReceiveMessage", (msgspec.Raw(unknown),)), now=0.0)
    server.send_raw(Completion(invocation_id="0"), now=0.0)
    assert output(server) == [
        {"type": 1, "target": "ReceiveMessage", "arguments": [json.loads(unknown)]},
        {"type": 3, "invocationId": "0"}]
    assert server.owed_completions == frozenset()
    with pytest.raises(LocalProtocolError, match="no Completion is owed"):
        server.complete("0", now=0.0)


def test_unknown_scope_fails_authenticate() -> None:
    server = connected_server()
    bad = dict(AUTHENTICATE, scope=["role:app", "role:wizard", "chat:everything"])
    assert server.receive_data(invoke(bad, "0"), now=0.0) == []
    assert completion(server)["error"] == "Unknown scopes 'chat:everything, role:wizard'"
    assert server.state is ServerState.CONNECTED
    assert server.authenticate is None
    # Every known role is accepted.
    good = dict(AUTHENTICATE, scope=["role:app", "role:admin", "role:inspector", "role:user",
                                     "role:provider"])
    (request,) = server.receive_data(invoke(good, "1"), now=0.0)
    assert isinstance(request, ClientRequest)
    assert state_of(server) is ServerState.AUTHENTICATED


@pytest.mark.parametrize("message", [
    {"$type": "send", "text": "hi"},
    {"$type": "send", "sessionId": "", "text": "hi"},
    {"$type": "interrupt"},
    {"$type": "typingEnd", "sessionId": "", "sent": True},
])
def test_missing_session_id(message: dict[str, Any]) -> None:
    server = authenticated_server()
    assert server.receive_data(invoke(message, "9"), now=0.0) == []
    assert completion(server) == {"type": 3, "invocationId": "9",
                                  "error": f"Missing SessionId on message {message['$type']}"}


def test_missing_session_id_and_another_required_field_is_a_binding_error() -> None:
    server = authenticated_server()
    server.receive_data(invoke({"$type": "typingEnd"}, "9"), now=0.0)
    assert completion(server)["error"].startswith(BINDING)


def test_session_scoped_types() -> None:
    assert session_scoped(Send)
    assert session_scoped(Interrupt)
    assert session_scoped(TypingStart)
    assert not session_scoped(Authenticate)
    assert not session_scoped(LoadCharactersList)


def test_stop_chat_without_session_id_is_fine() -> None:
    server = authenticated_server()
    (request,) = server.receive_data(invoke({"$type": "stopChat", "chatId": "c"}, "3"),
                                     now=0.0)
    assert isinstance(request, ClientRequest)
    assert server.owed_completions == {"3"}


@pytest.mark.parametrize("message", [
    {"$type": "bogus", "sessionId": SESSION},
    {"$type": "send", "sessionId": SESSION, "text": 42},
    {"$type": "send", "sessionId": None, "text": "hi"},
    {"$type": "pauseChat", "sessionId": SESSION},
    {"$type": "typingEnd", "sessionId": SESSION, "sent": "yes"},
    "not an object",
    {"sessionId": SESSION},
])
def test_binding_errors_keep_the_connection_usable(message: object) -> None:
    server = authenticated_server()
    assert server.receive_data(invoke(message, "4"), now=0.0) == []
    error = completion(server)["error"]
    assert error.startswith(BINDING)
    assert len(error) > len(BINDING)
    assert server.state is ServerState.AUTHENTICATED
    (request,) = server.receive_data(
        invoke({"$type": "send", "sessionId": SESSION, "text": "still here"}, "5"), now=0.0)
    assert isinstance(request, ClientRequest)
    assert request.message == Send(session_id=SESSION, text="still here")


def test_binding_error_comes_before_the_authenticate_check() -> None:
    server = connected_server()
    server.receive_data(invoke({"$type": "bogus"}, "1"), now=0.0)
    assert completion(server)["error"].startswith(BINDING)


def test_wrong_target_and_argument_count() -> None:
    server = authenticated_server()
    send = {"$type": "send", "sessionId": SESSION, "text": "hi"}
    assert server.receive_data(invoke(send, "1", target="SendMessages"), now=0.0) == []
    assert completion(server)["error"] == "Unknown hub method 'SendMessages'"
    data = frame({"type": 1, "invocationId": "2", "target": "SendMessage",
                  "arguments": [send, send]})
    assert server.receive_data(data, now=0.0) == []
    assert completion(server)["error"] == (
        "Invocation provides 2 argument(s) but target expects 1.")
    assert server.state is ServerState.AUTHENTICATED
    assert server.owed_completions == frozenset()


def test_fire_and_forget_gets_no_completion() -> None:
    server = authenticated_server()
    send = {"$type": "send", "sessionId": SESSION, "text": "hi"}
    (request,) = server.receive_data(invoke(send, None), now=0.0)
    assert request == ClientRequest(None, Send(session_id=SESSION, text="hi"))
    assert server.owed_completions == frozenset()
    # Refused ones get nothing either.
    for bad in (invoke({"$type": "bogus"}, None), invoke({"$type": "send"}, None),
                invoke(send, None, target="Nope")):
        assert server.receive_data(bad, now=0.0) == []
    assert output(server) == []


def test_fire_and_forget_before_authenticate_is_dropped() -> None:
    server = connected_server()
    assert server.receive_data(invoke({"$type": "loadCharactersList"}, None), now=0.0) == []
    assert output(server) == []


def test_complete_exactly_once() -> None:
    server = authenticated_server()
    send = {"$type": "send", "sessionId": SESSION, "text": "hi"}
    server.receive_data(invoke(send, "7"), now=0.0)
    server.complete("7", now=0.0, error="nope")
    assert output(server) == [{"type": 3, "invocationId": "7", "error": "nope"}]
    with pytest.raises(LocalProtocolError):
        server.complete("7", now=0.0)
    with pytest.raises(LocalProtocolError):
        server.complete("never-asked", now=0.0)
    # An id the server answered itself (a failed check) is not owed either.
    server.receive_data(invoke({"$type": "bogus"}, "8"), now=0.0)
    with pytest.raises(LocalProtocolError):
        server.complete("8", now=0.0)


# -- timers and disconnects ---------------------------------------------------------------

def test_keepalive_ping_after_15_seconds_of_not_sending() -> None:
    server = authenticated_server()
    assert server.next_deadline() == 15.0
    assert server.handle_timer(now=14.9) == []
    assert server.data_to_send() == []
    assert server.handle_timer(now=15.0) == []
    assert server.data_to_send() == [b'{"type":6}\x1e']
    # Sending resets the interval.
    server.send(make(ChatFlow, state="WaitingForUserInput", sessionId=SESSION), now=20.0)
    server.data_to_send()
    server.receive_data(b'{"type":6}\x1e', now=20.0)
    assert server.handle_timer(now=34.9) == []
    assert server.data_to_send() == []


def test_silent_client_times_out() -> None:
    server = authenticated_server()
    server.receive_data(invoke({"$type": "loadCharactersList"}, "1"), now=0.0)
    assert server.owed_completions == {"1"}
    events = []
    for now in (15.0, 29.0, 30.0):
        events += server.handle_timer(now=now)
        server.data_to_send()
    (event,) = events
    assert isinstance(event, Disconnected)
    assert event.error is not None
    assert "30.0 s" in event.error
    assert server.state is ServerState.CLOSED
    assert server.owed_completions == frozenset()
    with pytest.raises(LocalProtocolError):
        server.complete("1", now=30.0)


def test_no_client_timeout_when_configured_off() -> None:
    server = connected_server(hub_config=HubConfig(peer_timeout=None))
    for now in (15.0, 30.0, 45.0, 600.0):
        assert server.handle_timer(now=now) == []
    assert server.state is ServerState.CONNECTED


def test_transport_eof_disconnects() -> None:
    server = authenticated_server()
    (event,) = server.receive_eof(now=1.0)
    assert event == Disconnected("connection lost", False)
    assert server.state is ServerState.CLOSED
    assert server.receive_eof(now=2.0) == []


@pytest.mark.parametrize("half", [b'{"type":1,"target":"SendMe', b'{"protocol":"js'])
def test_transport_eof_inside_a_record_is_a_plain_disconnect(half: bytes) -> None:
    """Issue 13: half a record or half a handshake then the end of the stream is an
    ordinary lost connection (one INFO line in a server), never a protocol error."""
    server = authenticated_server() if half.startswith(b'{"type"') else VoxtaServerSession(
        now=0.0)
    assert server.receive_data(half, now=1.0) == []
    (event,) = server.receive_eof(now=1.0)
    assert event == Disconnected("connection lost", False)
    assert server.state is ServerState.CLOSED


def test_server_close() -> None:
    server = authenticated_server()
    server.close(now=1.0, error="bye", allow_reconnect=True)
    assert output(server) == [{"type": 7, "error": "bye", "allowReconnect": True}]
    assert server.state is ServerState.CLOSED


# -- through the pair -----------------------------------------------------------------------

def test_client_close_disconnects_the_server() -> None:
    pair = SessionPair()
    pair.connect()
    pair.client.close(now=pair.now)
    pair.pump()
    (event,) = [e for e in pair.server_events if isinstance(e, Disconnected)]
    assert event == Disconnected(None, False)
    assert pair.server.state is ServerState.CLOSED
    assert pair.server_states == [ServerState.NEW, ServerState.CONNECTED,
                                  ServerState.AUTHENTICATED, ServerState.CLOSED]


def test_server_transitions_come_from_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    import voxta_proto.voxta.server as server_module

    table = dict(SERVER_TRANSITIONS)
    table[(ServerState.CONNECTED, Authenticate)] = ServerState.CONNECTED
    monkeypatch.setattr(server_module, "SERVER_TRANSITIONS", table)
    server = connected_server()
    server.receive_data(invoke(AUTHENTICATE, "0"), now=0.0)
    assert server.state is ServerState.CONNECTED
    server.receive_data(invoke({"$type": "loadCharactersList"}, "1"), now=0.0)
    assert completion(server)["error"] == "Call authenticate first"


def test_outbox_keeps_order_around_a_message_of_its_own() -> None:
    from voxta_proto.voxta.outbox import Outbox

    outbox = Outbox()
    assert not outbox
    outbox.add(b"a\x1e")
    outbox.add(b"b\x1e")
    outbox.add_alone(b"c\x1e")
    outbox.add(b"d\x1e")
    assert outbox
    assert outbox.take() == [b"a\x1eb\x1e", b"c\x1e", b"d\x1e"]
    assert outbox.take() == []
