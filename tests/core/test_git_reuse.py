"""`capture_repo(reuse=True)`: a kept capture comes back only while nothing has changed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from flexlock.core import _git, capture_repo
from tests._helpers import git


@pytest.fixture
def dirty_repo(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repo with a tracked edit and an untracked file, old enough to be judged by stat."""
    (git_repo / "README.md").write_text("edited\n")
    (git_repo / "notes.txt").write_text("untracked\n")
    # Files here are seconds old at most; the 2 s racy window would keep every capture
    # from being reused. Tests of the window itself use the real value.
    monkeypatch.setattr(_git, "RACY_WINDOW_NS", 0)
    return git_repo


def blob(repo: Path, tree: str, path: str) -> str:
    """Return a file of `tree`, without its trailing newline."""
    return git(repo, "cat-file", "blob", f"{tree}:{path}")


def test_unchanged_tree_returns_the_kept_record(dirty_repo: Path) -> None:
    first = capture_repo(dirty_repo, reuse=True)

    assert first is capture_repo(dirty_repo, reuse=True)


def test_without_reuse_every_call_captures_again(dirty_repo: Path) -> None:
    first = capture_repo(dirty_repo, reuse=True)

    again = capture_repo(dirty_repo)

    assert first is not again
    assert first == again


def test_same_size_edit_with_mtime_restored_is_captured(dirty_repo: Path) -> None:
    capture_repo(dirty_repo, reuse=True)
    readme = dirty_repo / "README.md"
    before = readme.stat()
    time.sleep(0.01)  # a later ctime, which no tool can set back
    readme.write_text("EDITED\n")
    os.utime(readme, ns=(before.st_atime_ns, before.st_mtime_ns))

    record = capture_repo(dirty_repo, reuse=True)

    assert "EDITED" == blob(dirty_repo, record.tree, "README.md")


def test_edited_untracked_file_is_captured(dirty_repo: Path) -> None:
    capture_repo(dirty_repo, reuse=True)
    (dirty_repo / "notes.txt").write_text("other notes\n")

    record = capture_repo(dirty_repo, reuse=True)

    assert "other notes" == blob(dirty_repo, record.tree, "notes.txt")


def test_new_untracked_file_is_captured(dirty_repo: Path) -> None:
    capture_repo(dirty_repo, reuse=True)
    (dirty_repo / "more.txt").write_text("more\n")

    record = capture_repo(dirty_repo, reuse=True)

    assert "more" == blob(dirty_repo, record.tree, "more.txt")


def test_staging_a_change_is_captured(dirty_repo: Path) -> None:
    first = capture_repo(dirty_repo, reuse=True)
    git(dirty_repo, "add", "notes.txt")

    record = capture_repo(dirty_repo, reuse=True)

    assert "?? notes.txt" in first.changes
    assert "A  notes.txt" in record.changes


def test_new_commit_is_captured(dirty_repo: Path) -> None:
    first = capture_repo(dirty_repo, reuse=True)
    git(dirty_repo, "commit", "-q", "-am", "edit")

    record = capture_repo(dirty_repo, reuse=True)

    assert first.commit != record.commit
    assert first.tree == record.tree  # same files, now committed


def test_other_options_do_not_share_a_kept_capture(dirty_repo: Path) -> None:
    whole = capture_repo(dirty_repo, reuse=True)

    narrowed = capture_repo(dirty_repo, reuse=True, exclude=["notes.txt"])

    assert whole.tree != narrowed.tree


def test_file_edited_within_the_racy_window_is_never_reused(
    dirty_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_git, "RACY_WINDOW_NS", 2_000_000_000)
    first = capture_repo(dirty_repo, reuse=True)  # README.md was just written

    assert first is not capture_repo(dirty_repo, reuse=True)


def test_repo_with_submodules_is_never_reused(dirty_repo: Path) -> None:
    (dirty_repo / ".gitmodules").write_text("")
    first = capture_repo(dirty_repo, reuse=True)

    assert first is not capture_repo(dirty_repo, reuse=True)
