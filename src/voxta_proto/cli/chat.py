"""``voxta chat``: a terminal chat with a Voxta server, or with the bundled mock.

`ChatApp` runs one chat. Three kinds of concurrent work share one task group:

* the **display** reads ``client.events()`` in order and draws the transcript: a
  thinking and speaking status, the streamed reply, one line per action and app trigger;
* the **input** reads stdin lines and turns them into messages and ``/commands``;
* the **signal watcher** makes Ctrl-C interrupt a running reply first and quit next.

A turn is "busy" from the moment we ask for a reply until the server says it waits for
user input again (``chatFlow WaitingForUserInput``), cancels the reply, or reports an
error. On a terminal input is sent as it is typed (a new message interrupts a running
reply, as in Voxta); from a pipe each line waits for the previous turn, so a script of
lines plays as a conversation. ``voxta_mock`` is imported only when the embedded server
is used.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TextIO

import anyio
from anyio.abc import TaskGroup
from anyio.from_thread import BlockingPortal
from anyio.streams.memory import MemoryObjectReceiveStream

from voxta_proto.cli_defaults import MOCK_REPLY_DELAY, MOCK_SEED
from voxta_proto.client import Closed, EventStream, Reconnected, Reconnecting, VoxtaClient
from voxta_proto.errors import (
    ConnectionClosed,
    HandshakeRejected,
    NegotiationError,
    VoxtaProtoError,
)
from voxta_proto.voxta.enums import ChatFlowStates, ChatMessageRole
from voxta_proto.voxta.server_messages import (
    Action,
    AppTrigger,
    CharactersListLoaded,
    ChatClosed,
    ChatFlow,
    ChatSessionError,
    ChatStarted,
    ErrorMessage,
    InterruptSpeech,
    ReplyCancelled,
    ReplyChunk,
    ReplyEnd,
    ReplyGenerating,
    ReplyStart,
    ServerMessage,
    SpeechPlaybackComplete,
    SpeechPlaybackStart,
    Update,
)
from voxta_proto.voxta.shapes import CharactersListItem

from .terminal import LineEditor, LineReader, Screen

__all__ = ["COMMANDS", "ChatApp", "ChatOptions", "Fatal", "find_character"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM

PROMPT = "you> "
COMMANDS: dict[str, str] = {
    "/retry": "ask for another reply to your last message",
    "/revert": "take back your last message and what followed it",
    "/interrupt": "stop the reply being written (Ctrl-C does it too)",
    "/characters": "list the characters; /characters N or NAME chats with another",
    "/new": "start a new chat with the same character",
    "/help": "show this help",
    "/quit": "leave (Ctrl-D, or Ctrl-C when no reply is running)",
}
SERVER_COMMANDS = frozenset({"event", "story", "note", "instructions", "secret", "char",
                             "noreply", "setflags", "context"})
"""Voxta's own slash commands: typed in the chat they go to the server as a message."""
NO_REPLY_COMMANDS = frozenset({"note", "instructions", "secret", "noreply", "setflags",
                               "context"})
"""Server commands that store something and get no reply: the turn ends when the server
confirms the stored message (an ``update``), or at once when it sends nothing back."""
NO_REPLY_GRACE = 2.0
"""Seconds to wait for that confirmation; a server may store without one."""
MOCK_WORDS_PER_CHUNK = 3
"""The embedded mock streams a few words per chunk, so streaming is visible."""


class Fatal(Exception):
    """Ends the program with one line on stderr and ``status``."""

    def __init__(self, message: str, status: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ChatOptions:
    """What ``voxta chat`` was asked to do (see ``voxta chat --help``)."""

    url: str | None = None
    token: str | None = None
    character: str | None = None
    messages: Sequence[str] = ()
    seed: int | None = None
    reply_delay: float | None = None
    data: str | None = None
    connect_timeout: float = 10.0
    reply_timeout: float = 120.0
    reconnect: Sequence[float] | None = None
    """Reconnect delays for a real server (None: the client's default policy)."""


def find_character(characters: Sequence[CharactersListItem],
                   wanted: str) -> CharactersListItem | None:
    """By id, by name (any case), by the start of one name, or by list number."""
    text = wanted.strip()
    folded = text.casefold()
    for character in characters:
        if folded in (character.id.casefold(), character.name.casefold()):
            return character
    prefixed = [c for c in characters if c.name.casefold().startswith(folded)]
    if folded and len(prefixed) == 1:
        return prefixed[0]
    if text.isdigit() and 1 <= int(text) <= len(characters):
        return characters[int(text) - 1]
    return None


def server_command(text: str) -> str | None:
    """The name of the Voxta slash command ``text`` starts with, if it is one."""
    if not text.startswith("/") or text.startswith("//"):
        return None
    name = text[1:].split(None, 1)[0].rstrip(":").casefold() if text[1:].strip() else ""
    return name if name in SERVER_COMMANDS else None


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ChatApp:
    """One run of ``voxta chat``; ``status = await ChatApp(options).run()``.

    Args:
        options: what to do.
        stdout, stderr: where the transcript and the errors go.
        stdin_fd: where lines are read from (interactive mode only).
        interactive_input: treat input as typed on a terminal (default: whether
            ``stdin_fd`` and ``stdout`` are terminals).
    """

    def __init__(self, options: ChatOptions, *, stdout: TextIO | None = None,
                 stderr: TextIO | None = None, stdin_fd: int = 0,
                 interactive_input: bool | None = None) -> None:
        self.options = options
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.stdin_fd = stdin_fd
        self.scripted = bool(options.messages)
        self.out = Screen(self.stdout)
        # With --message, stdout carries only the reply; notes go to stderr.
        self.notes = Screen(self.stderr, status_lines=False) if self.scripted else self.out
        if interactive_input is None:
            interactive_input = _is_terminal(stdin_fd) and self.out.tty
        self.typing = interactive_input and not self.scripted
        self.exit_code = EXIT_OK
        self.client: VoxtaClient | None = None
        self.characters: tuple[CharactersListItem, ...] = ()
        self.character: CharactersListItem | None = None
        self.session_id: str | None = None
        self.names: dict[str, str] = {}
        self.transcript: dict[str, tuple[str, str]] = {}
        self.errors: list[str] = []
        self._tg: TaskGroup | None = None
        self._quitting = False
        # anyio objects need a running event loop: run() makes them.
        self._work: anyio.CancelScope
        self._chat_scope: anyio.CancelScope | None = None
        self._idle: anyio.Event
        self._streaming: anyio.Event
        self._synced: anyio.Event
        self._syncing = False
        self._starting: str | None = None   # character id of a chat being started
        self._cut: dict[str, bool] = {}    # replies we cut short -> their end ends the turn
        self._live: dict[str, str] = {}    # streaming reply id -> text so far
        self._ends: dict[str, int] = {}    # streaming reply id -> end index so far
        self._narration: set[str] = set()
        self._speaking: set[str] = set()   # replies whose audio is playing somewhere
        self._interrupted = False          # Ctrl-C already interrupted this turn
        self._show_replies = not self.scripted
        self._chatting = False             # past the character prompt
        self._storing = False              # a /note-like command awaits its update

    # -- running -----------------------------------------------------------------------

    async def run(self) -> int:
        """Run until the chat ends; returns the exit status (errors are printed)."""
        self._work = anyio.CancelScope()
        self._idle = anyio.Event()
        self._idle.set()
        self._streaming = anyio.Event()
        self._streaming.set()
        async with anyio.create_task_group() as tg:
            self._tg = tg
            if sys.platform != "win32":
                tg.start_soon(self._watch_signals)
            try:
                await self._run()
            except Fatal as exc:
                self.fail(str(exc), exc.status)
            tg.cancel_scope.cancel()
        if self.exit_code == EXIT_SIGINT and self.out.tty:
            self.out.settle()
            self.out.line("")  # the terminal echoed ^C: leave the shell a fresh line
        return self.exit_code

    def fail(self, message: str, status: int = EXIT_ERROR) -> None:
        """Print one error line, set the exit status and stop the chat."""
        if not self._quitting:
            self.out.settle()
            if self.notes is not self.out:
                self.notes.settle()
            self.stderr.write(f"voxta: error: {message}\n")
            self.stderr.flush()
        self.quit(status)

    def quit(self, status: int = EXIT_OK) -> None:
        if not self._quitting:
            self._quitting = True
            self.exit_code = status
        (self._chat_scope or self._work).cancel()

    async def _run(self) -> None:
        # Quitting while connecting cancels everything (_work); once the chat runs it
        # cancels only the chat's tasks, so the client still closes gracefully.
        with self._work:
            async with AsyncExitStack() as stack:
                url = self.options.url
                if url is None:
                    url = await self._start_mock(stack)
                client = await self._connect(stack, url)
                events = client.events()
                stack.push_async_callback(events.aclose)
                async with anyio.create_task_group() as tg:
                    self._chat_scope = tg.cancel_scope
                    tg.start_soon(self._display, events)
                    try:
                        if self.scripted:
                            await self._run_messages(client)
                        else:
                            async with BlockingPortal() as portal, \
                                    self._reader(portal) as lines:
                                await self._run_chat(client, lines)
                    except Fatal as exc:  # raised here, so no task group wraps it
                        self.fail(str(exc), exc.status)
                    tg.cancel_scope.cancel()
        self.out.settle()

    def _reader(self, portal: BlockingPortal) -> LineReader:
        """Typed lines, edited in the footer on a terminal; else plain lines."""
        if self.typing and _is_terminal(self.stdin_fd) and sys.platform != "win32":
            return LineEditor(portal, self.out, self.stdin_fd)
        return LineReader(portal, self.stdin_fd)

    async def _start_mock(self, stack: AsyncExitStack) -> str:
        """Start the bundled mock server on a free loopback port; returns its URL."""
        try:
            from voxta_mock import DEFAULT_DATA, DataError, MockVoxtaServer, load_data
        except ImportError as exc:  # pragma: no cover - both ship in one wheel
            raise Fatal(f"the bundled mock server is missing ({exc}); pass --url") from None
        try:
            data = load_data(self.options.data) if self.options.data else DEFAULT_DATA
        except DataError as exc:
            raise Fatal(str(exc), EXIT_USAGE) from None
        seed = MOCK_SEED if self.options.seed is None else self.options.seed
        delay = self.options.reply_delay
        server = MockVoxtaServer(port=0, data=data, seed=seed,
                                 reply_delay=MOCK_REPLY_DELAY if delay is None else delay)
        server.engine.words_per_chunk = MOCK_WORDS_PER_CHUNK
        try:
            await stack.enter_async_context(server)
        except OSError as exc:
            raise Fatal(f"cannot start the bundled mock server: {exc.strerror or exc}") from None
        self.notes.line(self.notes.style(
            f"Started the bundled mock Voxta server at {server.url} "
            "(no --url given, so no real server is needed).", "dim"))
        return server.url

    async def _connect(self, stack: AsyncExitStack, url: str) -> VoxtaClient:
        """Negotiate, connect and authenticate; connection errors become `Fatal`."""
        options = self.options
        token = options.token if options.url is not None else None
        if options.url is not None:
            self.notes.status(f"Connecting to {url}…")
        client = VoxtaClient(url, token=token, connect_timeout=options.connect_timeout,
                             client_name="voxta-cli", use_stored_token=options.url is not None,
                             reconnect=() if options.url is None else options.reconnect)
        try:
            await stack.enter_async_context(client)
        except NegotiationError as exc:
            hint = ""
            if exc.status_code in (401, 403):
                hint = (f"; pass a valid --token, set VOXTA_API_KEY or run voxta login "
                        f"--url {url}" if client.options.access_token is None
                        else "; check --token / VOXTA_API_KEY (or run voxta login again)")
            raise Fatal(f"cannot connect to {url}: {exc}{hint}") from None
        except HandshakeRejected as exc:
            raise Fatal(f"{url} refused the connection: {exc}") from None
        except (VoxtaProtoError, OSError) as exc:
            raise Fatal(f"cannot connect to {url}: {exc}") from None
        except TimeoutError:
            raise Fatal(f"cannot connect to {url}: no answer within "
                        f"{options.connect_timeout:g} s") from None
        self.client = client
        if options.url is not None:
            self.notes.settle()  # on a terminal: erase the "Connecting" status
        return client

    async def _request(self, call: Awaitable[object], what: str) -> bool:
        """Await a client call; a failure is a note, not the end of the chat."""
        try:
            await call
        except ConnectionClosed:
            # The client's own text is about its API (connect(), async with): not ours.
            self._note_error(f"{what} failed: not connected to the server right now")
            self._set_idle()
            return False
        except (VoxtaProtoError, TimeoutError) as exc:
            self._note_error(f"{what} failed: {exc}")
            self._set_idle()
            return False
        return True

    # -- characters --------------------------------------------------------------------

    async def _load_characters(self, client: VoxtaClient) -> None:
        try:
            listed = await client.load_characters_list()
        except (VoxtaProtoError, TimeoutError) as exc:
            raise Fatal(f"cannot list the characters: {exc}") from None
        self.characters = tuple(c for c in listed if not c.hidden) or tuple(listed)
        if not self.characters:
            raise Fatal("the server has no characters to chat with")

    def _default_character(self, client: VoxtaClient) -> CharactersListItem:
        welcome = client.welcome
        assistant = welcome.assistant if welcome is not None else None
        if assistant is not None:
            found = find_character(self.characters, assistant.id)
            if found is not None:
                return found
        return self.characters[0]

    def _character_list(self) -> list[str]:
        lines = []
        for number, character in enumerate(self.characters, 1):
            mark = "*" if self.character is not None and character.id == self.character.id \
                else " "
            extra = f"  ({', '.join(character.tags)})" if character.tags else ""
            lines.append(f" {mark}{number:>2}. {character.name}{extra}")
        return lines

    async def _choose(self, client: VoxtaClient,
                      lines: MemoryObjectReceiveStream[str] | None) -> CharactersListItem | None:
        """The character to chat with: ``--character``, a numbered prompt on a
        terminal, else the server's assistant. None when input ended at the prompt."""
        wanted = self.options.character
        if wanted is not None:
            found = find_character(self.characters, wanted)
            if found is None:
                names = ", ".join(c.name for c in self.characters)
                raise Fatal(f"no character {wanted!r} on the server (it has: {names})",
                            EXIT_USAGE)
            return found
        default = self._default_character(client)
        if lines is None or not self.typing:
            if not self.scripted:
                self.notes.line(self.notes.style(
                    f"Chatting with {default.name} (--character or /characters picks "
                    "another).", "dim"))
            return default
        self.out.line("Characters:")
        for line in self._character_list():
            self.out.line(line)
        number = self.characters.index(default) + 1
        while True:
            self.out.prompt(f"Pick a character [1-{len(self.characters)}, Enter for "
                            f"{number}]: ")
            try:
                answer = (await lines.receive()).strip()
            except anyio.EndOfStream:
                return None
            self.out.entered()
            if not answer:
                return default
            found = find_character(self.characters, answer)
            if found is not None:
                return found
            self.out.line(f"No character {answer!r}; type its number or name.")

    async def _start_chat(self, client: VoxtaClient, character: CharactersListItem) -> bool:
        """Start a chat with ``character``; the greeting streams through the display."""
        self.character = character
        self._begin_turn()
        # The display takes the next chatStarted with this character as ours (and clears
        # this); it may see it before or after start_chat() returns here.
        self._starting = character.id.casefold()
        ok = await self._request(client.start_chat(character.id), "starting the chat")
        if not ok:
            self._starting = None
        return ok

    # -- the two modes -----------------------------------------------------------------

    async def _run_messages(self, client: VoxtaClient) -> None:
        """``--message``: one turn per message, each reply printed on stdout."""
        await self._load_characters(client)
        character = await self._choose(client, None)
        assert character is not None
        if not await self._start_chat(client, character):
            raise Fatal(self.errors[-1] if self.errors else "the chat did not start")
        await self._wait_idle(what="the greeting")
        for text in self.options.messages:
            self._show_replies = True
            if server_command(text) in NO_REPLY_COMMANDS:
                await self._store(client, text)
            else:
                self._begin_turn()
                if not await self._request(client.send_message(text), "sending the message"):
                    break
                await self._wait_idle(what="a reply")
            if self.errors:
                break
        if self.errors:
            raise Fatal(self.errors[-1])

    async def _run_chat(self, client: VoxtaClient,
                        lines: MemoryObjectReceiveStream[str]) -> None:
        await self._load_characters(client)
        character = await self._choose(client, lines)
        if character is None:
            return
        self.out.line(self.out.style(
            "Type a message and press Enter. /help lists the commands; Ctrl-C stops a "
            "reply, Ctrl-D quits.", "dim"))
        self._chatting = True
        await self._start_chat(client, character)
        while True:
            try:
                text = await lines.receive()
            except anyio.EndOfStream:
                if not self.typing:  # let a script's last reply finish
                    await self._wait_idle(what="a reply")
                    await self._barrier(client)
                return
            self.out.entered()
            text = text.strip()
            if not text:
                self._reprompt()
                continue
            if not self.typing:
                # A script: wait for the previous turn (an /interrupt only for its start).
                if text.casefold() == "/interrupt":
                    await self._wait_streaming()
                else:
                    await self._wait_idle(what="a reply")
                self.out.line(f"{self.out.style('You:', 'bold')} {text}")
            if await self._command(client, text):
                return
            self._reprompt()

    async def _command(self, client: VoxtaClient, text: str) -> bool:
        """Run one input line; True means quit."""
        if not text.startswith("/") or text.startswith("//"):
            if self.session_id is None:
                self.notes.line("[no chat running: /new starts one]")
                return False
            self._cut_live(ends_turn=False)  # a new message cuts a running reply
            self._begin_turn()
            await self._request(client.send_message(text[1:] if text.startswith("//")
                                                    else text), "sending")
            return False
        name, _, argument = text.partition(" ")
        name = name.casefold()
        argument = argument.strip()
        actions: dict[str, Callable[[], Awaitable[None]]] = {
            "/retry": lambda: self._retry(client),
            "/revert": lambda: self._revert(client),
            "/interrupt": lambda: self._stop_reply(client, client.interrupt, "interrupting"),
            "/new": lambda: self._new(client),
            "/characters": lambda: self._characters(client, argument),
        }
        if server_command(text) is not None:
            if self.session_id is None:
                self.notes.line("[no chat running: /new starts one]")
            elif server_command(text) in NO_REPLY_COMMANDS:
                await self._store(client, text)
                self.notes.line(self.notes.style(f"[sent {name} to the server]", "dim"))
            else:
                self._cut_live(ends_turn=False)
                self._begin_turn()
                await self._request(client.send_message(text), "sending")
            return False
        if name in ("/quit", "/exit", "/q"):
            return True
        if name in ("/help", "/?"):
            for command, meaning in COMMANDS.items():
                self.out.line(f"  {command:<12} {meaning}")
            self.out.line("  //text       send a message that starts with /")
            self.out.line("  /note /event /secret /instructions ... TEXT: Voxta's own "
                          "commands, sent to the server")
        elif name in actions:
            await actions[name]()
        else:
            self.notes.line(f"[unknown command {name}; /help lists them]")
        return False

    async def _store(self, client: VoxtaClient, text: str) -> None:
        """Send a command that gets no reply (``/note``...); returns once the server
        confirmed it (or reported an error), or after `NO_REPLY_GRACE`."""
        self._begin_turn()
        self._storing = True
        try:
            if await self._request(client.send_message(text), "sending the command"):
                with anyio.move_on_after(NO_REPLY_GRACE):
                    await self._idle.wait()
        finally:
            self._storing = False
            self._set_idle()

    async def _retry(self, client: VoxtaClient) -> None:
        if self._need_session():
            self._cut_live(ends_turn=False)
            self._begin_turn()
            await self._request(client.retry(), "retry")

    async def _stop_reply(self, client: VoxtaClient, call: Callable[[], Awaitable[None]],
                          what: str) -> None:
        if self._need_session():
            self._cut_live(ends_turn=True)
            await self._request(call(), what)

    async def _revert(self, client: VoxtaClient) -> None:
        await self._stop_reply(client, client.revert, "reverting")
        if not self.typing:
            await self._barrier(client)  # a script's next line comes after the removals

    async def _barrier(self, client: VoxtaClient) -> None:
        """Wait until the display has drawn what the server sent before a fresh request
        (the characters list) was answered: messages on one connection keep their order."""
        self._synced = anyio.Event()
        self._syncing = True
        try:
            if await self._request(client.load_characters_list(), "listing characters"):
                with anyio.move_on_after(self.options.reply_timeout):
                    await self._synced.wait()
        finally:
            self._syncing = False

    async def _new(self, client: VoxtaClient) -> None:
        if self.character is not None:
            await self._start_chat(client, self.character)

    async def _characters(self, client: VoxtaClient, argument: str) -> None:
        if not argument:
            for line in self._character_list():
                self.out.line(line)
            self.out.line(self.out.style("(/characters N or NAME starts a chat with one)",
                                         "dim"))
            return
        found = find_character(self.characters, argument)
        if found is None:
            self.notes.line(f"[no character {argument!r}; /characters lists them]")
            return
        await self._start_chat(client, found)

    def _need_session(self) -> bool:
        if self.session_id is None:
            self.notes.line("[no chat running: /new starts one]")
            return False
        return True

    # -- turns -------------------------------------------------------------------------

    def _begin_turn(self) -> None:
        if self._idle.is_set():
            self._idle = anyio.Event()
        if self._streaming.is_set():
            self._streaming = anyio.Event()
        self._interrupted = False

    def _cut_live(self, *, ends_turn: bool) -> None:
        """The replies streaming now will end early; with ``ends_turn`` nothing follows
        them (no ``chatFlow`` is promised after a stopped reply), so their end is idle."""
        for message_id in self._live:
            self._cut[message_id] = ends_turn

    def _set_idle(self) -> None:
        self._idle.set()
        self._streaming.set()

    @property
    def busy(self) -> bool:
        """A reply is asked for or running."""
        return not self._idle.is_set()

    async def _wait_idle(self, *, what: str) -> None:
        with anyio.move_on_after(self.options.reply_timeout):
            await self._idle.wait()
        if not self._idle.is_set():
            message = f"no end of {what} within {self.options.reply_timeout:g} s"
            if self.scripted:
                raise Fatal(message)
            self._note_error(message)
            self._set_idle()

    async def _wait_streaming(self) -> None:
        with anyio.move_on_after(self.options.reply_timeout):
            await self._streaming.wait()

    def _reprompt(self) -> None:
        if self.typing and self._chatting and not self.busy and not self._quitting:
            self.out.prompt(PROMPT)

    # -- signals -----------------------------------------------------------------------

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                if self._quitting:  # a second signal while closing: stop at once
                    assert self._tg is not None
                    self._tg.cancel_scope.cancel()
                    return
                if signum == signal.SIGTERM:
                    self.quit(EXIT_SIGTERM)
                elif self.scripted:
                    self.quit(EXIT_SIGINT)
                elif self.busy and not self._interrupted and self.client is not None \
                        and self.session_id is not None:
                    self._interrupted = True
                    self.notes.line(self.notes.style(
                        "[interrupting the reply; press Ctrl-C again to quit]", "yellow"))
                    client = self.client
                    assert self._tg is not None
                    self._tg.start_soon(self._stop_reply, client, client.interrupt,
                                        "interrupting")
                else:
                    self.quit(EXIT_SIGINT)

    # -- display -----------------------------------------------------------------------

    async def _display(self, events: EventStream) -> None:
        async for event in events:
            if isinstance(event, Closed):
                if not self._quitting:
                    self.fail(f"the connection closed: {event.error or 'by the server'}")
                return
            if isinstance(event, Reconnecting):
                # A reply that was streaming will not finish; the turn is over.
                self._live.clear()
                self._set_idle()
                why = str(event.error or "")
                why = f": {why}" if why and why != "connection lost" else ""
                self.notes.line(self.notes.style(
                    f"[connection lost{why}; reconnecting in {event.delay:g} s, "
                    f"attempt {event.attempt}]", "yellow"))
            elif isinstance(event, Reconnected):
                self.notes.line(self.notes.style("[reconnected]", "yellow"))
            elif isinstance(event, ServerMessage):
                self.show(event)
            self._reprompt()
        if not self._quitting:
            self.fail("the connection closed")

    def _name(self, sender_id: str, *, narration: bool = False) -> str:
        name = self.names.get(sender_id.casefold())
        if name is not None:
            return name
        return "Narrator" if narration else "?"

    def _ours(self, message: ServerMessage) -> bool:
        session_id = getattr(message, "session_id", None)
        return session_id is None or session_id == self.session_id

    def show(self, message: ServerMessage) -> None:
        """Draw one server message (those of other sessions are skipped)."""
        if isinstance(message, ChatStarted):
            self._chat_started(message)
            return
        if isinstance(message, CharactersListLoaded):
            if self._syncing:
                self._synced.set()
            return
        if isinstance(message, ErrorMessage):
            self._note_error(message.message)
            self._set_idle()
            return
        if not self._ours(message):
            return
        if isinstance(message, ReplyGenerating):
            if not self.busy:  # a reply we did not ask for (the next character, say)
                self._idle = anyio.Event()
                self._streaming = anyio.Event()
            if message.is_narration:
                self._narration.add(message.message_id)
            if self._show_replies:
                name = self._name(message.sender_id, narration=message.is_narration)
                self.notes.status(f"{name} is thinking…")
        elif isinstance(message, ReplyStart):
            self._live[message.message_id] = ""
        elif isinstance(message, ReplyChunk):
            self._chunk(message)
        elif isinstance(message, ReplyEnd):
            self._reply_end(message)
        elif isinstance(message, ReplyCancelled):
            self._live.pop(message.message_id, None)
            if self._show_replies:
                self.notes.line(self.notes.style("[reply cancelled]", "dim"))
            self._set_idle()
        elif isinstance(message, SpeechPlaybackStart):
            self._speech_started(message)
        elif isinstance(message, (SpeechPlaybackComplete, InterruptSpeech)):
            self._speech_ended(message.message_id)
        elif isinstance(message, Action):
            self._action(message)
        elif isinstance(message, AppTrigger):
            arguments = ", ".join(bytes(a).decode("utf-8", "replace")
                                  for a in message.arguments or ())
            self.notes.line(self.notes.style(f"[app trigger] {message.name}({arguments})",
                                             "cyan"))
        elif isinstance(message, Update):
            self._update(message)
        elif isinstance(message, ChatFlow):
            if message.state == ChatFlowStates.WAITING_FOR_USER_INPUT:
                self._set_idle()
        elif isinstance(message, ChatSessionError):
            self._note_error(message.message)
            self._set_idle()
        elif isinstance(message, ChatClosed) and self._starting is None:
            self.session_id = None
            self.notes.line("[the server closed this chat; /new starts another]")
            self._set_idle()

    def _chat_started(self, message: ChatStarted) -> None:
        ours = message.session_id == self.session_id or (
            self._starting is not None
            and any(c.id.casefold() == self._starting for c in message.characters))
        if not ours:
            return
        self._starting = None
        if message.session_id == self.session_id:
            return  # the same chat again (subscribed anew, or after a reconnect)
        self._live.clear()
        self._ends.clear()
        self.session_id = message.session_id
        self.names = {c.id.casefold(): c.name for c in message.characters}
        self.names[message.user.id.casefold()] = "You"
        for chat_message in message.messages:
            self.transcript[chat_message.message_id] = (
                self._name(chat_message.sender_id), chat_message.text)
        if not self.scripted:
            names = " and ".join(c.name for c in message.characters) or "nobody"
            self.notes.line(self.notes.style(f"[chat started with {names}]", "dim"))

    def _stream(self, message_id: str, sender_id: str, text: str) -> None:
        if self.notes is not self.out:
            self.notes.settle()
        label = "" if self.scripted else self.out.style(
            f"{self._name(sender_id, narration=message_id in self._narration)}: ", "bold")
        self.out.stream(message_id, label, text)

    def _chunk(self, chunk: ReplyChunk) -> None:
        mid = chunk.message_id
        so_far = self._live.get(mid, "")
        gap = " " if so_far and chunk.start_index > self._ends.get(mid, 0) else ""
        self._live[mid] = so_far + gap + chunk.text
        self._ends[mid] = chunk.end_index
        self._streaming.set()
        if self._show_replies:
            self._stream(mid, chunk.sender_id, gap + chunk.text)

    def _reply_end(self, end: ReplyEnd) -> None:
        mid = end.message_id
        text = self._live.pop(mid, None)
        self._ends.pop(mid, None)
        cut = mid in self._cut
        ends_turn = self._cut.pop(mid, False)
        if text:
            self.transcript[mid] = (self._name(end.sender_id), text)
        if self._show_replies and text:
            mark = self.out.style(" [interrupted]", "yellow") if cut else ""
            if not self.out.end_stream(mid, mark) and cut:
                self.notes.line(self.notes.style(
                    f"[{self._name(end.sender_id)}'s reply was interrupted]", "yellow"))
        if ends_turn:
            self._set_idle()

    def _speech_started(self, start: SpeechPlaybackStart) -> None:
        """The reply's audio began playing (in whichever client plays it): show that the
        character is speaking, once per reply, until its playback ends."""
        mid = start.message_id
        if mid in self._speaking or not self._show_replies:
            return
        self._speaking.add(mid)
        sender = self.transcript.get(mid, ("The character", ""))[0]
        self.notes.status(f"{sender} is speaking…")

    def _speech_ended(self, message_id: str) -> None:
        if message_id in self._speaking:
            self._speaking.discard(message_id)
            if self.notes.tty:
                self.notes.settle()  # erase the "speaking" status

    def _action(self, action: Action) -> None:
        if not action.value:
            return  # inference chose nothing
        arguments = ", ".join(f"{a.name}={a.value}" for a in action.arguments or ())
        layer = f" [layer {action.layer}]" if action.layer else ""
        who = self._name(action.sender_id)
        call = f"{action.value}({arguments})" if arguments else action.value
        self.notes.line(self.notes.style(f"[action] {who}: {call}{layer}", "cyan"))

    def _update(self, update: Update) -> None:
        mid = update.message_id
        if self._storing and update.text is not None:
            self._set_idle()  # the server stored the /note (or similar): that is all
        if update.text is not None:
            who = "You" if update.role == ChatMessageRole.USER else self._name(update.sender_id)
            self.transcript[mid] = (who, update.text)
            return
        who, text = self.transcript.pop(mid, ("", ""))
        line = f"[removed] {who}: {_short(text)}" if who else "[removed a message]"
        self.notes.line(self.notes.style(line, "dim"))

    def _note_error(self, message: str) -> None:
        self.errors.append(message)
        if self.scripted:
            return  # --message ends with this error as its one stderr line
        self.notes.line(self.notes.style(f"[error] {message}", "red"))


def _is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False
