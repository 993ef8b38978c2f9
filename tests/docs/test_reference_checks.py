"""The reference-page check (``docs/_ext/reference_checks.py``) catches what it claims to,
in the form mkdocs renders it (``nox -s docs`` runs it on every reference page)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

HOOK = Path(__file__).resolve().parents[2] / "docs" / "_ext" / "reference_checks.py"


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reference_checks", HOOK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _page(body: str) -> str:
    return f'<nav class="md-sidebar--secondary"></nav><article>{body}</article>'


def test_a_raw_role_is_caught_as_markdown_renders_it() -> None:
    problems = _hook().problems
    # Markdown turns :class:`Foo` into :class:<code>Foo</code>: the backticks are gone.
    for body in ["<p>see :class:<code>Foo</code> here</p>",
                 "<p>see :meth:`~voxta_proto.Foo.bar` here</p>",
                 "<p>a :data:<code>MAX</code>.</p>"]:
        found = problems("mock", _page(body))
        assert len(found) == 1, (body, found)
        assert "raw Sphinx roles" in found[0], (body, found)


def test_a_rest_literal_block_marker_is_caught() -> None:
    found = _hook().problems("core", _page("<p>Bytes go in, events come out::</p>"))
    assert found == ["reST literal-block markers (::) in Bytes go in, events come out::"]


def test_markdown_cross_references_and_code_pass() -> None:
    body = ('<p>see <a href="#voxta_proto.Foo"><code>Foo</code></a>, '
            "<code>a::b</code> and ratio 1:2</p>")
    assert _hook().problems("core", _page(body)) == []


def test_an_enum_member_default_is_not_a_constant_name() -> None:
    problems = _hook().problems
    member = ('<div class="doc-signature highlight">f(source: Source = <span title='
              '"voxta_proto.voxta.Source.SCREEN">SCREEN</span>)</div>')
    constant = '<div class="doc-signature highlight">f(timeout: float = TIMEOUT_S)</div>'
    assert problems("mock", _page(member)) == []
    assert problems("mock", _page(constant)) == [
        "a default shown as the constant name TIMEOUT_S, not its value"]
