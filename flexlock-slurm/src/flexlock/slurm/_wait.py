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
from flexlock.core import ErrorRecord, RunLock, StatusLine, mark_failed
from flexlock.slurm._cluster import FINAL_STATES, RUNNING_STATES, job_states
from flexlock.slurm._code_changes import SubmittedCode
from flexlock.slurm._node import link_logs
from flexlock.slurm._submit import Submission, array_ids

__all__ = ["Progress", "cancel", "killed", "read_result", "runs_job", "wait", "with_state"]

# A job Slurm calls finished may still be writing its result file (and a shared
# filesystem may show it late): wait this long before reporting "no result".
_RESULT_GRACE_S = 20.0
# A failed result is held back this long for Slurm's final state of its job (a job
# stopped by SIGTERM may stay COMPLETING for a while on a busy node).
_SETTLE_S = 60.0
# A job that neither sacct nor squeue knows for this long has vanished.
_VANISHED_S = 180.0
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


def wait(
    submissions: Sequence[Submission],
    *,
    code: SubmittedCode | None,
    poll_interval_s: float,
    stream: TextIO,
) -> Iterator[TaskResult]:
    """Yield a `TaskResult` per submission as each job finishes (any order).

    Results are read as `read_result` does, comparing with the submitted `code`.
    Closing the iterator early cancels the jobs not finished yet; Ctrl-C leaves them running
    and says how to cancel them.
    """
    remaining = {s.job_id: s for s in submissions}
    # Failed results whose job Slurm has not finalised yet: a task stopped by SIGTERM
    # writes its result while Slurm still says RUNNING, and the report must carry the
    # final state (TIMEOUT, CANCELLED, ...).
    settling: dict[str, tuple[TaskResult, float]] = {}
    states: dict[str, str] = {}
    first_seen_final: dict[str, float] = {}
    last_known = dict.fromkeys(remaining, time.monotonic())
    counts = {"pending": len(remaining), "running": 0, "done": 0, "failed": 0}
    arrays = array_ids(submissions)
    progress = Progress(stream, f"job {','.join(arrays)}")
    interval, next_query = 1.0, 0.0
    try:
        while remaining or settling:
            for job_id, submission in list(remaining.items()):
                if Path(submission.result_file).exists():
                    del remaining[job_id]
                    result = read_result(submission, code=code, stream=stream)
                    if result.status == "failed" and states.get(job_id) not in FINAL_STATES:
                        settling[job_id] = (result, time.monotonic())
                        next_query = min(next_query, time.monotonic() + 1.0)
                        continue
                    counts["done" if result.status == "succeeded" else "failed"] += 1
                    yield with_state(result, states.get(job_id))
            now = time.monotonic()
            if (remaining or settling) and now >= next_query:
                states.update(job_states([*remaining, *settling]))
                interval = min(interval * 1.5, poll_interval_s)
                next_query = now + (1.0 if settling else interval)
                for job_id, (result, since) in list(settling.items()):
                    state = states.get(job_id)
                    if state in FINAL_STATES or now - since > _SETTLE_S:
                        del settling[job_id]
                        counts["failed"] += 1
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
                        submission = remaining.pop(job_id)
                        counts["failed"] += 1
                        yield killed(submission, state or "UNKNOWN")
            running = sum(states.get(job_id) in RUNNING_STATES for job_id in remaining)
            counts["running"] = running
            counts["pending"] = len(remaining) - running
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


def read_result(
    submission: Submission, *, code: SubmittedCode | None, stream: TextIO
) -> TaskResult:
    """Read a finished job's result file into a `TaskResult` carrying the job's id and logs.

    When the task ran code that differs from the submitted `code`, say so on
    `stream` and name the files in the result's `code_changed_since_submission`.
    """
    import submitit
    from submitit.core.utils import FailedJobError, UncompletedJobError

    job: Any = submitit.SlurmJob(
        folder=Path(submission.result_file).parent, job_id=submission.job_id
    )
    details = {
        "job_id": submission.job_id,
        "stdout": submission.stdout,
        "stderr": submission.stderr,
    }
    logs = (submission.stdout, submission.stderr)
    try:
        result = job.result()
    except (FailedJobError, UncompletedJobError) as error:
        # The job itself broke (unpickling, importing the script, ...): submitit
        # kept the node's traceback.
        return TaskResult(
            task=submission.task,
            status="failed",
            error=f"Slurm job {submission.job_id} could not run the task:\n{error}",
            log_paths=logs,
            details=details,
        )
    if not isinstance(result, TaskResult):
        return TaskResult(
            task=submission.task,
            status="failed",
            error=f"Slurm job {submission.job_id} returned "
            f"{type(result).__name__}, not a TaskResult",
            log_paths=logs,
            details=details,
        )
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
    return attrs.evolve(result, log_paths=result.log_paths or logs, details=merged)


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
        record = ErrorRecord(type=f"Slurm{state.title().replace('_', '')}", message=message)

        def written_by_this_job(sheet: RunLock) -> bool:
            # Another run's sheet (a later resubmission, say) is never touched.
            return sheet.env is not None and runs_job(sheet.env.scheduler, submission.job_id)

        mark_failed(task.save_dir, record, only_if=written_by_this_job)
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


def runs_job(scheduler: Mapping[str, str], job_id: str) -> bool:
    """Say whether a sheet's `env.scheduler` names Slurm job `job_id` ("123" or "123_4")."""
    array_job, _, array_task = job_id.partition("_")
    if array_task:
        return (
            scheduler.get("SLURM_ARRAY_JOB_ID") == array_job
            and scheduler.get("SLURM_ARRAY_TASK_ID") == array_task
        )
    return scheduler.get("SLURM_JOB_ID") == job_id


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
