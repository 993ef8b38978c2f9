"""Whole §8 sequences through a client session and a server session wired in memory.

The server's logic is ``session_pair.Script``: it answers as ``VOXTA_PROTOCOL.md`` §8
shows. Every state change on both sides is checked against the transition tables by
the pair; the tests here check the events, the chat state and the states reached.
"""

from __future__ import annotations

from collections.abc import Sequence

from voxta_proto.voxta.client_messages import (
    AppTriggerComplete,
    Authenticate,
    Interrupt,
    LoadCharactersList,
    LoadChatsList,
    LoadScenariosList,
    RegisterApp,
    ResumeChat,
    Retry,
    Revert,
    Send,
    StartChat,
    StopChat,
    SubscribeToChat,
    TriggerAction,
    UpdateContext,
)
from voxta_proto.voxta.enums import ChatFlowStates
from voxta_proto.voxta.server import ClientRequest, ServerState
from voxta_proto.voxta.server_messages import (
    Action,
    AppTrigger,
    CharactersListLoaded,
    ChatClosed,
    ChatFlow,
    ChatLoadingMessage,
    ChatsListLoaded,
    ChatsSessionsUpdated,
    ChatStarted,
    ChatStarting,
    ContextUpdated,
    ErrorMessage,
    ReplyCancelled,
    ReplyChunk,
    ReplyEnd,
    ReplyGenerating,
    ReplyStart,
    ScenariosListLoaded,
    SpeechPlaybackComplete,
    Update,
    Welcome,
)
from voxta_proto.voxta.session import (
    ClientState,
    RequestCompleted,
    RequestFailed,
)

from .session_pair import (
    ASSISTANT_MESSAGE,
    CHARACTER,
    CHAT,
    EMPTY_GUID,
    RETRIED_MESSAGE,
    SESSION,
    USER_MESSAGE,
    Script,
    SessionPair,
    of_type,
)


def connected(script: Script | None = None) -> SessionPair:
    pair = SessionPair(script=script)
    pair.connect()
    return pair


def chatting() -> SessionPair:
    pair = connected()
    pair.send(StartChat(character_id=CHARACTER))
    return pair


def kinds(events: Sequence[object]) -> list[type[object]]:
    return [type(event) for event in events]


def test_connect_and_authenticate() -> None:
    pair = connected()
    assert pair.client.state is ClientState.READY
    assert pair.server.state is ServerState.AUTHENTICATED
    assert pair.client_states == [ClientState.NEW, ClientState.HANDSHAKING,
                                  ClientState.AUTHENTICATING, ClientState.READY]
    assert pair.server_states == [ServerState.NEW, ServerState.CONNECTED,
                                  ServerState.AUTHENTICATED]
    # The server got the client's authenticate, as an invocation it owed a Completion for.
    (request,) = of_type(pair.server_events, ClientRequest)
    assert isinstance(request.message, Authenticate)
    assert request.message == pair.client.authenticate_message
    assert request.invocation_id is not None
    assert pair.server.authenticate == request.message
    assert pair.server.owed_completions == frozenset()
    # The client: welcome (READY right after it), then authenticate completed with it.
    events = pair.client_events
    assert kinds(events)[:1] == [Welcome]
    assert pair.client_log[0].state is ClientState.READY
    (done,) = of_type(events, RequestCompleted)
    assert done.invocation_id == request.invocation_id
    assert isinstance(done.request, Authenticate)
    assert isinstance(done.reply, Welcome)
    assert pair.client.welcome == done.reply
    assert pair.client.pending_requests == {}
    # No session runs: no chatsSessionsUpdated.
    assert not of_type(events, ChatsSessionsUpdated)


def test_connect_lists_running_sessions() -> None:
    script = Script()
    script.running[SESSION] = CHAT
    pair = connected(script)
    (update,) = of_type(pair.client_events, ChatsSessionsUpdated)
    assert [(s.session_id, s.chat_id) for s in pair.client.chat.sessions] == [(SESSION, CHAT)]
    assert update.sessions == pair.client.chat.sessions


def test_register_app_is_answered_by_its_completion() -> None:
    pair = connected()
    mark = pair.mark()
    invocation_id = pair.send(RegisterApp(client_version="1.0", label="My App"))
    (done,) = pair.since(mark)
    assert done == RequestCompleted(str(invocation_id), RegisterApp(client_version="1.0",
                                                                    label="My App"), None)


def test_start_chat() -> None:
    pair = connected()
    mark = pair.mark()
    invocation_id = pair.send(StartChat(character_id=CHARACTER))
    events = pair.since(mark)
    # §8.2: completion first, then chatStarting, loading, sessions, chatStarted.
    assert kinds(events)[:6] == [ChatStarting, ChatLoadingMessage, ChatLoadingMessage,
                                 ChatsSessionsUpdated, ChatStarted, RequestCompleted]
    done = events[5]
    assert isinstance(done, RequestCompleted)
    assert done.invocation_id == invocation_id
    assert done.request == StartChat(character_id=CHARACTER)
    assert done.reply is events[4]
    # Before chatStarted the session is not known yet; after it, it is.
    assert pair.client_log[mark + 3].chat.session_id is None
    chat = pair.client.chat
    assert (chat.session_id, chat.chat_id) == (SESSION, CHAT)
    assert [p.id for p in chat.participants] == [CHARACTER]
    assert [s.session_id for s in chat.sessions] == [SESSION]
    # The greeting streamed after chatStarted, then the chat waits for the user.
    assert chat.flow is ChatFlowStates.WAITING_FOR_USER_INPUT
    assert chat.is_thinking is False
    assert pair.client.pending_requests == {}
    assert pair.client.state is ClientState.READY


def test_streamed_reply() -> None:
    pair = chatting()
    mark = pair.mark()
    pair.send(Send(session_id=SESSION, text="Tell me a joke", do_reply=True))
    steps = pair.client_log[mark:]
    messages = [step.event for step in steps]
    assert kinds(messages) == [
        RequestCompleted, Update, ChatFlow, ChatFlow, ReplyGenerating, ReplyStart,
        ReplyChunk, ReplyChunk, ReplyEnd, SpeechPlaybackComplete, ChatFlow,
    ]
    done = messages[0]
    assert isinstance(done, RequestCompleted)
    assert done.reply is None
    assert isinstance(done.request, Send)
    # The echo of the user message is the last message, then the reply is.
    assert steps[1].chat.last_message_id == USER_MESSAGE
    assert [step.chat.is_thinking for step in steps] == [
        False, False, False, False, True, True, True, True, False, False, False]
    assert steps[5].chat.last_message_id == ASSISTANT_MESSAGE
    assert [step.chat.flow for step in steps[2:4]] == [
        ChatFlowStates.PROCESSING_USER_MESSAGE, ChatFlowStates.PROCESSING_ASSISTANT_REPLY]
    chunks = of_type(messages, ReplyChunk)
    assert "".join(c.text for c in chunks) == "Why did the AI cross? To get to the dataset."
    chat = pair.client.chat
    assert chat.last_message_id == ASSISTANT_MESSAGE
    assert chat.flow is ChatFlowStates.WAITING_FOR_USER_INPUT
    assert not chat.is_thinking
    assert not chat.is_speaking


def test_interrupt_a_reply_being_prepared() -> None:
    pair = chatting()
    pair.script.hold_reply = True
    pair.send(Send(session_id=SESSION, text="Tell me a joke"))
    assert pair.client.chat.is_thinking
    mark = pair.mark()
    invocation_id = pair.send(Interrupt(session_id=SESSION))
    events = pair.since(mark)
    assert kinds(events) == [RequestCompleted, ReplyEnd, ReplyCancelled, ChatFlow]
    assert events[0] == RequestCompleted(str(invocation_id), Interrupt(session_id=SESSION), None)
    end = events[1]
    assert isinstance(end, ReplyEnd)
    assert end.message_index == -1
    assert (pair.client.chat.is_thinking, pair.client.chat.flow) == (
        False, ChatFlowStates.WAITING_FOR_USER_INPUT)


def test_retry() -> None:
    pair = chatting()
    pair.send(Send(session_id=SESSION, text="Tell me a joke"))
    mark = pair.mark()
    pair.send(Retry(session_id=SESSION))
    steps = pair.client_log[mark:]
    events = [step.event for step in steps]
    assert isinstance(events[0], RequestCompleted)
    assert isinstance(events[0].request, Retry)
    deleted = events[1]
    assert isinstance(deleted, Update)
    assert deleted.message_id == ASSISTANT_MESSAGE
    assert deleted.text is None
    assert kinds(events)[2:] == [ChatFlow, ReplyGenerating, ReplyStart, ReplyChunk, ReplyEnd,
                                 SpeechPlaybackComplete, ChatFlow]
    assert steps[4].chat.is_thinking is True
    assert pair.client.chat.last_message_id == RETRIED_MESSAGE
    assert pair.client.chat.is_thinking is False


def test_revert() -> None:
    pair = chatting()
    pair.send(Send(session_id=SESSION, text="Tell me a joke"))
    mark = pair.mark()
    invocation_id = pair.send(Revert(session_id=SESSION))
    events = pair.since(mark)
    assert events[0] == RequestCompleted(str(invocation_id), Revert(session_id=SESSION), None)
    updates = of_type(events, Update)
    assert [(u.message_id, u.text) for u in updates] == [
        (RETRIED_MESSAGE, None), (USER_MESSAGE, None)]
    assert pair.client.chat.last_message_id == USER_MESSAGE


def test_trigger_action_and_app_trigger() -> None:
    pair = chatting()
    pair.send(UpdateContext(session_id=SESSION, context_key="game", set_flags=("in_forest",)))
    assert [f.name for f in pair.client.chat.flags] == ["in_forest"]
    context = pair.client.chat.context
    assert isinstance(context, ContextUpdated)
    assert context.session_id == SESSION
    mark = pair.mark()
    pair.send(TriggerAction(session_id=SESSION, message_id=ASSISTANT_MESSAGE, value="wave"))
    events = pair.since(mark)
    assert kinds(events) == [RequestCompleted, Action, AppTrigger]
    action, trigger = events[1], events[2]
    assert isinstance(action, Action)
    assert action.value == "wave"
    assert isinstance(trigger, AppTrigger)
    assert trigger.trigger_id == "t-1"
    assert trigger.message_id == ASSISTANT_MESSAGE
    # A queued trigger is acknowledged; that is a plain request answered by its Completion.
    mark = pair.mark()
    complete = AppTriggerComplete(session_id=SESSION, trigger_id=trigger.trigger_id)
    invocation_id = pair.send(complete)
    assert pair.since(mark) == [RequestCompleted(str(invocation_id), complete, None)]
    assert isinstance(pair.server_events[-1], ClientRequest)
    assert pair.server_events[-1].message == complete


def test_resume_chat() -> None:
    pair = connected()
    mark = pair.mark()
    invocation_id = pair.send(ResumeChat(chat_id=CHAT))
    events = pair.since(mark)
    (started,) = of_type(events, ChatStarted)
    assert [m.message_id for m in started.messages] == [USER_MESSAGE]
    (done,) = of_type(events, RequestCompleted)
    assert done.invocation_id == invocation_id
    assert done.reply is started
    assert isinstance(events[-1], ChatFlow)
    assert pair.client.chat.session_id == SESSION
    assert pair.client.chat.chat_id == CHAT
    assert pair.client.chat.flow is ChatFlowStates.WAITING_FOR_USER_INPUT


def test_subscribe_to_a_running_session() -> None:
    script = Script()
    script.running[SESSION] = CHAT
    pair = connected(script)
    assert not pair.client.chat.session_id
    mark = pair.mark()
    invocation_id = pair.send(SubscribeToChat(session_id=SESSION))
    events = pair.since(mark)
    # §8.14: chatStarted, contextUpdated, then the Completion; the request completes
    # with chatStarted when the Completion names it.
    assert kinds(events) == [ChatStarted, ContextUpdated, RequestCompleted]
    done = events[2]
    assert isinstance(done, RequestCompleted)
    assert done.invocation_id == invocation_id
    assert done.reply is events[0]
    assert pair.client.chat.session_id == SESSION
    assert pair.client.chat.context is events[1]
    assert pair.client.pending_requests == {}


def test_subscribe_to_an_unknown_session_fails() -> None:
    pair = connected()
    mark = pair.mark()
    unknown = "deadbeef-dead-4eef-8eef-deadbeefdead"
    invocation_id = pair.send(SubscribeToChat(session_id=unknown))
    events = pair.since(mark)
    assert kinds(events) == [ChatClosed, RequestFailed]
    failed = events[1]
    assert isinstance(failed, RequestFailed)
    assert failed.invocation_id == invocation_id
    assert failed.request == SubscribeToChat(session_id=unknown)
    assert failed.reply is events[0]
    assert unknown in failed.error
    assert pair.client.pending_requests == {}
    # The late Completion does not produce a second outcome.
    assert not of_type(events, RequestCompleted)


def test_stop_chat() -> None:
    pair = chatting()
    mark = pair.mark()
    pair.send(StopChat(session_id=SESSION))
    events = pair.since(mark)
    assert kinds(events) == [ChatClosed, ChatsSessionsUpdated, RequestCompleted]
    chat = pair.client.chat
    assert chat.session_id is None
    assert chat.chat_id is None
    assert chat.participants == ()
    assert chat.sessions == ()


def _lists(pair: SessionPair) -> None:
    mark = pair.mark()
    ids = [
        pair.send(LoadCharactersList()),
        pair.send(LoadScenariosList()),
        pair.send(LoadChatsList(character_id=CHARACTER)),
        pair.send(LoadChatsList(character_id=EMPTY_GUID)),
    ]
    done = of_type(pair.since(mark), RequestCompleted)
    assert [d.invocation_id for d in done] == ids
    replies = [d.reply for d in done]
    assert isinstance(replies[0], CharactersListLoaded)
    assert [c.name for c in replies[0].characters] == ["Apex"]
    assert isinstance(replies[1], ScenariosListLoaded)
    assert [s.name for s in replies[1].scenarios] == ["Default"]
    assert isinstance(replies[2], ChatsListLoaded)
    assert [c.id for c in replies[2].chats] == [CHAT]
    assert isinstance(replies[3], ChatsListLoaded)
    assert replies[3].chats == ()
    assert not of_type(pair.since(mark), RequestFailed)
    assert pair.client.pending_requests == {}


def test_lists_with_the_reply_before_the_completion() -> None:
    _lists(connected())


def test_lists_with_the_reply_after_the_completion() -> None:
    script = Script()
    script.lists_before_completion = False
    pair = connected(script)
    pair.client.send(LoadCharactersList(), now=pair.now)
    # Hold back the reply: after the Completion alone, the request still waits.
    for item in pair.client.data_to_send():
        pair.deliver_to_server(item)
    (item,) = pair.server.data_to_send()
    completion, reply = item.split(b"\x1e")[:2]
    assert b'"type":3' in completion
    assert pair.deliver_to_client(completion + b"\x1e") == []
    assert list(pair.client.pending_requests.values()) == [LoadCharactersList()]
    (listed, done) = pair.deliver_to_client(reply + b"\x1e")
    assert isinstance(listed, CharactersListLoaded)
    assert isinstance(done, RequestCompleted)
    assert done.reply is listed
    assert pair.client.pending_requests == {}
    _lists(pair)


def test_start_chat_failing_with_error() -> None:
    pair = connected()
    mark = pair.mark()
    invocation_id = pair.send(StartChat())
    events = pair.since(mark)
    assert kinds(events) == [ErrorMessage, RequestFailed]
    failed = events[1]
    assert isinstance(failed, RequestFailed)
    assert failed.invocation_id == invocation_id
    assert failed.error == "A character is required to start a chat"
    assert failed.reply is events[0]
    assert pair.client.chat.session_id is None
    assert pair.client.pending_requests == {}
    assert pair.client.state is ClientState.READY


def test_many_turns_keep_states_and_pending_clean() -> None:
    pair = chatting()
    for turn in range(5):
        pair.send(Send(session_id=SESSION, text=f"message {turn}"))
        pair.send(Retry(session_id=SESSION))
        assert pair.client.pending_requests == {}
        assert pair.server.owed_completions == frozenset()
    assert pair.client_states[-1] is ClientState.READY
    assert pair.server_states[-1] is ServerState.AUTHENTICATED
    assert len(of_type(pair.client_events, RequestFailed)) == 0
