"""Outputs in the sheet: what a run left in its save_dir and declared, hashed when it finishes."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pytest

from flexlock.core import OutputRecord, _hashing, load, register_output, runlock, verify


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(
    save_dir: str = "results/train",
    *,
    write: dict[str, bytes] | None = None,
    fail: bool = False,
    config: dict[str, Any] | None = None,
    **options: Any,
) -> Path:
    """Run a task that writes `write` (paths relative to the save_dir) and return the sheet."""
    run_dir = Path(save_dir)

    def body() -> None:
        for name, content in (write or {}).items():
            target = run_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        if fail:
            raise RuntimeError("the task failed")

    try:
        with runlock(
            config={"save_dir": save_dir, **(config or {})},
            repos=[],
            packages=False,
            finalize_at_exit=False,
            **options,
        ):
            body()
    except RuntimeError:
        assert fail
    return run_dir / "run.lock"


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_every_file_the_run_left_is_recorded_with_its_size_and_sha256sum(project: Path) -> None:
    lock = load(_run(write={"model.txt": b"weights", "metrics.json": b"{}"}))
    assert lock.outputs is not None
    assert {
        "metrics.json": (_sha256(b"{}"), 2),
        "model.txt": (_sha256(b"weights"), 7),
    } == {key: (record.hash, record.size) for key, record in lock.outputs.items()}


def test_flexlocks_own_files_task_logs_and_nested_runs_are_not_outputs(project: Path) -> None:
    _run("results/sweep/param=1", write={"out.txt": b"1"})
    lock = load(
        _run("results/sweep", write={"stdout.log": b"log", "stderr.log": b"", "table.csv": b"t"})
    )
    assert lock.outputs is not None
    assert ["table.csv"] == sorted(lock.outputs)


def test_a_directory_output_has_a_file_count_and_verify_names_the_changed_file(
    project: Path,
) -> None:
    sheet = _run(write={"checkpoints/a.pt": b"a", "checkpoints/b.pt": b"b"})
    lock = load(sheet)
    assert lock.outputs is not None
    assert 2 == lock.outputs["checkpoints"].files
    (project / "results/train/checkpoints/b.pt").write_bytes(b"edited")
    check = next(c for c in verify(sheet).outputs if c.name == "checkpoints")
    assert ("changed", ("b.pt",)) == (check.status, check.changed)


def test_declared_outputs_outside_the_save_dir_are_keyed_from_the_run_directory(
    project: Path,
) -> None:
    (project / "figures").mkdir()
    (project / "figures" / "plot.png").write_bytes(b"png")
    register_output("figures/plot.png")  # as `${runlock_out:figures/plot.png}` does
    lock = load(_run())
    assert lock.outputs is not None
    assert {"../../figures/plot.png": _sha256(b"png")} == {
        key: record.hash for key, record in lock.outputs.items()
    }


def test_outputs_are_not_part_of_the_identity(project: Path) -> None:
    first = load(_run(write={"model.txt": b"one"}))
    second = load(_run(write={"model.txt": b"two"}))
    assert first.id == second.id
    assert first.outputs != second.outputs


def test_a_failed_run_records_what_it_left(project: Path) -> None:
    lock = load(_run(write={"partial.txt": b"half"}, fail=True))
    assert "failed" == lock.status
    assert lock.outputs is not None
    assert ["partial.txt"] == list(lock.outputs)


def test_a_running_sheet_has_no_outputs_section(project: Path) -> None:
    with runlock(
        config={"save_dir": "results/live"}, repos=[], packages=False, finalize_at_exit=False
    ):
        assert load("results/live/run.lock").outputs is None
        assert "outputs:" not in Path("results/live/run.lock").read_text()


@pytest.mark.parametrize(
    ("change", "status"),
    [
        (lambda run: (run / "model.txt").write_bytes(b"edited!"), "changed"),
        (lambda run: (run / "model.txt").unlink(), "missing"),
        (lambda run: (run / "notes.txt").write_bytes(b"added"), "extra"),
    ],
    ids=["edited", "deleted", "added"],
)
def test_verify_reports_an_edited_a_deleted_and_an_added_output(
    project: Path, change: Any, status: str
) -> None:
    sheet = _run(write={"model.txt": b"weights"})
    assert verify(sheet).ok
    change(project / "results" / "train")
    report = verify(sheet)
    assert not report.ok
    assert [status] == [check.status for check in report.outputs if check.status != "ok"]


def test_verify_fast_catches_a_size_and_an_mtime_change(project: Path) -> None:
    sheet = _run(write={"model.txt": b"weights"})
    model = project / "results" / "train" / "model.txt"
    assert verify(sheet, fast=True).ok
    stat = model.stat()
    model.write_bytes(b"WEIGHTS")  # same size
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert "changed" == verify(sheet, fast=True).outputs[0].status
    model.write_bytes(b"longer weights")
    assert "size 7 → 14 bytes" in verify(sheet, fast=True).outputs[0].detail


def test_an_output_over_the_cap_is_recorded_without_a_hash_and_checked_by_stat(
    project: Path,
) -> None:
    sheet = _run(write={"big.bin": b"x" * 100, "small.txt": b"s"}, output_max_bytes=10)
    lock = load(sheet)
    assert lock.outputs is not None
    big = lock.outputs["big.bin"]
    assert (None, 100) == (big.hash, big.size)
    assert big.mtime_ns is not None
    assert lock.outputs["small.txt"].hash == _sha256(b"s")
    assert verify(sheet).ok
    (project / "results" / "train" / "big.bin").write_bytes(b"y" * 101)
    assert not verify(sheet).ok


def test_output_hashing_can_be_turned_off(project: Path) -> None:
    lock = load(_run(write={"model.txt": b"weights"}, hash_outputs=False))
    assert lock.outputs is not None
    assert (
        OutputRecord(None, 7, mtime_ns=lock.outputs["model.txt"].mtime_ns)
        == (lock.outputs["model.txt"])
    )


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the files whose bytes the hasher reads (a spy around the real function)."""
    seen: list[str] = []
    real = _hashing.hash_file

    def counting(path: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(_hashing, "hash_file", counting)
    return seen


def test_an_output_read_downstream_as_data_is_not_read_again(
    project: Path, reads: list[str]
) -> None:
    model = project / "results" / "train" / "model.txt"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"weights" * 1000)
    old = time.time() - 10  # older than the hash cache's racy window, as a real result is
    os.utime(model, (old, old))
    _run()
    assert ["model.txt"] == reads
    with runlock(
        config={"save_dir": "results/evaluate"},
        repos=[],
        data=["results/train/model.txt"],
        packages=False,
        finalize_at_exit=False,
    ):
        pass
    assert ["model.txt"] == reads  # the downstream hash came from the cache


def test_diff_compares_the_outputs_of_two_runs_and_names_the_changed_files(
    project: Path,
) -> None:
    from flexlock.core import diff_runs

    first = _run("results/a", write={"model.txt": b"one", "ckpt/x.pt": b"x", "old.txt": b""})
    second = _run("results/b", write={"model.txt": b"two", "ckpt/x.pt": b"y", "new.txt": b""})
    changes = {
        (change.key, change.kind): change.detail
        for change in diff_runs(first, second).section("outputs")
    }
    assert {
        ("model.txt", "changed"): (),
        ("ckpt", "changed"): ("  ~ x.pt",),
        ("old.txt", "removed"): (),
        ("new.txt", "added"): (),
    } == changes


def test_diff_against_now_shows_an_edited_output(project: Path) -> None:
    from flexlock.core import diff_current

    sheet = _run(write={"model.txt": b"weights"})
    (project / "results" / "train" / "model.txt").write_bytes(b"edited weights")
    differences, reason = diff_current(sheet)
    assert reason is None  # outputs are not inputs: the run is still done
    assert [("model.txt", "changed", ("size 7 → 14 bytes",))] == [
        (change.key, change.kind, change.detail) for change in differences.section("outputs")
    ]


def test_a_run_stopped_by_ctrl_c_records_its_outputs_without_reading_them(
    project: Path, reads: list[str]
) -> None:
    def stopped_by_the_user() -> None:
        with runlock(
            config={"save_dir": "results/stopped"},
            repos=[],
            packages=False,
            finalize_at_exit=False,
        ):
            Path("results/stopped/partial.bin").write_bytes(b"x" * 1000)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stopped_by_the_user()
    lock = load("results/stopped/run.lock")
    assert lock.outputs is not None
    assert ("failed", None, 1000) == (
        lock.status,
        lock.outputs["partial.bin"].hash,
        lock.outputs["partial.bin"].size,
    )
    assert [] == reads


def test_a_save_dir_holding_a_repository_does_not_record_its_git_directory(
    project: Path,
) -> None:
    (project / "results" / "train" / ".git").mkdir(parents=True)
    (project / "results" / "train" / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    lock = load(_run(write={"model.txt": b"w"}))
    assert lock.outputs is not None
    assert ["model.txt"] == list(lock.outputs)
