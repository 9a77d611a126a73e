"""What runs inside a Slurm job: re-create the submitter's `__main__`, run the task, link the logs.

submitit pickles the callable it is given with cloudpickle, which copies any
function of a script's `__main__` *by value*: the job would run the code as it
was at submission while every module the script imports is loaded as it is at
job start, and the sheet would record the latter. Instead the executor pickles
`run_task` with the standard pickler (by reference, `__main__.main`) and the job
first re-imports the script under the name `__mp_main__` and aliases it as
`__main__`, exactly as `multiprocessing`'s spawn start method does. Everything
the job runs then comes from the working tree at job start, which is what the
run sheet (written on the node) records. Callables that cannot be pickled by
reference (lambdas, interactive sessions) fall back to cloudpickle by value.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import pickle
import signal
import sys
import types
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from flexlock.cli import Task, TaskResult, TaskRunner

__all__ = ["MainModule", "NodeCall", "SlurmTermination", "link_logs", "pickle_runner"]

#: Names of the symlinks to the job's stdout/stderr written into each task's save_dir.
LOG_LINKS = ("slurm.out", "slurm.err")


class SlurmTermination(BaseException):
    """Slurm is stopping the job (time limit, scancel, preemption).

    A BaseException so that a user's `except Exception:` does not swallow it:
    the task must end now, and its sheet is finalised as failed on the way out.
    """


@attrs.frozen
class MainModule:
    """How to re-create the submitting process's `__main__` in the job."""

    path: str | None  # `python script.py`
    module: str | None  # `python -m package.module`
    sys_path: tuple[str, ...]  # the submitter's, so modules found there are found in the job
    reimport: bool = True  # False when the pickled runner names nothing of `__main__`

    @classmethod
    def capture(cls, *, reimport: bool = True) -> MainModule:
        """Describe the current `__main__` (absolute paths, so the job may run anywhere)."""
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        module = spec.name if spec is not None and spec.name != "__main__" else None
        file = getattr(main, "__file__", None)
        path = str(Path(file).resolve()) if file and module is None else None
        sys_path = tuple(str(Path(entry or os.curdir).absolute()) for entry in sys.path)
        return cls(path=path, module=module, sys_path=sys_path, reimport=reimport)

    def prepare(self) -> None:
        """Make `__main__.<name>` resolve in this process to the submitter's definitions."""
        sys.path[:0] = [entry for entry in self.sys_path if entry not in sys.path]
        if not self.reimport:
            return
        if "__mp_main__" in sys.modules:  # already prepared in this process
            sys.modules["__main__"] = sys.modules["__mp_main__"]
            return
        if self.module is not None:
            # Runs under its own name, so its `if __name__ == "__main__":` block does not run.
            main = importlib.import_module(self.module)
        elif self.path is not None and Path(self.path).is_file():
            spec = importlib.util.spec_from_file_location("__mp_main__", self.path)
            if spec is None or spec.loader is None:
                return
            main = importlib.util.module_from_spec(spec)
            # Registered before it runs, so classes it defines find their module (attrs,
            # dataclasses and pickle look it up); the `if __name__ == "__main__":` block
            # does not run, since the name is `__mp_main__`.
            sys.modules["__mp_main__"] = main
            sys.modules["__main__"] = main
            spec.loader.exec_module(main)
        else:
            return
        sys.modules["__mp_main__"] = main
        sys.modules["__main__"] = main


def pickle_runner(run_task: TaskRunner) -> tuple[bytes, bool]:
    """Pickle `run_task` by reference when possible; return (payload, needs_main).

    `needs_main` says whether the payload names objects of `__main__`, so the job
    must re-create it before unpickling.
    """
    try:
        payload = pickle.dumps(run_task, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):
        import cloudpickle  # a submitit dependency

        return cloudpickle.dumps(run_task), False
    return payload, b"__main__" in payload


def link_logs(save_dir: str | os.PathLike[str], stdout: str, stderr: str) -> bool:
    """Point `save_dir/slurm.out` and `slurm.err` at the job's log files; False if impossible."""
    directory = Path(save_dir)
    if not directory.is_dir():
        return False
    for name, target in zip(LOG_LINKS, (stdout, stderr), strict=True):
        temporary = directory / f".{name}.{uuid.uuid4().hex}.tmp"
        try:
            temporary.symlink_to(target)
            temporary.replace(directory / name)  # atomic: a reader sees the old or the new link
        except OSError:
            with contextlib.suppress(OSError):
                temporary.unlink()
            return False
    return True


_hooks: list[Callable[[], object]] = []


@contextlib.contextmanager
def checkpoint_hook(hook: Callable[[], object]) -> Iterator[None]:
    """Call `hook` (save your state) if Slurm stops this task and it is requeued.

    Used inside the task's main, around the work the hook can save:
    `with checkpoint_hook(lambda: torch.save(model, path)): train(model)`. The hook
    runs in the task's main thread, once, when the time limit or a preemption stops
    the job and `max_requeue` allows another attempt; it must be quick (within
    Slurm's KillWait, 30 s by default). The next attempt runs main again from the
    start with the same config: main loads what the hook saved.
    """
    _hooks.append(hook)
    try:
        yield
    finally:
        _hooks.remove(hook)


@attrs.define
class _Stop:
    """Whether this job is to be requeued, decided when Slurm stops it."""

    allowed: bool
    deadline: float  # time.monotonic() at which the element's time limit falls
    state: str | None = None  # TIMEOUT or PREEMPTED once a requeue is decided

    def decide(self, job_id: str) -> None:
        """Say why Slurm is stopping the job: its time limit, else ask Slurm (preemption)."""
        import time

        # Asking Slurm may take longer than KillWait on a busy controller: the clock
        # tells a time limit (SIGTERM comes at the limit; the job started before us).
        self.state = "TIMEOUT" if time.monotonic() >= self.deadline else _stop_state(job_id)


def _stop_state(job_id: str) -> str | None:
    """TIMEOUT or PREEMPTED when Slurm is stopping `job_id` for that reason, else None."""
    import subprocess

    try:
        reason = subprocess.run(
            ["squeue", "--noheader", "--jobs", job_id, "--format=%r"],
            capture_output=True,
            text=True,
            timeout=3,  # inside Slurm's KillWait
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    if "TimeLimit" in reason:
        return "TIMEOUT"
    return "PREEMPTED" if "Preempt" in reason else None


def _run_hooks() -> None:
    import traceback

    for hook in list(_hooks):
        try:
            hook()
        except Exception:
            traceback.print_exc()


@contextlib.contextmanager
def _slurm_signals(job_id: str, stop: _Stop) -> Iterator[None]:
    """Turn Slurm's SIGTERM into `SlurmTermination`; log its early warning (USR2)."""

    def on_term(signum: int, frame: types.FrameType | None) -> None:
        signal.signal(signal.SIGTERM, on_second_term)  # cleanup must not be interrupted again
        if stop.allowed:
            stop.decide(job_id)
            if stop.state is not None:
                _run_hooks()
        raise SlurmTermination(
            f"Slurm sent SIGTERM to job {job_id}: time limit reached, job cancelled or preempted"
        )

    def on_second_term(signum: int, frame: types.FrameType | None) -> None:
        print(f"flexlock: job {job_id}: SIGTERM again, still finishing", file=sys.stderr)

    def on_warning(signum: int, frame: types.FrameType | None) -> None:
        # submitit's own handler would raise inside the task ("not checkpointable") minutes
        # before the limit; a flexlock task runs until Slurm really stops it.
        print(f"flexlock: job {job_id}: Slurm warns that the time limit is near", file=sys.stderr)

    previous = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, on_term),
        signal.SIGUSR2: signal.signal(signal.SIGUSR2, on_warning),
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _job_details() -> dict[str, str]:
    import submitit

    environment = submitit.JobEnvironment()
    paths = environment.paths
    details = {
        "job_id": str(environment.job_id),
        "node": environment.hostname,
        "stdout": str(paths.stdout.resolve()),
        "stderr": str(paths.stderr.resolve()),
    }
    if environment.array_job_id:
        details["array_job_id"] = str(environment.array_job_id)
        details["array_task_id"] = str(environment.array_task_id)
    return details


@attrs.frozen
class NodeCall:
    """The callable submitit runs in each array element: `NodeCall(...)(tasks) -> results`.

    An element runs its tasks one after another in this one process (`tasks_per_job`):
    the script is imported once, each task writes its own sheet and logs, and a
    failing task does not stop the next. When Slurm stops the element (time limit,
    scancel), the task running is failed with `SlurmTermination` and the tasks not
    started yet are failed as such, their `queued` sheets finalised.
    """

    payload: bytes
    main: MainModule
    max_requeue: int = 0
    time_limit_min: int = 60

    def __call__(self, tasks: Sequence[Task]) -> list[TaskResult]:
        """Run `tasks` in order with the submitter's `run_task`, in this job."""
        from flexlock.core import AttemptRecord, utc_now
        from flexlock.slurm._sheets import add_attempts, mark_dead, write_queued

        self.main.prepare()
        run_task: TaskRunner = pickle.loads(self.payload)  # noqa: S301 - written by our submitter
        details = _job_details()
        job_id = details["job_id"]
        if "array_job_id" in details:  # what the sheets and `scontrol requeue` name
            job_id = f"{details['array_job_id']}_{details['array_task_id']}"
        log_paths = (details["stdout"], details["stderr"])
        restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
        import time

        # 60 s of slack: Slurm checks limits about twice a minute.
        deadline = time.monotonic() + self.time_limit_min * 60 - 60
        stop = _Stop(allowed=self.max_requeue > restarts, deadline=deadline)
        results: list[TaskResult] = []
        stopped: str | None = None
        with _slurm_signals(job_id, stop):
            for task in tasks:
                if stopped is not None:
                    error = f"not started: {stopped}"
                    if task.save_dir is not None:
                        mark_dead(task.save_dir, job_id, "CANCELLED", error)
                    results.append(TaskResult(task=task, status="failed", error=error))
                    continue
                earlier = _earlier_attempts(task, job_id) if restarts else ()
                if earlier is None:  # finished by an earlier attempt of this job
                    results.append(_done(task, job_id, log_paths))
                    continue
                started = utc_now()
                try:
                    result = run_task(task)
                except SlurmTermination as end:
                    stopped = str(end)
                    result = TaskResult(task=task, status="failed", error=stopped)
                if stop.state is not None and task.save_dir is not None:
                    attempt = AttemptRecord(job_id, stop.state, started, utc_now())
                    _requeue(job_id)
                    write_queued(task.save_dir, job_id, [*earlier, attempt])
                    raise SystemExit(0)  # no result: the requeued job writes it
                if earlier and task.save_dir is not None:
                    state = "COMPLETED" if result.status == "succeeded" else "FAILED"
                    attempt = AttemptRecord(job_id, state, started, utc_now())
                    add_attempts(task.save_dir, [*earlier, attempt])
                if task.save_dir is not None:
                    link_logs(task.save_dir, *log_paths)
                merged: dict[str, Any] = {**details, **dict(result.details)}
                results.append(
                    attrs.evolve(result, log_paths=result.log_paths or log_paths, details=merged)
                )
        return results


def _earlier_attempts(task: Task, job_id: str) -> tuple[Any, ...] | None:
    """The attempts a requeued task's queued sheet lists; None when it already succeeded."""
    from flexlock.core import FlexLockError, load
    from flexlock.slurm._sheets import runs_job

    if task.save_dir is None:
        return ()
    try:
        sheet = load(task.save_dir)
    except FlexLockError:
        return ()
    if sheet.env is None or not runs_job(sheet.env.scheduler, job_id):
        return ()
    if sheet.status == "succeeded":
        return None
    return sheet.attempts if sheet.status == "queued" else ()


def _done(task: Task, job_id: str, log_paths: tuple[str, str]) -> TaskResult:
    return TaskResult(
        task=task, status="succeeded", log_paths=log_paths, details={"job_id": job_id}
    )


def _requeue(job_id: str) -> None:
    import subprocess

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            ["scontrol", "requeue", job_id], capture_output=True, timeout=20, check=False
        )
