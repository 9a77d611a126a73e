"""The example pipeline's train stage on the local Slurm cluster, with its own conf/slurm.yaml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flexlock.core import load
from tests._helpers import REPO_ROOT, git

pytestmark = pytest.mark.slurm


def test_example_task_list_runs_on_slurm_with_the_shipped_slurm_yaml(slurm_cluster: Path) -> None:
    work = slurm_cluster / "pipeline"
    shutil.copytree(
        REPO_ROOT / "examples" / "pipeline",
        work,
        ignore=shutil.ignore_patterns("results", "mlruns", "mlflow.db", "__pycache__"),
    )
    (work / ".gitignore").write_text("results/\nmlruns/\nmlflow.db\n")
    git(work, "init", "-q", "-b", "main")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "pipeline")
    env = {**os.environ}
    subprocess.run(
        [sys.executable, "prepare.py"], cwd=work, env=env, check=True, capture_output=True
    )
    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            "--config",
            "conf/pipeline.yml",
            "--experiment",
            "train",
            "--tasks",
            "conf/lrs.txt",
            "--task_to",
            "optim.lr",
            "--slurm_config",
            "conf/slurm.yaml",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert 0 == result.returncode, result.stdout + result.stderr
    sheets = [load(p) for p in sorted((work / "results/train").glob("*/run.lock"))]
    assert 4 == len(sheets)
    assert {"succeeded"} == {s.status for s in sheets}
    assert all(s.env is not None and "SLURM_JOB_ID" in s.env.scheduler for s in sheets)
