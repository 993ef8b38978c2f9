"""The seed API: one method per Voxta client message, named as in ``voxta-client``.

``VoxtaApi`` builds each message and awaits its answer through ``send``; the
connection (``VoxtaClient``) provides ``send`` and the session state.
"""

from __future__ import annotations

import abc
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from voxta_proto.client.requests import M, _tuple_of
from voxta_proto.errors import (
    ConnectionClosed,
    LocalProtocolError,
    ProtocolError,
)
from voxta_proto.voxta.client_messages import (
    AddChatParticipant,
    AppTriggerComplete,
    CharacterSpeechRequest,
    ClientMessage,
    ClientSpeechPlaybackComplete,
    ClientSpeechPlaybackStart,
    ClientUpdate,
    DeleteMessage,
    Inspect,
    InspectAudioInput,
    Interrupt,
    LoadCharactersList,
    LoadChatsList,
    LoadScenariosList,
    PauseChat,
    RegisterApp,
    RemoveChatParticipant,
    RequestSuggestions,
    ResumeChat,
    Retry,
    Revert,
    Send,
    StartChat,
    StopChat,
    SubscribeToChat,
    TriggerAction,
    TypingEnd,
    TypingStart,
    UpdateContext,
)
from voxta_proto.voxta.server_messages import (
    CharactersListLoaded,
    ChatPaused,
    ChatsListLoaded,
    ChatStarted,
    ScenariosListLoaded,
    ServerMessage,
    Suggestions,
    Welcome,
)
from voxta_proto.voxta.session import (
    VoxtaClientSession,
)
from voxta_proto.voxta.shapes import (
    ActionInvocationArgument,
    AppForm,
    CharactersListItem,
    ChatListItem,
    ContextDefinition,
    ScenarioActionDefinition,
    ScenarioEventDefinition,
    ScenarioInfo,
)


class VoxtaApi(abc.ABC):
    """The request methods of [`VoxtaClient`][voxta_proto.client.connection.VoxtaClient] (see
    there)."""

    client_version: str
    _active_chat_id: str | None
    _pinned_session: str | None

    @abc.abstractmethod
    async def send(self, message: ClientMessage, *, wait: bool = True,
                   timeout: float | None = None,
                   ) -> ServerMessage | None:
        """Send any client message; see ``VoxtaClient.send``."""

    @property
    @abc.abstractmethod
    def session(self) -> VoxtaClientSession | None:
        """The sans-IO session of the current connection."""

    @property
    @abc.abstractmethod
    def session_id(self) -> str | None:
        """The chat session calls default to."""

    @property
    @abc.abstractmethod
    def last_message_id(self) -> str | None:
        """The message id the speech playback calls default to."""

    async def _request(self, message: ClientMessage, kind: type[M]) -> M:
        reply = await self.send(message)
        if not isinstance(reply, kind):
            raise ProtocolError(f"{type(message).__name__} was answered with {reply!r}")
        return reply

    def _session(self, session_id: str | None) -> str:
        """The session a call targets; raising instead of voxta-client's silent no-op."""
        target = session_id or self.session_id
        if not target:
            raise LocalProtocolError(
                "no active chat session: start_chat()/resume_chat()/subscribe_to_chat() "
                "first, or pass session_id")
        return target

    # -- connection and discovery ------------------------------------------------------

    async def authenticate(self, _token: str | None = None) -> Welcome:
        """Send ``authenticate`` again and return the new ``welcome`` (the client already
        authenticates on every connect)."""
        session = self.session
        if session is None:
            raise ConnectionClosed("not connected")
        return await self._request(session.authenticate_message, Welcome)

    async def register_app(self, label: str = "Voxta Python Client", *,
                           icon_base64_url: str | None = None,
                           configuration_form: AppForm | None = None,
                           character_form: AppForm | None = None,
                           scenario_form: AppForm | None = None,
                           script_snippets: Sequence[Any] | None = None) -> None:
        """Describe the app to the Voxta UI (``registerApp``; no reply), with the settings
        forms the user fills in there. What they fill into ``character_form`` comes back
        on ``chatStarted``: see `app_configuration()` (API 2025-11 §3.4).

        Raises:
            TypeError: a script snippet is not JSON-encodable.
        """
        snippets = None
        if script_snippets is not None:
            snippets = tuple(msgspec.Raw(msgspec.json.encode(s)) for s in script_snippets)
        await self.send(RegisterApp(
            client_version=self.client_version, label=label, icon_base64_url=icon_base64_url,
            configuration_form=configuration_form, character_form=character_form,
            scenario_form=scenario_form, script_snippets=snippets))

    def app_configuration(self, character_id: str | None = None) -> dict[str, str]:
        """The values the user filled into this app's ``character_form`` for a character
        of the current chat (``chatStarted.characters[i].appConfiguration``): field name
        to string (booleans as ``"True"``/``"true"``, assets as ``urn:voxta:...``).

        Args:
            character_id: default the chat's first character.

        Returns:
            The values; empty when the server sent none.

        Raises:
            LocalProtocolError: no chat started, or the character is not in it.
        """
        session = self.session
        participants = session.chat.participants if session is not None else ()
        if not participants:
            raise LocalProtocolError("no chat: start_chat()/resume_chat() first")
        if character_id is None:
            return dict(participants[0].app_configuration or {})
        for participant in participants:
            if participant.id.lower() == character_id.lower():
                return dict(participant.app_configuration or {})
        raise LocalProtocolError(f"character {character_id} is not in the chat")

    async def load_characters_list(self) -> tuple[CharactersListItem, ...]:
        """The server's characters: sends ``loadCharactersList`` and returns the
        ``characters`` of its ``charactersListLoaded`` answer."""
        return (await self._request(LoadCharactersList(), CharactersListLoaded)).characters

    async def load_scenarios_list(self) -> tuple[ScenarioInfo, ...]:
        """The server's scenarios: sends ``loadScenariosList`` and returns the
        ``scenarios`` of its ``scenariosListLoaded`` answer (sorted by name)."""
        return (await self._request(LoadScenariosList(), ScenariosListLoaded)).scenarios

    async def load_chats_list(self, character_id: str | None = None,
                              scenario_id: str | None = None) -> tuple[ChatListItem, ...]:
        """The chats of a character (the server requires ``character_id``)."""
        if character_id is None:
            raise ValueError("load_chats_list needs a character_id (the server requires it)")
        message = LoadChatsList(character_id=character_id, scenario_id=scenario_id)
        return (await self._request(message, ChatsListLoaded)).chats

    # -- session management ------------------------------------------------------------

    async def start_chat(self, character_id: str,
                         contexts: Sequence[ContextDefinition | Mapping[str, Any]] | None = None
                         ) -> ChatStarted:
        """Start a chat with a character; returns its ``chatStarted``."""
        message = StartChat(character_id=character_id,
                            contexts=_tuple_of(contexts, ContextDefinition))
        return await self._request(message, ChatStarted)

    async def resume_chat(self, chat_id: str) -> ChatStarted:
        """Open an existing chat in a new session owned by this connection; returns its
        ``chatStarted``, and that session becomes the default one.

        Args:
            chat_id: the chat to resume (the empty GUID resumes the user's ephemeral chat).

        Raises:
            InvocationError: the server failed the request (``error`` or
                ``missingResourcesError``).
        """
        return await self._request(ResumeChat(chat_id=chat_id), ChatStarted)

    async def stop_chat(self, chat_id: str) -> None:
        """Stop our own session (the protocol stops by session; ``chat_id`` picks it)."""
        session_id: str | None = None
        session = self.session
        if session is not None:
            chat = session.chat
            if chat.chat_id == chat_id:
                session_id = chat.session_id
            else:
                session_id = next((s.session_id for s in chat.sessions if s.chat_id == chat_id),
                                  None)
        await self.send(StopChat(session_id=session_id))

    async def subscribe_to_chat(self, session_id: str, chat_id: str) -> ChatStarted:
        """Join a running session; it becomes the default session."""
        self._pinned_session = session_id
        if chat_id:
            self._active_chat_id = chat_id
        return await self._request(SubscribeToChat(session_id=session_id), ChatStarted)

    async def add_chat_participant(self, character_id: str, session_id: str | None = None) -> None:
        """Bring a character into the chat (``addChatParticipant``); waits for the
        server's Completion (the new cast arrives as ``chatParticipantsUpdated``).

        Raises:
            LocalProtocolError: no ``session_id`` given and no active chat session.
        """
        await self.send(AddChatParticipant(session_id=self._session(session_id),
                                           character_id=character_id))

    async def remove_chat_participant(self, character_id: str,
                                      session_id: str | None = None) -> None:
        """Take a character out of the chat (``removeChatParticipant``); waits for the
        server's Completion (the new cast arrives as ``chatParticipantsUpdated``).

        Raises:
            LocalProtocolError: no ``session_id`` given and no active chat session.
        """
        await self.send(RemoveChatParticipant(session_id=self._session(session_id),
                                              character_id=character_id))

    # -- interaction -------------------------------------------------------------------

    async def send_message(self, text: str, session_id: str | None = None, do_reply: bool = True,
                           do_user_inference: bool = True,
                           do_character_inference: bool = True) -> None:
        """Send a user message; the reply streams as ``replyStart``/``replyChunk``/...."""
        await self.send(Send(session_id=self._session(session_id), text=text, do_reply=do_reply,
                             do_user_action_inference=do_user_inference,
                             do_character_action_inference=do_character_inference))

    async def update_message(self, message_id: str, text: str,
                             session_id: str | None = None) -> None:
        """Replace a stored message's text (``update``); waits for the server's
        Completion. The server echoes the change as an ``update``; an empty ``text`` on a
        message without attachments deletes it.

        Raises:
            LocalProtocolError: no ``session_id`` given and no active chat session.
        """
        await self.send(ClientUpdate(session_id=self._session(session_id),
                                     message_id=message_id, text=text))

    async def delete_message(self, message_id: str, session_id: str | None = None) -> None:
        """Delete a stored message (``deleteMessage``); waits for the server's Completion.
        The deletion arrives as an ``update`` without text.

        Raises:
            LocalProtocolError: no ``session_id`` given and no active chat session.
        """
        await self.send(DeleteMessage(session_id=self._session(session_id),
                                      message_id=message_id))

    async def trigger_action(self, action: str, arguments: Mapping[str, Any] | None = None,
                             session_id: str | None = None) -> None:
        """Run an action; argument values are sent as strings, as the server wants."""
        args = None if arguments is None else tuple(
            ActionInvocationArgument(name=k, value=v if isinstance(v, str) else json.dumps(v))
            for k, v in arguments.items())
        await self.send(TriggerAction(session_id=self._session(session_id),
                                      message_id=str(uuid.uuid4()), value=action,
                                      arguments=args))

    async def interrupt(self, session_id: str | None = None) -> None:
        """Stop the reply being generated and the speech being played (``interrupt``);
        waits for the server's Completion.

        Raises:
            LocalProtocolError: no ``session_id`` given and no active chat session.
        """
        await self.send(Interrupt(session_id=self._session(session_id)))

    async def retry(self, session_id: str | None = None) -> None:
        """Regenerate the last reply, or resubmit the last user message (``retry``);
        waits for the server's Completion, the new reply streams as events.

        Raises:
            LocalProtocolError: no ``session_id`` given and no active chat session.
        """
        await self.send(Retry(session_id=self._session(session_id)))

    async def revert(self, session_id: str | None = None) -> None:
        """Undo the last exchange: delete the last user message and everything after it
        (``revert``); waits for the server's Completion. Each deletion arrives as an
        ``update`` without text.

        Raises:
            LocalProtocolError: no ``session_id`` given and no active chat session.
        """
        await self.send(Revert(session_id=self._session(session_id)))

    async def pause(self, session_id: str | None = None, pause: bool = True) -> ChatPaused:
        """Pause the session, or resume it with ``pause=False`` (which asks the character
        for a reply at once); returns the server's ``chatPaused``.

        Raises:
            LocalProtocolError: no ``session_id`` given and no active chat session.
        """
        return await self._request(PauseChat(session_id=self._session(session_id), pause=pause),
                                   ChatPaused)

    # -- UI and presence ---------------------------------------------------------------

    async def typing_start(self, session_id: str | None = None) -> None:
        """Tell the server the user started typing (``typingStart``; only scenario
        scripts see it); waits for its Completion. End it with ``typing_end()``.

        Raises:
            LocalProtocolError: no ``session_id`` given and no active chat session.
        """
        await self.send(TypingStart(session_id=self._session(session_id)))

    async def typing_end(self, session_id: str | None = None, sent: bool = False) -> None:
        """``sent``: the typing ended with a sent message (the server requires it)."""
        await self.send(TypingEnd(session_id=self._session(session_id), sent=sent))

    async def request_suggestions(self, session_id: str | None = None) -> tuple[str, ...]:
        """Ask for replies the user could send (``requestSuggestions``); returns the
        ``suggestions`` of the server's ``suggestions`` answer.

        Raises:
            LocalProtocolError: no ``session_id`` given and no active chat session.
        """
        reply = await self._request(RequestSuggestions(session_id=self._session(session_id)),
                                    Suggestions)
        return reply.suggestions

    async def character_speech_request(self, character_id: str, session_id: str | None = None,
                                       text: str = "") -> None:
        """Make a character say exactly ``text`` (``characterSpeechRequest``), streamed
        and spoken like a reply; waits for the server's Completion.

        Raises:
            LocalProtocolError: no ``session_id`` given and no active chat session.
        """
        await self.send(CharacterSpeechRequest(session_id=self._session(session_id),
                                               character_id=character_id, text=text))

    def _message(self, message_id: str | None) -> str:
        target = message_id or self.last_message_id
        if not target:
            raise LocalProtocolError("no message id: pass message_id (no reply seen yet)")
        return target

    async def speech_playback_start(self, session_id: str | None = None,
                                    message_id: str | None = None, *, start_index: int = 0,
                                    end_index: int = 0, duration: float | None = None) -> None:
        """We started playing a reply's audio (indices come from its ``replyChunk``)."""
        await self.send(ClientSpeechPlaybackStart(
            session_id=self._session(session_id), message_id=self._message(message_id),
            start_index=start_index, end_index=end_index, duration=duration))

    async def speech_playback_complete(self, session_id: str | None = None,
                                       message_id: str | None = None) -> None:
        """We finished playing a reply's audio (``speechPlaybackComplete``; a server that
        waits for client playback continues after it); waits for its Completion.

        Args:
            session_id: the chat session; default the active one.
            message_id: the reply played; default ``last_message_id``.

        Raises:
            LocalProtocolError: no active chat session, or no ``message_id`` and no reply
                seen yet.
        """
        await self.send(ClientSpeechPlaybackComplete(session_id=self._session(session_id),
                                                     message_id=self._message(message_id)))

    async def app_trigger_complete(self, trigger_id: str,
                                   session_id: str | None = None) -> None:
        """Acknowledge a queued ``appTrigger`` (one with a ``trigger_id``) once the app has
        handled it; the server holds the session's next command until then (API 2025-11
        §3.5). Never call it for a trigger without ``trigger_id``.

        Raises:
            LocalProtocolError: no ``session_id`` given and no active chat session.
        """
        await self.send(AppTriggerComplete(session_id=self._session(session_id),
                                           trigger_id=trigger_id))

    # -- debugging and context ---------------------------------------------------------

    async def inspect(self, session_id: str, enabled: bool = True) -> None:
        """Turn the inspector (contexts, memories, execution reports) on or off for a
        session (``inspect``); waits for the server's Completion, after which
        ``inspectorEnabled`` (when it changed), ``contextUpdated`` and ``memoryUpdated``
        follow. ``session_id`` is required here: there is no default session.
        """
        await self.send(Inspect(session_id=session_id, enabled=enabled))

    async def inspect_audio_input(self, enabled: bool, session_id: str | None = None) -> None:
        """Turn the microphone check (audio levels and test transcription) on or off.

        The server's message is not session-scoped; ``session_id`` is accepted for
        voxta-client compatibility and ignored.
        """
        await self.send(InspectAudioInput(audio_frames=enabled, speech_to_text=enabled))

    async def update_context(
        self,
        session_id: str,
        context_key: str,
        contexts: Sequence[ContextDefinition | Mapping[str, Any]] | None = None,
        actions: Sequence[ScenarioActionDefinition | Mapping[str, Any]] | None = None,
        events: Sequence[ScenarioEventDefinition | Mapping[str, Any]] | None = None,
        set_flags: Sequence[str] | None = None,
        enable_roles: Mapping[str, bool] | None = None,
    ) -> None:
        """Replace what the app contributes under ``context_key`` (``updateContext``):
        contexts, actions and events; also set flags and enable or disable roles. Waits
        for the server's Completion; the new state arrives as ``contextUpdated``.

        Args:
            session_id: the chat session; an empty string means the active one.
            context_key: the namespace owning these items; use your own so scenario
                items are left alone.
            contexts: replace every context under the key (``()`` clears; None leaves
                them); shapes or plain dicts.
            actions: replace every action under the key, likewise.
            events: replace every event under the key, likewise.
            set_flags: ``name`` sets a flag, ``!name`` clears it, ``group.value`` sets an
                enum-style flag.
            enable_roles: roles to enable (True) or disable (False).

        Raises:
            LocalProtocolError: no ``session_id`` given and no active chat session.
        """
        await self.send(UpdateContext(
            session_id=self._session(session_id), context_key=context_key,
            contexts=_tuple_of(contexts, ContextDefinition),
            actions=_tuple_of(actions, ScenarioActionDefinition),
            events=_tuple_of(events, ScenarioEventDefinition),
            set_flags=None if set_flags is None else tuple(set_flags),
            enable_roles=None if enable_roles is None else dict(enable_roles)))
