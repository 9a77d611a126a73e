"""Reading sacct/squeue output and drawing the progress line (no cluster needed)."""

from __future__ import annotations

import io

import pytest

from flexlock.slurm._cluster import _parse
from flexlock.slurm._wait import Progress, runs_job


def test_pending_array_range_expands_to_each_task() -> None:
    assert _parse("7_[2-3,5%2]|PENDING\n") == {"7_2": "PENDING", "7_3": "PENDING", "7_5": "PENDING"}


def test_cancelled_by_user_reads_as_cancelled() -> None:
    assert _parse("8|CANCELLED by 0\n") == {"8": "CANCELLED"}


def test_job_steps_are_ignored() -> None:
    assert _parse("9_1|TIMEOUT\n9_1.batch|CANCELLED\n9_1.0|CANCELLED\n") == {"9_1": "TIMEOUT"}


def test_sheet_of_array_task_matches_only_that_task() -> None:
    scheduler = {"SLURM_JOB_ID": "31", "SLURM_ARRAY_JOB_ID": "30", "SLURM_ARRAY_TASK_ID": "1"}
    assert (
        runs_job(scheduler, "30_1"),
        runs_job(scheduler, "30_2"),
        runs_job(scheduler, "30"),
    ) == (True, False, False)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_rewrites_one_line_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    stream = _Terminal()
    progress = Progress(stream, "job 5")
    progress.update({"pending": 2, "running": 0, "done": 0, "failed": 0})
    progress.update({"pending": 0, "running": 1, "done": 1, "failed": 0})
    progress.close()

    # Drawn by flexlock.core.StatusLine: carriage return, text, erase to end of line.
    assert stream.getvalue() == (
        "\r[slurm] job 5: 2 pending, 0 running, 0 done, 0 failed\x1b[K"
        "\r[slurm] job 5: 0 pending, 1 running, 1 done, 0 failed\x1b[K\n"
    )


def test_progress_on_a_dumb_terminal_prints_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "dumb")
    stream = _Terminal()
    progress = Progress(stream, "job 5")
    progress.update({"pending": 2, "running": 0, "done": 0, "failed": 0})
    progress.close()

    assert stream.getvalue() == "[slurm] job 5: 2 pending, 0 running, 0 done, 0 failed\n"


def test_progress_in_a_log_prints_changes_not_repeats() -> None:
    stream = io.StringIO()
    progress = Progress(stream, "job 5")
    counts = {"pending": 2, "running": 0, "done": 0, "failed": 0}
    progress.update(counts)
    progress.update(counts)
    progress.update({**counts, "pending": 0, "done": 2}, force=True)
    progress.close()

    assert stream.getvalue().splitlines() == [
        "[slurm] job 5: 2 pending, 0 running, 0 done, 0 failed",
        "[slurm] job 5: 0 pending, 0 running, 2 done, 0 failed",
    ]
