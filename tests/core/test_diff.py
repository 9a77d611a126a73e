"""Explaining run differences (flexlock.core._diff), with sheets written by the real runlock()."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from flexlock.core import (
    EnvRecord,
    LockFileError,
    RunLock,
    clear_capture_cache,
    diff_current,
    diff_runs,
    load,
    runlock,
)
from flexlock.core._diff import Change, diff_locks
from tests._helpers import git


def record(
    save_dir: str,
    *,
    config: dict[str, Any] | None = None,
    data: Sequence[str] = (),
    repos: Sequence[Path] = (),
    prevs: Sequence[str] = (),
) -> Path:
    """Run an empty task with runlock() and return its run.lock."""
    with runlock(
        config={"save_dir": save_dir, **(config or {})},
        repos=list(repos),
        data=data,
        prevs=prevs,
        packages=False,
        finalize_at_exit=False,
    ):
        pass
    return Path(save_dir) / "run.lock"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    clear_capture_cache()  # captures are cached per process; each test has its own repos
    (tmp_path / "images").mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / "images" / name).write_bytes(name.encode())
    (tmp_path / "raw.csv").write_text("a,b\n")
    return tmp_path


def changes(result: Any, section: str) -> list[tuple[str, str, Any, Any]]:
    return [(c.key, c.kind, c.old, c.new) for c in result.changes if c.section == section]


def test_config_changes_are_listed_old_to_new(project: Path) -> None:
    a = record("a", config={"lr": 0.1, "model": {"depth": 18}, "seed": 1})
    b = record("b", config={"lr": 0.2, "model": {"depth": 18}, "epochs": 3})
    assert changes(diff_runs(a, b), "config") == [
        ("save_dir", "changed", "a", "b"),
        ("lr", "changed", 0.1, 0.2),
        ("seed", "removed", 1, None),
        ("epochs", "added", None, 3),
    ]


def test_an_int_and_a_float_are_different_config_values(project: Path) -> None:
    a = record("a", config={"x": 1})
    b = record("b", config={"x": 1.0})
    assert changes(diff_runs(a, b), "config")[-1] == ("x", "changed", 1, 1.0)


def test_two_runs_of_the_same_inputs_have_the_same_identity(project: Path) -> None:
    record("a", data=["raw.csv"])
    first = load("a/run.lock")
    record("a", data=["raw.csv"])
    assert diff_locks(first, load("a/run.lock")).same_identity


def test_code_changes_give_the_commit_range_and_the_files(project: Path, git_repo: Path) -> None:
    a = record("a", repos=[git_repo])
    (git_repo / "train.py").write_text("print(1)\n")
    git(git_repo, "add", "train.py")
    git(git_repo, "commit", "-q", "-m", "add train")
    clear_capture_cache()
    b = record("b", repos=[git_repo])
    (change,) = diff_runs(a, b).section("code")
    assert (
        change.detail[0].startswith("commits "),
        any("train.py" in line for line in change.detail),
    ) == (True, True)


def test_code_files_are_unavailable_when_the_repository_is_gone(
    project: Path, git_repo: Path
) -> None:
    a = record("a", repos=[git_repo])
    (git_repo / "README.md").write_text("edited\n")
    b = record("b", repos=[git_repo])
    import shutil

    shutil.rmtree(git_repo)
    (change,) = diff_runs(a, b).section("code")
    assert "files unavailable" in change.detail[-1]


def test_data_changes_name_files_from_the_kept_manifests(project: Path) -> None:
    a = record("a", data=["images"])
    (project / "images" / "a.png").unlink()
    (project / "images" / "c.png").write_bytes(b"c")
    b = record("b", data=["images"])
    (change,) = diff_runs(a, b).section("data")
    assert [line for line in change.detail if line.startswith("  ")] == ["  - a.png", "  + c.png"]


def test_a_changed_upstream_run_is_diffed_recursively(project: Path) -> None:
    record("prepare", data=["raw.csv"])
    a = record("a", prevs=["prepare"])
    (project / "raw.csv").write_text("changed\n")
    record("prepare", data=["raw.csv"])
    b = record("b", prevs=["prepare"])
    (change,) = diff_runs(a, b).section("prevs")
    assert change.upstream is not None
    assert [c.key for c in change.upstream.section("data")] == ["raw.csv"]


def test_package_version_changes_are_environment_changes() -> None:
    env = EnvRecord("3.11", "cpython", "linux", "host", "me", "/", packages={"numpy": "1.26"})
    a = RunLock(id="x", status="succeeded", created="t", env=env)
    b = attrs.evolve(a, env=attrs.evolve(env, packages={"numpy": "2.0", "torch": "2.1"}))
    assert diff_locks(a, b).section("env") == [
        Change("env", "packages.numpy", "changed", "1.26", "2.0"),
        Change("env", "packages.torch", "added", None, "2.1"),
    ]


def test_a_status_change_is_listed() -> None:
    a = RunLock(id="x", status="failed", created="t")
    assert diff_locks(a, attrs.evolve(a, status="succeeded")).section("status") == [
        Change("status", "status", "changed", "failed", "succeeded")
    ]


def test_an_untouched_run_would_be_skipped(project: Path, git_repo: Path) -> None:
    lock = record("a", data=["raw.csv", "images"], repos=[git_repo])
    result, reason = diff_current(lock)
    assert (reason, result.same_identity, changes(result, "data"), changes(result, "code")) == (
        None,
        True,
        [],
        [],
    )


def test_an_edited_repository_would_rerun_the_run(project: Path, git_repo: Path) -> None:
    lock = record("a", repos=[git_repo])
    (git_repo / "README.md").write_text("edited\n")
    clear_capture_cache()
    result, reason = diff_current(lock)
    (change,) = result.section("code")
    assert (reason, any("README.md" in line for line in change.detail)) == (
        f"code changed in {git_repo}",
        True,
    )


def test_changed_data_would_rerun_the_run(project: Path) -> None:
    lock = record("a", data=["raw.csv"])
    (project / "raw.csv").write_text("changed\n")
    result, reason = diff_current(lock)
    assert (reason, [c.key for c in result.section("data")]) == (
        "data changed: raw.csv",
        ["raw.csv"],
    )


def test_a_deleted_input_shows_as_removed_now(project: Path) -> None:
    lock = record("a", data=["raw.csv"])
    (project / "raw.csv").unlink()
    result, _ = diff_current(lock)
    assert changes(result, "data")[0][:2] == ("raw.csv", "removed")


def test_diff_of_a_missing_run_names_it(tmp_path: Path) -> None:
    with pytest.raises(LockFileError, match="nowhere"):
        diff_runs(tmp_path / "nowhere", tmp_path)


def test_a_changed_data_directory_now_names_its_files(project: Path) -> None:
    lock = record("a", data=["images"])
    (project / "images" / "b.png").write_bytes(b"edited")
    result, _ = diff_current(lock)
    (change,) = result.section("data")
    assert [line for line in change.detail if line.startswith("  ")] == ["  ~ b.png"]
