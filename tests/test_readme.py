"""README.md stays true to the code: its Python example runs against the bundled mock."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "README.md lost its Python example"
    result = subprocess.run([sys.executable, "-c", blocks[0]], capture_output=True, text=True,
                            timeout=90, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("chat ")
    assert len(result.stdout.splitlines()) >= 2  # the streamed reply printed something
