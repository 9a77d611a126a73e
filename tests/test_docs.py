"""Every ```python block in README.md and docs/*.md runs, so the docs cannot rot.

The blocks of one page run in order in one fresh interpreter, in an empty temp
directory (later blocks may use what earlier ones defined). A block fenced as
```python no-run is shown to readers but not executed; ```console and other
languages are not run here (the CLI pages are tested against the code by their
own tests).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests._helpers import REPO_ROOT

_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
PAGES = sorted([REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md")])


def _python_blocks(page: Path) -> list[str]:
    return _BLOCK.findall(page.read_text(encoding="utf-8"))


def _needs(source: str) -> list[str]:
    """The flexlock distributions a page's code imports."""
    return sorted(set(re.findall(r"flexlock\.(core|cli|mlflow|slurm)", source)))


@pytest.mark.parametrize(
    "page", [p for p in PAGES if _python_blocks(p)], ids=lambda p: str(p.relative_to(REPO_ROOT))
)
def test_python_blocks_of_page_run(page: Path, tmp_path: Path) -> None:
    import importlib.util

    source = "\n\n".join(_python_blocks(page))
    for part in _needs(source):
        if importlib.util.find_spec(f"flexlock.{part}") is None:
            pytest.skip(f"{page.name} uses flexlock-{part}, not installed in this install set")
    script = tmp_path / "page.py"
    script.write_text(source, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert 0 == result.returncode, f"{page.name}:\n{result.stdout}\n{result.stderr}"
