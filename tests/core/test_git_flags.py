"""Index entries flagged `--skip-worktree` / `--assume-unchanged`: captured as they are on disk.

`git status` trusts both flags and calls such files clean; a capture must not.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from flexlock.core import _git, capture_repo, clear_capture_cache, runlock
from tests._helpers import git


def flagged_repo(repo: Path) -> Path:
    """Add `skip.py` (skip-worktree) and `assume.py` (assume-unchanged), both edited since."""
    for name in ("skip.py", "assume.py", "plain.py"):
        (repo / name).write_text(f"{name} committed\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "flagged files")
    git(repo, "update-index", "--skip-worktree", "skip.py")
    git(repo, "update-index", "--assume-unchanged", "assume.py")
    (repo / "skip.py").write_text("skip.py EDITED on disk\n")
    (repo / "assume.py").write_text("assume.py EDITED on disk\n")
    return repo


def user_state(repo: Path) -> tuple[str, str, bytes]:
    """The flags, staged entries and index bytes a capture must leave as they are."""
    index = Path(git(repo, "rev-parse", "--absolute-git-dir")) / "index"
    return git(repo, "ls-files", "-v"), git(repo, "ls-files", "--stage"), index.read_bytes()


def blob(repo: Path, tree: str, path: str) -> str:
    return git(repo, "cat-file", "blob", f"{tree}:{path}")


def test_edited_flagged_files_are_captured_and_dirty(git_repo: Path) -> None:
    repo = flagged_repo(git_repo)
    assert git(repo, "status", "--porcelain") == ""  # git itself calls the tree clean
    before = user_state(repo)

    record = capture_repo(repo)

    assert record.dirty
    assert {" M skip.py", " M assume.py"} <= set(record.changes)
    assert blob(repo, record.tree, "skip.py") == "skip.py EDITED on disk"
    assert blob(repo, record.tree, "assume.py") == "assume.py EDITED on disk"
    assert blob(repo, record.tree, "plain.py") == "plain.py committed"
    assert record.snapshot != git(repo, "rev-parse", "HEAD")
    assert user_state(repo) == before


def test_unedited_flagged_files_stay_clean(git_repo: Path) -> None:
    repo = flagged_repo(git_repo)
    (repo / "skip.py").write_text("skip.py committed\n")
    (repo / "assume.py").write_text("assume.py committed\n")

    record = capture_repo(repo)

    assert (record.dirty, record.snapshot) == (False, git(repo, "rev-parse", "HEAD"))


def test_deleted_assume_unchanged_file_is_recorded_deleted(git_repo: Path) -> None:
    repo = flagged_repo(git_repo)
    (repo / "assume.py").unlink()
    (repo / "skip.py").unlink()  # outside a sparse checkout: the index version stands

    record = capture_repo(repo)

    assert " D assume.py" in record.changes
    files = git(repo, "ls-tree", "--name-only", record.tree).split()
    assert ("assume.py" in files, "skip.py" in files) == (False, True)
    assert blob(repo, record.tree, "skip.py") == "skip.py committed"


def test_flagged_path_that_is_no_longer_a_file_is_unverifiable(git_repo: Path) -> None:
    repo = flagged_repo(git_repo)
    (repo / "skip.py").unlink()
    (repo / "skip.py").mkdir()

    record = capture_repo(repo)

    assert record.dirty
    assert any(line.startswith("!! skip.py") for line in record.changes)


def test_pathspecs_limit_the_flagged_entries(git_repo: Path) -> None:
    repo = flagged_repo(git_repo)

    record = capture_repo(repo, include=["plain.py"])

    assert (record.dirty, record.changes) == (False, ())


def test_run_sheet_says_dirty_and_leaves_flags(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = flagged_repo(git_repo)
    before = user_state(repo)
    monkeypatch.chdir(repo)
    clear_capture_cache()

    with runlock(
        config={"save_dir": "results/run"}, repos=["."], packages=False, finalize_at_exit=False
    ):
        pass
    clear_capture_cache()

    sheet = yaml.safe_load((repo / "results" / "run" / "run.lock").read_text())
    code = sheet["code"]["."]
    assert code["dirty"] is True
    assert blob(repo, code["tree"], "skip.py") == "skip.py EDITED on disk"
    assert user_state(repo) == before


def test_reuse_sees_a_later_edit_of_a_flagged_file(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_git, "RACY_WINDOW_NS", 0)
    repo = flagged_repo(git_repo)
    capture_repo(repo, reuse=True)
    time.sleep(0.01)
    (repo / "skip.py").write_text("skip.py EDITED again\n")

    record = capture_repo(repo, reuse=True)

    assert blob(repo, record.tree, "skip.py") == "skip.py EDITED again"


def test_reuse_sees_a_flag_set_after_the_capture(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_git, "RACY_WINDOW_NS", 0)
    (git_repo / "later.py").write_text("later committed\n")
    git(git_repo, "add", "later.py")
    git(git_repo, "commit", "-q", "-m", "later")
    assert not capture_repo(git_repo, reuse=True).dirty
    git(git_repo, "update-index", "--skip-worktree", "later.py")
    (git_repo / "later.py").write_text("later EDITED\n")
    os.utime(git_repo / "later.py", ns=(0, 0))

    record = capture_repo(git_repo, reuse=True)

    assert record.dirty
    assert blob(git_repo, record.tree, "later.py") == "later EDITED"
