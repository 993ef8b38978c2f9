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
* **API 2025-11**: the fields of the addendum (``VOXTA_PROTOCOL_2025-11.md`` §2) with the
  type the catalog gives each (read from the Struct, so a missing field fails the
  generator), whether ``voxta_mock`` writes or reads it (an AST walk), and the flows of
  §3 with the mock API that serves them (each name is looked up, so a renamed one fails).

Regenerate after changing the catalog, the client or the mock::

    python tests/docs/support_matrix.py          # rewrite the page
    python tests/docs/support_matrix.py --check  # exit 1 if the page is stale
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Union, get_args, get_origin

import msgspec

import voxta_mock
import voxta_proto
from voxta_mock.data import CharacterData, MockData, ReplyScript
from voxta_mock.engine import MockEngine
from voxta_mock.rest import MockRest
from voxta_mock.server import MockVoxtaServer
from voxta_proto import voxta as catalog
from voxta_proto.transports import HttpRequest
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


# ------------------------------------------------------------------------ API 2025-11


NEW_FIELDS: tuple[tuple[str, str, str], ...] = (
    # (catalog class, wire name, what the addendum says), in the order of its §2 tables.
    ("ReplyChunk", "audioGapMs", "minimum ms since the previous clip ended"),
    ("ReplyChunk", "affect", "affect label for lip sync"),
    ("ReplyChunk", "affectCarried", "meaning not documented"),
    ("ReplyChunk", "speechLineId", "type not published: raw JSON"),
    ("ReplyChunk", "audioUrl", "may be a `silence:N` placeholder"),
    ("ContextUpdated", "variables", "script variables, values raw JSON"),
    ("ContextUpdated", "tools", "`{name, description, source}`"),
    ("ToolEntry", "source", ""),
    ("ContextUpdated", "toolPermissionsApply", "meaning not documented"),
    ("ContextUpdated", "controls", "control groups"),
    ("ControlGroupEntry", "controls", "polymorphic controls, raw JSON"),
    ("ChatContext", "controls", "the same on `chatStarted.context`"),
    ("FunctionKeyEntry", "disabledFlagsFilter", ""),
    ("FunctionKeyEntry", "invocation", "`ActionInference` or `ToolCalling`"),
    ("FunctionKeyEntry", "clientMetadata", ""),
    ("FunctionKeyEntry", "watchedVariables", ""),
    ("ChatSessionError", "retry", "absent means true"),
    ("ErrorMessage", "retry", "absent means true"),
    ("ChatSessionError", "details", ""),
    ("SpeechRecognitionEnd", "reason", "free string (`EndOfSpeech`)"),
    ("SpeechRecognitionEnd", "words", ""),
    ("SpeechRecognitionEnd", "repair", "`{action, doubtfulWords}`"),
    ("SpeechRecognitionEnd", "misheardWordsSuppression", "a string, `None` by default"),
    ("AppTrigger", "arguments", "absent and null alike"),
    ("AppTrigger", "triggerId", "queued trigger, needs `appTriggerComplete`"),
    ("AppTrigger", "scenarioRole", ""),
    ("Welcome", "apiVersion", "see `KNOWN_API_VERSIONS`"),
    ("Welcome", "voxtaServerCommit", ""),
    ("Welcome", "characters", "declared by one app only (doubtful)"),
    ("ChatParticipantInfo", "appConfiguration", "form values on `chatStarted.characters`"),
    ("ReplyEnd", "messageIndex", ""),
    ("AnimationPlay", "frameCount", ""),
    ("StartChat", "characterIds", "multi-character chat"),
    ("StartChat", "disableServices", ""),
    ("Send", "generateConstraintRequest", ""),
    ("GenerateConstraintRequest", "includeChatHistory", "declared only"),
    ("UpdateContext", "variables", "declared only"),
    ("ActionEffect", "clearFlags", "declared only"),
    ("ContextDefinition", "position", "`Context` or `System`"),
    ("FunctionArgumentDefinition", "choices", ""),
    ("ClientCapabilities", "features", ""),
    ("ClientCapabilities", "audioOutput", "1.11 adds `Disabled` to the capability enums"),
    ("RegisterApp", "characterForm", "forms of `AppFormField`s"),
    ("AppFormField", "defaultValue", ""),
    ("AppFormField", "contentTypes", "`asset` fields"),
    ("AppFormField", "noneLabel", "`asset` fields"),
    ("ClientSpeechPlaybackStart", "duration", "units disagree: seconds here"),
    ("AppTriggerComplete", "triggerId", ""),
    ("TriggerAction", "arguments", ""),
)

CLIENT_FIELDS: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    # (catalog class, wire name) -> (what the client does beyond decoding or sending it,
    # the client API that does it: looked up when rendering, so a renamed one fails)
    ("ReplyChunk", "audioGapMs"): ("`SpeechPlayback` waits at least this long after the "
                                   "previous clip ended", ("SpeechPlayback",)),
    ("ReplyChunk", "audioUrl"): ("`SpeechPlayback` fetches it with the client's token; "
                                 "`silence:N` and `\"\"` are never fetched",
                                 ("SpeechPlayback", "silence_ms")),
    ("AppTrigger", "triggerId"): ("acknowledged with `app_trigger_complete()`",
                                  ("VoxtaApi.app_trigger_complete",)),
    ("Welcome", "apiVersion"): ("`api_version`; a version not in `KNOWN_API_VERSIONS` is "
                                "logged once per client, never refused",
                                ("VoxtaClient.api_version",)),
    ("ChatParticipantInfo", "appConfiguration"): ("`app_configuration()`",
                                                  ("VoxtaApi.app_configuration",)),
    ("RegisterApp", "characterForm"): ("`register_app(character_form=...)`",
                                       ("VoxtaApi.register_app",)),
    ("AppFormField", "defaultValue"): ("in `register_app()` forms", ("VoxtaApi.register_app",)),
    ("AppFormField", "contentTypes"): ("in `register_app()` forms", ("VoxtaApi.register_app",)),
    ("AppFormField", "noneLabel"): ("in `register_app()` forms", ("VoxtaApi.register_app",)),
    ("ClientSpeechPlaybackStart", "duration"): ("`SpeechPlayback` sends the clip's length "
                                                "in seconds, 0 without audio",
                                                ("SpeechPlayback",)),
    ("AppTriggerComplete", "triggerId"): ("`app_trigger_complete()`",
                                          ("VoxtaApi.app_trigger_complete",)),
    ("ClientCapabilities", "audioOutput"): ("`playback_capabilities()` asks for `Url`",
                                            ("playback_capabilities",)),
}
"""The client's use of a new field beyond the default: a server field is decoded onto
its event, a client field is sent when given."""

CLIENT_MODULES = ("voxta_proto.client", "voxta_proto.client.audio_output",
                  "voxta_proto.client.vision", "voxta_proto.client.login")


def _client_api_exists(name: str) -> bool:
    """``Name`` or ``Name.attribute`` in one of the client modules."""
    owner, _, attribute = name.partition(".")
    for module in CLIENT_MODULES:
        target = getattr(importlib.import_module(module), owner, None)
        if target is not None and (not attribute or hasattr(target, attribute)):
            return True
    return False


def _client_text(text: str, api: tuple[str, ...], where: str) -> str:
    missing = [name for name in api if not _client_api_exists(name)]
    if missing:
        raise LookupError(f"{where}: the client has no {missing}")
    return text


def _client_field(cls_name: str, wire: str, client_side: bool) -> str:
    use = CLIENT_FIELDS.get((cls_name, wire))
    if use is not None:
        return _client_text(*use, where=f"{cls_name}.{wire}")
    return "sent when given" if client_side else "decoded"


LEFT_OUT = (
    "error and `chatSessionError` \"category\"/\"resolution\", `send` \"expiry\", `startChat` "
    "augmentation properties, ChatMessage \"appearance\"/\"annotations\"/\"tool calls\": "
    "the addendum knows they exist but not their wire names (§6.12), so the catalog leaves "
    "them out and decoding ignores them like any unknown field."
)

CLIENT_FLOWS: dict[str, tuple[str, tuple[str, ...]]] = {
    # flow -> (what the client does, the client API that does it: looked up)
    "Audio output (§3.1)": (
        "`SpeechPlayback` yields each reply's clips in chunk order (fetched at once, in "
        "parallel, with the token; placeholders never), waits `audioGapMs`, sends "
        "`speechPlaybackStart` per chunk and exactly one `speechPlaybackComplete` per "
        "reply, also after `interrupt()`, `interruptSpeech` or `replyCancelled`",
        ("SpeechPlayback", "SpeechPlayback.interrupt", "SpeechPlayback.send_message",
         "playback_capabilities")),
    "Vision capture (§3.3)": (
        "`VisionCapture` calls the app's callback per request and uploads its bytes "
        "(multipart, part `file`) or cancels on None or an exception: always one or the "
        "other", ("VisionCapture", "upload_vision_image", "cancel_vision_request",
                  "vision_capabilities")),
    "`registerApp` forms (§3.4)": (
        "`register_app()` sends the forms; `app_configuration()` reads the values of "
        "the chat's characters", ("VoxtaApi.register_app", "VoxtaApi.app_configuration")),
    "Queued app triggers (§3.5)": (
        "`app_trigger_complete()` acknowledges a trigger with a `triggerId` (never one "
        "without)", ("VoxtaApi.app_trigger_complete",)),
    "Device-flow login (§3.6)": (
        "`VoxtaClient.login()` and `voxta login --url`: code and URL shown, polled, "
        "checked with `/api/auth/test`, stored owner-only per URL; `VoxtaClient` and "
        "`voxta chat` use the stored key when given none",
        ("VoxtaClient.login", "device_login", "check_token", "load_token")),
    "API version (§1.2)": (
        "`api_version`; one WARNING per client for a version it was not tested with",
        ("VoxtaClient.api_version",)),
}

FLOWS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # (flow, what the mock does, the mock API that does it: looked up when rendering)
    ("Audio output (§3.1)",
     "clip URLs it serves once as WAV; or `silence:N` placeholders (TTS off, the client "
     "must still acknowledge); `audioGapMs` on every chunk but the first; relays every "
     "`speechPlaybackStart` and `speechPlaybackComplete`, late or repeated ones too",
     ("MockEngine.speech", "MockEngine.silence_placeholders", "MockEngine.audio_gap_ms",
      "MockEngine.tts_audio", "GET /api/tts/gens/{id}")),
    ("Vision capture (§3.3)",
     "sends `visionCaptureRequest` (scripted or on request) to the session owner; takes "
     "the multipart upload (part `file`) or the cancel, once per request, and keeps it",
     ("MockVoxtaServer.request_vision_capture", "MockEngine.request_vision_capture",
      "MockEngine.vision_requests",
      "ReplyScript.vision_capture", "MockRest.vision_uploads", "MockRest.vision_cancelled",
      "POST /api/vision/requests/{id}/send", "DELETE /api/vision/requests/{id}")),
    ("`registerApp` forms (§3.4)",
     "keeps each connection's forms; the form defaults, the data's values and values set "
     "from Python come back as `appConfiguration` on `chatStarted` (flat, strings) and on "
     "`GET /api/characters/{id}` (by app)",
     ("MockEngine.app_configuration", "MockEngine.set_app_configuration",
      "CharacterData.app_configuration", "GET /api/characters/{id}")),
    ("Queued app triggers (§3.5)",
     "sends `appTrigger` with a `triggerId` (scripted or on request) and records the "
     "client's `appTriggerComplete`; until it arrives, or `app_trigger_timeout` passes, "
     "the session's next `send`, `retry`, `characterSpeechRequest`, `speak` or "
     "`triggerAction` waits; an unknown, repeated or other session's id does nothing",
     ("MockVoxtaServer.queue_app_trigger", "MockEngine.queue_app_trigger",
      "MockEngine.app_triggers",
      "MockEngine.app_trigger_timeout", "ReplyScript.app_trigger_queued")),
    ("Device-flow login (§3.6)",
     "codes expire and are bounded; with an auth token nothing is handed out until the "
     "code is approved (by `approve_device`, an authorized `verify`, or an explicit "
     "`auto_approve`); bad bodies get 400",
     ("MockRest.approve_device", "MockRest.auto_approve", "MockRest.device_code_lifetime",
      "POST /api/device/code", "POST /api/device/poll", "POST /api/device/verify",
      "POST /api/auth/test")),
    ("API version (§1.2)",
     "announces `api_version` from its data, `2025-11` by default",
     ("MockData.api_version",)),
)


def _field(cls_name: str, wire: str) -> msgspec.structs.FieldInfo:
    cls = getattr(catalog, cls_name)
    for info in msgspec.structs.fields(cls):
        if info.encode_name == wire:
            return info
    raise LookupError(f"{cls_name} has no field {wire!r}: the page would claim it does")


def _type_name(hint: object) -> str:
    if get_origin(hint) in (Union, UnionType):
        return " | ".join(_type_name(arg) for arg in get_args(hint))
    if isinstance(hint, type) and not get_args(hint):
        return "None" if hint is type(None) else hint.__name__
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)", r"\1", repr(hint))


def _type_text(hint: object) -> str:
    text = _type_name(hint).replace("Raw | UnsetType", "Raw")
    return f"`{text}`".replace("|", "\\|")


def _mock_keywords() -> set[tuple[str, str]]:
    """(callee, keyword) of every call in ``voxta_mock``: ``ReplyChunk(audio_url=...)``
    gives ``("ReplyChunk", "audio_url")``, ``msgspec.structs.replace(p, x=...)`` gives
    ``("replace", "x")``; what the mock writes into the messages it builds."""
    found: set[tuple[str, str]] = set()
    for path in sorted(MOCK_DIR.glob("*.py")):
        for node in ast.walk(_tree(path)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            callee = (func.id if isinstance(func, ast.Name)
                      else func.attr if isinstance(func, ast.Attribute) else "")
            found |= {(callee, k.arg) for k in node.keywords if k.arg}
    return found


def _engine_reads() -> set[str]:
    """Attributes the engine reads off anything (approximates what it uses of a message)."""
    return {node.attr for node in ast.walk(_tree(ENGINE_SOURCE))
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load)}


def _new_field_rows() -> list[str]:
    written, read = _mock_keywords(), _engine_reads()
    rows = []
    for cls_name, wire, note in NEW_FIELDS:
        info = _field(cls_name, wire)
        cls = getattr(catalog, cls_name)
        tag = cls.__struct_config__.tag
        where = f"`{tag}`" if isinstance(tag, str) else _ref(cls)
        client_side = issubclass(cls, ClientMessage) or cls_name in (
            "GenerateConstraintRequest", "ActionEffect", "ContextDefinition",
            "FunctionArgumentDefinition", "ClientCapabilities", "AppFormField")
        if client_side:
            mock = "reads" if info.name in read else "accepts"
        else:
            sends = {(cls_name, info.name), ("replace", info.name)} & written
            mock = "sends" if sends else "never sends"
        client = _client_field(cls_name, wire, client_side)
        rows.append(f"| {where} | `{wire}` | {_type_text(info.type)} | {client} | {mock} "
                    f"| {note} |")
    return rows


def _mock_api_exists(name: str) -> bool:
    engine = MockEngine()
    rest = MockRest(engine)
    if " /" in name:  # an endpoint: routed for that method (any status but 405)
        method, path = name.split(" ", 1)
        response = rest.handle(HttpRequest(method=method, target=path.replace("{id}", "x")))
        return response is not None and response.status != 405
    owner, attribute = name.split(".")
    instances: dict[str, object] = {"MockEngine": engine, "MockRest": rest}
    classes: dict[str, type] = {"ReplyScript": ReplyScript, "CharacterData": CharacterData,
                                "MockData": MockData, "MockVoxtaServer": MockVoxtaServer}
    target = instances.get(owner, classes.get(owner))
    return target is not None and hasattr(target, attribute)


def _flow_rows() -> list[str]:
    rows = []
    for flow, does, api in FLOWS:
        missing = [name for name in api if not _mock_api_exists(name)]
        if missing:
            raise LookupError(f"{flow}: the mock has no {missing}")
        names = ", ".join(f"`{n}`" for n in api)
        client = _client_text(*CLIENT_FLOWS[flow], where=flow)
        rows.append(f"| {flow} | {client} | {does} | {names} |")
    return rows


DECISIONS = """## Where the sources disagree: what voxta-proto does

The addendum (§6) lists where the 2026 sources disagree or say nothing. The catalog and
the mock follow these decisions:

* **Unknown `$type`** (§6.1): kept as `UnknownServerMessage` with the raw JSON, never an
  error; a known `$type` with bad fields is an `InvalidServerMessage` inside a frame, and
  the frame's other messages survive. Unknown fields are ignored.
* **`replyThinking`** (§5): decoded as `ReplyThinking`, a subclass of `ReplyThink`, so
  code that handles `ReplyThink` sees both names; the client names both `replyThink`
  (`on("replyThink")`, `wait_for("replyThink")`).
* **Enums** (§5): written as names, read as names in any case or as numbers. The 1.11
  `Disabled` capability values exist but come last (their numbers are not published);
  send them only when needed (§6.5).
* **`welcome.apiVersion`** (§6.4): `2025-08` and `2025-11` are `KNOWN_API_VERSIONS`; no
  version is a reason to refuse a server. The client exposes it as `api_version` and
  logs one WARNING per client for any other value (no strict mode yet). The mock
  announces `2025-11` unless its data says otherwise.
* **`speechPlaybackStart.duration`** (§6.2): seconds, as a float: `SpeechPlayback` sends
  a WAV clip's length (0 for a chunk without audio, a placeholder or a failed download,
  and when the length cannot be read); the mock relays any number it gets.
* **TTS disabled** (§6.3): the mock offers both behaviours: `audioUrl: ""` with the
  server's own `speechPlaybackComplete` (the default), or `silence:N` placeholders that
  the client must acknowledge (`silence_placeholders=True`). The mock tolerates duplicate
  completions and completions for replies it does not wait for, and relays them. The
  client handles both: an empty or `silence:` URL is never fetched, its chunk still gets
  a `speechPlaybackStart` (duration 0) at its turn, and the reply its one completion.
* **Vision requests the app cannot answer** (§3.3): `VisionCapture` always uploads or
  cancels, never ignores (a capture callback that raises cancels too).
* **Interrupt on send** (§6.16): `SpeechPlayback.send_message()` sends the explicit
  `interrupt` first while a reply is still playing (and completes it), as Unity does;
  `client.send_message()` alone leaves that to the server's setting.
* **`appTrigger.arguments`** (§6.10) and **nulls in `contextUpdated`** (§6.15): absent
  and `null` decode alike.
* **`retry`** on `chatSessionError` and `error`: absent means true (the model's
  default); the encoder leaves a true value out and always writes false.
* **`speechRecognitionEnd.reason`**: a plain string, since servers send values outside
  the reference's five (`EndOfSpeech`); `SpeechRecognitionEndReason` names the known ones.
* **Declared-only fields** (§6.11: `includeChatHistory`, `clearFlags`,
  `updateContext.variables`, `welcome.characters`): typed and optional, never required.
* **Names known without a type** (§6.12): `replyChunk.speechLineId` is kept as raw JSON;
  fields whose wire names are unknown are left out (see above).
* **Queued app triggers** (§3.5): the server's timeout is not documented; the mock
  holds the session's commands for at most `app_trigger_timeout` (10 s by default).
"""


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

**Hub protocols.** Voxta speaks the JSON hub protocol only, and so do `VoxtaClient` and
the mock: a MessagePack handshake gets `The protocol 'messagepack' is not supported.`,
as from the real server. For other ASP.NET Core hubs, the core's `HubConnection`,
`HubClient(protocol="messagepack")` and `HubServer` (which answers each client in the
protocol its handshake asks for) also speak MessagePack; see the embedding guide.
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
        "## API 2025-11 fields",
        "",
        "The fields `VOXTA_PROTOCOL_2025-11.md` adds or newly specifies, with the type the "
        "catalog gives them (`| int` after an enum: numbers are accepted too). "
        "VoxtaClient: \"decoded\" means the field is on the typed event, \"sent when "
        "given\" that the client writes it when the app sets it. Mock: \"sends\" "
        "means some part of the mock writes the field, \"reads\" that the engine uses "
        "it, \"accepts\" that it is validated and otherwise unused.",
        "",
        "| Message or object | Field | Catalog | VoxtaClient | Mock | Note |",
        "|---|---|---|---|---|---|",
        *_new_field_rows(),
        "",
        f"Left out: {LEFT_OUT}",
        "",
        "## API 2025-11 flows",
        "",
        "| Flow | VoxtaClient | Mock | Mock API |",
        "|---|---|---|---|",
        *_flow_rows(),
        "",
        DECISIONS,
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
