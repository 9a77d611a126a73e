"""A real project travels: copied, moved (original gone) or cloned with its results.

Two stages (prepare, then train over a task list with `--n_jobs 2` consuming prepare's
run) are run in place, then the project is copied, moved or cloned; there a resume
skips every task, `flexlock verify` passes and `flexlock diff RUN` says up to date.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests._helpers import git
from tests.cli._two_stages import PREPARE, TRAIN


def _run(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], cwd=cwd, capture_output=True, text=True, check=False, timeout=300
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "place" / "proj"
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "commit.gpgsign", "false")
    (root / "prepare.py").write_text(PREPARE)
    (root / "train.py").write_text(TRAIN)
    (root / ".gitignore").write_text("results/\n")
    (root / "data").mkdir()
    (root / "data" / "raw.csv").write_text("a,b\n1,2\n")
    (root / "cs.txt").write_text("0.1\n1\n10\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "pipeline")
    assert 0 == _run(root, "prepare.py").returncode
    trained = _run(root, "train.py", "--tasks", "cs.txt", "--task_to", "c", "--n_jobs", "2")
    assert 0 == trained.returncode, trained.stderr
    return root


def _judged_by_itself(where: Path) -> None:
    again = _run(where, "train.py", "--tasks", "cs.txt", "--task_to", "c", "--n_jobs", "2")
    assert 0 == again.returncode, again.stderr
    assert "3 of 3 tasks already done, skipped" in again.stderr
    flexlock = str(Path(sys.executable).parent / "flexlock")
    tasks = sorted(path.parent.name for path in (where / "results/train").glob("*/run.lock"))
    assert 3 == len(tasks)
    runs = ["results/prepare", *(f"results/train/{task}" for task in tasks)]
    for run in runs:
        verified = subprocess.run(
            [flexlock, "verify", run], cwd=where, capture_output=True, text=True, check=False
        )
        assert 0 == verified.returncode, (run, verified.stdout)
        diffed = subprocess.run(
            [flexlock, "diff", run, "--no-env"],
            cwd=where,
            capture_output=True,
            text=True,
            check=False,
        )
        first = diffed.stdout.strip().splitlines()[0]
        assert (0, "up to date: running it again would be skipped") == (diffed.returncode, first)


def test_a_copy_beside_a_changed_original_is_judged_by_itself(
    project: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "elsewhere" / "proj"
    shutil.copytree(project, copy, symlinks=True)
    (project / "train.py").write_text(TRAIN + "\n# the original moved on\n")
    (project / "data" / "raw.csv").write_text("changed\n")
    _judged_by_itself(copy)


def test_a_moved_project_without_its_original_resumes_verifies_and_diffs(
    project: Path, tmp_path: Path
) -> None:
    moved = tmp_path / "moved" / "proj"
    moved.parent.mkdir()
    shutil.move(project, moved)
    _judged_by_itself(moved)


def test_a_clone_given_the_results_resumes_verifies_and_diffs(
    project: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "clone" / "proj"
    clone.parent.mkdir()
    git(clone.parent, "clone", "-q", str(project), str(clone))
    shutil.copytree(project / "results", clone / "results", symlinks=True)
    shutil.rmtree(project)
    _judged_by_itself(clone)
