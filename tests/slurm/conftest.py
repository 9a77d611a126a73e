"""Fixtures for tests against the real single-node Slurm cluster (scripts/slurm-local/)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests._helpers import has_executable, require_service


def _cluster_answers() -> bool:
    if not os.environ.get("SLURM_CONF") or not has_executable("sinfo"):
        return False
    try:
        completed = subprocess.run(
            ["sinfo", "--noheader", "--format=%T"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return completed.returncode == 0 and bool(completed.stdout.strip())


@pytest.fixture(scope="session")
def _slurm_up() -> bool:
    return _cluster_answers()


@pytest.fixture
def slurm_cluster(_slurm_up: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Require a live Slurm cluster (SLURM_CONF set, `sinfo` answers); run from a shared dir.

    Returns the working directory of the test: submitit's logs go under it. It is
    `tmp_path`, which the local cluster's only node shares with the test process.
    """
    require_service(
        _slurm_up,
        "no Slurm cluster: run `bash scripts/slurm-local/start-slurm.sh` and "
        "`source /tmp/slurm-local/env.sh`",
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path
