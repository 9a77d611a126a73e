"""The README's demo pipeline, end to end, in a temp copy: sheets, lineage, MLflow, resume."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flexlock.core import load
from tests._helpers import REPO_ROOT, git

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """Copy examples/pipeline into its own git repo and run the demo twice."""
    work = tmp_path_factory.mktemp("demo") / "pipeline"
    shutil.copytree(
        REPO_ROOT / "examples" / "pipeline",
        work,
        ignore=shutil.ignore_patterns("results", "mlruns", "mlflow.db", "__pycache__"),
    )
    env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "MLFLOW_TRACKING_URI": "",
        "GIT_CONFIG_GLOBAL": str(work.parent / "gitconfig"),
    }
    env.pop("MLFLOW_TRACKING_URI")
    (work / ".gitignore").write_text("results/\nmlruns/\nmlflow.db\n__pycache__/\n")
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "pipeline"]):
        subprocess.run(["git", *args], cwd=work, env=env, check=True, capture_output=True)
    runs = []
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "run_demo.py"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert 0 == result.returncode, result.stdout + result.stderr
        runs.append(result.stdout + result.stderr)
    return work, runs[0], runs[1]


def test_every_stage_writes_a_succeeded_sheet(demo: tuple[Path, str, str]) -> None:
    work, _, _ = demo
    sheets = sorted(
        p.parent.relative_to(work).as_posix()
        for p in (work / "results").rglob("run.lock")
        if ".flexlock" not in p.parts
    )
    assert [
        "results/evaluate",
        "results/prepare",
        "results/train/optim.lr=0.01",
        "results/train/optim.lr=0.05",
        "results/train/optim.lr=0.1",
        "results/train/optim.lr=0.3",
    ] == sheets
    assert {"succeeded"} == {load(work / s).status for s in sheets}


def test_lineage_links_evaluate_to_train_to_prepare(demo: tuple[Path, str, str]) -> None:
    work, _, _ = demo
    evaluate = load(work / "results/evaluate")
    prepare_id = load(work / "results/prepare").id
    assert 4 == len(evaluate.prevs)
    for prev in evaluate.prevs.values():
        assert [prepare_id] == [p.id for p in prev.lock.prevs.values()]
        assert ["results/prepare/data.csv"] == list(prev.lock.data)


def test_code_state_is_recorded_with_a_snapshot(demo: tuple[Path, str, str]) -> None:
    work, _, _ = demo
    sheet = load(work / "results/prepare")
    (repo,) = sheet.code.values()
    assert git(work, "rev-parse", "HEAD^{tree}") == repo.tree
    assert not repo.dirty


def test_second_run_skips_finished_stages_and_says_so(demo: tuple[Path, str, str]) -> None:
    _, first, second = demo
    assert "4 skipped" not in first
    assert "4 skipped" in second
    assert second.count("up to date") >= 2


def test_second_demo_logs_no_unchanged_run_to_mlflow(demo: tuple[Path, str, str]) -> None:
    # Issue 23: the demo re-logged all its runs on every invocation.
    _, first, second = demo
    assert "4/4 logged, 0 failed, 0 unchanged" in first
    assert "0/4 logged, 0 failed, 4 unchanged" in second


def test_mlflow_holds_one_active_run_per_train_dir(
    demo: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from flexlock.mlflow import active_runs

    work, _, _ = demo
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    assert 4 == len(active_runs())


def test_verify_and_show_pass_on_the_result(demo: tuple[Path, str, str]) -> None:
    work, first, _ = demo
    assert "results/prepare" in first  # the lineage tree printed by `flexlock show`
    result = subprocess.run(
        [sys.executable, "-m", "flexlock.cli._main", "verify", "results/evaluate"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    assert 0 == result.returncode, result.stdout + result.stderr


# Last: it edits log_runs.py, so the code no longer matches the recorded runs.
def test_relogging_after_changing_log_run_supersedes_the_old_logs(
    demo: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from flexlock.mlflow import active_run_for, runs_for

    work, _, _ = demo
    script = work / "log_runs.py"
    script.write_text(
        script.read_text().replace(
            'mlflow.log_metric("w", model["w"])',
            'mlflow.log_metric("w", model["w"])\n        mlflow.log_metric("b", model["b"])',
        )
    )
    train_dirs = sorted(str(p) for p in (work / "results/train").iterdir())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "flexlock.cli._main",
            "mlflow",
            "log",
            "log_runs.py:log_run",
            *train_dirs,
        ],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    assert 0 == result.returncode, result.stdout + result.stderr
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    for train_dir in train_dirs:
        runs = runs_for(train_dir)
        active = active_run_for(train_dir)
        assert active is not None
        # the demo's one log (its second run logged nothing) plus this one
        assert (2, runs[0].info.run_id) == (len(runs), active.info.run_id)
        assert "b" in active.data.metrics
