"""The run sheets of a sweep on Slurm: `queued` placeholders and dead jobs.

At submission every task's save_dir gets a `queued` sheet naming its job, so a
later invocation (or `flexlock ls`) can tell a task in flight from a missing
one. Whoever looks next asks Slurm once for all the jobs those sheets name
(`sweep_statuses`) and finalises as `failed` the sheets whose job Slurm calls
dead; a job Slurm does not know (accounting off, long forgotten) leaves its sheet
as it is, since nothing proves it dead.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from flexlock.core import (
    AttemptRecord,
    EnvRecord,
    ErrorRecord,
    FlexLockError,
    RunLock,
    dump,
    load,
    lock_path,
    preserve_previous,
    utc_now,
)
from flexlock.slurm._cluster import FINAL_STATES, job_states

__all__ = [
    "IN_FLIGHT",
    "add_attempts",
    "job_of",
    "mark_dead",
    "runs_job",
    "scheduler_ids",
    "sweep_statuses",
    "write_queued",
]

#: Sheet statuses of a task whose job may still be queued or running.
IN_FLIGHT = frozenset({"queued", "running"})

# A job Slurm calls COMPLETED while its task's sheet is still queued/running: the
# shared filesystem may show the final sheet late, so wait this long before judging.
_COMPLETED_GRACE_S = 60.0


def scheduler_ids(job_id: str) -> dict[str, str]:
    """Return the `env.scheduler` keys naming job `job_id` ("123_4" or "123")."""
    array_job, _, array_task = job_id.partition("_")
    if array_task:
        return {"SLURM_ARRAY_JOB_ID": array_job, "SLURM_ARRAY_TASK_ID": array_task}
    return {"SLURM_JOB_ID": job_id}


def job_of(scheduler: Mapping[str, str]) -> str | None:
    """Return the Slurm job id ("123_4" or "123") a sheet's `env.scheduler` names, if any."""
    array_job = scheduler.get("SLURM_ARRAY_JOB_ID")
    array_task = scheduler.get("SLURM_ARRAY_TASK_ID")
    if array_job and array_task:
        return f"{array_job}_{array_task}"
    return scheduler.get("SLURM_JOB_ID") or None


def runs_job(scheduler: Mapping[str, str], job_id: str) -> bool:
    """Say whether a sheet's `env.scheduler` names Slurm job `job_id` ("123" or "123_4")."""
    return job_of(scheduler) == job_id


@functools.cache
def _submitter_env() -> tuple[str, str, str, str, str]:
    import getpass
    import platform
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = str(os.getuid())
    return (
        platform.python_version(),
        platform.python_implementation(),
        platform.platform(),
        socket.gethostname(),
        user,
    )


def write_queued(
    save_dir: str | os.PathLike[str], job_id: str, attempts: Iterable[AttemptRecord] = ()
) -> None:
    """Write the `queued` sheet of a task submitted as `job_id` (the sheet it replaces is kept).

    A finished or failed sheet goes to the save_dir's history first, as when a run
    starts; the queued sheet is a placeholder that the run itself replaces.
    """
    python, implementation, system, hostname, user = _submitter_env()
    env = EnvRecord(
        python=python,
        implementation=implementation,
        platform=system,
        hostname=hostname,
        user=user,
        cwd=str(Path.cwd()),
        scheduler=scheduler_ids(job_id),
    )
    sheet = RunLock(
        id=f"queued:{job_id}",
        status="queued",
        created=utc_now(),
        save_dir=os.fspath(save_dir),
        env=env,
        attempts=tuple(attempts),
    )
    path = lock_path(save_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    preserve_previous(path.parent, path)
    dump(sheet, path)


def add_attempts(save_dir: str | os.PathLike[str], attempts: Iterable[AttemptRecord]) -> None:
    """Record every attempt (oldest first) in the finished sheet at `save_dir`."""
    path = lock_path(save_dir)
    with contextlib.suppress(FlexLockError, OSError):
        dump(attrs.evolve(load(path), attempts=tuple(attempts)), path)


def mark_dead(save_dir: str | os.PathLike[str], job_id: str, state: str, message: str) -> bool:
    """Finalise the queued or running sheet of `job_id` as failed; False if it is not that sheet.

    Only a sheet naming `job_id` is changed: a later resubmission's sheet is never touched.
    """
    path = lock_path(save_dir)
    try:
        sheet = load(path)
    except FlexLockError:
        return False
    scheduler = sheet.env.scheduler if sheet.env is not None else {}
    if sheet.status not in IN_FLIGHT or not runs_job(scheduler, job_id):
        return False
    error = ErrorRecord(type=f"Slurm{state.title().replace('_', '')}", message=message)
    finished = attrs.evolve(sheet, status="failed", finished=utc_now(), error=error)
    with contextlib.suppress(OSError):
        dump(finished, path)
        return True
    return False


def sweep_statuses(
    save_dirs: Iterable[str | os.PathLike[str]], *, states: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Return {save_dir: status} of the sheets under `save_dirs`, dead jobs finalised first.

    The sheets still `queued` or `running` that name a Slurm job are checked with one
    `job_states` call for all of them (`states` when the caller already asked); a
    job Slurm reports ended (TIMEOUT, CANCELLED, NODE_FAIL, OUT_OF_MEMORY, ...) has
    its sheet marked failed here. Save_dirs without a readable sheet are left out.
    """
    import time

    statuses: dict[str, str] = {}
    jobs: dict[str, tuple[str, float]] = {}  # save_dir -> (job id, sheet mtime)
    for save_dir in save_dirs:
        key = os.fspath(save_dir)
        path = lock_path(key)
        try:
            sheet = load(path)
            mtime = path.stat().st_mtime
        except (FlexLockError, OSError):
            continue
        statuses[key] = sheet.status
        job_id = job_of(sheet.env.scheduler) if sheet.env is not None else None
        if sheet.status in IN_FLIGHT and job_id is not None:
            jobs[key] = (job_id, mtime)
    if not jobs:
        return statuses
    if states is None:
        states = job_states(job_id for job_id, _ in jobs.values())
    now = time.time()
    for key, (job_id, mtime) in jobs.items():
        state = states.get(job_id)
        if state not in FINAL_STATES:
            continue  # alive, or unknown to Slurm: nothing proves it dead
        if state == "COMPLETED" and now - mtime < _COMPLETED_GRACE_S:
            continue
        message = f"Slurm job {job_id} ended with state {state} before the task finished"
        if mark_dead(key, job_id, state, message):
            statuses[key] = "failed"
    return statuses
