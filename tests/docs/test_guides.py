"""The guides stay true to the code: their complete programs run against the bundled
mock, the files they point to exist, and the benchmark table has its placeholder."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))


def _programs() -> list[tuple[str, str]]:
    """Every ```python block that is a whole program (it ends by running ``main``)."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for number, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.S)):
            if "anyio.run(main)" in block:
                found.append((f"{page.relative_to(DOCS)}#{number}", block))
    return found


PROGRAMS = _programs()


def test_the_guides_have_runnable_programs() -> None:
    pages = {name.split("#")[0] for name, _ in PROGRAMS}
    assert {"getting-started.md", "guides/reconnect.md"} <= pages


@pytest.mark.network
@pytest.mark.parametrize(("name", "program"), PROGRAMS, ids=[n for n, _ in PROGRAMS])
def test_program_in_the_docs_runs(name: str, program: str) -> None:
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            timeout=90, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), f"{name} printed nothing"


def test_files_the_docs_point_to_exist() -> None:
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for path in re.findall(r"`(examples/[\w./-]+)`", text):
            assert (ROOT / path).exists(), f"{page.name} names {path}"


_SECTION_MARK = re.compile(r"^\s*# --8<-- \[(start|end):\w+\]\n", re.M)
COPIED = re.compile(r"<!-- code from ([^ ]+) -->\n```python\n(.*?)```", re.S)
"""A guide's copy of example code: ``<!-- code from PATH[:SECTION] -->`` then the block."""


def example_code(spec: str) -> str:
    """The text of ``PATH`` or of its ``# --8<-- [start:SECTION]`` section, dedented,
    without section marker lines."""
    path, _, section = spec.partition(":")
    text = (ROOT / path).read_text(encoding="utf-8")
    if section:
        start, end = f"# --8<-- [start:{section}]\n", f"# --8<-- [end:{section}]"
        assert start in text, f"{path} has no section {section!r}"
        assert end in text, f"{path} has no end of section {section!r}"
        text = text.split(start, 1)[1].split(end, 1)[0]
        text = textwrap.dedent(text[: text.rfind("\n") + 1])
    return _SECTION_MARK.sub("", text)


# The pages README links to: GitHub shows them as plain Markdown.
PLAIN_PAGES = [DOCS / "index.md", DOCS / "getting-started.md",
               *sorted((DOCS / "guides").glob("*.md"))]


@pytest.mark.parametrize("page", PLAIN_PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_guides_read_as_plain_markdown(page: Path) -> None:
    """No snippet includes or mkdocstrings directives: they show raw on GitHub."""
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"^--8<--", text, re.M), "an include line; copy the code instead"
    assert not re.search(r"^:::", text, re.M), "a mkdocstrings directive"


def test_code_copied_into_the_guides_matches_the_examples() -> None:
    copies = [(page, spec, block) for page in PAGES
              for spec, block in COPIED.findall(page.read_text(encoding="utf-8"))]
    assert len(copies) >= 5
    for page, spec, block in copies:
        assert block == example_code(spec), (
            f"{page.relative_to(DOCS)}: the copy of {spec} is stale; paste the current code")


def test_the_benchmark_table_has_its_markers() -> None:
    text = (DOCS / "guides" / "performance.md").read_text(encoding="utf-8")
    table = text.split("<!-- bench-table:start -->", 1)[1].split("<!-- bench-table:end -->")
    assert len(table) == 2, "the bench-table markers are missing or out of order"
    assert "`nox -s bench`" in text
