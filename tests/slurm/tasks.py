"""Picklable task runners for the executor tests, imported by reference on the Slurm node.

They follow the `run_task` contract of flexlock.cli: write the task's
sheet with the real `runlock()`, never raise for a failure of the task's own
code, return a `TaskResult`.
"""

from __future__ import annotations

import time
import traceback

from flexlock.cli import Task, TaskResult
from flexlock.core import runlock


def _config(task: Task) -> dict[str, object]:
    return {"save_dir": task.save_dir, **dict(task.overrides)}


def succeed(task: Task) -> TaskResult:
    """Write a succeeded sheet for `task`."""
    with runlock(_config(task), repos=[]):
        pass
    return TaskResult(task=task, status="succeeded")


def _run_guarded(task: Task, body: object) -> TaskResult:
    try:
        with runlock(_config(task), repos=[]):
            body()  # type: ignore[operator]
    except Exception as error:
        summary = "".join(traceback.format_exception(error)[-4:])
        return TaskResult(task=task, status="failed", error=summary)
    return TaskResult(task=task, status="succeeded")


def _divide_by_zero() -> None:
    print("about to fail", flush=True)
    print(1 / 0)


def fail_with_exception(task: Task) -> TaskResult:
    """Run a body that raises ZeroDivisionError; report it like the CLI runner does."""
    return _run_guarded(task, _divide_by_zero)


def _sleep_long() -> None:
    print("sleeping", flush=True)
    time.sleep(600)


def sleep_forever(task: Task) -> TaskResult:
    """Sleep far past any time limit the tests set."""
    return _run_guarded(task, _sleep_long)


def crash_outside_task(task: Task) -> TaskResult:
    """Break the runner contract: raise out of run_task (as a broken installation would)."""
    raise RuntimeError(f"runner broken for {task.label}")
