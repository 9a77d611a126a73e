"""`mark_failed`: an executor finalises the sheet a dead run left `running`, and nothing else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import attrs

from flexlock.core import ErrorRecord, RunLock, dump, load, mark_failed

_KILLED = ErrorRecord(type="SlurmTimeout", message="the job reached its time limit")


def _sheet(save_dir: Path, status: str, job: str = "7") -> Path:
    save_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(id="sha256:" + "0" * 64, status=status, created="2026-01-01T00:00:00Z")  # type: ignore[arg-type]
    dump(attrs.evolve(lock, save_dir=str(save_dir), config={"job": job}), save_dir / "run.lock")
    return save_dir / "run.lock"


def test_a_running_sheet_becomes_failed_with_the_error_and_a_finish_time(tmp_path: Path) -> None:
    path = _sheet(tmp_path / "run", "running")
    assert mark_failed(tmp_path / "run", _KILLED)
    sheet = load(path)
    assert ("failed", _KILLED) == (sheet.status, sheet.error)
    assert sheet.finished is not None
    assert sheet.finished.endswith("Z")


def test_a_finished_sheet_is_left_alone(tmp_path: Path) -> None:
    path = _sheet(tmp_path / "run", "succeeded")
    before = path.read_bytes()
    assert not mark_failed(tmp_path / "run", _KILLED)
    assert before == path.read_bytes()


def test_a_sheet_of_another_job_is_left_alone(tmp_path: Path) -> None:
    path = _sheet(tmp_path / "run", "running", job="8")
    assert not mark_failed(tmp_path / "run", _KILLED, only_if=lambda s: s.config["job"] == "7")
    assert "running" == load(path).status


def test_no_sheet_and_an_unreadable_sheet_change_nothing(tmp_path: Path) -> None:
    assert not mark_failed(tmp_path / "absent", _KILLED)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run.lock").write_text("flexlock: [unclosed\n")
    assert not mark_failed(tmp_path / "bad", _KILLED)
    assert "flexlock: [unclosed\n" == (tmp_path / "bad" / "run.lock").read_text()


def test_a_live_holder_of_the_save_dir_keeps_its_running_sheet(tmp_path: Path) -> None:
    path = _sheet(tmp_path / "run", "running")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom flexlock.core import SaveDirLock\n"
            "SaveDirLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)",
            str(tmp_path / "run"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert "held\n" == holder.stdout.readline()
        assert not mark_failed(tmp_path / "run", _KILLED, lock_wait_s=0.2)
        assert "running" == load(path).status
    finally:
        holder.kill()
        holder.wait()
    assert mark_failed(tmp_path / "run", _KILLED, lock_wait_s=2.0)  # its process is gone now
    assert "failed" == load(path).status
