"""Sans-IO Voxta session, server role: one client connection's handshake, checks and auth.

What a Voxta server must do for every connection before its own logic runs lives here,
not in a server's I/O code: accept or refuse the SignalR handshake, answer every
invocation that carries an id with exactly one Completion, reject what the real server
rejects (a message before ``authenticate``, unknown scopes, a session-scoped message
without ``sessionId``, arguments that fail binding) with the real server's error texts,
and keep the keep-alive and client timeout going. What is left for the server is
[`ClientRequest`][voxta_proto.voxta.server.ClientRequest] events, answered with ``complete`` and
``send``. No I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar, Union

import msgspec

from voxta_proto.errors import LocalProtocolError, MessageValidationError
from voxta_proto.hub import (
    Close,
    Completion,
    ConnectionLost,
    HandshakeAccepted,
    HandshakeRefused,
    HandshakeRequest,
    HandshakeTimedOut,
    HubConfig,
    HubConnection,
    HubState,
    Invocation,
    PeerTimedOut,
    ReattachTimedOut,
    Role,
    SendUnblocked,
    StreamItem,
)
from voxta_proto.voxta.client_messages import AnyClientMessage, Authenticate, ClientMessage
from voxta_proto.voxta.codec import (
    CLIENT_MESSAGE_TYPES,
    SEND_MESSAGE,
    ClientEvent,
    InvalidClientMessage,
    client_codec,
    decode_client_message,
    wrap_server_message,
)
from voxta_proto.voxta.outbox import Outbox
from voxta_proto.voxta.server_messages import ServerMessage
from voxta_proto.voxta.session import Disconnected
from voxta_proto.voxta.shapes import ChatParticipantInfo, ChatSessionInfo

__all__ = [
    "CHAT_ALREADY_OPEN",
    "KNOWN_SCOPES",
    "MAX_HANDSHAKE_VERSION",
    "SERVER_TRANSITIONS",
    "ChatAlreadyOpen",
    "ChatSessionRecord",
    "ChatSessions",
    "ClientRequest",
    "ServerEvent",
    "ServerState",
    "VoxtaServerSession",
    "session_scoped",
]

MAX_HANDSHAKE_VERSION: Final = 2
KNOWN_SCOPES: Final = frozenset(
    {"role:app", "role:provider", "role:inspector", "role:user", "role:admin"}
)


class ServerState(enum.Enum):
    """Where one client connection is, from the server's side."""

    NEW = "new"
    """Waiting for the handshake request."""
    CONNECTED = "connected"
    """Handshake accepted; only ``authenticate`` is allowed."""
    AUTHENTICATED = "authenticated"
    """Every message is allowed."""
    CLOSED = "closed"


SERVER_TRANSITIONS: Final[Mapping[tuple[ServerState, type[object]], ServerState]] = {
    (ServerState.NEW, HandshakeAccepted): ServerState.CONNECTED,
    (ServerState.NEW, HandshakeRefused): ServerState.CLOSED,
    (ServerState.CONNECTED, Authenticate): ServerState.AUTHENTICATED,
    (ServerState.AUTHENTICATED, Authenticate): ServerState.AUTHENTICATED,
    **{(state, Disconnected): ServerState.CLOSED
       for state in (ServerState.NEW, ServerState.CONNECTED, ServerState.AUTHENTICATED)},
}
"""(state, what happened) → next state."""


@dataclass(frozen=True)
class ClientRequest:
    """A valid Voxta message from an authenticated client (or its ``authenticate``).

    When ``invocation_id`` is set the client waits for a Completion: call
    ``complete(invocation_id)`` (or with ``error=``) exactly once.
    """

    invocation_id: str | None
    message: AnyClientMessage


ServerEvent = Union[ClientRequest, Disconnected, SendUnblocked]
"""What the server session reports to the server's logic (``SendUnblocked``: see
``send_would_block``)."""


def session_scoped(kind: type[ClientMessage]) -> bool:
    """Whether a client message type must carry a ``sessionId`` (marked **S** in the spec)."""
    return _SESSION_SCOPED.setdefault(kind, _requires_session_id(kind))


def _requires_session_id(kind: type[ClientMessage]) -> bool:
    return any(f.name == "session_id" and f.required for f in msgspec.structs.fields(kind))


_SESSION_SCOPED: dict[type[ClientMessage], bool] = {}


class VoxtaServerSession:
    """The server side of one Voxta client connection, without I/O.

    Args:
        now: the current time on the caller's clock.
        hub_config: keep-alive, client timeout (``peer_timeout``), limits, and whether
            stateful reconnect may be offered.
        refuse_handshake: answer the handshake with this error instead of accepting it
            (a fault to test clients with).
    """

    def __init__(
        self,
        *,
        now: float,
        hub_config: HubConfig | None = None,
        refuse_handshake: str | None = None,
    ) -> None:
        self.hub: Final = HubConnection(
            Role.SERVER, now=now, config=hub_config or HubConfig(), codec=client_codec()
        )
        self.authenticate: Authenticate | None = None
        """The client's ``authenticate`` message, once it arrived."""
        self._state = ServerState.NEW
        self._refuse_handshake = refuse_handshake
        self._outbox = Outbox()
        self._owed: set[str] = set()

    @property
    def state(self) -> ServerState:
        """The connection's state."""
        return self._state

    @property
    def owed_completions(self) -> frozenset[str]:
        """Invocation ids the client still waits a Completion for."""
        return frozenset(self._owed)

    def data_to_send(self) -> list[bytes]:
        """Take what waits to be written: one item per WebSocket message."""
        return self._outbox.take()

    @property
    def send_would_block(self) -> bool:
        """Stateful reconnect: the replay buffer is full and ``send``/``complete`` would
        raise. Hold further messages (keep reading) until ``receive_data`` reports
        ``SendUnblocked``: ASP.NET Core's backpressure; a client that acks is never
        dropped for being slow."""
        return self.hub.send_would_block

    # -- answering ---------------------------------------------------------------------

    def send(self, message: ServerMessage, *, now: float) -> None:
        """Queue a Voxta message (a ``ReceiveMessage`` invocation without id)."""
        self._outbox.add(self.hub.send(wrap_server_message(message), now=now))

    def complete(self, invocation_id: str, *, now: float, error: str | None = None) -> None:
        """Queue the Completion of a client invocation: void, or with ``error``.

        Raises:
            LocalProtocolError: nothing is owed for that id (never answered or answered
                already).
        """
        if invocation_id not in self._owed:
            raise LocalProtocolError(f"no Completion is owed for invocation {invocation_id!r}")
        self._owed.discard(invocation_id)
        self._outbox.add(self.hub.send(Completion(invocation_id=invocation_id, error=error),
                                       now=now))

    def send_raw(self, message: Invocation[Any] | StreamItem | Completion, *,
                 now: float) -> None:
        """Queue a hub message as it is, its arguments unchecked: the mock's replay sends
        recorded records this way, ``msgspec.Raw`` arguments byte for byte (a message
        this catalog does not know goes out unchanged). A Completion settles what is
        owed for its invocation id; SignalR bookkeeping (stateful reconnect) applies."""
        if isinstance(message, Completion):
            self._owed.discard(message.invocation_id)
        self._outbox.add(self.hub.send(message, now=now))

    def close(self, *, now: float, error: str | None = None,
              allow_reconnect: bool = False) -> None:
        """Queue a SignalR Close (then close the transport)."""
        if self.hub.state in (HubState.OPEN, HubState.DETACHED, HubState.REATTACHING):
            self._outbox.add(self.hub.send(Close(error=error, allow_reconnect=allow_reconnect),
                                           now=now))
        self._state = ServerState.CLOSED

    # -- inputs ------------------------------------------------------------------------

    def receive_data(self, data: bytes, *, now: float) -> list[ServerEvent]:
        """Feed bytes from the client; returns the requests the server must act on.

        Raises:
            RemoteProtocolError: the client broke the SignalR protocol; send
                ``exc.close_hint`` if there is one, then drop the connection.
        """
        out: list[ServerEvent] = []
        for event in self.hub.receive_data(data, now=now):
            if isinstance(event, Invocation):
                self._on_invocation(event, now, out)
            elif isinstance(event, HandshakeRequest):
                self._on_handshake(event, now)
            elif isinstance(event, Close):
                self._disconnect(event.error, event.allow_reconnect, out)
            elif isinstance(event, ConnectionLost):
                self._disconnect("connection lost", False, out)
            elif isinstance(event, SendUnblocked):
                out.append(event)
            # Pings and stray Completions need no answer.
        return out

    def receive_eof(self, *, now: float | None = None) -> list[ServerEvent]:
        """The transport ended."""
        out: list[ServerEvent] = []
        for event in self.hub.receive_eof(now=now):
            if isinstance(event, ConnectionLost):
                if event.reattachable:
                    out.append(Disconnected("connection lost", True, reattachable=True))
                else:
                    self._disconnect("connection lost", False, out)
        return out

    def reattach(self, *, now: float) -> None:
        """Stateful reconnect: queue our Sequence and replay for the client's new
        transport, as its own message; write ``data_to_send()`` to that transport.

        What the outbox still held is dropped first: the replay carries every message
        of it that counts, and writing both would deliver them twice.

        Raises:
            LocalProtocolError: the connection is not DETACHED (call ``receive_eof``
                for the old transport first).
        """
        data = self.hub.reattach(now=now)
        self._outbox.clear()
        self._outbox.add_alone(data)

    def next_deadline(self) -> float | None:
        """When ``handle_timer`` next has work (absolute, caller's clock)."""
        return self.hub.next_deadline()

    def peer_alive(self, *, now: float) -> None:
        """The transport saw the client alive without hub data; see ``HubConnection.peer_alive``."""
        self.hub.peer_alive(now=now)

    def handle_timer(self, *, now: float) -> list[ServerEvent]:
        """Queue keep-alive pings and acks; report a silent client as disconnected."""
        out: list[ServerEvent] = []
        for tick in self.hub.handle_timer(now=now):
            self._outbox.add(self.hub.answer_timer(tick, now=now))
            if isinstance(tick, PeerTimedOut):
                self._disconnect(f"client sent nothing for {tick.silent_for:.1f} s", True, out)
            elif isinstance(tick, (HandshakeTimedOut, ReattachTimedOut)):
                self._disconnect(type(tick).__name__, False, out)
        return out

    # -- internals ---------------------------------------------------------------------

    def _move(self, what: type[object]) -> None:
        self._state = SERVER_TRANSITIONS.get((self._state, what), self._state)

    def _on_handshake(self, request: HandshakeRequest, now: float) -> None:
        error = self._refuse_handshake
        if error is None and request.protocol != "json":
            error = f"The protocol '{request.protocol}' is not supported."
        if error is None and not 0 <= request.version <= MAX_HANDSHAKE_VERSION:
            error = f"The server does not support version {request.version} of the 'json' protocol."
        reply: HandshakeAccepted | HandshakeRefused = (
            HandshakeAccepted() if error is None else HandshakeRefused(error=error)
        )
        self._outbox.add_alone(self.hub.send(reply, now=now))
        self._move(type(reply))

    def _on_invocation(
        self, invocation: Invocation[ClientEvent], now: float, out: list[ServerEvent]
    ) -> None:
        invocation_id = invocation.invocation_id
        if invocation_id is not None:
            self._owed.add(invocation_id)
        error = self._check(invocation)
        if error is not None:
            if invocation_id is not None:
                self.complete(invocation_id, now=now, error=error)
            return
        message = invocation.arguments[0]
        assert not isinstance(message, InvalidClientMessage)  # _check rejected those
        if isinstance(message, Authenticate):
            self.authenticate = message
            self._move(Authenticate)
        out.append(ClientRequest(invocation_id, message))

    def _check(self, invocation: Invocation[ClientEvent]) -> str | None:
        """The real server's error text for an invocation it would refuse, else None."""
        if invocation.target != SEND_MESSAGE:
            return f"Unknown hub method '{invocation.target}'"
        if len(invocation.arguments) != 1:
            return (f"Invocation provides {len(invocation.arguments)} argument(s) but target "
                    "expects 1.")
        message = invocation.arguments[0]
        # The real server binds a missing ``sessionId`` as the empty GUID and refuses it
        # after the authenticate check; here the field is required, so binding failed.
        lacks_session_id = (isinstance(message, InvalidClientMessage)
                            and _lacks_only_session_id(message))
        if isinstance(message, InvalidClientMessage) and not lacks_session_id:
            return ("Failed to invoke 'SendMessage' due to an error on the server. "
                    f"InvalidDataException: Error binding arguments. {message.error}")
        if self._state is not ServerState.AUTHENTICATED and not isinstance(message, Authenticate):
            return "Call authenticate first"
        if isinstance(message, InvalidClientMessage):
            return f"Missing SessionId on message {message.type_name}"
        if isinstance(message, Authenticate):
            unknown = sorted(set(message.scope) - KNOWN_SCOPES)
            if unknown:
                return f"Unknown scopes '{', '.join(unknown)}'"
        elif session_scoped(type(message)) and not getattr(message, "session_id", None):
            return f"Missing SessionId on message {_type_name(message)}"
        return None

    def _disconnect(self, error: str | None, allow_reconnect: bool,
                    out: list[ServerEvent]) -> None:
        if self._state is not ServerState.CLOSED:
            self._move(Disconnected)
            self._state = ServerState.CLOSED
            self._owed.clear()
            out.append(Disconnected(error, allow_reconnect))


def _lacks_only_session_id(message: InvalidClientMessage) -> bool:
    """Whether a session-scoped message failed binding only for want of ``sessionId``."""
    kind = CLIENT_MESSAGE_TYPES.get(message.type_name or "")
    if kind is None or not session_scoped(kind):
        return False
    try:
        fields = msgspec.json.decode(message.raw)
    except msgspec.DecodeError:
        return False
    if not isinstance(fields, dict) or "sessionId" in fields:
        return False
    try:
        decode_client_message(msgspec.json.encode({**fields, "sessionId": ""}))
    except MessageValidationError:
        return False
    return True


def _type_name(message: ClientMessage) -> str:
    tag = type(message).__struct_config__.tag
    return tag if isinstance(tag, str) else type(message).__name__


# ------------------------------------------------------------------- chat session registry

CHAT_ALREADY_OPEN: Final = "Chat session already exists for this chat"
"""The real server's text when a chat is opened in a second session."""

K = TypeVar("K", bound=Hashable)


class ChatAlreadyOpen(Exception):
    """The chat is open in another session (the real server's text is the message)."""

    def __init__(self, chat_id: str) -> None:
        super().__init__(CHAT_ALREADY_OPEN)
        self.chat_id = chat_id


@dataclass
class ChatSessionRecord(Generic[K]):
    """One running chat session: who owns it, who listens, what it shows in lists."""

    session_id: str
    chat_id: str
    owner: K
    user: ChatParticipantInfo
    characters: tuple[ChatParticipantInfo, ...]
    subscribers: set[K]

    @property
    def audience(self) -> tuple[K, ...]:
        """Who receives the session's messages: the owner, then the subscribers."""
        return (self.owner, *(s for s in self.subscribers if s != self.owner))

    def info(self) -> ChatSessionInfo:
        """The session's entry in ``chatsSessionsUpdated``."""
        return ChatSessionInfo(session_id=self.session_id, chat_id=self.chat_id,
                               user=self.user, characters=self.characters)


class ChatSessions(Generic[K]):
    """The session model every Voxta server shares (reference §3), without behaviour or I/O.

    Keeps the rules in one place: a connection owns at most one session, a chat is open
    in at most one session, a session's messages go to its owner and subscribers, and a
    message for someone else's session is executed by that session's owner. Connections
    are whatever hashable keys the server uses.
    """

    def __init__(self) -> None:
        self._by_id: dict[str, ChatSessionRecord[K]] = {}
        self._by_owner: dict[K, str] = {}
        self._by_chat: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._by_id

    def get(self, session_id: str | None) -> ChatSessionRecord[K] | None:
        """The session with that id, if it runs."""
        return self._by_id.get(session_id) if session_id else None

    def owned_by(self, connection: K) -> ChatSessionRecord[K] | None:
        """The session the connection owns, if any."""
        session_id = self._by_owner.get(connection)
        return self._by_id.get(session_id) if session_id else None

    def for_chat(self, chat_id: str) -> ChatSessionRecord[K] | None:
        """The session the chat is open in, if any."""
        session_id = self._by_chat.get(chat_id)
        return self._by_id.get(session_id) if session_id else None

    def infos(self) -> tuple[ChatSessionInfo, ...]:
        """Every running session, as ``chatsSessionsUpdated`` lists them (oldest first)."""
        return tuple(record.info() for record in self._by_id.values())

    def open(self, session_id: str, chat_id: str, owner: K, *, user: ChatParticipantInfo,
             characters: tuple[ChatParticipantInfo, ...]) -> ChatSessionRecord[K]:
        """Register a session; the caller closes the owner's previous one first.

        Raises:
            ChatAlreadyOpen: the chat runs in another session.
            ValueError: the session id is taken, or the owner already owns a session.
        """
        if chat_id in self._by_chat:
            raise ChatAlreadyOpen(chat_id)
        if session_id in self._by_id:
            raise ValueError(f"session {session_id} already exists")
        if owner in self._by_owner:
            raise ValueError("a connection owns at most one chat session; close it first")
        record = ChatSessionRecord(session_id, chat_id, owner, user, characters, set())
        self._by_id[session_id] = record
        self._by_owner[owner] = session_id
        self._by_chat[chat_id] = session_id
        return record

    def close(self, session_id: str) -> ChatSessionRecord[K] | None:
        """Forget a session; returns it (with its audience) if it was running."""
        record = self._by_id.pop(session_id, None)
        if record is not None:
            self._by_owner.pop(record.owner, None)
            self._by_chat.pop(record.chat_id, None)
        return record

    def subscribe(self, session_id: str, connection: K) -> ChatSessionRecord[K] | None:
        """Add a connection to a session's audience; None if the session does not run."""
        record = self._by_id.get(session_id)
        if record is not None and connection != record.owner:
            record.subscribers.add(connection)
        return record

    def unsubscribe(self, session_id: str, connection: K) -> None:
        """Remove a connection from a session's subscribers (no-op if it is not one)."""
        record = self._by_id.get(session_id)
        if record is not None:
            record.subscribers.discard(connection)

    def set_characters(self, session_id: str,
                       characters: tuple[ChatParticipantInfo, ...]) -> None:
        """Update a session's participants (after add/remove participant)."""
        record = self._by_id.get(session_id)
        if record is not None:
            record.characters = characters

    def executor(self, connection: K, session_id: str) -> K | None:
        """Whose session a session-scoped message runs in: the sender when it owns the
        session, else the owner (forwarding); None for an unknown session (ignored)."""
        record = self._by_id.get(session_id)
        return None if record is None else record.owner

    def drop_connection(self, connection: K) -> ChatSessionRecord[K] | None:
        """A connection went away: unsubscribe it everywhere and close (and return) the
        session it owned, if any."""
        for record in self._by_id.values():
            record.subscribers.discard(connection)
        owned = self._by_owner.get(connection)
        return self.close(owned) if owned else None
