"""flexlock's own git commands never run the user's hooks (issue 20, item 4)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from flexlock.core import capture_repo
from flexlock.core._git_snapshot import keep_snapshot
from tests._helpers import git


def _hook(repo: Path, name: str, body: str) -> None:
    hook = repo / ".git" / "hooks" / name
    hook.write_text("#!/bin/sh\n" + body + "\n")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def edited_repo(git_repo: Path) -> Path:
    (git_repo / "README.md").write_text("edited\n")  # dirty: capture writes a temp index
    (git_repo / "new.txt").write_text("untracked\n")
    return git_repo


def test_failing_reference_transaction_hook_does_not_break_keeping_a_snapshot(
    edited_repo: Path,
) -> None:
    _hook(edited_repo, "reference-transaction", "exit 1")
    record = capture_repo(edited_repo)

    ref = keep_snapshot(record, "sha256:" + "cd" * 32)

    assert ref is not None
    assert git(edited_repo, "rev-parse", ref) == record.snapshot


def test_post_index_change_hook_is_not_run_by_a_capture(edited_repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "hook-ran"
    _hook(edited_repo, "post-index-change", f"echo ran >> '{marker}'")
    _hook(edited_repo, "reference-transaction", f"echo ran >> '{marker}'")

    record = capture_repo(edited_repo)
    keep_snapshot(record, "sha256:" + "ef" * 32)

    assert record.dirty
    assert not marker.exists()


def test_hooks_path_of_the_user_config_is_outranked(edited_repo: Path, tmp_path: Path) -> None:
    hooks = tmp_path / "user-hooks"
    hooks.mkdir()
    marker = tmp_path / "hook-ran"
    (hooks / "reference-transaction").write_text(f"#!/bin/sh\necho ran >> '{marker}'\nexit 1\n")
    (hooks / "reference-transaction").chmod(0o755)
    git(edited_repo, "config", "core.hooksPath", str(hooks))

    keep_snapshot(capture_repo(edited_repo), "sha256:" + "12" * 32)

    assert not marker.exists()
