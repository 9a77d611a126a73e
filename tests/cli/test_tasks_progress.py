"""The live progress line and the summary table of a task list."""

from __future__ import annotations

import io

import pytest

from flexlock.cli import Task, TaskResult
from flexlock.cli._progress import Progress, summary_table


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def result(index: int, status: str, error: str | None = None) -> TaskResult:
    task = Task(
        index=index,
        label=f"param={index}",
        overrides=(),
        source=f"t.txt:{index + 1}",
        save_dir=f"results/param={index}",
    )
    return TaskResult(task=task, status=status, error=error)  # type: ignore[arg-type]


def test_progress_line_counts_done_failed_running_of_total() -> None:
    progress = Progress(total=4, parallel=2, stream=Terminal())
    progress.update(result(0, "succeeded"))
    progress.update(result(1, "failed"))
    assert progress.line().startswith("[2/4] 1 succeeded, 1 failed, 2 running, ETA ")


def test_progress_is_redrawn_in_place_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")  # the status line stays off on TERM=dumb
    stream = Terminal()
    Progress(total=2, parallel=1, stream=stream).update(result(0, "succeeded"))
    assert stream.getvalue().startswith("\r[1/2] 1 succeeded")


def test_progress_is_silent_when_not_a_terminal() -> None:
    stream = io.StringIO()
    Progress(total=2, parallel=1, stream=stream).update(result(0, "succeeded"))
    assert "" == stream.getvalue()


def test_summary_counts_and_lists_failures() -> None:
    text = summary_table(
        [result(0, "succeeded"), result(1, "failed", "ValueError: x"), result(2, "skipped")]
    )
    lines = text.splitlines()
    assert "tasks: 3 total, 1 succeeded, 1 failed, 1 skipped" == lines[0]
    assert ["t.txt:2", "param=1", "results/param=1", "ValueError:", "x"] == lines[2].split()
