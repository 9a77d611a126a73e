"""`--code_include` / `--code_exclude`: a run says what its code is, and resume respects it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flexlock.core import load
from tests._helpers import git

SCRIPT = """
import attrs
from flexlock.cli import clicfg


@attrs.define
class Config:
    param: int = 1
    save_dir: str = "results/run"


@clicfg
def main(cfg: Config) -> None:
    print("ran", cfg.param)


if __name__ == "__main__":
    main()
"""


@pytest.fixture
def project(git_repo: Path) -> Path:
    (git_repo / "process.py").write_text(SCRIPT)
    (git_repo / ".gitignore").write_text("results/\n")
    git(git_repo, "add", ".")
    git(git_repo, "commit", "-q", "-m", "script")
    return git_repo


def _run(project: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "process.py", *argv],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_code_exclude_is_recorded_and_resume_ignores_what_it_leaves_out(project: Path) -> None:
    assert 0 == _run(project, "--code_exclude", "notes/").returncode
    assert ("notes/",) == load(project / "results/run/run.lock").code["."].exclude
    (project / "notes").mkdir()
    (project / "notes" / "todo.txt").write_text("an untracked note\n")
    resumed = _run(project, "--code-exclude", "notes/", "--resume")
    assert 0 == resumed.returncode
    assert "up to date, skipped" in resumed.stderr


def test_resume_with_another_scope_reruns_and_says_why(project: Path) -> None:
    assert 0 == _run(project, "--code_exclude", "notes/").returncode
    resumed = _run(project, "--resume")
    assert 0 == resumed.returncode
    assert "code scope changed in ." in resumed.stderr


def test_a_task_list_records_the_scope_in_every_task(project: Path) -> None:
    (project / "tasks.txt").write_text("1\n2\n")
    completed = _run(
        project, "--tasks", "tasks.txt", "--task_to", "param", "--code_exclude", "*.ipynb"
    )
    assert 0 == completed.returncode, completed.stderr
    assert [("*.ipynb",), ("*.ipynb",)] == [
        load(project / f"results/run/param={value}/run.lock").code["."].exclude for value in (1, 2)
    ]
    (project / "draft.ipynb").write_text("{}\n")
    again = _run(project, "--tasks", "tasks.txt", "--task_to", "param", "--code_exclude", "*.ipynb")
    assert "2 of 2 tasks already done, skipped" in again.stderr
