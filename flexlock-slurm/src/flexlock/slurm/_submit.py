"""Submit a task list as Slurm job arrays through submitit: check, sbatch, announce.

A request no node of the partition can satisfy is refused before submitting
(Slurm would queue it forever unless the cluster sets EnforcePartLimits); one
`sbatch` goes out per array, split at the cluster's `MaxArraySize`; sbatch's
own refusals become a `ConfigError` quoting sbatch and naming what was already
submitted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

import attrs

from flexlock.cli import Task
from flexlock.core import ConfigError, StatusLine, write_atomic
from flexlock.slurm._cluster import max_array_size, partition_limits, require_slurm
from flexlock.slurm._config import SlurmConfig
from flexlock.slurm._node import NodeCall
from flexlock.slurm._sheets import write_queued

__all__ = ["Submission", "announce", "array_ids", "check_request", "cluster_array_limit", "submit"]

# Slurm's default MaxArraySize, when `scontrol show config` does not say.
_DEFAULT_MAX_ARRAY_SIZE = 1001


@attrs.frozen
class Submission:
    """One submitted task: its Slurm job id and where its files are."""

    task: Task
    job_id: str  # "123_4" for array task 4 of array 123, "123" for a single job
    stdout: str
    stderr: str
    result_file: str  # the array element's: the results of all its tasks
    position: int = 0  # the task's place among the tasks of its element (tasks_per_job)


def array_ids(submissions: Sequence[Submission]) -> list[str]:
    """Return the distinct array (or single) job ids of `submissions`, in submission order."""
    return sorted({submission.job_id.split("_")[0] for submission in submissions}, key=int)


def check_request(config: SlurmConfig) -> None:
    """Refuse a request no node of the partition can satisfy, before submitting.

    Raises:
        ConfigError: Slurm is not installed here, the partition does not exist, or
            the request exceeds every node of it.
    """
    require_slurm()
    limits = partition_limits(config.partition)
    if limits is None:
        return
    if config.cpus_per_task > limits.cpus:
        raise ConfigError(
            f"slurm config: cpus_per_task={config.cpus_per_task} is more than any node of "
            f"partition {limits.partition!r} has ({limits.cpus} CPUs); lower cpus_per_task "
            "or choose another partition"
        )
    if config.mem_gb is not None and config.mem_gb * 1024 > limits.memory_mb:
        raise ConfigError(
            f"slurm config: mem_gb={config.mem_gb:g} is more than any node of partition "
            f"{limits.partition!r} has ({limits.memory_mb / 1024:.1f} GB); lower mem_gb "
            "or choose another partition"
        )


def cluster_array_limit() -> int:
    """Return how many tasks one array may hold on this cluster (`MaxArraySize`)."""
    return max_array_size() or _DEFAULT_MAX_ARRAY_SIZE


def submit(
    config: SlurmConfig, call: NodeCall, tasks: Sequence[Task], *, array_limit: int
) -> list[Submission]:
    """Submit `call` over `tasks` as arrays of at most `array_limit` tasks; one `Submission` each.

    Raises:
        ConfigError: sbatch refused an array (the message lists what was already
            submitted and how to cancel it).
    """
    import submitit
    from submitit.core.utils import FailedJobError

    log_dir = Path(config.log_dir).resolve()
    _ignore_in_git(log_dir)
    try:
        executor = submitit.SlurmExecutor(folder=log_dir / "%j", python=config.python)
    except RuntimeError as error:  # srun missing
        raise ConfigError(f"--slurm_config: {error}") from None
    parameters = config.to_submitit()
    additional = dict(parameters.get("additional_parameters", {}))
    # Held until every task's queued sheet is written: a job that started first would
    # have its running sheet replaced by the placeholder.
    held_by_user = bool(additional.get("hold"))
    parameters["additional_parameters"] = {**additional, "hold": True}
    executor.update_parameters(**parameters)
    if config.max_array_size is not None:
        array_limit = min(array_limit, config.max_array_size)
    per_job = config.tasks_per_job
    submissions: list[Submission] = []
    for chunk in _chunks(tasks, array_limit * per_job):
        groups = [list(group) for group in _chunks(chunk, per_job)]
        try:
            jobs = executor.map_array(call, groups)
        except (FailedJobError, OSError) as error:
            raise ConfigError(_refused_message(error, submissions)) from None
        new = [
            Submission(
                task=task,
                job_id=str(job.job_id),
                stdout=str(job.paths.stdout),
                stderr=str(job.paths.stderr),
                result_file=str(job.paths.result_pickle),
                position=position,
            )
            for group, job in zip(groups, jobs, strict=True)
            for position, task in enumerate(group)
        ]
        for submission in new:
            if submission.task.save_dir is not None:
                write_queued(submission.task.save_dir, submission.job_id)
        if not held_by_user:
            _release(array_ids(new))
        submissions += new
    return submissions


def _release(arrays: Sequence[str]) -> None:
    import subprocess

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            ["scontrol", "release", ",".join(arrays)], capture_output=True, timeout=60, check=False
        )


def announce(submissions: Sequence[Submission], config: SlurmConfig, stream: TextIO) -> None:
    """Print the job ids and the log dir; with `no_wait`, how to follow and cancel the jobs."""
    arrays = array_ids(submissions)
    ids = " ".join(arrays)
    log_dir = Path(config.log_dir).resolve()
    lines = [f"[slurm] submitted {len(submissions)} task(s) as job(s) {ids}; logs in {log_dir}"]
    if config.no_wait:
        lines += [
            f"  follow:  squeue -j {','.join(arrays)}   or   sacct -X -j {','.join(arrays)}",
            f"  logs:    tail -f {submissions[0].stdout}",
            f"  cancel:  scancel {ids}",
            "  each task writes its run.lock (status queued/running/succeeded/failed) "
            "in its save_dir",
        ]
    # On a terminal, start from a clean line: the CLI may have drawn its own status
    # line there (an empty status line erases it; elsewhere this writes nothing).
    StatusLine(stream).show("")
    print("\n".join(lines), file=stream, flush=True)


def _chunks(tasks: Sequence[Task], size: int) -> Iterator[Sequence[Task]]:
    for start in range(0, len(tasks), size):
        yield tasks[start : start + size]


def _refused_message(error: BaseException, submitted: Sequence[Submission]) -> str:
    text = str(error)
    reason = next(
        (line.strip() for line in text.splitlines() if "sbatch: error:" in line), text.strip()
    )
    message = f"Slurm refused the job: {reason}"
    if submitted:
        arrays = array_ids(submitted)
        message += (
            f"\n{len(submitted)} task(s) were already submitted as job(s) {', '.join(arrays)};"
            f" cancel them with: scancel {' '.join(arrays)}"
        )
    return message + "\nCheck the slurm config (partition, time, cpus_per_task, mem_gb, ...)."


def _ignore_in_git(log_dir: Path) -> None:
    """Keep the log dir out of `git status`, hence out of every task's recorded code tree.

    Logs and result pickles change while tasks run; inside the repository they
    would make each sheet's tree differ and resubmission rerun finished tasks.
    The `*` ignore file is what pytest and mypy put in their cache dirs.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    ignore = log_dir / ".gitignore"
    if not ignore.exists():
        write_atomic(ignore, b"# written by flexlock-slurm: job logs and pickles, never code\n*\n")
