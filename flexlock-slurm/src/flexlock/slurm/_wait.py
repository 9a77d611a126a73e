"""Wait for submitted jobs and collect each result as it finishes, with a progress line.

Waiting never hangs on a dead job: results are read from submitit's result
files, and Slurm's own state (sacct, squeue) tells when a job ended without
one (time limit, cancel, out of memory, node failure), which is reported as a
failed task carrying that state and the job's log paths; the sheet such a job
left `running` is marked failed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import attrs

from flexlock.cli import TaskResult
from flexlock.core import FlexLockError, StatusLine, load
from flexlock.slurm._cluster import FINAL_STATES, RUNNING_STATES, job_states
from flexlock.slurm._code_changes import SubmittedCode
from flexlock.slurm._node import link_logs
from flexlock.slurm._sheets import mark_dead, runs_job
from flexlock.slurm._submit import Submission, array_ids

__all__ = [
    "Progress",
    "cancel",
    "killed",
    "poll_floor_s",
    "read_results",
    "runs_job",
    "wait",
    "with_state",
]

# A job Slurm calls finished may still be writing its result file (and a shared
# filesystem may show it late): wait this long before reporting "no result".
_RESULT_GRACE_S = 20.0
# A failed result is held back this long for Slurm's final state of its job (a job
# stopped by SIGTERM may stay COMPLETING for a while on a busy node).
_SETTLE_S = 60.0
# A job that neither sacct nor squeue knows for this long has vanished.
_VANISHED_S = 180.0
# Slurm is asked at most once per this many seconds per task waited on (10,000 -> 30 s).
_QUERY_S_PER_TASK = 0.003
# Logs (CI, nohup) get a line per change, at most this often.
_LOG_EVERY_S = 30.0

_STATE_HINTS = {
    "TIMEOUT": "the task reached its time limit; raise `time` in the slurm config",
    "OUT_OF_MEMORY": "the task used more memory than it asked for; raise `mem_gb`",
    "CANCELLED": "the job was cancelled (scancel, or by an administrator)",
    "NODE_FAIL": "the node running the job failed",
    "PREEMPTED": "the job was preempted by a higher-priority job",
    "BOOT_FAIL": "the node could not be booted",
    "DEADLINE": "the job missed its deadline",
    "FAILED": "the job was killed or its script failed; see its stderr",
}


class Progress:
    """The `[slurm] job N: 2 pending, ...` line: redrawn in place on a terminal, else logged."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self.stream = stream
        self.label = label
        self.status = StatusLine(stream)
        self.last_line = ""
        self.last_print = 0.0

    def update(self, counts: Mapping[str, int], *, force: bool = False) -> None:
        """Show `counts`; `force` draws (or logs) the line even if unchanged or recent."""
        line = f"[slurm] {self.label}: " + ", ".join(f"{n} {name}" for name, n in counts.items())
        now = time.monotonic()
        if self.status.enabled:
            if line != self.last_line or force:
                self.status.show(line)
        elif line != self.last_line and (force or now - self.last_print >= _LOG_EVERY_S):
            print(line, file=self.stream, flush=True)
            self.last_print = now
        else:
            return
        self.last_line = line

    def close(self) -> None:
        """End the line on a terminal (closing twice writes one newline)."""
        self.status.close()
        self.last_line = ""


def poll_floor_s(n_tasks: int) -> float:
    """Return the shortest pause between two Slurm queries while waiting on `n_tasks` tasks.

    3 ms per task: 10,000 tasks cost at most one query every 30 s, 100 tasks need no
    pause beyond the usual ramp (1 s, growing to `poll_interval_s`).
    """
    return n_tasks * _QUERY_S_PER_TASK


def wait(
    submissions: Sequence[Submission],
    *,
    code: SubmittedCode | None,
    poll_interval_s: float,
    stream: TextIO,
) -> Iterator[TaskResult]:
    """Yield a `TaskResult` per submission as its array element finishes (any order).

    Results are read as `read_results` does, comparing with the submitted `code`.
    One `job_states` query covers every array of the sweep; queries are at least
    `poll_floor_s(len(submissions))` apart. Closing the iterator early cancels the
    jobs not finished yet; Ctrl-C leaves them running and says how to cancel them.
    """
    remaining: dict[str, list[Submission]] = {}
    for submission in submissions:
        remaining.setdefault(submission.job_id, []).append(submission)
    # Failed results whose job Slurm has not finalised yet: a task stopped by SIGTERM
    # writes its result while Slurm still says RUNNING, and the report must carry the
    # final state (TIMEOUT, CANCELLED, ...).
    settling: dict[str, tuple[list[TaskResult], float]] = {}
    states: dict[str, str] = {}
    first_seen_final: dict[str, float] = {}
    last_known = dict.fromkeys(remaining, time.monotonic())
    counts = {"pending": len(submissions), "running": 0, "done": 0, "failed": 0}
    arrays = array_ids(submissions)
    progress = Progress(stream, f"job {','.join(arrays)}")
    floor = poll_floor_s(len(submissions))
    interval, next_query = max(1.0, floor), 0.0
    try:
        while remaining or settling:
            for job_id, element in list(remaining.items()):
                if Path(element[0].result_file).exists():
                    del remaining[job_id]
                    results = read_results(element, code=code, stream=stream)
                    if any(r.status == "failed" for r in results) and (
                        states.get(job_id) not in FINAL_STATES
                    ):
                        settling[job_id] = (results, time.monotonic())
                        next_query = min(next_query, time.monotonic() + max(1.0, floor))
                        continue
                    for result in results:
                        counts["done" if result.status == "succeeded" else "failed"] += 1
                        yield with_state(result, states.get(job_id))
            now = time.monotonic()
            if (remaining or settling) and now >= next_query:
                states.update(job_states([*remaining, *settling]))
                interval = max(min(interval * 1.5, max(poll_interval_s, floor)), floor)
                next_query = now + (max(1.0, floor) if settling else interval)
                for job_id, (results, since) in list(settling.items()):
                    state = states.get(job_id)
                    if state in FINAL_STATES or now - since > _SETTLE_S:
                        del settling[job_id]
                        for result in results:
                            counts["done" if result.status == "succeeded" else "failed"] += 1
                            yield with_state(result, state)
                for job_id in list(remaining):
                    state = states.get(job_id)
                    if state is not None:
                        last_known[job_id] = now
                    ended = state in FINAL_STATES
                    vanished = state is None and now - last_known[job_id] > _VANISHED_S
                    if not (ended or vanished):
                        continue
                    first = first_seen_final.setdefault(job_id, now)
                    if vanished or now - first >= _RESULT_GRACE_S:
                        for submission in remaining.pop(job_id):
                            result = _finished_before(submission) or killed(
                                submission, state or "UNKNOWN"
                            )
                            counts["done" if result.status == "succeeded" else "failed"] += 1
                            yield result
            waiting = sum(len(element) for element in remaining.values())
            running = sum(
                len(element)
                for job_id, element in remaining.items()
                if states.get(job_id) in RUNNING_STATES
            )
            counts["running"] = running
            counts["pending"] = waiting - running
            progress.update(counts)
            if remaining or settling:
                time.sleep(0.5 if len(remaining) <= 200 else 2.0)
        progress.update(counts, force=True)
    except GeneratorExit:
        # The caller stopped reading (e.g. --fail_fast): nobody will collect the
        # remaining results, so their jobs stop too.
        progress.close()
        cancel(sorted(remaining), stream)  # (settling jobs have their result)
        raise
    except KeyboardInterrupt:
        progress.close()
        print(
            "[slurm] stopped waiting; the jobs keep running "
            f"(cancel with: scancel {' '.join(arrays)})",
            file=stream,
            flush=True,
        )
        raise
    finally:
        progress.close()


def _finished_before(submission: Submission) -> TaskResult | None:
    """A task of a killed element that had finished: its succeeded sheet names the job."""
    if submission.task.save_dir is None:
        return None
    try:
        sheet = load(submission.task.save_dir)
    except FlexLockError:
        return None
    if sheet.status != "succeeded" or sheet.env is None:
        return None
    if not runs_job(sheet.env.scheduler, submission.job_id):
        return None
    return TaskResult(
        task=submission.task,
        status="succeeded",
        log_paths=(submission.stdout, submission.stderr),
        details={"job_id": submission.job_id},
    )


def read_results(
    element: Sequence[Submission], *, code: SubmittedCode | None, stream: TextIO
) -> list[TaskResult]:
    """Read a finished array element's result file: one `TaskResult` per task, in order.

    When a task ran code that differs from the submitted `code`, say so on
    `stream` and name the files in the result's `code_changed_since_submission`.
    """
    import submitit
    from submitit.core.utils import FailedJobError, UncompletedJobError

    first = element[0]
    job: Any = submitit.SlurmJob(folder=Path(first.result_file).parent, job_id=first.job_id)
    details = {"job_id": first.job_id, "stdout": first.stdout, "stderr": first.stderr}
    logs = (first.stdout, first.stderr)
    try:
        value = job.result()
        problem = None
    except (FailedJobError, UncompletedJobError) as error:
        # The job itself broke (unpickling, importing the script, ...): submitit
        # kept the node's traceback.
        value, problem = None, f"Slurm job {first.job_id} could not run the task:\n{error}"
    results = value if isinstance(value, list) else [value]
    if problem is None and (
        len(results) != len(element) or not all(isinstance(r, TaskResult) for r in results)
    ):
        problem = f"Slurm job {first.job_id} returned {type(value).__name__}, not TaskResults"
    if problem is not None:
        return [
            TaskResult(task=s.task, status="failed", error=problem, log_paths=logs, details=details)
            for s in element
        ]
    read = []
    for submission, result in zip(element, results, strict=True):
        merged = {**details, **dict(result.details)}
        changed = code.changes(submission.task) if code is not None else ""
        if changed:
            merged["code_changed_since_submission"] = changed
            print(
                f"[slurm] warning: task {submission.task.label} ran code that changed after "
                f"submission ({changed}); its run.lock records the code it ran",
                file=stream,
                flush=True,
            )
        read.append(attrs.evolve(result, log_paths=result.log_paths or logs, details=merged))
    return read


def killed(submission: Submission, state: str) -> TaskResult:
    """Report a job that ended without a result, and mark the sheet it left `running` failed."""
    hint = _STATE_HINTS.get(state, "the job ended without writing a result")
    if state == "COMPLETED":
        hint = "the job ended without writing a result"
    elif state == "UNKNOWN":
        hint = "Slurm no longer knows the job and it wrote no result"
    message = f"Slurm job {submission.job_id} ended with state {state} ({hint})"
    tail = _tail(submission.stderr)
    error = message + (f"; last lines of its stderr:\n{tail}" if tail else "")
    error += f"\n  stdout: {submission.stdout}\n  stderr: {submission.stderr}"
    task = submission.task
    if task.save_dir is not None:
        link_logs(task.save_dir, submission.stdout, submission.stderr)
        mark_dead(task.save_dir, submission.job_id, state, message)
    return TaskResult(
        task=task,
        status="failed",
        error=error,
        log_paths=(submission.stdout, submission.stderr),
        details={
            "job_id": submission.job_id,
            "state": state,
            "stdout": submission.stdout,
            "stderr": submission.stderr,
        },
    )


def with_state(result: TaskResult, state: str | None) -> TaskResult:
    """Add Slurm's final state to a result; name it in the error when Slurm stopped the job."""
    if state not in FINAL_STATES or state == "COMPLETED":
        return result  # COMPLETED says nothing the task's own status does not
    result = attrs.evolve(result, details={**dict(result.details), "state": state})
    if result.status != "failed" or state not in _STATE_HINTS or state == "FAILED":
        return result
    prefix = f"Slurm state {state} ({_STATE_HINTS[state]})"
    return attrs.evolve(result, error=f"{prefix}: {result.error}" if result.error else prefix)


def cancel(job_ids: Sequence[str], stream: TextIO) -> None:
    """Cancel `job_ids` (array tasks as "123_4"), saying so."""
    import subprocess

    if not job_ids:
        return
    print(
        f"[slurm] cancelling {len(job_ids)} unfinished task(s): scancel {' '.join(job_ids)}",
        file=stream,
        flush=True,
    )
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(["scancel", *job_ids], capture_output=True, timeout=60, check=False)


def _tail(path: str, lines: int = 15) -> str:
    try:
        with Path(path).open("rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 16384))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
