"""The guides stay true to the code: their complete programs run against the bundled
mock, the files they point to exist, and the benchmark table has its placeholder."""

from __future__ import annotations

import re
import subprocess
import sys
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
        for path in re.findall(r'--8<-- "([^":]+)', text):
            assert (ROOT / path).is_file(), f"{page.name} includes {path}"


def test_the_benchmark_table_has_its_markers() -> None:
    text = (DOCS / "guides" / "performance.md").read_text(encoding="utf-8")
    table = text.split("<!-- bench-table:start -->", 1)[1].split("<!-- bench-table:end -->")
    assert len(table) == 2, "the bench-table markers are missing or out of order"
    assert "`nox -s bench`" in text
