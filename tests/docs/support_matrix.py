"""Generate docs/protocol/support-matrix.md from the code, so the page cannot drift.

Rows come from the catalog registries (``CLIENT_MESSAGE_TYPES``, ``SERVER_MESSAGE_TYPES``).
The other columns are read from the source, not written by hand:

* **VoxtaClient**: which public methods build a client message (an AST walk of
  ``VoxtaClient``), which messages the client's sans-IO session sends by itself, which
  server messages a method returns (``_request(..., Kind)``), which ones update the chat
  state (``_STATE_UPDATES``) and which answer or fail a request (``REPLIES``/``FAILURES``).
* **mock**: which client messages ``MockEngine`` branches on (an ``isinstance`` test) and
  whether that branch does anything, and which server messages any ``voxta_mock`` module
  constructs.

Regenerate after changing the catalog, the client or the mock::

    python tests/docs/support_matrix.py          # rewrite the page
    python tests/docs/support_matrix.py --check  # exit 1 if the page is stale
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import voxta_mock
import voxta_proto
from voxta_proto.voxta import CLIENT_MESSAGE_TYPES, SERVER_MESSAGE_TYPES, ClientMessage
from voxta_proto.voxta.session import _STATE_UPDATES, FAILURES, REPLIES, VoxtaClientSession

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "protocol" / "support-matrix.md"
CLIENT_SOURCES = (  # the seed API, then the connection (auto-subscribe, authenticate)
    (Path(voxta_proto.__file__).parent / "client" / "api.py", "VoxtaApi"),
    (Path(voxta_proto.__file__).parent / "client" / "connection.py", "VoxtaClient"),
)
SESSION_SOURCE = Path(voxta_proto.__file__).parent / "voxta" / "session.py"
MOCK_DIR = Path(voxta_mock.__file__).parent
ENGINE_SOURCE = MOCK_DIR / "engine.py"

CLIENT_CLASSES = {cls.__name__: tag for tag, cls in CLIENT_MESSAGE_TYPES.items()}
SERVER_CLASSES = {cls.__name__: tag for tag, cls in SERVER_MESSAGE_TYPES.items()}

HANDLED = "handled"
NO_EFFECT = "accepted, no effect"
COMPLETION_ONLY = "completion only"
UNMENTIONED = "accepted, ignored"


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _class(tree: ast.Module, name: str) -> ast.ClassDef:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    raise LookupError(f"class {name} not found")


def _methods(cls: ast.ClassDef) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _called_names(node: ast.AST) -> Iterator[str]:
    """Names called directly: ``Send(...)`` gives ``Send``."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name):
            yield sub.func.id


# ---------------------------------------------------------------------------- client


def _session_message_attributes() -> dict[str, str]:
    """Attributes of a fresh client session that hold a ready-made client message."""
    session = VoxtaClientSession(now=0.0)
    return {name: type(value).__name__ for name, value in vars(session).items()
            if isinstance(value, ClientMessage)}


@dataclass
class ClientFacts:
    sends: dict[str, list[str]] = field(default_factory=dict)
    """client message class → public VoxtaClient methods that send it."""
    automatic: set[str] = field(default_factory=set)
    """client message classes the client or its session sends without being asked."""
    returns: dict[str, list[str]] = field(default_factory=dict)
    """server message class → public methods that return it."""


def client_facts() -> ClientFacts:
    facts = ClientFacts()
    held = _session_message_attributes()
    methods = [method for source, name in CLIENT_SOURCES
               for method in _methods(_class(_tree(source), name))]
    for method in methods:
        public = not method.name.startswith("_")
        sent = {n for n in _called_names(method) if n in CLIENT_CLASSES}
        sent |= {held[sub.attr] for sub in ast.walk(method)
                 if isinstance(sub, ast.Attribute) and sub.attr in held}
        for name in sent:
            if public:
                facts.sends.setdefault(name, []).append(method.name)
            else:
                facts.automatic.add(name)
        if public:
            for sub in ast.walk(method):
                if (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute)
                        and sub.func.attr == "_request" and len(sub.args) == 2
                        and isinstance(sub.args[1], ast.Name)
                        and sub.args[1].id in SERVER_CLASSES):
                    facts.returns.setdefault(sub.args[1].id, []).append(method.name)
    session = _class(_tree(SESSION_SOURCE), "VoxtaClientSession")
    facts.automatic |= {n for n in _called_names(session) if n in CLIENT_CLASSES}
    return facts


# ------------------------------------------------------------------------------ mock


def _isinstance_targets(test: ast.expr) -> list[str]:
    """Class names in ``isinstance(message, X)`` or ``isinstance(message, (X, Y))``."""
    if not (isinstance(test, ast.Call) and isinstance(test.func, ast.Name)
            and test.func.id == "isinstance" and len(test.args) == 2
            and isinstance(test.args[0], ast.Name) and test.args[0].id == "message"):
        return []
    kinds = test.args[1]
    items = kinds.elts if isinstance(kinds, ast.Tuple) else [kinds]
    return [item.id for item in items if isinstance(item, ast.Name)]


def _branch_effect(body: list[ast.stmt]) -> str:
    """What an ``if isinstance(message, ...)`` branch does."""
    if len(body) == 1 and isinstance(body[0], ast.Return):
        value = body[0].value
        if value is None:
            return NO_EFFECT
        if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                and value.func.id == "_steps" and len(value.args) == 1
                and isinstance(value.args[0], ast.Call)
                and isinstance(value.args[0].func, ast.Name)
                and value.args[0].func.id == "Complete"):
            return COMPLETION_ONLY
    return HANDLED


def mock_handling() -> dict[str, str]:
    """client message class → how ``MockEngine`` treats it."""
    out: dict[str, str] = {}
    engine = _class(_tree(ENGINE_SOURCE), "MockEngine")
    for node in ast.walk(engine):
        if isinstance(node, ast.If):
            for name in _isinstance_targets(node.test):
                if name in CLIENT_CLASSES:
                    effect = _branch_effect(node.body)
                    # A class named in several branches counts as handled if any acts.
                    if out.get(name) != HANDLED:
                        out[name] = effect
    return out


def mock_emits() -> set[str]:
    """Server message classes constructed anywhere in ``voxta_mock``."""
    names: set[str] = set()
    for path in sorted(MOCK_DIR.glob("*.py")):
        names |= {n for n in _called_names(_tree(path)) if n in SERVER_CLASSES}
    return names


# ------------------------------------------------------------------------------ page


def _ref(cls: type) -> str:
    return f"[`{cls.__name__}`][{cls.__module__}.{cls.__qualname__}]"


def _methods_text(names: Iterable[str]) -> str:
    return ", ".join(f"`{n}()`" for n in sorted(set(names)))


def _summary(cls: type) -> str:
    doc = (cls.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(doc.split()).replace("|", "\\|")


def _client_rows(facts: ClientFacts, handling: Mapping[str, str]) -> list[str]:
    rows = []
    for tag in sorted(CLIENT_MESSAGE_TYPES, key=str.lower):
        cls = CLIENT_MESSAGE_TYPES[tag]
        name = cls.__name__
        catalog = _ref(cls)
        replies = REPLIES.get(cls, ())
        if replies:
            catalog += " → " + ", ".join(f"`{SERVER_CLASSES[r.__name__]}`" for r in replies)
        client = []
        if name in facts.sends:
            client.append(_methods_text(facts.sends[name]))
        if name in facts.automatic:
            client.append("sent automatically")
        if not client:
            client.append("`send()` only")
        mock = handling.get(name, UNMENTIONED)
        rows.append(f"| `{tag}` | {catalog} | {'; '.join(client)} | {mock} | {_summary(cls)} |")
    return rows


def _server_rows(facts: ClientFacts, emitted: set[str]) -> list[str]:
    answers = {r for kinds in REPLIES.values() for r in kinds}
    failures = {r for kinds in FAILURES.values() for r in kinds}
    rows = []
    for tag in sorted(SERVER_MESSAGE_TYPES, key=str.lower):
        cls = SERVER_MESSAGE_TYPES[tag]
        name = cls.__name__
        client = ["event"]
        if name in facts.returns:
            client.append("returned by " + _methods_text(facts.returns[name]))
        if cls in answers:
            client.append("answers a request")
        if cls in failures:
            client.append("fails a request")
        if cls in _STATE_UPDATES:
            client.append("updates chat state")
        mock = "emits" if name in emitted else "never sent"
        rows.append(f"| `{tag}` | {_ref(cls)} | {'; '.join(client)} | {mock} | {_summary(cls)} |")
    return rows


HEADER = """\
# Protocol support matrix

<!-- Generated by tests/docs/support_matrix.py; do not edit by hand.
     Regenerate with: python tests/docs/support_matrix.py -->

Every Voxta message in the catalog, and what each part of voxta-proto does with it. The
rows are the catalog's registries (`CLIENT_MESSAGE_TYPES` and `SERVER_MESSAGE_TYPES` in
`voxta_proto.voxta.codec`); the columns are read from the source of `VoxtaClient` and of
the mock server. A test regenerates this page and fails when it differs, so it stays
true to the code.

**Catalog.** Every row is a typed, frozen msgspec Struct that encodes and decodes (the
link goes to its fields). An arrow names the reply the session layer pairs with a
request: the request's awaitable resolves when that message arrives.

**VoxtaClient.** For a client message: the methods that send it, "sent automatically"
when the client does so by itself (`authenticate` on connect, `subscribeToChat` when
the server reports a session of ours), and "`send()` only" when no helper exists yet:
`await client.send(Message(...))` sends any of them. For a server message: "event"
means it reaches `on()`, `events()` and `wait_for()` as its typed class; the rest says
which methods return it, whether it answers or fails a pending request, and whether it
updates `client.session.chat`.

**Mock.** For a client message: "handled" means `MockEngine` acts on it; "accepted, no
effect" means it is validated and completed but changes nothing; "completion only"
means the mock answers its invocation and nothing else; "accepted, ignored" means the
engine has no branch for it (it is still validated and completed). For a server
message: "emits" means some part of `voxta_mock` sends it.
"""


def render() -> str:
    facts = client_facts()
    client_rows = _client_rows(facts, mock_handling())
    server_rows = _server_rows(facts, mock_emits())
    lines = [
        HEADER,
        f"## Client messages ({len(client_rows)})",
        "",
        "| `$type` | Catalog | VoxtaClient | Mock | What it does |",
        "|---|---|---|---|---|",
        *client_rows,
        "",
        f"## Server messages ({len(server_rows)})",
        "",
        "| `$type` | Catalog | VoxtaClient | Mock | What it says |",
        "|---|---|---|---|---|",
        *server_rows,
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE} is stale: run python {Path(__file__).relative_to(ROOT)}")
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
