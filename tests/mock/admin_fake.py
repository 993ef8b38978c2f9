"""A fake server behind the admin API: it records what the API asked of it, and knows two
connections ("c1" in session "s1", and "c2") and one stored chat."""

from __future__ import annotations

from dataclasses import dataclass, field

from voxta_mock.admin import AdminTarget, ChatState, ConnectionState, MockState, SessionState
from voxta_mock.data import DEFAULT_DATA, MockData
from voxta_mock.expectations import Expectations
from voxta_mock.faults import FaultPlan
from voxta_mock.journal import Journal
from voxta_proto.voxta import ServerMessage

__all__ = ["FakeServer"]

_SESSIONS = {"s1": ("c1",)}


@dataclass
class FakeServer:
    """Implements :class:`AdminTarget` over plain lists."""

    journal: Journal = field(default_factory=lambda: Journal(clock=lambda: 1767000000.0))
    expectations: Expectations = field(default_factory=Expectations)
    data: MockData = DEFAULT_DATA
    faults: list[tuple[FaultPlan | None, int | None]] = field(default_factory=list)
    pushed: list[tuple[str, ServerMessage]] = field(default_factory=list)
    resets: int = 0
    connection_faults: list[tuple[str, str]] = field(default_factory=list)

    def push(self, message: ServerMessage, *, connection: str | None = None,
             session_id: str | None = None) -> int:
        if connection is not None:
            targets: tuple[str, ...] = (connection,) if connection in ("c1", "c2") else ()
        elif session_id is not None:
            targets = _SESSIONS.get(session_id, ())
        else:
            targets = ("c1", "c2")
        for key in targets:
            self.pushed.append((key, message))
            self.journal.record_sent(key, message)
        return len(targets)

    def set_data(self, data: MockData) -> None:
        self.data = data

    def apply_faults(self, plan: FaultPlan | None, *, next_connections: int | None) -> None:
        self.faults.append((plan, next_connections))

    async def fault_connection(self, connection: str, action: str) -> bool:
        if connection not in ("c1", "c2"):
            return False
        self.connection_faults.append((connection, action))
        return True

    def reset(self) -> None:
        self.resets += 1
        self.data = DEFAULT_DATA
        self.faults.clear()
        self.journal.clear()
        self.expectations.clear()

    def state(self) -> MockState:
        character = "22222222-2222-4222-8222-222222222222"  # the session started before
        return MockState(
            connections=(ConnectionState(key="c1", authenticated=True, session_ids=("s1",),
                                         peer="127.0.0.1:50001"),
                         ConnectionState(key="c2", authenticated=False,
                                         peer="127.0.0.1:50002")),
            sessions=(SessionState(session_id="s1", chat_id="chat-1", connection="c1",
                                   character_ids=(character,)),),
            chats=tuple(ChatState(id=chat.id, character_ids=chat.character_ids,
                                  title=chat.title, messages=len(chat.messages))
                        for chat in self.data.chats),
        )


def _as_target(server: FakeServer) -> AdminTarget:
    return server  # mypy proves here that the fake has every member of the protocol
