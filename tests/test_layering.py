"""Our own check of the import layers, next to the import-linter contracts in pyproject.

It reads the source with ``ast`` instead of importing it, so it sees every import statement:
the ones inside functions, under ``if TYPE_CHECKING:`` and in modules nothing imports yet.

* The sans-IO core (``framing``, ``errors``, ``hub/``, ``voxta/``) must not import an I/O
  library or the layers that sit above it.
* ``voxta_mock`` must not import ``voxta_proto.client`` or anything private of
  ``voxta_proto``, so the mock stays an independent peer built from public names.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

CORE_PATHS = (
    "voxta_proto/framing.py",
    "voxta_proto/errors.py",
    "voxta_proto/hub",
    "voxta_proto/voxta",
)
CORE_FORBIDDEN = (
    "anyio",
    "h11",
    "wsproto",
    "trio",
    "asyncio",
    "socket",
    "ssl",
    "voxta_proto.transports",
    "voxta_proto.client",
)
MOCK_FORBIDDEN = ("voxta_proto.client",)
PRIVATE_ALLOWED = frozenset({"_version"})


def module_name(path: Path, src: Path = SRC) -> str:
    """``src/voxta_proto/hub/codec.py`` -> ``voxta_proto.hub.codec`` (packages drop __init__)."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(
    source: str, module: str, *, is_package: bool = False
) -> Iterator[tuple[int, str]]:
    """Yield ``(line, dotted name)`` for everything the source imports, anywhere in the file.

    ``from a.b import c`` yields both ``a.b`` and ``a.b.c``, because ``c`` may be a submodule.
    Relative imports are resolved against ``module``. Calls like
    ``importlib.import_module("x")`` or ``__import__("x")`` with a literal name count too.
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            yield node.lineno, base
            for alias in node.names:
                if alias.name != "*":
                    yield node.lineno, f"{base}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and _call_name(node.func) in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def _call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def is_within(name: str, prefixes: Iterable[str]) -> bool:
    """True if ``name`` is one of ``prefixes`` or a submodule/attribute of one."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def is_private_proto_name(name: str) -> bool:
    """True for ``voxta_proto._something`` (at any depth); dunders and ``_version`` are fine."""
    head, *rest = name.split(".")
    return head == "voxta_proto" and any(
        part.startswith("_")
        and not (part.startswith("__") and part.endswith("__"))
        and part not in PRIVATE_ALLOWED
        for part in rest
    )


def violations(
    source: str,
    module: str,
    *,
    is_package: bool = False,
    forbidden: Iterable[str] = (),
    no_private_proto: bool = False,
) -> list[str]:
    """Describe every import in ``source`` that breaks the given rules, one string each."""
    forbidden = tuple(forbidden)
    found = []
    for line, name in imported_names(source, module, is_package=is_package):
        if is_within(name, forbidden):
            found.append(f"{module}:{line} imports {name}")
        elif no_private_proto and is_private_proto_name(name):
            found.append(f"{module}:{line} imports private {name}")
    return found


def python_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.rglob("*.py")))
        elif path.is_file():
            files.append(path)
    return files


def check_files(
    files: Iterable[Path], *, forbidden: Iterable[str], no_private_proto: bool = False
) -> list[str]:
    found: list[str] = []
    for path in files:
        found += violations(
            path.read_text(encoding="utf-8"),
            module_name(path),
            is_package=path.name == "__init__.py",
            forbidden=forbidden,
            no_private_proto=no_private_proto,
        )
    return found


# --- the real tree ---------------------------------------------------------------------


def test_sans_io_core_imports_no_io() -> None:
    files = python_files(SRC / p for p in CORE_PATHS)
    assert SRC / "voxta_proto" / "errors.py" in files  # guard against checking nothing
    assert check_files(files, forbidden=CORE_FORBIDDEN) == []


def test_mock_uses_only_public_non_client_api() -> None:
    files = python_files([SRC / "voxta_mock"])
    assert files, "src/voxta_mock has no Python files"
    assert check_files(files, forbidden=MOCK_FORBIDDEN, no_private_proto=True) == []


# --- the checker itself ----------------------------------------------------------------

BAD_CORE = """\
from __future__ import annotations
import anyio
import ssl as _ssl
from typing import TYPE_CHECKING
from . import errors
from ..transports import memory
from voxta_proto import client

if TYPE_CHECKING:
    from trio import Nursery

def later():
    import asyncio.streams
    return importlib.import_module("wsproto")
"""


def test_checker_flags_every_forbidden_import() -> None:
    found = violations(BAD_CORE, "voxta_proto.hub.codec", forbidden=CORE_FORBIDDEN)
    assert found == [
        "voxta_proto.hub.codec:2 imports anyio",
        "voxta_proto.hub.codec:3 imports ssl",
        "voxta_proto.hub.codec:6 imports voxta_proto.transports",
        "voxta_proto.hub.codec:6 imports voxta_proto.transports.memory",
        "voxta_proto.hub.codec:7 imports voxta_proto.client",
        "voxta_proto.hub.codec:10 imports trio",
        "voxta_proto.hub.codec:10 imports trio.Nursery",
        "voxta_proto.hub.codec:13 imports asyncio.streams",
        "voxta_proto.hub.codec:14 imports wsproto",
    ]


def test_checker_accepts_clean_core() -> None:
    clean = (
        "import msgspec\nimport sockets_helper\nfrom voxta_proto.errors import ProtocolError\n"
        "from .messages import Close\nfrom . import state\n"
    )
    assert violations(clean, "voxta_proto.hub", is_package=True, forbidden=CORE_FORBIDDEN) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "from voxta_proto._private import x",
            [
                "voxta_mock.server:1 imports private voxta_proto._private",
                "voxta_mock.server:1 imports private voxta_proto._private.x",
            ],
        ),
        (
            "import voxta_proto.hub._table",
            ["voxta_mock.server:1 imports private voxta_proto.hub._table"],
        ),
        (
            "from voxta_proto.client import VoxtaClient",
            [
                "voxta_mock.server:1 imports voxta_proto.client",
                "voxta_mock.server:1 imports voxta_proto.client.VoxtaClient",
            ],
        ),
        ("from voxta_proto import __version__", []),
        ("from voxta_proto._version import __version__", []),
        ("from voxta_proto.hub import HubConnection", []),
        ("from ._faults import FaultPlan", []),  # the mock's own private modules are its business
    ],
)
def test_checker_mock_rules(source: str, expected: list[str]) -> None:
    found = violations(source, "voxta_mock.server", forbidden=MOCK_FORBIDDEN, no_private_proto=True)
    assert found == expected
