"""The admin API: drive the mock over HTTP from a test suite in any language.

[`MockAdmin`][voxta_mock.admin.MockAdmin] answers ``/_mock/...`` on the mock's own port, JSON in and
out (see the admin API guide for every endpoint with examples). It talks to the server only through
[`AdminTarget`][voxta_mock.admin.AdminTarget], so it is tested against a fake and the server
implements a handful
of methods. When a token is configured, a request without ``Authorization: Bearer
<token>`` gets 401 before anything else happens.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

import msgspec

from voxta_mock.data import MockData
from voxta_mock.expectations import ExpectationError, Expectations
from voxta_mock.faults import FaultPlan
from voxta_mock.journal import Direction, Journal
from voxta_proto.errors import MessageValidationError
from voxta_proto.transports import HttpRequest, HttpResponse
from voxta_proto.voxta import ServerMessage, UnknownServerMessage, decode_server_message

__all__ = [
    "ADMIN_PREFIX",
    "AdminTarget",
    "ChatState",
    "ConnectionState",
    "MockAdmin",
    "MockState",
    "SessionState",
    "is_admin_path",
]

ADMIN_PREFIX: Final = "/_mock"
_JSON: Final = (("Content-Type", "application/json; charset=utf-8"),)
_CONNECTION_FAULTS: Final = frozenset({"drop", "silence"})
_JOURNAL_PARAMS: Final = frozenset({"type", "session", "connection", "since", "direction"})


class _State(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Base of the state snapshot: camelCase, like everything else on the wire."""


class ConnectionState(_State, frozen=True):
    """One hub connection: its key, whether it authenticated, the sessions it owns."""

    key: str
    authenticated: bool
    session_ids: tuple[str, ...] = ()
    peer: str | None = None


class SessionState(_State, frozen=True):
    """One live Voxta chat session."""

    session_id: str
    chat_id: str
    connection: str | None
    """The owning connection's key (None for a preseeded or virtual owner)."""
    character_ids: tuple[str, ...] = ()


class ChatState(_State, frozen=True):
    """One stored chat."""

    id: str
    character_ids: tuple[str, ...]
    title: str | None = None
    messages: int = 0


class MockState(_State, frozen=True):
    """What ``GET /_mock/state`` returns."""

    connections: tuple[ConnectionState, ...] = ()
    sessions: tuple[SessionState, ...] = ()
    chats: tuple[ChatState, ...] = ()


class AdminTarget(Protocol):
    """What the admin API needs from the server; the server implements each member."""

    @property
    def journal(self) -> Journal:
        """The server's journal, which it records into."""
        ...

    @property
    def expectations(self) -> Expectations:
        """The server's expectations, which it asks about each client message."""
        ...

    def push(self, message: ServerMessage, *, connection: str | None = None,
             session_id: str | None = None) -> int:
        """Queue a server message, unasked, for one connection (by key), for every
        connection in a session, or (neither given) for every connection; journal it as
        sent. Returns how many connections it was queued for (0: none known)."""
        ...

    def set_data(self, data: MockData) -> None:
        """Use this data from now on: characters, scenarios, chats, replies, scripts
        (what ``--data`` loads); live sessions may keep what they started with."""
        ...

    def apply_faults(self, plan: FaultPlan | None, *, next_connections: int | None) -> None:
        """Set the fault plan of every future hub connection (``next_connections`` None),
        or of the next n only; None clears it."""
        ...

    async def fault_connection(self, connection: str, action: str) -> bool:
        """Misbehave on one live connection now: ``action`` is ``drop`` (abort it, no
        Close) or ``silence`` (send it nothing more). False when no such connection."""
        ...

    def reset(self) -> None:
        """Back to how the server started: data and faults as given at start, the
        journal and the expectations cleared."""
        ...

    def state(self) -> MockState:
        """A snapshot of the connections, live sessions and stored chats."""
        ...


def is_admin_path(path: str) -> bool:
    """Whether a request path belongs to the admin API (and not to the journal)."""
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


def _json(status: int, body: object) -> HttpResponse:
    return HttpResponse(status, _JSON, msgspec.json.encode(body))


def _error(status: int, message: str, *, headers: tuple[tuple[str, str], ...] = ()
           ) -> HttpResponse:
    return HttpResponse(status, (*_JSON, *headers), msgspec.json.encode({"error": message}))


class _BadRequest(Exception):
    """Turned into a 400 with its text."""


def _object(request: HttpRequest) -> dict[str, Any]:
    try:
        body = msgspec.json.decode(request.body)
    except msgspec.DecodeError as exc:
        raise _BadRequest(f"the body must be JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _BadRequest("the body must be a JSON object")
    return body


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _BadRequest(f"unknown keys {unknown}; allowed: {sorted(allowed)}")


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise _BadRequest(f"{key!r} must be a string")
    return value


_Handler = Callable[[HttpRequest, list[str]], Awaitable[HttpResponse]]


class MockAdmin:
    """The ``/_mock/...`` endpoints for one server.

    Args:
        target: the server (or a fake) the endpoints act on.
        token: when set, every request must carry ``Authorization: Bearer <token>``.
    """

    def __init__(self, target: AdminTarget, *, token: str | None = None) -> None:
        self.target = target
        self.token = token
        self._routes: dict[tuple[str, ...], dict[str, _Handler]] = {
            ("journal",): {"GET": self._get_journal, "DELETE": self._clear_journal},
            ("expectations",): {"GET": self._list_expectations,
                                "POST": self._add_expectation},
            ("expectations", "*"): {"DELETE": self._remove_expectation},
            ("push",): {"POST": self._push},
            ("data",): {"PUT": self._put_data},
            ("faults",): {"PUT": self._put_faults},
            ("reset",): {"POST": self._reset},
            ("state",): {"GET": self._state},
        }

    def _authorized(self, request: HttpRequest) -> bool:
        if self.token is None:
            return True
        scheme, _, value = (request.header("authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(
            value.strip().encode(), self.token.encode())

    async def handle(self, request: HttpRequest) -> HttpResponse:
        """The response to one ``/_mock/...`` request: 401 without the token, 404 for an
        unknown path, 405 for a wrong method, 400 for bad input."""
        if not self._authorized(request):
            return _error(401, "the admin API needs 'Authorization: Bearer <token>'",
                          headers=(("WWW-Authenticate", "Bearer"),))
        parts = [p for p in request.path[len(ADMIN_PREFIX):].split("/") if p]
        shape = tuple(parts[:1]) + ("*",) * (len(parts) - 1)
        methods = self._routes.get(shape) if is_admin_path(request.path) else None
        if methods is None:
            return _error(404, f"no admin endpoint {request.path}")
        handler = methods.get(request.method.upper())
        if handler is None:
            return _error(405, f"{request.path} allows {', '.join(sorted(methods))}",
                          headers=(("Allow", ", ".join(sorted(methods))),))
        try:
            return await handler(request, parts)
        except _BadRequest as exc:
            return _error(400, str(exc))

    # -- journal -----------------------------------------------------------------------

    async def _get_journal(self, request: HttpRequest, parts: list[str]) -> HttpResponse:
        params = dict(request.query)
        unknown = sorted(set(params) - _JOURNAL_PARAMS)
        if unknown:
            raise _BadRequest(f"unknown query parameters {unknown}; "
                              f"allowed: {sorted(_JOURNAL_PARAMS)}")
        since = params.get("since", "0")
        if not since.isdigit():
            raise _BadRequest("'since' must be a sequence number (>= 0)")
        direction = params.get("direction")
        if direction is not None and direction not in {d.value for d in Direction}:
            raise _BadRequest("'direction' must be 'received' or 'sent'")
        journal = self.target.journal
        entries = journal.entries(
            kind=params.get("type") or None,
            direction=Direction(direction) if direction else None,
            session_id=params.get("session") or None,
            connection=params.get("connection") or None, since=int(since))
        return _json(200, journal.to_json(entries))

    async def _clear_journal(self, request: HttpRequest, parts: list[str]) -> HttpResponse:
        self.target.journal.clear()
        return HttpResponse(204)

    # -- expectations ------------------------------------------------------------------

    async def _list_expectations(self, request: HttpRequest,
                                 parts: list[str]) -> HttpResponse:
        return _json(200, self.target.expectations.to_json())

    async def _add_expectation(self, request: HttpRequest, parts: list[str]) -> HttpResponse:
        try:
            added = self.target.expectations.add_json(request.body)
        except ExpectationError as exc:
            raise _BadRequest(str(exc)) from None
        return _json(201, {"id": added.id})

    async def _remove_expectation(self, request: HttpRequest,
                                  parts: list[str]) -> HttpResponse:
        if self.target.expectations.remove(parts[1]):
            return HttpResponse(204)
        return _error(404, f"no expectation {parts[1]!r}")

    # -- the server --------------------------------------------------------------------

    async def _push(self, request: HttpRequest, parts: list[str]) -> HttpResponse:
        body = _object(request)
        _only(body, {"message", "connection", "sessionId"})
        connection = _optional_str(body, "connection")
        session_id = _optional_str(body, "sessionId")
        if connection is not None and session_id is not None:
            raise _BadRequest("give 'connection' or 'sessionId', not both")
        if "message" not in body:
            raise _BadRequest("'message' (a server message as on the wire) is required")
        try:
            message = decode_server_message(msgspec.json.encode(body["message"]))
        except MessageValidationError as exc:
            raise _BadRequest(f"message: {exc}") from None
        if isinstance(message, UnknownServerMessage):
            raise _BadRequest(f"message: unknown server message type {message.type_name!r}")
        delivered = self.target.push(message, connection=connection, session_id=session_id)
        if delivered == 0 and connection is not None:
            return _error(404, f"no connection {connection!r}")
        if delivered == 0 and session_id is not None:
            return _error(404, f"no connection in session {session_id!r}")
        return _json(200, {"delivered": delivered})

    async def _put_data(self, request: HttpRequest, parts: list[str]) -> HttpResponse:
        try:
            data = msgspec.json.decode(request.body, type=MockData)
        except msgspec.ValidationError as exc:
            raise _BadRequest(f"invalid mock data: {exc}") from None
        except msgspec.DecodeError as exc:
            raise _BadRequest(f"the body must be JSON: {exc}") from None
        self.target.set_data(data)
        return HttpResponse(204)

    async def _put_faults(self, request: HttpRequest, parts: list[str]) -> HttpResponse:
        body = _object(request)
        if "action" in body or "connection" in body:  # one live connection, now
            _only(body, {"connection", "action"})
            connection = _optional_str(body, "connection")
            action = body.get("action")
            if connection is None or action not in _CONNECTION_FAULTS:
                raise _BadRequest("give 'connection' (a key from /_mock/state) and 'action' "
                                  f"(one of {sorted(_CONNECTION_FAULTS)})")
            if not await self.target.fault_connection(connection, action):
                return _error(404, f"no connection {connection!r}")
            return HttpResponse(204)
        _only(body, {"plan", "next"})
        if "plan" not in body:
            raise _BadRequest("'plan' (a fault plan, or null to clear) is required")
        count = body.get("next")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                                  or count < 1):
            raise _BadRequest("'next' must be a number of connections (>= 1) or null")
        try:
            plan = None if body["plan"] is None else msgspec.convert(body["plan"], FaultPlan)
        except (msgspec.ValidationError, ValueError) as exc:
            raise _BadRequest(f"invalid fault plan: {exc}") from None
        self.target.apply_faults(plan, next_connections=count)
        return HttpResponse(204)

    async def _reset(self, request: HttpRequest, parts: list[str]) -> HttpResponse:
        self.target.reset()
        return HttpResponse(204)

    async def _state(self, request: HttpRequest, parts: list[str]) -> HttpResponse:
        return _json(200, self.target.state())
