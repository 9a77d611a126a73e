"""The `slurm` executor: a task list becomes Slurm job arrays through submitit.

`SlurmExecutor` ties the steps together: check the request and submit one
`sbatch` per array (`_submit`), then either return at once (`no_wait`) or wait,
yielding each task's result as it finishes, with a live pending/running/done/failed
line on a terminal (`_wait`), warning when a job ran code that changed while it
was queued (`_code_changes`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TextIO

from flexlock.cli import Task, TaskResult, TaskRunner
from flexlock.slurm import _submit, _wait
from flexlock.slurm._code_changes import SubmittedCode
from flexlock.slurm._config import SlurmConfig, slurm_config
from flexlock.slurm._node import MainModule, NodeCall, pickle_runner
from flexlock.slurm._sheets import sweep_statuses
from flexlock.slurm._submit import Submission

__all__ = ["SlurmExecutor", "Submission", "slurm_executor"]


def slurm_executor(options: Mapping[str, Any]) -> SlurmExecutor:
    """Build the `slurm` executor from the parsed `slurm.yaml` (entry point `flexlock.executors`).

    Raises:
        ConfigError: an unknown key or a bad value (exit code 2), before anything is submitted.
    """
    return SlurmExecutor(slurm_config(options))


class SlurmExecutor:
    """Run flexlock tasks as Slurm job arrays (see the module docstring)."""

    #: This executor prints its own pending/running/done/failed line on a terminal.
    draws_progress = True

    def __init__(self, config: SlurmConfig, *, stream: TextIO | None = None) -> None:
        self.config = config
        self._stream = stream
        # The submitting script's code at the first submission, to tell when a job
        # ran code that changed while it was queued.
        self._submitted: SubmittedCode | None = None
        self._array_limit: int | None = None  # cluster facts, asked once per executor

    @property
    def stream(self) -> TextIO:
        """Where progress and job ids are printed (stderr unless given)."""
        return self._stream or sys.stderr

    @property
    def n_jobs(self) -> int:
        """How many tasks of an array run at once: `array_parallelism`, else unknown (1)."""
        return self.config.array_parallelism or 1

    def check_request(self) -> None:
        """Refuse a request no node of the partition can satisfy, before submitting.

        Slurm would otherwise queue it forever (unless the cluster sets
        EnforcePartLimits); sbatch's own refusals are reported by `submit`.

        Raises:
            ConfigError: Slurm is not installed here, or the request exceeds every node.
        """
        _submit.check_request(self.config)

    def submit(self, run_task: TaskRunner, tasks: Sequence[Task]) -> list[Submission]:
        """Submit `tasks` as job arrays (one sbatch per array) and return one `Submission` each.

        Raises:
            ConfigError: the request is impossible or sbatch refused it (nothing was
                submitted, or the message lists what was and how to cancel it).
        """
        if self._array_limit is None:
            self.check_request()
            self._array_limit = _submit.cluster_array_limit()
        payload, needs_main = pickle_runner(run_task)
        main = MainModule.capture(reimport=needs_main)
        if self._submitted is None:
            self._submitted = SubmittedCode.capture(main.path)
        self._submitted.add_tasks(tasks)
        call = NodeCall(
            payload=payload,
            main=main,
            max_requeue=self.config.max_requeue,
            time_limit_min=self.config.time,
        )
        return _submit.submit(self.config, call, tasks, array_limit=self._array_limit)

    def run(self, run_task: TaskRunner, tasks: Sequence[Task]) -> Iterator[TaskResult]:
        """Submit `tasks`; unless `no_wait`, wait and yield each result as it finishes."""
        if not tasks:
            return
        submissions = self.submit(run_task, tasks)
        _submit.announce(submissions, self.config, self.stream)
        if self.config.no_wait:
            return
        yield from self.wait(submissions)

    def statuses(self, save_dirs: Sequence[str]) -> dict[str, str]:
        """Return {save_dir: sheet status}; sheets of jobs Slurm calls dead are failed first.

        One `squeue` (and `sacct` for jobs squeue forgot) for all the queued and
        running sheets; a task list calls it to never resubmit a task in flight.
        """
        return sweep_statuses(save_dirs)

    def wait(self, submissions: Sequence[Submission]) -> Iterator[TaskResult]:
        """Yield a `TaskResult` per submission as each job finishes (any order)."""
        return _wait.wait(
            submissions,
            code=self._submitted,
            poll_interval_s=self.config.poll_interval_s,
            stream=self.stream,
        )
