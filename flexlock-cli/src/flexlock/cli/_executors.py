"""The built-in executors: `serial` (this process, in order) and `local` (joblib on local cores)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import attrs

from flexlock.cli._contract import ExecutorFactory, Task, TaskResult, TaskRunner
from flexlock.core import ConfigError, usable_cpus

__all__ = ["BUILTIN_EXECUTORS", "LocalExecutor", "SerialExecutor", "local", "serial"]


def _check_keys(name: str, options: Mapping[str, Any], known: Sequence[str]) -> None:
    unknown = sorted(set(options) - set(known))
    if "no_wait" in unknown:
        raise ConfigError(
            f"--no_wait needs an executor that submits jobs (e.g. slurm); {name!r} runs tasks here"
        )
    if unknown:
        import difflib

        where = getattr(options, "where", None)  # an ExecutorOptions knows the file:line
        place = f"{where(unknown[0])}: " if where is not None else ""
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{place}executor {name!r}: unknown option(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(known) or 'none'}{hint}"
        )


@attrs.frozen
class SerialExecutor:
    """Run tasks one after the other in this process."""

    draws_progress: ClassVar[bool] = False
    n_jobs: ClassVar[int] = 1

    def run(self, run_task: TaskRunner, tasks: Sequence[Task]) -> Iterator[TaskResult]:
        """Run every task in order, yielding each result when it is done."""
        for task in tasks:
            yield run_task(task)


def serial(options: Mapping[str, Any]) -> SerialExecutor:
    """Build the `serial` executor (accepts only `n_jobs: 1`)."""
    _check_keys("serial", options, ["n_jobs"])
    if options.get("n_jobs", 1) != 1:
        raise ConfigError("executor 'serial' runs one task at a time; drop --n_jobs or use 'local'")
    return SerialExecutor()


_BACKENDS = ("loky", "multiprocessing", "threading")


@attrs.frozen
class LocalExecutor:
    """Run tasks on local cores with joblib; results arrive as tasks finish."""

    draws_progress: ClassVar[bool] = False
    n_jobs: int
    backend: str = "loky"
    tasks_per_job: int = 1  # tasks sent to a worker at once (joblib's batch_size)

    def run(self, run_task: TaskRunner, tasks: Sequence[Task]) -> Iterator[TaskResult]:
        """Run the tasks `n_jobs` at a time, yielding results in completion order."""
        if not tasks:
            return
        from joblib import Parallel, delayed  # only here: serial runs and --help never pay for it

        parallel = Parallel(
            n_jobs=min(self.n_jobs, len(tasks)),
            backend=self.backend,
            batch_size=self.tasks_per_job,
            return_as="generator_unordered",
        )
        with _sigint_blocked(self.backend != "threading"):
            # The call starts the workers and dispatches the first tasks, without waiting.
            results = parallel(delayed(run_task)(task) for task in tasks)
        yield from results


@contextlib.contextmanager
def _sigint_blocked(blocked: bool) -> Iterator[None]:
    """Block SIGINT in this thread while worker processes are started from it.

    A Ctrl-C sent to the terminal reaches every process of its group: workers still
    importing printed their own KeyboardInterrupt tracebacks. Started with SIGINT
    blocked (the mask is inherited across fork and exec), they leave it to this
    process, which stops them; `RunTask` unblocks it when a task starts, so a
    running task is interrupted as before. A Ctrl-C meanwhile is delivered here
    when the block ends.
    """
    if not blocked or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    # The stdlib's resource tracker (joblib starts it) unblocks SIGINT after starting
    # (Python < 3.12 sets SIG_UNBLOCK instead of restoring the mask): start it first.
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def local(options: Mapping[str, Any]) -> LocalExecutor:
    """Build the `local` executor from `{n_jobs: N, backend: ..., tasks_per_job: M}`.

    `n_jobs` defaults to the number of usable cores; -1 means all of them.
    `tasks_per_job` sends M tasks to a worker at once (joblib's `batch_size`).
    """
    _check_keys("local", options, ["n_jobs", "backend", "tasks_per_job"])
    n_jobs = options.get("n_jobs", -1)
    if not isinstance(n_jobs, int) or isinstance(n_jobs, bool) or n_jobs == 0 or n_jobs < -1:
        raise ConfigError(
            f"executor 'local': n_jobs must be a positive integer or -1, got {n_jobs!r}"
        )
    if n_jobs == -1:
        n_jobs = usable_cpus()
    backend = options.get("backend", "loky")
    if backend not in _BACKENDS:
        raise ConfigError(
            f"executor 'local': backend must be one of {', '.join(_BACKENDS)}, got {backend!r}"
        )
    per_job = options.get("tasks_per_job", 1)
    if not isinstance(per_job, int) or isinstance(per_job, bool) or per_job < 1:
        raise ConfigError(
            f"executor 'local': tasks_per_job must be a positive integer, got {per_job!r}"
        )
    return LocalExecutor(n_jobs=n_jobs, backend=backend, tasks_per_job=per_job)


#: The executors flexlock-cli provides, by name (also registered as entry points).
BUILTIN_EXECUTORS: dict[str, ExecutorFactory] = {
    "serial": serial,
    "local": local,
}
