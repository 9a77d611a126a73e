"""The `slurm` executor: a task list becomes Slurm job arrays through submitit.

One `sbatch` per array (split at the cluster's `MaxArraySize`), then either
return at once (`no_wait`) or wait, yielding each task's result as it
finishes, with a live pending/running/done/failed line on a terminal.

Waiting never hangs on a dead job: results are read from submitit's result
files, and Slurm's own state (sacct, squeue) tells when a job ended without
one (time limit, cancel, out of memory, node failure), which is reported as a
failed task carrying that state and the job's log paths.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from flexlock.cli._executor import Task, TaskResult, TaskRunner
from flexlock.core._errors import ConfigError, FlexLockError
from flexlock.slurm._cluster import (
    FINAL_STATES,
    RUNNING_STATES,
    job_states,
    max_array_size,
    partition_limits,
    require_slurm,
)
from flexlock.slurm._config import SlurmConfig, slurm_config
from flexlock.slurm._node import MainModule, NodeCall, link_logs, pickle_runner

__all__ = ["SlurmExecutor", "Submission", "slurm_executor"]

# A job Slurm calls finished may still be writing its result file (and a shared
# filesystem may show it late): wait this long before reporting "no result".
_RESULT_GRACE_S = 20.0
# A failed result is held back this long for Slurm's final state of its job (a job
# stopped by SIGTERM may stay COMPLETING for a while on a busy node).
_SETTLE_S = 60.0
# A job that neither sacct nor squeue knows for this long has vanished.
_VANISHED_S = 180.0

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


@attrs.frozen
class Submission:
    """One submitted task: its Slurm job id and where its files are."""

    task: Task
    job_id: str  # "123_4" for array task 4 of array 123, "123" for a single job
    stdout: str
    stderr: str
    result_file: str


def slurm_executor(options: Mapping[str, Any]) -> SlurmExecutor:
    """Build the `slurm` executor from the parsed `slurm.yaml` (entry point `flexlock.executors`).

    Raises:
        ConfigError: an unknown key or a bad value (exit code 2), before anything is submitted.
    """
    return SlurmExecutor(slurm_config(options))


def _chunks(tasks: Sequence[Task], size: int) -> Iterator[Sequence[Task]]:
    for start in range(0, len(tasks), size):
        yield tasks[start : start + size]


def _tail(path: str, lines: int = 15) -> str:
    try:
        with Path(path).open("rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 16384))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class _Progress:
    """One status line: rewritten in place on a terminal, printed on change elsewhere."""

    def __init__(self, stream: IO[str], label: str) -> None:
        self.stream = stream
        self.label = label
        self.tty = stream.isatty()
        self.last_line = ""
        self.last_print = 0.0

    def update(self, counts: Mapping[str, int], *, force: bool = False) -> None:
        line = f"[slurm] {self.label}: " + ", ".join(f"{n} {name}" for name, n in counts.items())
        now = time.monotonic()
        if self.tty:
            if line != self.last_line or force:
                self.stream.write("\r\x1b[2K" + line)
                self.stream.flush()
        elif line != self.last_line and (force or now - self.last_print >= 30.0):
            # Logs (CI, nohup) get a line per change, at most every 30 s.
            print(line, file=self.stream, flush=True)
            self.last_print = now
        else:
            return
        self.last_line = line

    def close(self) -> None:
        if self.tty and self.last_line:
            self.stream.write("\n")
            self.stream.flush()
        self.last_line = ""  # closing twice writes one newline


class SlurmExecutor:
    """Run flexlock tasks as Slurm job arrays (see the module docstring)."""

    #: This executor prints its own pending/running/done/failed line on a terminal.
    draws_progress = True

    def __init__(self, config: SlurmConfig, *, stream: IO[str] | None = None) -> None:
        self.config = config
        self._stream = stream
        # {repo root: tree id} of the submitting script's repo at submission, to tell
        # when a job ran code that changed while it was queued.
        self._submitted_trees: dict[str, str] | None = None
        self._save_dirs: tuple[Path, ...] = ()
        self._array_limit: int | None = None  # cluster facts, asked once per executor

    @property
    def stream(self) -> IO[str]:
        """Where progress and job ids are printed (stderr unless given)."""
        return self._stream or sys.stderr

    # -- submission -------------------------------------------------------------

    def check_request(self) -> None:
        """Refuse a request no node of the partition can satisfy, before submitting.

        Slurm would otherwise queue it forever (unless the cluster sets
        EnforcePartLimits); sbatch's own refusals are reported by `submit`.

        Raises:
            ConfigError: Slurm is not installed here, or the request exceeds every node.
        """
        require_slurm()
        limits = partition_limits(self.config.partition)
        if limits is None:
            return
        if self.config.cpus_per_task > limits.cpus:
            raise ConfigError(
                f"slurm config: cpus_per_task={self.config.cpus_per_task} is more than any node of "
                f"partition {limits.partition!r} has ({limits.cpus} CPUs); lower cpus_per_task "
                "or choose another partition"
            )
        if self.config.mem_gb is not None and self.config.mem_gb * 1024 > limits.memory_mb:
            raise ConfigError(
                f"slurm config: mem_gb={self.config.mem_gb:g} is more than any node of partition "
                f"{limits.partition!r} has ({limits.memory_mb / 1024:.1f} GB); lower mem_gb "
                "or choose another partition"
            )

    def submit(self, run_task: TaskRunner, tasks: Sequence[Task]) -> list[Submission]:
        """Submit `tasks` as job arrays (one sbatch per array) and return one `Submission` each.

        Raises:
            ConfigError: the request is impossible or sbatch refused it (nothing was
                submitted, or the message lists what was and how to cancel it).
        """
        import submitit
        from submitit.core.utils import FailedJobError

        if self._array_limit is None:
            self.check_request()
            self._array_limit = max_array_size() or 1001  # 1001: Slurm's default MaxArraySize
        payload, needs_main = pickle_runner(run_task)
        main = MainModule.capture(reimport=needs_main)
        call = NodeCall(payload=payload, main=main)
        if self._submitted_trees is None:
            self._submitted_trees = _current_trees(main.path)
        self._save_dirs += tuple(Path(t.save_dir).resolve() for t in tasks if t.save_dir)
        log_dir = Path(self.config.log_dir).resolve()
        _ignore_in_git(log_dir)
        folder = log_dir / "%j"
        try:
            executor = submitit.SlurmExecutor(folder=folder, python=self.config.python)
        except RuntimeError as error:  # srun missing
            raise ConfigError(f"--slurm_config: {error}") from None
        executor.update_parameters(**self.config.to_submitit())
        limit = self._array_limit
        if self.config.max_array_size is not None:
            limit = min(limit, self.config.max_array_size)
        submissions: list[Submission] = []
        for chunk in _chunks(tasks, limit):
            try:
                jobs = executor.map_array(call, list(chunk))
            except (FailedJobError, OSError) as error:
                raise ConfigError(self._refused_message(error, submissions)) from None
            for task, job in zip(chunk, jobs, strict=True):
                submissions.append(
                    Submission(
                        task=task,
                        job_id=str(job.job_id),
                        stdout=str(job.paths.stdout),
                        stderr=str(job.paths.stderr),
                        result_file=str(job.paths.result_pickle),
                    )
                )
        return submissions

    def _refused_message(self, error: BaseException, submitted: Sequence[Submission]) -> str:
        text = str(error)
        reason = next(
            (line.strip() for line in text.splitlines() if "sbatch: error:" in line), text.strip()
        )
        message = f"Slurm refused the job: {reason}"
        if submitted:
            arrays = sorted({s.job_id.split("_")[0] for s in submitted})
            message += (
                f"\n{len(submitted)} task(s) were already submitted as job(s) {', '.join(arrays)};"
                f" cancel them with: scancel {' '.join(arrays)}"
            )
        return message + "\nCheck the slurm config (partition, time, cpus_per_task, mem_gb, ...)."

    # -- the executor protocol --------------------------------------------------

    def run(self, run_task: TaskRunner, tasks: Sequence[Task]) -> Iterator[TaskResult]:
        """Submit `tasks`; unless `no_wait`, wait and yield each result as it finishes."""
        if not tasks:
            return
        submissions = self.submit(run_task, tasks)
        self._announce(submissions)
        if self.config.no_wait:
            return
        yield from self.wait(submissions)

    def _announce(self, submissions: Sequence[Submission]) -> None:
        arrays = sorted({s.job_id.split("_")[0] for s in submissions}, key=int)
        ids = " ".join(arrays)
        log_dir = Path(self.config.log_dir).resolve()
        first = submissions[0]
        lines = [
            f"[slurm] submitted {len(submissions)} task(s) as job(s) {ids}; logs in {log_dir}",
        ]
        if self.config.no_wait:
            lines += [
                f"  follow:  squeue -j {','.join(arrays)}   or   sacct -X -j {','.join(arrays)}",
                f"  logs:    tail -f {first.stdout}",
                f"  cancel:  scancel {ids}",
                "  each task writes its run.lock (status running/succeeded/failed) in its save_dir",
            ]
        # On a terminal, start from a clean line: the CLI may have drawn its own status line.
        clear = "\r\x1b[2K" if self.stream.isatty() else ""
        print(clear + "\n".join(lines), file=self.stream, flush=True)

    def wait(self, submissions: Sequence[Submission]) -> Iterator[TaskResult]:
        """Yield a `TaskResult` per submission as each job finishes (any order)."""
        remaining = {s.job_id: s for s in submissions}
        # Failed results whose job Slurm has not finalised yet: a task stopped by SIGTERM
        # writes its result while Slurm still says RUNNING, and the report must carry the
        # final state (TIMEOUT, CANCELLED, ...).
        settling: dict[str, tuple[TaskResult, float]] = {}
        states: dict[str, str] = {}
        first_seen_final: dict[str, float] = {}
        last_known = dict.fromkeys(remaining, time.monotonic())
        counts = {"pending": len(remaining), "running": 0, "done": 0, "failed": 0}
        arrays = sorted({s.job_id.split("_")[0] for s in submissions}, key=int)
        progress = _Progress(self.stream, f"job {','.join(arrays)}")
        interval, next_query = 1.0, 0.0
        try:
            while remaining or settling:
                for job_id, submission in list(remaining.items()):
                    if Path(submission.result_file).exists():
                        del remaining[job_id]
                        result = self._collect(submission)
                        if result.status == "failed" and states.get(job_id) not in FINAL_STATES:
                            settling[job_id] = (result, time.monotonic())
                            next_query = min(next_query, time.monotonic() + 1.0)
                            continue
                        counts["done" if result.status == "succeeded" else "failed"] += 1
                        yield _with_state(result, states.get(job_id))
                now = time.monotonic()
                if (remaining or settling) and now >= next_query:
                    states.update(job_states([*remaining, *settling]))
                    interval = min(interval * 1.5, self.config.poll_interval_s)
                    next_query = now + (1.0 if settling else interval)
                    for job_id, (result, since) in list(settling.items()):
                        state = states.get(job_id)
                        if state in FINAL_STATES or now - since > _SETTLE_S:
                            del settling[job_id]
                            counts["failed"] += 1
                            yield _with_state(result, state)
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
                            yield self._killed(submission, state or "UNKNOWN")
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
            _cancel(sorted(remaining), self.stream)  # (settling jobs have their result)
            raise
        except KeyboardInterrupt:
            progress.close()
            print(
                "[slurm] stopped waiting; the jobs keep running "
                f"(cancel with: scancel {' '.join(arrays)})",
                file=self.stream,
                flush=True,
            )
            raise
        finally:
            progress.close()

    # -- results ----------------------------------------------------------------

    def _collect(self, submission: Submission) -> TaskResult:
        """Read a finished job's result file into a TaskResult."""
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
        changed = self._code_changes(submission.task)
        if changed:
            merged["code_changed_since_submission"] = changed
            print(
                f"[slurm] warning: task {submission.task.label} ran code that changed after "
                f"submission ({changed}); its run.lock records the code it ran",
                file=self.stream,
                flush=True,
            )
        return attrs.evolve(result, log_paths=result.log_paths or logs, details=merged)

    def _code_changes(self, task: Task) -> str:
        """Name the files that differ between the submitted code and the code the task ran."""
        if not self._submitted_trees or task.save_dir is None:
            return ""
        from flexlock.core._git import diff_trees
        from flexlock.core._lockfile import load

        try:
            sheet = load(Path(task.save_dir))
        except Exception:  # no sheet (task without runlock): nothing to compare
            return ""
        changed: list[str] = []
        for record in sheet.code.values():
            submitted = self._submitted_trees.get(str(Path(record.root).resolve()))
            if submitted is None or submitted == record.tree:
                continue
            try:
                lines = diff_trees(record.root, submitted, record.tree)
            except FlexLockError:
                continue
            for line in lines:
                path = Path(record.root, line.partition("\t")[2]).resolve()
                # Results of this task list appearing in an unignored save_dir are not code.
                if not any(path.is_relative_to(save_dir) for save_dir in self._save_dirs):
                    changed.append(line.partition("\t")[2])
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        return ", ".join(changed[:5]) + more

    def _killed(self, submission: Submission, state: str) -> TaskResult:
        """Report a job that ended without a result, and mark its sheet failed."""
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
            _fail_sheet(Path(task.save_dir), submission.job_id, state, message)
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


def _with_state(result: TaskResult, state: str | None) -> TaskResult:
    """Add Slurm's final state to a result; name it in the error when Slurm stopped the job."""
    if state not in FINAL_STATES or state == "COMPLETED":
        return result  # COMPLETED says nothing the task's own status does not
    result = attrs.evolve(result, details={**dict(result.details), "state": state})
    if result.status != "failed" or state not in _STATE_HINTS or state == "FAILED":
        return result
    prefix = f"Slurm state {state} ({_STATE_HINTS[state]})"
    return attrs.evolve(result, error=f"{prefix}: {result.error}" if result.error else prefix)


def _current_trees(script: str | None) -> dict[str, str]:
    """Return {repo root: tree id} of the working tree holding `script` (or the cwd), if any."""
    from flexlock.core._git import capture_repo

    try:
        record = capture_repo(Path(script).parent if script else Path.cwd())
    except (FlexLockError, OSError):
        return {}
    return {str(Path(record.root).resolve()): record.tree}


def _cancel(job_ids: Sequence[str], stream: IO[str]) -> None:
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


def _ignore_in_git(log_dir: Path) -> None:
    """Keep the log dir out of `git status`, hence out of every task's recorded code tree.

    Logs and result pickles change while tasks run; inside the repository they
    would make each sheet's tree differ and resubmission rerun finished tasks.
    The `*` ignore file is what pytest and mypy put in their cache dirs.
    """
    from flexlock.core._lockfile import write_atomic

    log_dir.mkdir(parents=True, exist_ok=True)
    ignore = log_dir / ".gitignore"
    if not ignore.exists():
        write_atomic(ignore, b"# written by flexlock-slurm: job logs and pickles, never code\n*\n")


def _runs_job(scheduler: Mapping[str, str], job_id: str) -> bool:
    array_job, _, array_task = job_id.partition("_")
    if array_task:
        return (
            scheduler.get("SLURM_ARRAY_JOB_ID") == array_job
            and scheduler.get("SLURM_ARRAY_TASK_ID") == array_task
        )
    return scheduler.get("SLURM_JOB_ID") == job_id


def _fail_sheet(save_dir: Path, job_id: str, state: str, message: str) -> None:
    """Finalise the sheet a killed job left `running`, if (and only if) that job wrote it."""
    from flexlock.core._lockfile import dump, load, lock_path
    from flexlock.core._model import ErrorRecord

    path = lock_path(save_dir)
    with contextlib.suppress(Exception):  # no sheet, or an unreadable one: nothing to fix
        sheet = load(path)
        if sheet.status != "running" or sheet.env is None:
            return
        if not _runs_job(sheet.env.scheduler, job_id):
            return  # another run's sheet: never touch it
        finished = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        error = ErrorRecord(type=f"Slurm{state.title().replace('_', '')}", message=message)
        dump(attrs.evolve(sheet, status="failed", finished=finished, error=error), path)
