"""Queued placeholders: written over an old sheet (kept in history), replaced by the run."""

from __future__ import annotations

from pathlib import Path

from flexlock.core import load, read_summary, runlock
from flexlock.slurm._sheets import mark_dead, sweep_statuses, write_queued


def _history(save_dir: Path) -> list[str]:
    folder = save_dir / ".flexlock" / "history"
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


def test_queued_sheet_keeps_the_failed_sheet_it_replaces_in_history(tmp_path: Path) -> None:
    save_dir = tmp_path / "param=1"
    try:
        with runlock({"save_dir": str(save_dir)}, repos=[]):
            raise ValueError("first try")
    except ValueError:
        pass
    write_queued(save_dir, "42_3")

    sheet = load(save_dir)
    assert (sheet.status, sheet.id, sheet.env.scheduler if sheet.env else None) == (
        "queued",
        "queued:42_3",
        {"SLURM_ARRAY_JOB_ID": "42", "SLURM_ARRAY_TASK_ID": "3"},
    )
    assert [name.split("-")[1] for name in _history(save_dir)] == ["failed"]
    assert read_summary(save_dir / "run.lock").status == "queued"


def test_run_replaces_its_queued_sheet_without_a_history_entry(tmp_path: Path) -> None:
    save_dir = tmp_path / "param=1"
    write_queued(save_dir, "42_3")
    with runlock({"save_dir": str(save_dir)}, repos=[]):
        pass

    assert (load(save_dir).status, _history(save_dir)) == ("succeeded", [])


def test_dead_job_finalises_only_the_sheet_naming_it(tmp_path: Path) -> None:
    write_queued(tmp_path / "a", "42_0")
    write_queued(tmp_path / "b", "43_0")

    changed = [mark_dead(tmp_path / name, "42_0", "CANCELLED", "cancelled") for name in "ab"]
    assert changed == [True, False]
    assert [load(tmp_path / name).status for name in "ab"] == ["failed", "queued"]


def test_sweep_statuses_leaves_jobs_slurm_does_not_report_dead(tmp_path: Path) -> None:
    write_queued(tmp_path / "a", "42_0")
    write_queued(tmp_path / "b", "42_1")
    statuses = sweep_statuses(
        [tmp_path / "a", tmp_path / "b", tmp_path / "missing"],
        states={"42_0": "TIMEOUT", "42_1": "PENDING"},
    )

    assert statuses == {str(tmp_path / "a"): "failed", str(tmp_path / "b"): "queued"}
    assert load(tmp_path / "a").error.type == "SlurmTimeout"  # type: ignore[union-attr]
