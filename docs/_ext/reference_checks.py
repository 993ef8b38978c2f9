"""mkdocs hook: the built API reference reads well, or the build fails.

Checked on each reference page as rendered: no ``__aenter__``/``__aexit__`` entries in the
table of contents, one signature per function (not one per overload as well), parameter
defaults shown as values rather than constant names, and no raw Sphinx roles
(``:class:`X```) or reST literal-block markers (a paragraph ending in ``::``): docstrings
use Markdown, with ``[`X`][voxta_proto.X]`` cross-references and fenced code.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from typing import Any

NAMED_DEFAULTS = {"DEFAULT_DATA", "TASK_STATUS_IGNORED"}
"""Defaults that are objects, not literals: their names say more than a repr would."""

_TAGS = re.compile(r"<[^>]+>")
_SIGNATURE = re.compile(r'<div class="doc-signature[^"]*"[^>]*>(.*?)</div>', re.S)
_QUALIFIED = re.compile(
    r'<span title="([\w.]+\.[A-Z][a-z]\w*\.(\w+))">\2</span>'
    r'|<a [^>]*href="[^"]*#([\w.]+\.[A-Z][a-z]\w*\.(\w+))"[^>]*>\4</a>')
"""A class member (an enum member) in a signature, rendered as its last name only."""
_ROLE_TEXT = re.compile(r":(?:class|func|meth|attr|data|exc|mod|obj|py:\w+):`?[\w.~]+")
"""A role as rendered: Markdown has turned its backticks into <code>, so they may be gone."""
_LITERAL_MARK = re.compile(r"\w::\s*$|^\s*::\s*$", re.M)


def _text(markup: str) -> str:
    return html.unescape(_TAGS.sub("", markup))


def problems(page: str, output: str) -> list[str]:
    """What is wrong with the rendered reference page ``page`` (its file stem)."""
    found = []
    toc = output.split("md-sidebar--secondary", 1)[-1]
    if "__aenter__" in toc or "__aexit__" in toc:
        found.append("__aenter__/__aexit__ in the table of contents")
    # A default that names an enum member (``Direction.RECEIVED``) is rendered as its last
    # name, its full path in a title or link: read it as that path, not a bare constant.
    signatures = [_text(_QUALIFIED.sub(lambda m: m[1] or m[3], s))
                  for s in _SIGNATURE.findall(output)]
    for name in sorted(set(re.findall(r"= ([A-Z][A-Z0-9_]{2,})\b", "\n".join(signatures)))
                       - NAMED_DEFAULTS):
        found.append(f"a default shown as the constant name {name}, not its value")
    heads = Counter(s.split("(", 1)[0].strip() for s in signatures)
    if page == "client" and heads["wait_for"] != 1:
        found.append(f"{heads['wait_for']} signatures for wait_for (overloads shown)")
    article = _text(output.split("<article", 1)[-1])
    roles = sorted(set(_ROLE_TEXT.findall(article)))
    if roles:
        found.append(f"{len(roles)} raw Sphinx roles: " + ", ".join(roles[:5]))
    marks = [line.strip() for line in _text(
        "\n".join(re.findall(r"<p>(.*?)</p>", output, re.S))).splitlines()
        if _LITERAL_MARK.search(line)]
    if marks:
        found.append("reST literal-block markers (::) in " + "; ".join(marks[:3]))
    return found


def on_post_page(output: str, page: Any, config: Any) -> str:
    path = page.file.src_uri
    if path.startswith("reference/"):
        stem = path.rsplit("/", 1)[-1].removesuffix(".md")
        found = problems(stem, output)
        if found:
            # Imported here so that tests can use problems() without mkdocs installed.
            from mkdocs.exceptions import PluginError

            raise PluginError(f"{path}: " + "; ".join(found))
    return output
