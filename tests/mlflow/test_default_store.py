"""With no tracking URI at all, MLflow's own default store works (a fresh interpreter)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from tests._helpers import run_python

pytestmark = [pytest.mark.needs_mlflow, pytest.mark.slow]

SCRIPT = """
    import mlflow
    from pathlib import Path
    from flexlock.core import dump
    from flexlock.core import RunLock
    from flexlock.mlflow._lock import mlflow_lock
    from flexlock.mlflow._query import active_run_for

    save_dir = Path("results/train")
    save_dir.mkdir(parents=True)
    dump(RunLock(id="sha256:1", status="succeeded", created="t", config={"lr": 0.1}),
         save_dir / "run.lock")
    with mlflow_lock(save_dir) as run:
        mlflow.log_metric("acc", 0.5)
    found = active_run_for(save_dir)
    print(found.info.run_id == run.run_id, found.data.params, found.data.metrics)
"""


def test_logging_works_with_mlflows_default_local_store(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    result = run_python(textwrap.dedent(SCRIPT), cwd=tmp_path, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1] == "True {'lr': '0.1'} {'acc': 0.5}"
    # MLflow 3's default: ./mlflow.db beside the artifacts in ./mlruns.
    assert (tmp_path / "mlflow.db").is_file()
