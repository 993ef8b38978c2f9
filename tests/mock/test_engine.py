"""The mock's behaviour, sans-IO: the sequences of reference §8, in exact order."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from voxta_mock import DEFAULT_DATA, UI_CONNECTION, Complete, Emit, MockEngine, Step, Wait
from voxta_mock.data import ReplyScript
from voxta_mock.engine import EMPTY_ID
from voxta_proto.voxta import (
    Action,
    AddChatParticipant,
    AppForm,
    AppFormField,
    AppTrigger,
    AppTriggerComplete,
    AudioOutputCapability,
    Authenticate,
    ChatSessionError,
    ChatsListLoaded,
    ChatStarted,
    ClientCapabilities,
    ClientSpeechPlaybackComplete,
    ClientSpeechPlaybackStart,
    ClientUpdate,
    ComputerVisionSource,
    ContextUpdated,
    DeleteMessage,
    Interrupt,
    LoadCharactersList,
    LoadChatsList,
    LoadScenariosList,
    PauseChat,
    RegisterApp,
    ReplyChunk,
    ReplyEnd,
    RequestSuggestions,
    ResumeChat,
    Retry,
    Revert,
    ScenarioActionDefinition,
    Send,
    Speak,
    SpeechPlaybackComplete,
    StartChat,
    StopChat,
    SubscribeToChat,
    TriggerAction,
    TypingStart,
    Update,
    UpdateContext,
    VisionCaptureRequest,
)

APEX = "22222222-2222-4222-8222-222222222222"
OLD_CHAT = "44444444-4444-4444-8444-444444444444"
AUTH = Authenticate(client="t", scope=("role:app",), capabilities=ClientCapabilities())


def tag(step: Step) -> str:
    if isinstance(step, Emit):
        name = type(step.message).__struct_config__.tag
        assert isinstance(name, str)
        return name
    return "done" if isinstance(step, Complete) else "wait"


def tags(steps: Iterable[Step]) -> list[str]:
    return [tag(s) for s in steps]


def engine(**kwargs: object) -> MockEngine:
    e = MockEngine(seed=7, clock=lambda: 1_767_000_000.0, **kwargs)  # type: ignore[arg-type]
    e.connect("c")
    list(e.handle("c", AUTH))
    return e


def started(e: MockEngine, conn: str = "c") -> str:
    list(e.handle(conn, StartChat(character_id=APEX)))
    record = e.sessions.owned_by(conn)
    assert record is not None
    return record.session_id


STREAM = ["replyGenerating", "replyStart", "wait", "replyChunk", "wait", "replyChunk"]


def test_authenticate_then_welcome() -> None:
    e = MockEngine(seed=1)
    e.connect("c")
    assert tags(e.handle("c", AUTH)) == ["welcome", "moduleRuntimeInstances", "configuration",
                                          "done"]


def test_welcome_lists_running_sessions_when_preseeded() -> None:
    e = MockEngine(seed=1, preseed_session=True)
    e.connect("c")
    assert tags(e.handle("c", AUTH))[-2:] == ["chatsSessionsUpdated", "done"]
    assert e.sessions.owned_by(UI_CONNECTION) is not None


def test_start_chat_streams_the_greeting() -> None:
    e = engine(reply_delay=0.01)
    steps = list(e.handle("c", StartChat(character_id=APEX)))
    assert tags(steps) == [
        "done", "chatStarting", "chatLoadingMessage", "chatLoadingMessage", "chatLoadingMessage",
        "chatsSessionsUpdated", "chatStarted", *STREAM, "replyEnd", "speechPlaybackComplete",
        "chatFlow"]
    chunks = [s.message for s in steps if isinstance(s, Emit)
              and isinstance(s.message, ReplyChunk)]
    greeting = DEFAULT_DATA.characters[0].greeting
    assert " ".join(c.text for c in chunks) == greeting
    assert chunks[0].start_index == 0
    assert chunks[-1].end_index == len(greeting or "")


def test_send_then_one_streamed_reply() -> None:
    e = engine(reply_delay=0.0)
    sid = started(e)
    steps = list(e.handle("c", Send(session_id=sid, text="hello", do_reply=True)))
    assert tags(steps)[:5] == ["done", "update", "chatFlow", "chatFlow", "replyGenerating"]
    assert tags(steps)[-3:] == ["replyEnd", "speechPlaybackComplete", "chatFlow"]
    ids = {getattr(s.message, "message_id", None) for s in steps[4:-1] if isinstance(s, Emit)}
    assert len(ids) == 1


def test_replies_are_deterministic_for_a_seed() -> None:
    def reply_text(seed: int) -> str:
        e = MockEngine(seed=seed, reply_delay=0.0, clock=lambda: 0.0)
        e.connect("c")
        list(e.handle("c", AUTH))
        sid = started(e)
        steps = e.handle("c", Send(session_id=sid, text="hi"))
        return "".join(s.message.text for s in steps
                       if isinstance(s, Emit) and isinstance(s.message, ReplyChunk))

    assert reply_text(3) == reply_text(3)


def test_do_reply_false_stops_after_user_message() -> None:
    e = engine(reply_delay=0.0)
    sid = started(e)
    assert tags(e.handle("c", Send(session_id=sid, text="x", do_reply=False))) == [
        "done", "update", "chatFlow", "chatFlow"]


def test_interrupt_mid_stream_cuts_the_reply() -> None:
    e = engine(reply_delay=0.01, words_per_chunk=1)
    sid = started(e)
    reply = e.handle("c", Send(session_id=sid, text="hi"))
    head = []
    for step in reply:
        head.append(tag(step))
        if tag(step) == "replyChunk":
            break
    assert tags(e.handle("c", Interrupt(session_id=sid))) == [
        "done", "replyEnd", "speechPlaybackComplete", "chatFlow"]
    assert tags(reply) == ["wait"]  # the cut stream ends at its next step


def test_interrupt_before_text_cancels() -> None:
    e = engine(reply_delay=0.01)
    sid = started(e)
    reply = e.handle("c", Send(session_id=sid, text="hi"))
    for step in reply:
        if isinstance(step, Wait):
            break
    assert tags(e.handle("c", Interrupt(session_id=sid))) == [
        "done", "replyEnd", "replyCancelled", "chatFlow"]


def test_retry_revert_edit_delete_typing() -> None:
    e = engine(reply_delay=0.0)
    sid = started(e)
    list(e.handle("c", Send(session_id=sid, text="hi")))
    retry = tags(e.handle("c", Retry(session_id=sid)))
    assert retry[:4] == ["done", "update", "chatFlow", "replyGenerating"]
    revert = list(e.handle("c", Revert(session_id=sid)))
    assert tags(revert) == ["done", "update", "update"]
    assert all(s.message.text is None for s in revert if isinstance(s, Emit)
               and isinstance(s.message, Update))
    steps = list(e.handle("c", Send(session_id=sid, text="again", do_reply=False)))
    mid = next(s.message.message_id for s in steps if isinstance(s, Emit)
               and isinstance(s.message, Update))
    edit = list(e.handle("c", ClientUpdate(session_id=sid, message_id=mid, text="edited")))
    assert tags(edit) == ["done", "update"]
    assert isinstance(edit[1], Emit)
    assert getattr(edit[1].message, "text", None) == "edited"
    assert tags(e.handle("c", DeleteMessage(session_id=sid, message_id=mid))) == ["done", "update"]
    assert tags(e.handle("c", TypingStart(session_id=sid))) == ["done"]


def test_lists() -> None:
    e = engine()
    assert tags(e.handle("c", LoadCharactersList())) == ["charactersListLoaded", "done"]
    assert tags(e.handle("c", LoadScenariosList())) == ["scenariosListLoaded", "done"]
    assert tags(e.handle("c", LoadChatsList(character_id=APEX))) == ["chatsListLoaded", "done"]

    def listed(message: LoadChatsList) -> list[str]:
        first = next(iter(e.handle("c", message)))
        assert isinstance(first, Emit)
        assert isinstance(first.message, ChatsListLoaded)
        return [c.id for c in first.message.chats]

    scenario = DEFAULT_DATA.scenarios[0].id
    assert listed(LoadChatsList(character_id=APEX, scenario_id=scenario)) == [OLD_CHAT]
    assert listed(LoadChatsList(character_id=APEX)) == []  # only chats without a scenario
    assert listed(LoadChatsList(character_id=EMPTY_ID, scenario_id=scenario)) == []


def test_participants_context_and_suggestions() -> None:
    e = engine(reply_delay=0.0)
    sid = started(e)
    bea = DEFAULT_DATA.characters[1].id
    assert tags(e.handle("c", AddChatParticipant(session_id=sid, character_id=bea))) == [
        "done", "chatParticipantsUpdated", "replyGenerating", "replyStart", "replyChunk",
        "replyEnd"]
    update = UpdateContext(session_id=sid, context_key="game", set_flags=("in_forest",))
    assert tags(e.handle("c", update)) == [
        "done", "memoryUpdated", "memoryUpdated", "contextUpdated"]
    assert tags(e.handle("c", RequestSuggestions(session_id=sid))) == ["done", "suggestions"]


def test_keyword_script_emits_action_and_app_trigger() -> None:
    e = engine(reply_delay=0.0)
    sid = started(e)
    assert "action" in tags(e.handle("c", Send(session_id=sid, text="Please wave!")))
    assert "appTrigger" in tags(e.handle("c", Send(session_id=sid, text="into the forest")))


def test_subscribe_forward_and_unknown() -> None:
    e = engine(reply_delay=0.0)
    sid = started(e)
    e.connect("s")
    list(e.handle("s", AUTH))
    sub = list(e.handle("s", SubscribeToChat(session_id=sid)))
    assert tags(sub) == ["chatStarted", "contextUpdated", "done"]
    assert all(isinstance(s, Complete) or s.to == ("s",) for s in sub if not isinstance(s, Wait))
    steps = [s for s in e.handle("s", Send(session_id=sid, text="hi")) if isinstance(s, Emit)]
    assert all(set(s.to) == {"c", "s"} for s in steps)  # forwarded, seen by both
    assert tags(e.handle("s", SubscribeToChat(session_id="nope"))) == ["chatClosed", "done"]


def test_pause_stop_and_errors() -> None:
    e = engine(reply_delay=0.0)
    sid = started(e)
    assert tags(e.handle("c", PauseChat(session_id=sid, pause=True))) == ["done", "chatPaused"]
    assert tags(e.handle("c", PauseChat(session_id=sid, pause=False)))[:3] == [
        "done", "chatPaused", "chatFlow"]
    e.connect("x")
    list(e.handle("x", AUTH))
    denied = list(e.handle("x", StopChat(session_id=sid)))
    assert isinstance(denied[0], Complete)
    assert denied[0].error
    assert tags(e.handle("c", StopChat())) == ["chatClosed", "chatsSessionsUpdated", "done"]
    assert tags(e.handle("c", StartChat())) == ["done", "error"]


def test_resume_and_chat_already_open() -> None:
    e = engine()
    resumed = list(e.handle("c", ResumeChat(chat_id=OLD_CHAT)))
    assert tags(resumed)[-3:] == ["chatsSessionsUpdated", "chatStarted", "chatFlow"]
    start = next(s.message for s in resumed if isinstance(s, Emit)
                 and isinstance(s.message, ChatStarted))
    assert len(start.messages) == 3
    e.connect("d")
    list(e.handle("d", AUTH))
    assert tags(e.handle("d", ResumeChat(chat_id=OLD_CHAT)))[-2:] == ["chatSessionError", "error"]


def test_unknown_session_is_ignored_and_disconnect_closes() -> None:
    e = engine()
    msg = Send(session_id="nope", text="x")
    assert tags(e.handle("c", msg)) == ["done"]
    started(e)
    assert tags(e.disconnect("c")) == ["chatClosed", "chatsSessionsUpdated"]


SPEAKER = Authenticate(client="t", scope=("role:app",), capabilities=ClientCapabilities(
    audio_output=AudioOutputCapability.URL))


def chunks_of(steps: Iterable[Step]) -> list[ReplyChunk]:
    return [s.message for s in steps if isinstance(s, Emit) and isinstance(s.message, ReplyChunk)]


def test_client_playback_waits_for_the_clients_completion() -> None:
    e = MockEngine(seed=7, reply_delay=0.0, speech=True)
    e.connect("c")
    list(e.handle("c", SPEAKER))
    greeting = list(e.handle("c", StartChat(character_id=APEX)))
    assert tags(greeting)[-2:] == ["replyChunk", "replyEnd"]  # the turn waits for the client
    chunks = chunks_of(greeting)
    assert all(c.audio_url.startswith("/api/tts/gens/") for c in chunks)
    audio = e.tts_audio(chunks[0].audio_url.rsplit("/", 1)[1])
    assert audio is not None
    assert audio.startswith(b"RIFF")
    sid, mid = chunks[0].session_id, chunks[0].message_id
    start = ClientSpeechPlaybackStart(session_id=sid, message_id=mid, start_index=0,
                                      end_index=chunks[0].end_index, duration=1.5)
    echoed = list(e.handle("c", start))
    assert tags(echoed) == ["done", "speechPlaybackStart"]
    assert isinstance(echoed[1], Emit)
    assert msgspec.to_builtins(echoed[1].message) == {
        "$type": "speechPlaybackStart", "sessionId": sid, "messageId": mid, "startIndex": 0,
        "duration": 1.5}
    other = ClientSpeechPlaybackComplete(session_id=sid, message_id="another")
    assert tags(e.handle("c", other)) == ["done", "speechPlaybackComplete"]  # relayed only
    complete = ClientSpeechPlaybackComplete(session_id=sid, message_id=mid)
    assert tags(e.handle("c", complete)) == ["done", "speechPlaybackComplete", "chatFlow"]
    assert tags(e.handle("c", complete)) == ["done", "speechPlaybackComplete"]  # turn ends once


def test_interrupt_or_new_message_during_playback_interrupts_speech() -> None:
    e = MockEngine(seed=7, reply_delay=0.0, speech=True)
    e.connect("c")
    list(e.handle("c", SPEAKER))
    sid = started(e)
    assert tags(e.handle("c", Interrupt(session_id=sid))) == [
        "done", "interruptSpeech", "chatFlow"]
    reply = list(e.handle("c", Send(session_id=sid, text="hi")))
    assert tags(reply)[-1] == "replyEnd"
    assert tags(e.handle("c", Send(session_id=sid, text="again", do_reply=False)))[:3] == [
        "done", "interruptSpeech", "update"]


def test_speech_disabled_unless_the_client_plays_urls() -> None:
    for e in (engine(reply_delay=0.0), engine(reply_delay=0.0, speech=True)):
        steps = list(e.handle("c", StartChat(character_id=APEX)))  # AUTH: no audioOutput
        assert tags(steps)[-3:] == ["replyEnd", "speechPlaybackComplete", "chatFlow"]
        assert all(c.audio_url == "" for c in chunks_of(steps))


def messages(steps: Iterable[Step]) -> list[object]:
    return [s.message for s in steps if isinstance(s, Emit)]


def test_action_inference_from_context_actions() -> None:
    """§8.9/§8.10: one action per layer after the reply; the named one, else ``""``."""
    e = engine(reply_delay=0.0)
    sid = started(e)
    jump = ScenarioActionDefinition(name="jump", description="When {{ char }} jumps.",
                                    layer="game")
    list(e.handle("c", UpdateContext(session_id=sid, context_key="game", actions=(jump,))))
    chosen = [m for m in messages(e.handle("c", Send(session_id=sid, text="Can you jump?")))
              if isinstance(m, Action)]
    assert [(a.value, a.layer, a.context_key) for a in chosen] == [("jump", "game", "game")]
    none = [m for m in messages(e.handle("c", Send(session_id=sid, text="Just talk.")))
            if isinstance(m, Action)]
    assert [a.value for a in none] == [""]
    quiet = Send(session_id=sid, text="Can you jump?", do_character_action_inference=False)
    assert not [m for m in messages(e.handle("c", quiet)) if isinstance(m, Action)]


def test_trigger_action_speak_and_slash_commands() -> None:
    e = engine(reply_delay=0.0)
    sid = started(e)
    reply = messages(e.handle("c", Send(session_id=sid, text="hi")))
    mid = next(m.message_id for m in reply if isinstance(m, ReplyChunk))
    triggered = messages(e.handle("c", TriggerAction(session_id=sid, message_id=mid,
                                                     value="wave")))
    assert [(a.value, a.role.value) for a in triggered if isinstance(a, Action)] == [
        ("wave", "Assistant")]
    assert tags(e.handle("c", TriggerAction(session_id=sid, message_id="nope",
                                            value="wave"))) == ["done"]  # ignored
    again = list(e.handle("c", Speak(session_id=sid, message_id=mid)))
    assert tags(again)[:2] == ["done", "replyStart"]  # an existing message: no replyGenerating
    assert {c.message_id for c in chunks_of(again)} == {mid}
    note = list(e.handle("c", Send(session_id=sid, text="/note: remember this")))
    assert tags(note) == ["done", "update"]
    assert [m.role.value for m in messages(note) if isinstance(m, Update)] == ["Note"]
    assert "replyGenerating" in tags(e.handle("c", Send(session_id=sid, text="/event Rain.")))
    unknown = messages(e.handle("c", Send(session_id=sid, text="/dance now")))
    assert [(m.message, m.retry) for m in unknown if isinstance(m, ChatSessionError)] == [
        ("Command dance is not supported", False)]


def test_start_chat_errors_are_error_messages() -> None:
    """§9: a chat that cannot start gives ``error`` (no session yet)."""
    e = engine()
    cases: dict[StartChat | ResumeChat, str] = {
        StartChat(character_id="99999999-9999-4999-8999-999999999999"): "not found",
        StartChat(chat_id="nope"): "not found",
        StartChat(chat_id=OLD_CHAT, ephemeral=True): "ephemeral",
        ResumeChat(chat_id="nope"): "not found",
    }
    for message, text in cases.items():
        steps = list(e.handle("c", message))
        assert tags(steps) == ["done", "error"], message
        assert text in getattr(messages(steps)[0], "message", "")
    assert e.sessions.owned_by("c") is None


def test_message_indices_are_one_based_as_in_the_reference() -> None:
    """§8.2/§8.3: the greeting ends at messageIndex 1, the user message is index 2 and
    its reply ends at messageIndex 3; chatStarted's history counts the same way."""
    e = engine(reply_delay=0.0)
    greeting = messages(e.handle("c", StartChat(character_id=APEX)))
    assert [m.message_index for m in greeting if isinstance(m, ReplyEnd)] == [1]
    sid = next(m.session_id for m in greeting if isinstance(m, ChatStarted))
    turn = messages(e.handle("c", Send(session_id=sid, text="Tell me a joke")))
    assert [m.index for m in turn if isinstance(m, Update)] == [2]
    assert [m.message_index for m in turn if isinstance(m, ReplyEnd)] == [3]
    resumed = messages(e.handle("c", ResumeChat(chat_id=OLD_CHAT)))
    history = next(m.messages for m in resumed if isinstance(m, ChatStarted))
    assert [m.index for m in history] == [1, 2, 3]


# --- API 2025-11 flows ------------------------------------------------------------------------


def speaker_engine(**kwargs: object) -> tuple[MockEngine, str]:
    e = MockEngine(seed=7, reply_delay=0.0, **kwargs)  # type: ignore[arg-type]
    e.connect("c")
    list(e.handle("c", SPEAKER))
    return e, started(e)


def test_a_late_completion_is_relayed_so_no_client_stays_speaking() -> None:
    e, sid = speaker_engine(speech=True)
    greeting = chunks_of(e.handle("c", Send(session_id=sid, text="hi")))
    mid = greeting[0].message_id
    assert tags(e.handle("c", Interrupt(session_id=sid))) == [
        "done", "interruptSpeech", "chatFlow"]  # the engine no longer waits for mid
    steps = list(e.handle("c", ClientSpeechPlaybackComplete(session_id=sid, message_id=mid)))
    assert tags(steps) == ["done", "speechPlaybackComplete"]
    assert messages(steps) == [SpeechPlaybackComplete(session_id=sid, message_id=mid)]


def test_silence_placeholders_and_audio_gaps_for_url_clients() -> None:
    e, sid = speaker_engine(silence_placeholders=True, audio_gap_ms=250)
    steps = list(e.handle("c", Send(session_id=sid, text="hi")))
    assert tags(steps)[-1] == "replyEnd"  # the turn waits for the client's completion
    chunks = chunks_of(steps)
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.audio_url == f"silence:{min(len(chunk.text) * 20, 2000)}"
    assert [c.audio_gap_ms for c in chunks] == [None] + [250] * (len(chunks) - 1)
    assert e.tts_audio(chunks[0].audio_url.partition(":")[2]) is None  # nothing to fetch
    done = ClientSpeechPlaybackComplete(session_id=sid, message_id=chunks[0].message_id)
    assert tags(e.handle("c", done)) == ["done", "speechPlaybackComplete", "chatFlow"]


def test_silence_placeholders_only_for_url_clients() -> None:
    e = engine(reply_delay=0.0, silence_placeholders=True, audio_gap_ms=250)
    steps = list(e.handle("c", StartChat(character_id=APEX)))  # AUTH: no audioOutput
    assert tags(steps)[-3:] == ["replyEnd", "speechPlaybackComplete", "chatFlow"]
    assert {(c.audio_url, c.audio_gap_ms) for c in chunks_of(steps)} == {("", None)}


def test_registered_character_form_values_come_back_on_chat_started() -> None:
    data = msgspec.structs.replace(DEFAULT_DATA, characters=(
        msgspec.structs.replace(DEFAULT_DATA.characters[0], app_configuration={
            "t": {"skin": "urn:voxta:resources:characters:x:assets:skin.png"},
            "other-app": {"skin": "nope"}}),
        *DEFAULT_DATA.characters[1:]))
    e = MockEngine(data, seed=7, reply_delay=0.0)
    e.connect("c")
    list(e.handle("c", AUTH))  # client "t"
    form = AppForm(fields=(AppFormField(kind="bool", name="follow", default_value=False),
                           AppFormField(kind="asset", name="skin", content_types=("image/*",))))
    assert tags(e.handle("c", RegisterApp(label="T", character_form=form))) == ["done"]
    e.set_app_configuration(DEFAULT_DATA.characters[1].id, "t", {"follow": "True"})
    steps = list(e.handle("c", StartChat(character_ids=(APEX, DEFAULT_DATA.characters[1].id))))
    [chat_started] = [m for m in messages(steps) if isinstance(m, ChatStarted)]
    assert [c.app_configuration for c in chat_started.characters] == [
        {"follow": "False", "skin": "urn:voxta:resources:characters:x:assets:skin.png"},
        {"follow": "True"}]
    detail = msgspec.json.decode(e.character_json(APEX) or b"")
    assert detail["appConfiguration"] == {
        "other-app": {"skin": "nope"},
        "t": {"follow": "False", "skin": "urn:voxta:resources:characters:x:assets:skin.png"}}
    assert e.character_json("nobody") is None


def test_without_forms_or_values_there_is_no_app_configuration() -> None:
    e = engine(reply_delay=0.0)
    steps = list(e.handle("c", StartChat(character_id=APEX)))
    [chat_started] = [m for m in messages(steps) if isinstance(m, ChatStarted)]
    assert chat_started.characters[0].app_configuration is None


def test_queued_app_trigger_records_its_completion_once() -> None:
    e = engine(reply_delay=0.0)
    sid = started(e)
    trigger_id, steps = e.queue_app_trigger(sid, "SelectView", ["map", 2, True],
                                            scenario_role="guide")
    [trigger] = messages(steps)
    assert isinstance(trigger, AppTrigger)
    assert (trigger.trigger_id, trigger.name, trigger.scenario_role) == (
        trigger_id, "SelectView", "guide")
    assert [msgspec.json.decode(a) for a in trigger.arguments or ()] == ["map", 2, True]
    assert not e.app_triggers[trigger_id].completed
    assert tags(e.handle("c", AppTriggerComplete(session_id=sid, trigger_id="unknown"))) == [
        "done"]
    assert tags(e.handle("c", AppTriggerComplete(session_id=sid, trigger_id=trigger_id))) == [
        "done"]
    assert e.app_triggers[trigger_id].completed
    assert tags(e.handle("c", AppTriggerComplete(session_id=sid, trigger_id=trigger_id))) == [
        "done"]  # a repeat does nothing


def test_an_app_trigger_complete_for_another_session_is_ignored() -> None:
    e = engine(reply_delay=0.0)
    sid = started(e)
    trigger_id, _ = e.queue_app_trigger(sid, "Wave")
    e.connect("d")
    list(e.handle("d", AUTH))
    other = started(e, "d")
    list(e.handle("d", AppTriggerComplete(session_id=other, trigger_id=trigger_id)))
    assert not e.app_triggers[trigger_id].completed


def test_scripts_send_queued_triggers_and_vision_requests() -> None:
    data = msgspec.structs.replace(DEFAULT_DATA, scripts=(ReplyScript(
        keyword="look", reply="Let me see.", app_trigger="Look", app_trigger_queued=True,
        vision_capture="Eyes"),))
    e = MockEngine(data, seed=7, reply_delay=0.0)
    e.connect("c")
    list(e.handle("c", AUTH))
    sid = started(e)
    sent = messages(e.handle("c", Send(session_id=sid, text="look around")))
    [trigger] = [m for m in sent if isinstance(m, AppTrigger)]
    [vision] = [m for m in sent if isinstance(m, VisionCaptureRequest)]
    assert trigger.trigger_id in e.app_triggers
    assert vision.source is ComputerVisionSource.EYES
    assert e.vision_requests[vision.vision_capture_request_id].state == "pending"


def test_vision_requests_go_to_the_owner_and_are_answered_once() -> None:
    e = engine(reply_delay=0.0)
    sid = started(e)
    e.connect("d")
    list(e.handle("d", AUTH))
    list(e.handle("d", SubscribeToChat(session_id=sid)))
    request_id, steps = e.request_vision_capture(sid)
    [step] = list(steps)
    assert isinstance(step, Emit)
    assert step.to == ("c",)
    assert step.message == VisionCaptureRequest(
        session_id=sid, vision_capture_request_id=request_id, source=ComputerVisionSource.SCREEN)
    assert e.answer_vision_request(request_id, "another", uploaded=True) is not None
    assert e.answer_vision_request(request_id, sid, uploaded=True) is None
    assert e.answer_vision_request(request_id, sid, uploaded=False) is not None
    assert e.answer_vision_request("nope", None, uploaded=True) is not None
    second, _ = e.request_vision_capture(sid)
    list(e.handle("c", StopChat(session_id=sid)))
    assert e.vision_requests[second].state == "cancelled"  # the session closed


def test_update_context_variables_come_back_in_context_updated() -> None:
    e = engine(reply_delay=0.0)
    sid = started(e)
    update = UpdateContext(session_id=sid, variables={"health": msgspec.Raw(b"20")})
    [context] = [m for m in messages(e.handle("c", update)) if isinstance(m, ContextUpdated)]
    assert context.variables == {"health": msgspec.Raw(b"20")}
    list(e.handle("c", SubscribeToChat(session_id=sid)))  # a second look: chatStarted
    e.connect("d")
    list(e.handle("d", AUTH))
    [again] = [m for m in messages(e.handle("d", SubscribeToChat(session_id=sid)))
               if isinstance(m, ChatStarted)]
    assert again.context.variables == {"health": msgspec.Raw(b"20")}


def test_a_queued_trigger_holds_the_next_command_until_acknowledged() -> None:
    e = engine(reply_delay=0.0)
    sid = started(e)
    trigger_id, steps = e.queue_app_trigger(sid, "Wave")
    list(steps)
    held = e.handle("c", Send(session_id=sid, text="hi"))
    assert [tag(next(held)) for _ in range(3)] == ["done", "wait", "wait"]  # nothing else
    assert tags(e.handle("c", Interrupt(session_id=sid)))[0] == "done"  # not held
    list(e.handle("c", AppTriggerComplete(session_id=sid, trigger_id=trigger_id)))
    assert tags(held)[:3] == ["update", "chatFlow", "chatFlow"]  # the send runs now


def test_an_unacknowledged_trigger_holds_commands_until_its_timeout() -> None:
    now = [1_767_000_000.0]
    e = MockEngine(seed=7, reply_delay=0.0, clock=lambda: now[0], app_trigger_timeout=5.0)
    e.connect("c")
    list(e.handle("c", AUTH))
    sid = started(e)
    trigger_id, steps = e.queue_app_trigger(sid, "Wave")
    list(steps)
    held = e.handle("c", Send(session_id=sid, text="hi"))
    assert [tag(next(held)) for _ in range(2)] == ["done", "wait"]
    now[0] += 4.9
    assert tag(next(held)) == "wait"
    now[0] += 0.1
    assert tag(next(held)) == "update"
    assert e.app_triggers[trigger_id].timed_out
    assert not e.app_triggers[trigger_id].completed
    assert tags(e.handle("c", Send(session_id=sid, text="again")))[1] == "update"  # not held


def test_a_held_command_is_dropped_when_its_session_closes() -> None:
    e = engine(reply_delay=0.0)
    sid = started(e)
    _, steps = e.queue_app_trigger(sid, "Wave")
    list(steps)
    held = e.handle("c", Send(session_id=sid, text="hi"))
    assert [tag(next(held)) for _ in range(2)] == ["done", "wait"]
    list(e.handle("c", StopChat(session_id=sid)))
    assert list(held) == []
