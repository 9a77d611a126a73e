"""The live progress line of a task list and its final summary."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

from flexlock.cli._contract import TaskResult
from flexlock.core import StatusLine

__all__ = ["Progress", "summary_table"]


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """A one-line status (done/failed/running/total, ETA), redrawn in place on a terminal.

    On anything but a terminal it stays silent, so logs and pipes get only the
    per-failure lines and the summary. The line is a `flexlock.core.StatusLine`,
    the one in-place line every part of flexlock draws through.
    """

    def __init__(
        self,
        total: int,
        parallel: int,
        stream: TextIO | None = None,
        *,
        enabled: bool | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.status = StatusLine(self.stream, enabled=enabled)
        self.total = total
        self.parallel = max(1, parallel)
        self.succeeded = self.failed = 0
        self.started = time.monotonic()

    @property
    def done(self) -> int:
        """Tasks finished so far (succeeded or failed)."""
        return self.succeeded + self.failed

    def line(self) -> str:
        """Return the status line."""
        remaining = self.total - self.done
        running = min(self.parallel, remaining)
        text = (
            f"[{self.done}/{self.total}] {self.succeeded} succeeded, {self.failed} failed, "
            f"{running} running"
        )
        if self.done and remaining:
            eta = (time.monotonic() - self.started) / self.done * remaining
            text += f", ETA {_duration(eta)}"
        return text

    def update(self, result: TaskResult | None = None) -> None:
        """Count `result` and redraw."""
        if result is not None:
            if result.status == "failed":
                self.failed += 1
            elif result.status == "succeeded":
                self.succeeded += 1
        self.draw()

    def draw(self) -> None:
        """Redraw the line (terminal only)."""
        self.status.show(self.line())

    def message(self, text: str) -> None:
        """Print `text` above the progress line."""
        self.clear()
        print(text, file=self.stream, flush=True)
        self.draw()

    def clear(self) -> None:
        """Erase the progress line."""
        self.status.clear()


def summary_table(results: Sequence[TaskResult], missing: int = 0) -> str:
    """Return the end-of-list summary: counts, then one row per failed task."""
    counts = {"succeeded": 0, "failed": 0, "skipped": 0}
    for result in results:
        counts[result.status] += 1
    total = len(results) + missing
    lines = [
        f"tasks: {total} total, {counts['succeeded']} succeeded, {counts['failed']} failed, "
        f"{counts['skipped']} skipped" + (f", {missing} not finished" if missing else "")
    ]
    failed = sorted((r for r in results if r.status == "failed"), key=lambda r: r.task.index)
    if failed:
        rows = [
            (r.task.source, r.task.label, r.task.save_dir or "-", (r.error or "").split("\n")[0])
            for r in failed
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines.append(
            f"  {'source':<{widths[0]}}  {'task':<{widths[1]}}  {'save_dir':<{widths[2]}}  error"
        )
        for row in rows:
            error = row[3] if len(row[3]) <= 100 else row[3][:99] + "…"
            lines.append(
                f"  {row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {error}"
            )
    return "\n".join(lines)
