"""`tasks_per_job` for the local executor: joblib batches, every task still its own run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flexlock.cli._executors import local
from flexlock.core import ConfigError, load
from tests.cli.test_executors import SCRIPT


def test_batched_local_tasks_each_write_their_own_sheet(workdir: Path) -> None:
    (workdir / "process.py").write_text(textwrap.dedent(SCRIPT))
    (workdir / "tasks.txt").write_text("1\n2\n3\n4\n5\n6\n")
    (workdir / "local.yaml").write_text("n_jobs: 2\ntasks_per_job: 3\n")
    command = ["process.py", "--tasks", "tasks.txt", "--task_to", "param"]
    completed = subprocess.run(
        [sys.executable, *command, "--executor", "local", "--executor_config", "local.yaml"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )

    assert completed.returncode == 1  # param=3 raises
    statuses = {n: load(workdir / f"results/process/param={n}").status for n in range(1, 7)}
    assert statuses == {n: "failed" if n == 3 else "succeeded" for n in range(1, 7)}


def test_local_tasks_per_job_must_be_a_positive_integer() -> None:
    with pytest.raises(ConfigError, match="tasks_per_job must be a positive integer, got 0"):
        local({"tasks_per_job": 0})
