"""README stays a front page: the "why" fits on one screen, the figures live in the
performance guide, and the package metadata points to the project."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_why_fits_on_one_screen() -> None:
    why = README.split("## Why this one\n", 1)[1].split("\n## ", 1)[0]
    prose = why.split("```python", 1)[0]  # the example after it is its own screen
    assert len(prose.strip().splitlines()) <= 30


def test_the_figures_are_in_the_performance_guide_not_in_readme() -> None:
    guide = (ROOT / "docs" / "guides" / "performance.md").read_text(encoding="utf-8")
    assert "| receive, per message |" in guide
    assert "| receive, per message |" not in README
    assert not re.search(r"\d+(\.\d+)? µs", README)
    assert "(docs/guides/performance.md)" in README


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_pyproject_has_project_urls_and_a_trio_extra() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    project = importlib.import_module("tomllib").loads(text)["project"]
    assert {"Homepage", "Source", "Issues", "Documentation"} <= set(project["urls"])
    assert any(dep.startswith("trio") for dep in project["optional-dependencies"]["trio"])
