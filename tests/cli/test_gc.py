"""`flexlock gc` and `flexlock unlock` on real git repositories and real save_dirs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from flexlock.core import SaveDirLock, load, runlock
from flexlock.core._git_snapshot import KEPT_PREFIX, REF_PREFIX
from tests._helpers import git
from tests.cli._inspect_helpers import flexlock

_OLD = time.time() - 7200  # older than gc's one-hour guard for freshly written refs


@pytest.fixture
def project(git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLEXLOCK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(git_repo)
    (git_repo / ".gitignore").write_text("results/\n")
    git(git_repo, "add", ".gitignore")
    git(git_repo, "commit", "-q", "-m", "ignore results")
    return git_repo


def _run(project: Path, save_dir: str, **config: Any) -> Path:
    """A real run of `project` (a dirty tree: its own snapshot commit)."""
    with runlock({"save_dir": save_dir, **config}, repos=[project]) as run:
        pass
    return run.path


def _refs(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", "refs/flexlock/").splitlines()


def _age_refs(repo: Path) -> None:
    for top, _, files in os.walk(repo / ".git" / "refs" / "flexlock"):
        for name in files:
            os.utime(Path(top, name), (_OLD, _OLD))


def _orphan_refs(repo: Path, count: int) -> None:
    """`count` snapshot commits that no sheet names, each under a per-run ref (fast-import)."""
    stream = []
    for index in range(count):
        message = f"orphan {index}\n".encode()
        stream.append(
            b"commit refs/flexlock/runs/orphan-%d\n"
            b"committer flexlock <flexlock@localhost> 0 +0000\n"
            b"data %d\n%s\n" % (index, len(message), message)
        )
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=b"".join(stream), check=True)


def _history(save_dir: Path, count: int) -> None:
    """`count` history sheets named as the writer names them, one a minute in 2025."""
    history = save_dir / ".flexlock" / "history"
    history.mkdir(parents=True, exist_ok=True)
    text = (save_dir / "run.lock").read_bytes()
    for index in range(count):
        day, minute = divmod(index, 1440)
        stamp = f"2025{1 + day // 28:02d}{1 + day % 28:02d}T{minute // 60:02d}{minute % 60:02d}00Z"
        (history / f"{stamp}-succeeded-{index:012x}.lock").write_bytes(text)


def test_dry_run_lists_history_beyond_the_newest_and_removes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = _run(project, "results/a")
    _history(lock.parent, 1000)

    code, out, _ = flexlock(capsys, "gc", "results")

    history = sorted((lock.parent / ".flexlock" / "history").iterdir())
    assert (0, 1000) == (code, len(history))
    assert "history: would remove 990 sheet(s) in 1 save_dir(s)" in out
    assert "dry run: nothing was removed" in out


def test_yes_keeps_the_newest_history_sheets(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = _run(project, "results/a")
    _history(lock.parent, 1000)
    newest = sorted(path.name for path in (lock.parent / ".flexlock" / "history").iterdir())[-10:]

    code, out, _ = flexlock(capsys, "gc", "results", "--yes")

    left = sorted(path.name for path in (lock.parent / ".flexlock" / "history").iterdir())
    assert (0, newest) == (code, left)
    assert "history: removed 990 sheet(s)" in out


def test_older_than_only_removes_history_before_the_date(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = _run(project, "results/a")
    _history(lock.parent, 3 * 1440)  # 2025-01-01, -02 and -03

    flexlock(capsys, "gc", "results", "--keep-history", "0", "--older-than", "2025-01-02", "-y")

    left = sorted(path.name[:8] for path in (lock.parent / ".flexlock" / "history").iterdir())
    assert {"20250102", "20250103"} == set(left)


def test_refs_no_sheet_needs_go_and_a_present_sheets_snapshot_survives_git_gc(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "README.md").write_text("edited for the run\n")
    lock = _run(project, "results/a")
    snapshot = load(lock).code[str(project)].snapshot or ""
    _orphan_refs(project, 10_000)
    _age_refs(project)

    code, out, _ = flexlock(capsys, "gc", "results", "--yes")
    git(project, "gc", "-q", "--prune=now")

    assert (0, [KEPT_PREFIX + snapshot]) == (code, _refs(project))
    assert f"refs of {project}: removed 10000 snapshot ref(s)" in out
    assert "commit" == git(project, "cat-file", "-t", snapshot)
    orphan = subprocess.run(
        ["git", "rev-parse", "-q", "--verify", REF_PREFIX + "orphan-1"], cwd=project, check=False
    )
    assert 0 != orphan.returncode


def test_a_per_run_ref_of_an_older_version_becomes_a_per_commit_ref(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "README.md").write_text("edited for the run\n")
    lock = _run(project, "results/a")
    snapshot = load(lock).code[str(project)].snapshot or ""
    git(project, "update-ref", "-d", KEPT_PREFIX + snapshot)
    git(project, "update-ref", REF_PREFIX + "sha256-old", snapshot)  # as 0.11 pinned it
    _age_refs(project)

    flexlock(capsys, "gc", "results", "--yes")
    git(project, "gc", "-q", "--prune=now")

    assert [KEPT_PREFIX + snapshot] == _refs(project)
    assert "commit" == git(project, "cat-file", "-t", snapshot)


def test_a_sheet_outside_the_given_dirs_keeps_its_ref(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "README.md").write_text("first\n")
    elsewhere = _run(project, str(tmp_path / "elsewhere" / "run"))
    (project / "README.md").write_text("second\n")
    _run(project, "results/a")
    kept = load(elsewhere).code[str(project)].snapshot or ""
    _age_refs(project)

    flexlock(capsys, "gc", "results", "--yes")
    git(project, "gc", "-q", "--prune=now")

    assert KEPT_PREFIX + kept in _refs(project)
    assert "commit" == git(project, "cat-file", "-t", kept)


def test_a_fresh_ref_is_kept_though_no_sheet_names_it_yet(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(project, "results/a")
    _orphan_refs(project, 1)  # written just now: a run that has not written its sheet yet
    commit = git(project, "rev-parse", REF_PREFIX + "orphan-0")

    flexlock(capsys, "gc", "results", "--yes")

    assert KEPT_PREFIX + commit in _refs(project)  # kept, as one ref per commit


def test_cache_shards_of_vanished_roots_go(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flexlock.core import hash_path

    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("a\n")
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "b.txt").write_text("b\n")
    for path in (data / "a.txt", kept / "b.txt"):  # outside the racy window: cached
        os.utime(path, (_OLD, _OLD))
    hash_path(data)
    hash_path(kept)
    shutil.rmtree(data)
    _run(project, "results/a")
    shards = tmp_path / "cache" / "hashes"
    before = sorted(shards.rglob("*.seg"))
    assert 2 == len(before)

    code, out, _ = flexlock(capsys, "gc", "results", "--yes")

    assert (0, 1) == (code, len(before) - len(sorted(shards.rglob("*.seg"))))
    assert "hash cache: removed 1 entry folder(s)" in out


# -- flexlock unlock -------------------------------------------------------------------


def _dead_lock(save_dir: Path) -> Path:
    lock = save_dir / ".flexlock" / "lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    owner = {"host": os.uname().nodename, "pid": 2**22 + 12345, "nonce": "ab", "created": "x"}
    lock.write_text(json.dumps(owner))
    return lock


def test_unlock_shows_a_dead_holder_and_removes_its_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = _dead_lock(tmp_path / "run")

    code, out, _ = flexlock(capsys, "unlock", str(tmp_path / "run"), "--yes")

    assert (0, False) == (code, lock.exists())
    assert f"pid {2**22 + 12345}" in out
    assert "(stale)" in out


def test_unlock_without_yes_and_without_a_terminal_removes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = _dead_lock(tmp_path / "run")
    monkeypatch.setattr("sys.stdin", Path(os.devnull).open())  # noqa: SIM115

    code, _, err = flexlock(capsys, "unlock", str(tmp_path / "run"))

    assert (2, True) == (code, lock.exists())
    assert "pass --yes" in err


def test_unlock_refuses_a_live_holder_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SaveDirLock(tmp_path / "run") as held:
        code, _, err = flexlock(capsys, "unlock", str(tmp_path / "run"), "--yes")
        assert (2, True) == (code, held.path.exists())
        assert f"pid {os.getpid()}" in err


def test_unlock_of_an_unlocked_dir_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "run").mkdir()

    assert (0, f"{tmp_path / 'run'} is not locked\n", "") == flexlock(
        capsys, "unlock", str(tmp_path / "run")
    )
