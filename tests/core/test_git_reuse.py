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


# -- judged by stat data alone, once a status re-check confirmed the capture ---------------


@pytest.fixture
def watched_repo(dirty_repo: Path) -> Path:
    """A dirty repo (with a sub-directory and an ignored results/) whose capture is watched."""
    (dirty_repo / "src").mkdir()
    (dirty_repo / "src" / "model.py").write_text("A = 1\n")
    (dirty_repo / ".gitignore").write_text("results/\n")
    git(dirty_repo, "add", "src/model.py", ".gitignore")
    git(dirty_repo, "commit", "-q", "-m", "src")
    (dirty_repo / "results").mkdir()
    capture_repo(dirty_repo, reuse=True)
    capture_repo(dirty_repo, reuse=True)  # confirmed by git status: the watch is set
    return dirty_repo


def _git_processes(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record the git commands the capture module runs (the real runner still runs them)."""
    calls: list[list[str]] = []
    real = _git._run

    def counting(args: list[str], *rest: object, **options: object) -> object:
        calls.append(list(args))
        return real(args, *rest, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(_git, "_run", counting)
    return calls


def test_watched_capture_is_reused_without_any_git_process(
    watched_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _git_processes(monkeypatch)
    first = capture_repo(watched_repo, reuse=True)

    again = [capture_repo(watched_repo, reuse=True) for _ in range(3)]

    assert ([], [first] * 3) == (calls, again)


def test_outputs_written_under_an_ignored_directory_keep_the_watch(
    watched_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = capture_repo(watched_repo, reuse=True)
    calls = _git_processes(monkeypatch)
    (watched_repo / "results" / "run1").mkdir()
    (watched_repo / "results" / "run1" / "run.lock").write_text("x\n")

    assert (first, []) == (capture_repo(watched_repo, reuse=True), calls)


def test_watched_clean_tracked_file_edited_is_captured(watched_repo: Path) -> None:
    model = watched_repo / "src" / "model.py"
    before = model.stat()
    time.sleep(0.01)  # a later ctime, which no tool can set back
    model.write_text("A = 2\n")
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))

    record = capture_repo(watched_repo, reuse=True)

    assert "A = 2" == blob(watched_repo, record.tree, "src/model.py")


def test_watched_new_file_in_a_subdirectory_is_captured(watched_repo: Path) -> None:
    (watched_repo / "src" / "extra.py").write_text("B = 1\n")

    record = capture_repo(watched_repo, reuse=True)

    assert "B = 1" == blob(watched_repo, record.tree, "src/extra.py")


def test_watched_new_commit_is_captured(watched_repo: Path) -> None:
    first = capture_repo(watched_repo, reuse=True)
    git(watched_repo, "commit", "-q", "--allow-empty", "-m", "empty")  # no file changes

    assert first.commit != capture_repo(watched_repo, reuse=True).commit


def test_watched_unignoring_a_directory_is_captured(watched_repo: Path) -> None:
    (watched_repo / "results" / "out.txt").write_text("out\n")
    (watched_repo / ".git" / "info").mkdir(exist_ok=True)
    (watched_repo / ".gitignore").write_text("# results/ no longer ignored\n")

    record = capture_repo(watched_repo, reuse=True)

    assert "out" == blob(watched_repo, record.tree, "results/out.txt")


def test_watched_remote_change_is_recorded(watched_repo: Path) -> None:
    git(watched_repo, "remote", "add", "origin", "https://example.com/repo.git")

    assert "https://example.com/repo.git" == capture_repo(watched_repo, reuse=True).remote


def test_no_watch_while_a_tracked_file_is_within_the_racy_window(
    watched_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_git, "RACY_WINDOW_NS", 2_000_000_000)
    (watched_repo / "src" / "model.py").write_text("A = 3\n")
    git(watched_repo, "add", "-A")
    git(watched_repo, "commit", "-q", "-m", "fresh")  # a clean tree, but files just written
    capture_repo(watched_repo, reuse=True)
    capture_repo(watched_repo, reuse=True)  # the status re-check confirms it, but too fresh
    calls = _git_processes(monkeypatch)

    capture_repo(watched_repo, reuse=True)

    assert [_git._status_args([])[0]] == [call[0] for call in calls]
