"""The executor plugin protocol: how a task list is run (serially, on local cores, on Slurm, ...).

An executor is registered in the `flexlock.executors` entry-point group under
its name; the registered object is an `ExecutorFactory`. The CLI builds the
task list, validates every task, drops tasks that are already done, then calls
`factory(options)` and `executor.run(run_task, tasks)`.

- `options` is an `ExecutorOptions`: the mapping read from `--executor_config FILE`
  (or `--slurm_config FILE` for `slurm`) plus `n_jobs` when `--n_jobs` is given,
  with `where(key)` saying where each key came from (`slurm.yaml:3`, `--n_jobs`).
  The factory validates it and raises `flexlock.core.ConfigError` naming the
  bad key and its place before anything runs (exit code 2).
- `run_task` is a picklable callable that runs one task in the current process
  (it writes the task's run.lock, redirects output to the task's save_dir, and
  never raises for a failure of the user's code: it returns a failed
  `TaskResult`). Executors send it wherever the work happens.
- `run` yields one `TaskResult` per task as each finishes (any order), so the
  CLI can report failures as they happen. An executor that cannot get a result
  (a job killed by the scheduler) yields a failed result saying why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, Protocol

import attrs

__all__ = [
    "Executor",
    "ExecutorFactory",
    "ExecutorOptions",
    "ExecutorTraits",
    "Task",
    "TaskResult",
    "TaskRunner",
    "executor_traits",
]


@attrs.frozen
class Task:
    """One run of the decorated function with its own overrides."""

    index: int  # position in the task list, 0-based
    label: str  # short, filesystem-safe description, e.g. "param=3"
    overrides: tuple[tuple[str, Any], ...]  # dotted key -> value, applied after -o overrides
    source: str  # where it came from, e.g. "tasks.txt:3"
    save_dir: str | None = None  # resolved save_dir of this task, when the config has one


@attrs.frozen
class TaskResult:
    """How one task ended."""

    task: Task
    status: Literal["succeeded", "failed", "skipped"]
    error: str | None = None  # one-paragraph summary with the traceback's last frames
    log_paths: tuple[str, ...] = ()  # stdout/stderr files of the task
    details: Mapping[str, str] = attrs.field(factory=dict)  # executor-specific (job id, state, ...)


TaskRunner = Callable[[Task], TaskResult]
"""Runs one task in the current process; what an executor sends wherever the work happens."""


class Executor(Protocol):
    """Runs tasks somewhere and reports each result as it finishes.

    Besides `run`, the CLI reads two attributes, and only through
    `executor_traits`: an executor may leave either out and gets its default.

    - `draws_progress` (default False): the executor shows its own live line on
      the terminal (slurm's pending/running counts); the CLI then keeps its own
      progress line off, since two lines redrawn in place overwrite each other.
    - `n_jobs` (default 1): how many tasks run at once, for the "running" count
      and the ETA of the CLI's progress line.
    """

    @property
    def draws_progress(self) -> bool:
        """Whether the executor draws its own progress line (default False)."""
        ...

    @property
    def n_jobs(self) -> int:
        """How many tasks run at the same time (default 1)."""
        ...

    def run(self, run_task: TaskRunner, tasks: Sequence[Task]) -> Iterator[TaskResult]:
        """Run every task with `run_task`, yielding results as they finish."""
        ...


class ExecutorOptions(dict[str, Any]):
    """The options an executor factory gets: a plain dict, plus where each key came from.

    `source` is the options file (None without one); `lines` maps its keys to their
    1-based lines. Keys set by flags (`n_jobs`, `no_wait`) have no line.
    """

    def __init__(
        self,
        options: Mapping[str, Any] = (),  # type: ignore[assignment]
        *,
        source: str | None = None,
        lines: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(options)
        self.source = source
        self.lines: dict[str, int] = dict(lines or {})

    def where(self, key: str) -> str:
        """Return `file:line` (or `file`) for a key of the options file, `--key` for a flag."""
        if key in self.lines and self.source:
            return f"{self.source}:{self.lines[key]}"
        if self.source and key not in ("n_jobs", "no_wait"):
            return self.source
        return f"--{key}"


class ExecutorFactory(Protocol):
    """What a `flexlock.executors` entry point names: builds a configured executor."""

    def __call__(self, options: Mapping[str, Any]) -> Executor:
        """Validate `options` (ConfigError naming the key on bad input) and return an executor."""
        ...


@attrs.frozen
class ExecutorTraits:
    """The attributes of an executor the CLI reads, with the defaults applied."""

    draws_progress: bool = False
    n_jobs: int = 1


def executor_traits(executor: Executor) -> ExecutorTraits:
    """Read `draws_progress` and `n_jobs` of `executor`, defaulting those it leaves out.

    Executors written against the first version of this contract declare only
    `run`; they keep working, with the defaults. A non-positive or non-integer
    `n_jobs` counts as 1.
    """
    draws = getattr(executor, "draws_progress", False)
    n_jobs = getattr(executor, "n_jobs", 1)
    usable = isinstance(n_jobs, int) and not isinstance(n_jobs, bool) and n_jobs > 0
    return ExecutorTraits(draws_progress=bool(draws), n_jobs=n_jobs if usable else 1)
