"""Sans-IO Voxta session, client role: handshake, authenticate, chat state, request matching.

A second sans-IO layer over [`HubConnection`][voxta_proto.hub.connection.HubConnection]: bytes and
``now`` in, typed Voxta messages and session events out. Bytes to write collect in an outbox:
after any call, write each item of ``data_to_send()`` to the transport. No I/O, no clock reads.

What it adds over the hub layer:

* ``authenticate`` goes out as soon as the handshake is accepted; ``welcome`` makes the
  session READY (the states and their transitions are the table ``CLIENT_TRANSITIONS``).
* The chat state the server reports: active ``session_id``/``chat_id``, open sessions,
  participants, context and flags, ``is_thinking``/``is_speaking``, ``last_message_id``.
* Request matching: every request sent as an invocation ends in exactly one
  [`RequestCompleted`][voxta_proto.voxta.session.RequestCompleted] or
  [`RequestFailed`][voxta_proto.voxta.session.RequestFailed], carrying the reply message the
  protocol pairs with it (``startChat`` → ``chatStarted``, list requests → their
  ``*Loaded`` message, ...), see ``REPLIES``. ``forget`` drops a request the caller
  stopped waiting for (timed out, cancelled).

How a reply finds its request. Voxta replies carry no invocation id, but the Completion
does, and the server runs one invocation of a connection at a time (ASP.NET Core's
default), so its Completions come in request order. The rules, in order:

1. A reply that names a session only answers a request for that session (or one that
   names none).
2. A reply to a request that is answered after its Completion (``ANSWERED_INLINE`` says
   which are not) goes to the oldest such request whose Completion has come.
3. Otherwise, while a request that could take it still waits for its Completion, the
   reply is held and goes to the first of them whose Completion comes next: that is the
   invocation the server was running when it sent the reply. If several replies it
   could take are held by then, it takes the last; the earlier ones were late answers
   to older requests (rule 4).
4. Otherwise it goes to the newest request whose Completion came without a reply (a
   late answer is late by little: it belongs to the invocation that ended last).

The one order these rules cannot read is a late reply followed by a lost one (Completion
1, reply 1, Completion 2, reply 2 lost): reply 1 then goes to request 2, as the protocol
gives nothing to tell it from "reply 1 lost, reply 2 on time", the usual order.

A forgotten request stays behind as a placeholder that reports nothing: a reply the
rules give it is dropped (it is still delivered as a plain message), so a late answer
never resolves a later request. A Completion for a later request means every older
Completion still missing was lost (they come in order) and settles the past: older
placeholders go (so a lost answer cannot take the next request's answer), and an older
request still awaited waits for its reply alone. The price: a reply to a request that
is answered after its Completion, arriving after a later request's Completion, is taken
for the oldest one still waiting (the protocol gives nothing to tell them apart).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Union

from voxta_proto._version import __version__
from voxta_proto.errors import LocalProtocolError
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
    Reattached,
    ReattachTimedOut,
    Role,
    SendUnblocked,
)
from voxta_proto.hub.state import TransportLost
from voxta_proto.voxta.client_messages import (
    Authenticate,
    ClientMessage,
    DeployResource,
    ListResources,
    LoadCharactersList,
    LoadChatsList,
    LoadScenariosList,
    PauseChat,
    RequestSuggestions,
    ResumeChat,
    StartChat,
    SubscribeToChat,
    UpdateChat,
)
from voxta_proto.voxta.codec import (
    RECEIVE_MESSAGE,
    ServerEvent,
    server_codec,
    wrap_client_message,
)
from voxta_proto.voxta.enums import (
    AudioInputCapability,
    AudioOutputCapability,
    ChatFlowStates,
    VisionCaptureCapability,
)
from voxta_proto.voxta.outbox import Outbox
from voxta_proto.voxta.server_messages import (
    AuthenticationRequired,
    CharactersListLoaded,
    ChatClosed,
    ChatFlow,
    ChatParticipantsUpdated,
    ChatPaused,
    ChatsListLoaded,
    ChatsSessionsUpdated,
    ChatStarted,
    ChatUpdated,
    ContextUpdated,
    DeployResourceResult,
    ErrorMessage,
    InterruptSpeech,
    ListResourcesResult,
    MissingResourcesError,
    ReplyCancelled,
    ReplyEnd,
    ReplyGenerating,
    ReplyStart,
    ScenariosListLoaded,
    ServerMessage,
    SpeechPlaybackComplete,
    SpeechPlaybackStart,
    Suggestions,
    Update,
    Welcome,
)
from voxta_proto.voxta.shapes import (
    ChatParticipantInfo,
    ChatSessionInfo,
    ClientCapabilities,
    FlagInfo,
)

__all__ = [
    "ANSWERED_INLINE",
    "CLIENT_TRANSITIONS",
    "FAILURES",
    "REPLIES",
    "ChatLost",
    "ChatRef",
    "ChatState",
    "ClientState",
    "Disconnected",
    "RequestCompleted",
    "RequestFailed",
    "SessionEvent",
    "VoxtaClientSession",
    "default_capabilities",
]

NO_CLIENT_RESULT: Final = "Client didn't provide a result."


class ClientState(enum.Enum):
    """Where a client session is; one row of ``CLIENT_TRANSITIONS`` moves it."""

    NEW = "new"
    HANDSHAKING = "handshaking"
    AUTHENTICATING = "authenticating"
    """Handshake accepted, ``authenticate`` sent, waiting for ``welcome``."""
    READY = "ready"
    """``welcome`` received: every request may be sent."""
    DETACHED = "detached"
    """Stateful reconnect: the transport dropped; waiting for a new one."""
    CLOSED = "closed"


CLIENT_TRANSITIONS: Final[Mapping[tuple[ClientState, type[object]], ClientState]] = {
    (ClientState.NEW, HandshakeRequest): ClientState.HANDSHAKING,
    (ClientState.HANDSHAKING, HandshakeAccepted): ClientState.AUTHENTICATING,
    (ClientState.HANDSHAKING, HandshakeRefused): ClientState.CLOSED,
    (ClientState.AUTHENTICATING, Welcome): ClientState.READY,
    (ClientState.AUTHENTICATING, AuthenticationRequired): ClientState.CLOSED,
    (ClientState.READY, Welcome): ClientState.READY,
    **{(state, ConnectionLost): ClientState.CLOSED
       for state in (ClientState.NEW, ClientState.HANDSHAKING, ClientState.AUTHENTICATING,
                     ClientState.READY, ClientState.DETACHED)},
    **{(state, Close): ClientState.CLOSED
       for state in (ClientState.HANDSHAKING, ClientState.AUTHENTICATING, ClientState.READY)},
    (ClientState.READY, TransportLost): ClientState.DETACHED,
    (ClientState.READY, Reattached): ClientState.READY,
    (ClientState.DETACHED, Reattached): ClientState.READY,
}
"""(state, what happened) → next state. ``ConnectionLost`` here means "not reattachable";
``TransportLost`` is a reattachable loss: READY waits DETACHED, AUTHENTICATING stays
(``welcome`` comes after the reattach)."""

REPLIES: Final[Mapping[type[ClientMessage], tuple[type[ServerMessage], ...]]] = {
    Authenticate: (Welcome,),
    LoadCharactersList: (CharactersListLoaded,),
    LoadScenariosList: (ScenariosListLoaded,),
    LoadChatsList: (ChatsListLoaded,),
    StartChat: (ChatStarted,),
    ResumeChat: (ChatStarted,),
    SubscribeToChat: (ChatStarted,),
    RequestSuggestions: (Suggestions,),
    ListResources: (ListResourcesResult,),
    DeployResource: (DeployResourceResult,),
    UpdateChat: (ChatUpdated,),
    PauseChat: (ChatPaused,),
}
"""The server message that answers a request. Requests not listed are answered by their
Completion alone."""

FAILURES: Final[Mapping[type[ClientMessage], tuple[type[ServerMessage], ...]]] = {
    Authenticate: (AuthenticationRequired,),
    StartChat: (ErrorMessage, MissingResourcesError),
    ResumeChat: (ErrorMessage, MissingResourcesError),
    SubscribeToChat: (ChatClosed,),
}
"""Server messages that mean a pending request of this type failed."""

ANSWERED_INLINE: Final[frozenset[type[ClientMessage]]] = frozenset({
    Authenticate, LoadCharactersList, LoadScenariosList, LoadChatsList, SubscribeToChat,
    ListResources, DeployResource,
})
"""Requests the server answers while it runs the invocation, so the reply comes before
the Completion (VOXTA_PROTOCOL.md §2.2). The others (``startChat``, ``resumeChat``,
session messages) are queued: their Completion comes first and the reply after it."""

_ANSWER_TYPES: Final = frozenset(
    kind for table in (REPLIES, FAILURES) for kinds in table.values() for kind in kinds
)


@dataclass(frozen=True)
class RequestCompleted:
    """A request succeeded; ``reply`` is its paired server message, if it has one."""

    invocation_id: str
    request: ClientMessage
    reply: ServerMessage | None


@dataclass(frozen=True)
class RequestFailed:
    """A request failed: a Completion error, a failure message, or the connection ended."""

    invocation_id: str
    request: ClientMessage
    error: str
    reply: ServerMessage | None = None
    """The server message that reported the failure, when there was one."""
    connection_ended: bool = False
    """No answer came because the connection ended (closed, lost or refused)."""


@dataclass(frozen=True)
class ChatRef:
    """The chat a client was in, to rejoin on a new connection (see ``rejoin``)."""

    session_id: str
    chat_id: str | None = None


@dataclass(frozen=True)
class ChatLost:
    """After a reconnect, the chat the client was in is gone on the server.

    VOXTA_PROTOCOL_2025-11.md §3.7: a new connection does not resume chats; the session
    survives only if another connection owns it (the client was a subscriber). Anything
    still waiting on that chat (a reply, its end) will never come: fail it now.
    """

    session_id: str
    chat_id: str | None
    reason: str


@dataclass(frozen=True)
class Disconnected:
    """The connection ended or stalled; no more events follow unless it reattaches.

    ``reattachable`` is True when stateful reconnect keeps the session alive: attach a
    new transport and call ``reattach``.
    """

    error: str | None
    allow_reconnect: bool
    reattachable: bool = False


SessionEvent = Union[
    ServerEvent, RequestCompleted, RequestFailed, Disconnected, ChatLost, SendUnblocked
]
"""What ``receive_data``, ``receive_eof`` and ``handle_timer`` return."""


def default_capabilities() -> ClientCapabilities:
    """Text only: no microphone, no audio playback, no vision."""
    return ClientCapabilities(
        audio_input=AudioInputCapability.NONE,
        audio_output=AudioOutputCapability.NONE,
        vision_capture=VisionCaptureCapability.NONE,
    )


@dataclass
class _Pending:
    request: ClientMessage
    completed: bool = False
    """The Completion arrived (successfully) but the paired reply did not yet."""
    forgotten: bool = False
    """The caller stopped waiting (``forget``): this is a placeholder that keeps its
    reply from going to a later request, and reports nothing."""


@dataclass
class ChatState:
    """What the server told us about the chat we are in (mutable, read it, don't set it)."""

    session_id: str | None = None
    chat_id: str | None = None
    participants: tuple[ChatParticipantInfo, ...] = ()
    context: ContextUpdated | None = None
    flags: tuple[FlagInfo, ...] = ()
    flow: ChatFlowStates | None = None
    paused: bool = False
    is_thinking: bool = False
    is_speaking: bool = False
    last_message_id: str | None = None
    sessions: tuple[ChatSessionInfo, ...] = field(default_factory=tuple)
    """Every running session of this user (``chatsSessionsUpdated``)."""


class VoxtaClientSession:
    """The client side of a Voxta connection, without I/O.

    Args:
        now: the current time on the caller's clock.
        client: the app name sent in ``authenticate``.
        client_version: the app version sent in ``authenticate``.
        scope: the roles asked for.
        capabilities: audio and vision abilities; text only by default.
        hub_config: SignalR intervals and limits.
        handshake_version: 1, or 2 to ask for stateful reconnect (only when negotiate
            said the server allows it).
        rejoin: on a fresh connection after a lost one, the chat the old connection was
            in. Once authenticated, the session subscribes to it again if the server
            still lists it in ``chatsSessionsUpdated``, and reports
            [`ChatLost`][voxta_proto.voxta.session.ChatLost] if not (or if the subscription fails).
    """

    def __init__(
        self,
        *,
        now: float,
        client: str = "voxta-proto",
        client_version: str = __version__,
        scope: tuple[str, ...] = ("role:app",),
        capabilities: ClientCapabilities | None = None,
        hub_config: HubConfig | None = None,
        handshake_version: int = 1,
        rejoin: ChatRef | None = None,
    ) -> None:
        config = hub_config or HubConfig(stateful_reconnect=handshake_version >= 2)
        self.hub: Final = HubConnection(Role.CLIENT, now=now, config=config, codec=server_codec())
        self.authenticate_message = Authenticate(
            client=client,
            client_version=client_version,
            scope=scope,
            capabilities=capabilities or default_capabilities(),
        )
        self.chat = ChatState()
        self.welcome: Welcome | None = None
        self.authentication_error: str | None = None
        """Why the server refused ``authenticate``, once it did (the session is CLOSED)."""
        self._state = ClientState.NEW
        self._handshake_version = handshake_version
        self._outbox = Outbox()
        self._pending: dict[str, _Pending] = {}
        self._rejoin = rejoin
        self._rejoin_id: str | None = None
        """The invocation id of the ``subscribeToChat`` that rejoins ``_rejoin``."""
        self._authenticate_id: str | None = None
        self._held: list[ServerMessage] = []
        """Replies that came before the Completion of the request they answer."""
        self._on_message: Mapping[type[object], Callable[[VoxtaClientSession, object], None]] = (
            _STATE_UPDATES
        )

    # -- views ---------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """The session's state."""
        return self._state

    @property
    def pending_requests(self) -> Mapping[str, ClientMessage]:
        """Requests still waiting for their answer, by invocation id."""
        return {key: pending.request for key, pending in self._pending.items()
                if not pending.forgotten}

    @property
    def rejoining(self) -> bool:
        """A ``rejoin`` is still under way (neither rejoined nor reported lost)."""
        return self._rejoin is not None

    def data_to_send(self) -> list[bytes]:
        """Take what waits to be written: one item per transport message."""
        return self._outbox.take()

    @property
    def send_would_block(self) -> bool:
        """Stateful reconnect: the replay buffer is full and ``send`` would raise; wait
        (keep reading) for ``SendUnblocked``. Nothing is dropped meanwhile."""
        return self.hub.send_would_block

    # -- inputs ------------------------------------------------------------------------

    def start(self, *, now: float) -> None:
        """Queue the SignalR handshake; call it once the transport is open."""
        request = HandshakeRequest(protocol="json", version=self._handshake_version)
        self._outbox.add(self.hub.send(request, now=now))
        self._move(HandshakeRequest)

    def send(self, message: ClientMessage, *, now: float, expect_reply: bool = True) -> str | None:
        """Queue a Voxta message; returns its invocation id (None for fire-and-forget).

        With ``expect_reply`` the message goes out as an invocation and its outcome comes
        back later as [`RequestCompleted`][voxta_proto.voxta.session.RequestCompleted] or
        [`RequestFailed`][voxta_proto.voxta.session.RequestFailed].

        Raises:
            LocalProtocolError: the session is not READY (only ``authenticate`` may go
                before ``welcome``) or the connection is closed.
        """
        allowed = self._state in (ClientState.READY, ClientState.DETACHED) or (
            self._state is ClientState.AUTHENTICATING and isinstance(message, Authenticate)
        )
        if not allowed:
            raise LocalProtocolError(
                f"cannot send {type(message).__name__} while the session is {self._state.name}"
            )
        invocation_id = self.hub.next_invocation_id() if expect_reply else None
        self._outbox.add(
            self.hub.send(wrap_client_message(message, invocation_id=invocation_id), now=now)
        )
        if invocation_id is not None:
            self._pending[invocation_id] = _Pending(message)
        return invocation_id

    def forget(self, invocation_id: str) -> bool:
        """Stop waiting for a request (it timed out or its caller was cancelled).

        It leaves ``pending_requests`` and no event will report it; its answer, if one
        still comes, is delivered as a plain message and never resolves another request
        (see the module docstring for the one case the protocol cannot tell apart).
        Returns whether the request was pending.
        """
        pending = self._pending.get(invocation_id)
        if pending is None or pending.forgotten:
            return False
        pending.forgotten = True
        return True

    def receive_data(self, data: bytes, *, now: float) -> list[SessionEvent]:
        """Feed bytes from the transport; returns typed Voxta messages and session events.

        Raises:
            RemoteProtocolError: the server broke the SignalR protocol.
        """
        out: list[SessionEvent] = []
        updates = self._on_message
        for event in self.hub.receive_data(data, now=now):
            if (type(event) is Invocation and event.target == RECEIVE_MESSAGE
                    and event.invocation_id is None and len(event.arguments) == 1):
                message = event.arguments[0]
                update = updates.get(type(message))
                before = self._state
                if update is not None:
                    update(self, message)
                out.append(message)
                if self._pending and isinstance(message, ServerMessage):
                    self._match_reply(message, out)
                if (self._state is ClientState.CLOSED and before is not ClientState.CLOSED
                        and isinstance(message, ServerMessage)):
                    # ``authenticationRequired``: the server refused us for good.
                    self.authentication_error = f"authentication failed: {_failure_text(message)}"
                    self._end(self.authentication_error, False, out)
            else:
                self._on_hub_event(event, now, out)
        if self._rejoin is not None and out:
            self._rejoin_step(out, now)
        return out

    def receive_eof(self, *, now: float | None = None) -> list[SessionEvent]:
        """The transport ended; returns what that means for the session."""
        out: list[SessionEvent] = []
        for event in self.hub.receive_eof(now=now):
            self._on_hub_event(event, now or 0.0, out)
        return out

    def reattach(self, *, now: float) -> None:
        """Stateful reconnect: queue our Sequence and replay on a new transport.

        What the outbox still held is dropped first: the replay carries every message
        of it that counts, and writing both would deliver them twice to a peer that
        has not noticed the old transport is gone."""
        data = self.hub.reattach(now=now)
        self._outbox.clear()
        self._outbox.add(data)

    def next_deadline(self) -> float | None:
        """When ``handle_timer`` next has work (absolute, caller's clock)."""
        return self.hub.next_deadline()

    def handle_timer(self, *, now: float) -> list[SessionEvent]:
        """Send what is due (keep-alive pings, acks); report timeouts."""
        out: list[SessionEvent] = []
        for tick in self.hub.handle_timer(now=now):
            self._outbox.add(self.hub.answer_timer(tick, now=now))
            if isinstance(tick, PeerTimedOut):
                self._end(f"server sent nothing for {tick.silent_for:.1f} s", True, out)
            elif isinstance(tick, (HandshakeTimedOut, ReattachTimedOut)):
                self._end(f"{type(tick).__name__}", True, out)
        return out

    def close(self, *, now: float, error: str | None = None) -> list[SessionEvent]:
        """Queue a SignalR Close; returns a
        [`RequestFailed`][voxta_proto.voxta.session.RequestFailed] for every pending
        request (no answer can come any more), with ``error`` as the reason."""
        if self.hub.state in (HubState.OPEN, HubState.DETACHED, HubState.REATTACHING):
            self._outbox.add(self.hub.send(Close(error=error), now=now))
        out: list[SessionEvent] = []
        self._fail_pending(error or "the connection was closed", out)
        self._state = ClientState.CLOSED
        return out

    # -- internals ---------------------------------------------------------------------

    def _move(self, what: type[object]) -> None:
        next_state = CLIENT_TRANSITIONS.get((self._state, what))
        if next_state is not None:
            self._state = next_state

    def _on_hub_event(self, event: object, now: float, out: list[SessionEvent]) -> None:
        if isinstance(event, HandshakeAccepted):
            self._move(HandshakeAccepted)
            self._authenticate_id = self.send(self.authenticate_message, now=now)
        elif isinstance(event, HandshakeRefused):
            self._move(HandshakeRefused)
            self._end(f"handshake refused: {event.error}", False, out)
        elif isinstance(event, Completion):
            self._on_completion(event, out)
        elif isinstance(event, Invocation) and event.invocation_id is not None:
            # The server wants a client result; we register no client methods.
            reply = Completion(invocation_id=event.invocation_id, error=NO_CLIENT_RESULT)
            self._outbox.add(self.hub.send(reply, now=now))
        elif isinstance(event, Close):
            self._end(event.error, event.allow_reconnect, out)
        elif isinstance(event, ConnectionLost):
            if event.reattachable:
                self._move(TransportLost)
                out.append(Disconnected(error="connection lost", allow_reconnect=True,
                                        reattachable=True))
            else:
                self._end("connection lost", True, out)
        elif isinstance(event, Reattached):
            self._move(Reattached)
        elif isinstance(event, SendUnblocked):
            out.append(event)

    def _rejoin_step(self, out: list[SessionEvent], now: float) -> None:
        """§3.7 after a reconnect: once ``authenticate`` completed (the server sends its
        ``chatsSessionsUpdated`` before that Completion when any session runs), subscribe
        to the old chat if it is still listed, else report it lost; a failed subscription
        reports it lost too."""
        rejoin = self._rejoin
        assert rejoin is not None
        if self._rejoin_id is None:
            if (self._state is not ClientState.READY or self._authenticate_id is None
                    or self._authenticate_id in self._pending):
                return  # not authenticated yet (or refused: Disconnected says so)
            if any(info.session_id == rejoin.session_id for info in self.chat.sessions):
                self._rejoin_id = self.send(SubscribeToChat(session_id=rejoin.session_id),
                                            now=now)
            else:
                self._rejoin = None
                out.append(ChatLost(rejoin.session_id, rejoin.chat_id,
                                    "the server no longer runs this chat session"))
            return
        for event in out:
            if isinstance(event, (RequestCompleted, RequestFailed)) and (
                    event.invocation_id == self._rejoin_id):
                self._rejoin = None
                if isinstance(event, RequestFailed):
                    out.append(ChatLost(rejoin.session_id, rejoin.chat_id, event.error))
                return

    def _on_completion(self, completion: Completion, out: list[SessionEvent]) -> None:
        invocation_id = completion.invocation_id
        pending = self._pending.get(invocation_id)
        if pending is None:
            return
        self._settle_older(invocation_id)
        request = pending.request
        reply = None
        if completion.error is None and type(request) in REPLIES:
            reply = self._claim_held(request, out)
            if reply is None:
                pending.completed = True
                return
        del self._pending[invocation_id]
        if self._held:
            self._prune_held()
        if pending.forgotten:
            return
        if completion.error is not None:
            out.append(RequestFailed(invocation_id, request, completion.error))
        else:
            out.append(self._outcome(invocation_id, request, reply))

    def _match_reply(self, message: ServerMessage, out: list[SessionEvent],
                     hold: bool = True) -> None:
        """Rules 2 to 4 of the module docstring (without ``hold``: 2 and 4 only)."""
        kind = type(message)
        if kind not in _ANSWER_TYPES:
            return
        late: tuple[str, _Pending] | None = None
        for invocation_id, pending in self._pending.items():
            request = pending.request
            request_kind = type(request)
            if (kind not in REPLIES.get(request_kind, ())
                    and kind not in FAILURES.get(request_kind, ())):
                continue
            if not _same_session(request, message):
                continue
            if not pending.completed:
                if hold:
                    self._held.append(message)  # rule 3
                    return
                continue
            if request_kind not in ANSWERED_INLINE:  # rule 2
                late = invocation_id, pending
                break
            late = invocation_id, pending  # rule 4: the newest one wins
        if late is not None:  # rule 2 or 4
            invocation_id, pending = late
            del self._pending[invocation_id]
            if not pending.forgotten:
                out.append(self._outcome(invocation_id, pending.request, message))

    @staticmethod
    def _outcome(invocation_id: str, request: ClientMessage,
                 reply: ServerMessage | None) -> RequestCompleted | RequestFailed:
        if reply is not None and type(reply) in FAILURES.get(type(request), ()):
            return RequestFailed(invocation_id, request, _failure_text(reply), reply)
        return RequestCompleted(invocation_id, request, reply)

    def _claim_held(self, request: ClientMessage,
                    out: list[SessionEvent] | None = None) -> ServerMessage | None:
        """The held reply for ``request`` whose Completion just came: the last one it
        could take, the one the server sent nearest to that Completion. With ``out``,
        the earlier ones are late replies: they go to the older requests whose
        Completion came without one (rule 4), or are dropped."""
        answers = REPLIES.get(type(request), ()) + FAILURES.get(type(request), ())
        held = self._held
        mine = [index for index, message in enumerate(held)
                if type(message) in answers and _same_session(request, message)]
        if not mine:
            return None
        reply = held[mine[-1]]
        earlier = [held[index] for index in mine[:-1]]
        for index in reversed(mine):
            del held[index]
        if out is not None:
            for message in earlier:
                self._match_reply(message, out, hold=False)
        return reply

    def _prune_held(self) -> None:
        """Keep only held replies that a request still waiting for its Completion could
        claim; the rest were answers to requests that are gone."""
        waiting = [p.request for p in self._pending.values() if not p.completed]
        self._held = [
            message for message in self._held
            if any(type(message) in REPLIES.get(type(request), ())
                   + FAILURES.get(type(request), ())
                   and _same_session(request, message) for request in waiting)
        ]

    def _settle_older(self, invocation_id: str) -> None:
        """Completions come in request order: older placeholders go, and an older request
        still without its Completion will not get it (it was lost); it now waits for its
        reply alone (or its caller's timeout)."""
        stale = []
        for key, pending in self._pending.items():
            if key == invocation_id:
                break
            if pending.forgotten:
                stale.append(key)
            else:
                pending.completed = True
        for key in stale:
            del self._pending[key]

    def _end(self, error: str | None, allow_reconnect: bool, out: list[SessionEvent]) -> None:
        self._fail_pending(error or "the connection was closed", out)
        self._state = ClientState.CLOSED
        out.append(Disconnected(error=error, allow_reconnect=allow_reconnect))

    def _fail_pending(self, error: str, out: list[SessionEvent]) -> None:
        for invocation_id, pending in self._pending.items():
            # A reply held for its Completion is still the answer (authenticationRequired
            # is followed by the end of the connection, not by a Completion).
            reply = self._claim_held(pending.request) if self._held else None
            if pending.forgotten:
                continue
            if reply is not None:
                out.append(self._outcome(invocation_id, pending.request, reply))
            else:
                out.append(RequestFailed(invocation_id, pending.request, error,
                                         connection_ended=True))
        self._pending.clear()
        self._held.clear()


def _same_session(request: ClientMessage, reply: ServerMessage) -> bool:
    """A reply belongs to a request unless both name different sessions."""
    asked = getattr(request, "session_id", None)
    answered = getattr(reply, "session_id", None)
    return asked is None or answered is None or asked == answered


def _failure_text(message: ServerMessage) -> str:
    if isinstance(message, ErrorMessage):
        return message.message
    if isinstance(message, ChatClosed):
        return f"chat session {message.session_id} does not exist"
    tag = type(message).__struct_config__.tag
    return f"the server answered {tag if isinstance(tag, str) else type(message).__name__}"


# -- chat state updates, one small function per server message that changes state ----

def _welcome(session: VoxtaClientSession, message: object) -> None:
    assert isinstance(message, Welcome)
    session.welcome = message
    session._move(Welcome)


def _authentication_required(session: VoxtaClientSession, message: object) -> None:
    session._move(AuthenticationRequired)


def _sessions_updated(session: VoxtaClientSession, message: object) -> None:
    assert isinstance(message, ChatsSessionsUpdated)
    session.chat.sessions = tuple(message.sessions)


def _chat_started(session: VoxtaClientSession, message: object) -> None:
    assert isinstance(message, ChatStarted)
    chat = session.chat
    chat.session_id = message.session_id
    chat.chat_id = message.chat_id
    chat.participants = tuple(message.characters)
    chat.is_thinking = chat.is_speaking = chat.paused = False


def _chat_closed(session: VoxtaClientSession, message: object) -> None:
    assert isinstance(message, ChatClosed)
    chat = session.chat
    if message.session_id == chat.session_id:
        chat.session_id = chat.chat_id = None
        chat.participants = ()
        chat.is_thinking = chat.is_speaking = False


def _participants(session: VoxtaClientSession, message: object) -> None:
    assert isinstance(message, ChatParticipantsUpdated)
    if message.session_id == session.chat.session_id:
        session.chat.participants = tuple(message.characters)


def _context(session: VoxtaClientSession, message: object) -> None:
    assert isinstance(message, ContextUpdated)
    if message.session_id == session.chat.session_id:
        session.chat.context = message
        session.chat.flags = tuple(message.flags)


def _flow(session: VoxtaClientSession, message: object) -> None:
    assert isinstance(message, ChatFlow)
    if message.session_id == session.chat.session_id:
        session.chat.flow = message.state


def _paused(session: VoxtaClientSession, message: object) -> None:
    assert isinstance(message, ChatPaused)
    session.chat.paused = message.paused


def _thinking(session: VoxtaClientSession, message: object) -> None:
    session.chat.is_thinking = True
    if isinstance(message, ReplyStart):
        session.chat.last_message_id = message.message_id


def _reply_over(session: VoxtaClientSession, message: object) -> None:
    session.chat.is_thinking = False


def _speaking(session: VoxtaClientSession, message: object) -> None:
    assert isinstance(message, SpeechPlaybackStart)
    session.chat.is_speaking = True
    session.chat.last_message_id = message.message_id


def _speech_over(session: VoxtaClientSession, message: object) -> None:
    session.chat.is_speaking = False
    if isinstance(message, InterruptSpeech):
        session.chat.is_thinking = False


def _message_updated(session: VoxtaClientSession, message: object) -> None:
    assert isinstance(message, Update)
    session.chat.last_message_id = message.message_id


_STATE_UPDATES: Final[Mapping[type[object], Callable[[VoxtaClientSession, object], None]]] = {
    Welcome: _welcome,
    AuthenticationRequired: _authentication_required,
    ChatsSessionsUpdated: _sessions_updated,
    ChatStarted: _chat_started,
    ChatClosed: _chat_closed,
    ChatParticipantsUpdated: _participants,
    ContextUpdated: _context,
    ChatFlow: _flow,
    ChatPaused: _paused,
    ReplyGenerating: _thinking,
    ReplyStart: _thinking,
    ReplyEnd: _reply_over,
    ReplyCancelled: _reply_over,
    SpeechPlaybackStart: _speaking,
    SpeechPlaybackComplete: _speech_over,
    InterruptSpeech: _speech_over,
    Update: _message_updated,
}
"""Server messages that change ``ChatState``; all others pass through untouched."""

