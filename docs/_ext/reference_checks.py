"""mkdocs hook: the built API reference reads well, or the build fails.

Checked on each reference page as rendered: no ``__aenter__``/``__aexit__`` entries in the
table of contents, one signature per function (not one per overload as well), parameter
defaults shown as values rather than constant names, and no more raw Sphinx roles
(``:class:`X```) than the page had when they were last counted: converting a docstring
to Markdown cross-references lowers the number here, nothing may raise it.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from typing import Any

from mkdocs.exceptions import PluginError

ROLES_LEFT = {"catalog": 16, "client": 3, "core": 20, "errors": 0, "mock": 10,
              "transports": 21}
"""Raw roles still in the docstrings each page renders (issue 17); lower them as they go."""

NAMED_DEFAULTS = {"DEFAULT_DATA", "TASK_STATUS_IGNORED"}
"""Defaults that are objects, not literals: their names say more than a repr would."""

_TAGS = re.compile(r"<[^>]+>")
_SIGNATURE = re.compile(r'<div class="doc-signature[^"]*"[^>]*>(.*?)</div>', re.S)
_ROLE = re.compile(r":(?:class|func|meth|attr|data|exc|mod|obj):")


def _text(markup: str) -> str:
    return html.unescape(_TAGS.sub("", markup))


def problems(page: str, output: str) -> list[str]:
    """What is wrong with the rendered reference page ``page`` (its file stem)."""
    found = []
    toc = output.split("md-sidebar--secondary", 1)[-1]
    if "__aenter__" in toc or "__aexit__" in toc:
        found.append("__aenter__/__aexit__ in the table of contents")
    signatures = [_text(s) for s in _SIGNATURE.findall(output)]
    for name in sorted(set(re.findall(r"= ([A-Z][A-Z0-9_]{2,})\b", "\n".join(signatures)))
                       - NAMED_DEFAULTS):
        found.append(f"a default shown as the constant name {name}, not its value")
    heads = Counter(s.split("(", 1)[0].strip() for s in signatures)
    if page == "client" and heads["wait_for"] != 1:
        found.append(f"{heads['wait_for']} signatures for wait_for (overloads shown)")
    roles = len(_ROLE.findall(_text(output.split("<article", 1)[-1])))
    if roles > ROLES_LEFT.get(page, 0):
        found.append(f"{roles} raw Sphinx roles (at most {ROLES_LEFT.get(page, 0)})")
    return found


def on_post_page(output: str, page: Any, config: Any) -> str:
    path = page.file.src_uri
    if path.startswith("reference/"):
        stem = path.rsplit("/", 1)[-1].removesuffix(".md")
        found = problems(stem, output)
        if found:
            raise PluginError(f"{path}: " + "; ".join(found))
    return output
