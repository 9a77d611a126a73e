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
from collections.abc import Iterator, Sequence
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


@contextlib.contextmanager
def _slurm_signals(job_id: str) -> Iterator[None]:
    """Turn Slurm's SIGTERM into `SlurmTermination`; log its early warning (USR2)."""

    def on_term(signum: int, frame: types.FrameType | None) -> None:
        signal.signal(signal.SIGTERM, on_second_term)  # cleanup must not be interrupted again
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

    def __call__(self, tasks: Sequence[Task]) -> list[TaskResult]:
        """Run `tasks` in order with the submitter's `run_task`, in this job."""
        from flexlock.slurm._sheets import mark_dead

        self.main.prepare()
        run_task: TaskRunner = pickle.loads(self.payload)  # noqa: S301 - written by our submitter
        details = _job_details()
        log_paths = (details["stdout"], details["stderr"])
        results: list[TaskResult] = []
        stopped: str | None = None
        with _slurm_signals(details["job_id"]):
            for task in tasks:
                if stopped is not None:
                    error = f"not started: {stopped}"
                    if task.save_dir is not None:
                        mark_dead(task.save_dir, details["job_id"], "CANCELLED", error)
                    results.append(TaskResult(task=task, status="failed", error=error))
                    continue
                try:
                    result = run_task(task)
                except SlurmTermination as stop:
                    stopped = str(stop)
                    result = TaskResult(task=task, status="failed", error=stopped)
                if task.save_dir is not None:
                    link_logs(task.save_dir, *log_paths)
                merged: dict[str, Any] = {**details, **dict(result.details)}
                results.append(
                    attrs.evolve(result, log_paths=result.log_paths or log_paths, details=merged)
                )
        return results
