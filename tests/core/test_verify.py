"""Verifying a run against its sheet (flexlock.core._verify), with real files, repos and sheets."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from flexlock.core import LockFileError, VerificationError, runlock, verify
from flexlock.core._verify import require_ok
from tests._helpers import git


def record(
    save_dir: Path,
    *,
    data: Sequence[Any] = (),
    repos: Sequence[Any] = (),
    prevs: Sequence[Any] = (),
    config: dict[str, Any] | None = None,
    **options: Any,
) -> Path:
    """Run an empty task with runlock() and return its run.lock."""
    with runlock(
        config={"save_dir": str(save_dir), **(config or {})},
        repos=list(repos),
        data=data,
        prevs=prevs,
        packages=False,
        finalize_at_exit=False,
        **options,
    ):
        pass
    return save_dir / "run.lock"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory, the current directory, with a data file and a data directory."""
    root = tmp_path / "project"
    (root / "data" / "images").mkdir(parents=True)
    (root / "data" / "raw.csv").write_text("a,b\n1,2\n")
    for name in ("a.png", "b.png", "c.png"):
        (root / "data" / "images" / name).write_bytes(name.encode() * 100)
    monkeypatch.chdir(root)
    return root


def data_check(report: Any, name: str) -> Any:
    return next(check for check in report.data if check.name == name)


def test_an_untouched_run_verifies(project: Path) -> None:
    lock = record(Path("results/run"), data=["data/raw.csv", "data/images"])
    assert verify(lock).ok


def test_a_changed_file_is_reported_changed(project: Path) -> None:
    lock = record(Path("results/run"), data=["data/raw.csv"])
    (project / "data" / "raw.csv").write_text("a,b\n1,3\n")
    assert data_check(verify(lock), "data/raw.csv").status == "changed"


def test_a_deleted_input_is_reported_missing(project: Path) -> None:
    lock = record(Path("results/run"), data=["data/raw.csv"])
    (project / "data" / "raw.csv").unlink()
    assert data_check(verify(lock), "data/raw.csv").status == "missing"


def test_directory_changes_are_split_into_missing_extra_and_changed_files(project: Path) -> None:
    lock = record(Path("results/run"), data=["data/images"])
    images = project / "data" / "images"
    (images / "a.png").unlink()
    (images / "b.png").write_bytes(b"edited")
    (images / "d.png").write_bytes(b"new")
    check = data_check(verify(lock), "data/images")
    assert (check.status, check.missing, check.extra, check.changed) == (
        "changed",
        ("a.png",),
        ("d.png",),
        ("b.png",),
    )


def test_an_unreadable_file_is_reported_unreadable_by_name(project: Path) -> None:
    lock = record(Path("results/run"), data=["data/images"])
    # Tests run as root, which reads anything: a FIFO is a file the hasher refuses to read.
    os.mkfifo(project / "data" / "images" / "pipe.png")
    check = data_check(verify(lock), "data/images")
    assert (check.status, "pipe.png" in check.detail) == ("unreadable", True)


def test_fast_mode_detects_a_size_change(project: Path) -> None:
    lock = record(Path("results/run"), data=["data/raw.csv"])
    (project / "data" / "raw.csv").write_text("a,b\n1,2\n3,4\n")
    assert data_check(verify(lock, fast=True), "data/raw.csv").status == "changed"


def test_fast_mode_names_missing_and_extra_files_from_the_manifest(project: Path) -> None:
    lock = record(Path("results/run"), data=["data/images"])
    (project / "data" / "images" / "a.png").rename(project / "data" / "images" / "z.png")
    check = data_check(verify(lock, fast=True), "data/images")
    assert (check.missing, check.extra) == (("a.png",), ("z.png",))


def test_fast_mode_trusts_size_and_mtime(project: Path) -> None:
    lock = record(Path("results/run"), data=["data/raw.csv"])
    raw = project / "data" / "raw.csv"
    before = raw.stat()
    raw.write_text("a,b\n9,9\n")  # same size...
    os.utime(raw, ns=(before.st_atime_ns, before.st_mtime_ns))  # ...and same mtime
    assert (verify(lock, fast=True).ok, verify(lock).ok) == (True, False)


def test_fast_mode_is_reported_in_the_report(project: Path) -> None:
    lock = record(Path("results/run"), data=["data/raw.csv"])
    assert verify(lock, fast=True).to_dict()["mode"] == "fast"


def test_the_recorded_algorithm_is_used(project: Path) -> None:
    lock = record(Path("results/run"), data=["data/raw.csv"], algorithm="blake2b")
    assert data_check(verify(lock), "data/raw.csv").actual.startswith("blake2b:")


def test_a_glob_input_verifies(project: Path) -> None:
    lock = record(Path("results/run"), data=["data/images/*.png"])
    (project / "data" / "images" / "e.png").write_bytes(b"new")
    assert data_check(verify(lock), "data/images/*.png").extra == ("e.png",)


def test_a_moved_project_still_verifies(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(Path("results/run"), data=["data/raw.csv"])
    moved = tmp_path / "elsewhere"
    shutil.copytree(project, moved)
    shutil.rmtree(project)  # the recorded cwd is gone
    monkeypatch.chdir(tmp_path)  # and verify runs from somewhere unrelated
    assert verify(moved / "results" / "run").ok


def test_base_overrides_where_relative_paths_point(project: Path, tmp_path: Path) -> None:
    lock = record(Path("results/run"), data=["data/raw.csv"])
    (tmp_path / "other" / "data").mkdir(parents=True)
    (tmp_path / "other" / "data" / "raw.csv").write_text("different\n")
    assert data_check(verify(lock, base=tmp_path / "other"), "data/raw.csv").status == "changed"


def test_an_untouched_repository_verifies(project: Path, git_repo: Path) -> None:
    lock = record(Path("results/run"), repos=[git_repo])
    assert verify(lock).code[0].status == "ok"


def test_an_edited_repository_names_the_changed_files(project: Path, git_repo: Path) -> None:
    lock = record(Path("results/run"), repos=[git_repo])
    (git_repo / "README.md").write_text("edited\n")
    check = verify(lock).code[0]
    assert (check.status, any("README.md" in line for line in check.files)) == ("changed", True)


def test_verify_leaves_the_repository_state_alone(project: Path, git_repo: Path) -> None:
    lock = record(Path("results/run"), repos=[git_repo])
    (git_repo / "README.md").write_text("edited\n")
    index = (git_repo / ".git" / "index").read_bytes()
    status = git(git_repo, "status", "--porcelain")
    verify(lock)
    assert ((git_repo / ".git" / "index").read_bytes(), git(git_repo, "status", "--porcelain")) == (
        index,
        status,
    )


def test_a_missing_repository_is_reported_missing(project: Path, git_repo: Path) -> None:
    lock = record(Path("results/run"), repos=[git_repo])
    shutil.rmtree(git_repo)
    assert verify(lock).code[0].status == "missing"


def test_an_upstream_run_with_the_recorded_id_verifies(project: Path) -> None:
    record(Path("results/prepare"), data=["data/raw.csv"])
    lock = record(Path("results/train"), prevs=["results/prepare"])
    assert verify(lock).prevs[0].status == "ok"


def test_an_upstream_run_rerun_with_other_inputs_is_changed(project: Path) -> None:
    record(Path("results/prepare"), data=["data/raw.csv"])
    lock = record(Path("results/train"), prevs=["results/prepare"])
    record(Path("results/prepare"), data=["data/raw.csv"], config={"lr": 2})
    assert verify(lock).prevs[0].status == "changed"


def test_a_deleted_upstream_run_is_missing(project: Path) -> None:
    record(Path("results/prepare"))
    lock = record(Path("results/train"), prevs=["results/prepare"])
    shutil.rmtree(project / "results" / "prepare")
    assert verify(lock).prevs[0].status == "missing"


def test_recursive_verify_finds_changed_upstream_data(project: Path) -> None:
    record(Path("results/prepare"), data=["data/raw.csv"])
    lock = record(Path("results/train"), prevs=["results/prepare"])
    (project / "data" / "raw.csv").write_text("changed\n")
    assert (verify(lock).ok, verify(lock, recursive=True).ok) == (True, False)


def test_verify_of_a_directory_without_a_sheet_raises(tmp_path: Path) -> None:
    with pytest.raises(LockFileError, match=r"no run\.lock"):
        verify(tmp_path)


def test_verify_of_a_corrupt_sheet_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "run.lock").write_text("flexlock: 1\nid: x\nid: y\n")
    with pytest.raises(LockFileError, match=r"run\.lock:3"):
        verify(tmp_path)


def test_require_ok_raises_exit_code_3_on_mismatch(project: Path) -> None:
    lock = record(Path("results/run"), data=["data/raw.csv"])
    (project / "data" / "raw.csv").unlink()
    with pytest.raises(VerificationError, match=r"data/raw\.csv: missing") as caught:
        require_ok(verify(lock))
    assert caught.value.exit_code == 3


def test_a_symlink_loop_in_a_data_directory_is_named(project: Path) -> None:
    lock = record(Path("results/run"), data=["data/images"])
    (project / "data" / "images" / "loop").symlink_to(project / "data")
    check = data_check(verify(lock), "data/images")
    assert (check.status, "symlink loop" in check.detail, "loop" in check.detail) == (
        "unreadable",
        True,
        True,
    )


def test_fast_mode_names_a_symlink_loop(project: Path) -> None:
    lock = record(Path("results/run"), data=["data/images"])
    (project / "data" / "images" / "loop").symlink_to(project / "data")
    check = data_check(verify(lock, fast=True), "data/images")
    assert (check.status, "symlink loop" in check.detail) == ("unreadable", True)


def test_fast_mode_of_an_untouched_glob_input_passes(project: Path) -> None:
    lock = record(Path("results/run"), data=["data/images/*.png"])
    assert verify(lock, fast=True).ok
