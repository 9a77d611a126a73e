"""`flexlock status`: the example pipeline's runs, which are stale after a change, and why."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests._helpers import REPO_ROOT
from tests.cli._inspect_helpers import flexlock, flexlock_subprocess, write_sheet

pytestmark = pytest.mark.slow  # each module runs the example pipeline

TRAIN = [f"results/train/optim.lr={lr}" for lr in ("0.01", "0.05", "0.1", "0.3")]
ALL_RUNS = ["results/prepare", *TRAIN, "results/evaluate"]

_GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def run_stage(work: Path, *argv: str) -> None:
    """Run one script of the example pipeline in `work`, as the demo does."""
    result = subprocess.run(
        [sys.executable, *argv],
        cwd=work,
        env={**os.environ, **_GIT_ENV},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert 0 == result.returncode, result.stdout + result.stderr


def build_pipeline(work: Path, lrs: str = "0.01\n0.05\n0.1\n0.3\n") -> Path:
    """Copy examples/pipeline into its own git repo at `work` and run its three stages."""
    shutil.copytree(
        REPO_ROOT / "examples" / "pipeline",
        work,
        ignore=shutil.ignore_patterns("results", "mlruns", "mlflow.db", "__pycache__"),
    )
    (work / ".gitignore").write_text("results/\n__pycache__/\n")
    (work / "conf" / "lrs.txt").write_text(lrs)
    env = {**os.environ, **_GIT_ENV, "GIT_CONFIG_GLOBAL": os.devnull}
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "pipeline"]):
        subprocess.run(["git", *args], cwd=work, env=env, check=True, capture_output=True)
    conf = ["--config", "conf/pipeline.yml", "--experiment"]
    run_stage(work, "prepare.py", *conf, "prepare")
    run_stage(work, "train.py", *conf, "train", "--tasks", "conf/lrs.txt", "--task_to", "optim.lr")
    run_stage(work, "evaluate.py", *conf, "evaluate")
    return work


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_pipeline(tmp_path_factory.mktemp("status") / "pipeline")


@pytest.fixture
def pipeline(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the finished pipeline (a project moved as a whole), as the cwd."""
    work = tmp_path / "pipeline"
    shutil.copytree(built, work, symlinks=True)
    monkeypatch.chdir(work)
    return work


def status_json(capsys: Any, *argv: str) -> tuple[int, dict[str, dict[str, Any]]]:
    code, out, _ = flexlock(capsys, "status", "--json", *argv)
    states = json.loads(out)
    return code, {os.path.relpath(state["run_dir"]): state for state in states}


def table(out: str) -> dict[str, tuple[str, str]]:
    """Return {run: (state, why)} from the table `flexlock status` prints."""
    rows = [re.match(r"(up to date|\w+) +(\S+) *(.*)", line) for line in out.splitlines()[1:-1]]
    return {row[2]: (row[1], row[3]) for row in rows if row is not None}


def reasons(state: dict[str, Any]) -> list[tuple[str, str]]:
    return [(reason["kind"], reason["subject"]) for reason in state["reasons"]]


def test_a_finished_pipeline_is_up_to_date_in_lineage_order(pipeline: Path, capsys: Any) -> None:
    code, out, _ = flexlock(capsys, "status", "results")
    lines = out.splitlines()
    assert 0 == code
    assert ["state", "run", "why"] == lines[0].split()
    listed = list(table(out))
    assert ("results/prepare", "results/evaluate") == (listed[0], listed[-1])
    assert sorted(ALL_RUNS) == sorted(listed)
    assert {("up to date", "")} == set(table(out).values())
    assert "6 runs: 6 up to date" == lines[-1]


def test_rerunning_prepare_makes_exactly_train_and_evaluate_stale(
    pipeline: Path, capsys: Any
) -> None:
    run_stage(
        pipeline, "prepare.py", "--config", "conf/pipeline.yml", "--experiment", "prepare",
        "-o", "noise", "0.4",
    )  # fmt: skip
    code, states = status_json(capsys, "results")
    assert 3 == code
    stale = sorted(run for run, state in states.items() if state["state"] == "stale")
    assert sorted([*TRAIN, "results/evaluate"]) == stale
    assert "up to date" == states["results/prepare"]["state"]
    for run in TRAIN:
        assert [
            ("data changed", "results/prepare/data.csv"),
            ("upstream re-run", "results/prepare"),
        ] == reasons(states[run])
    # evaluate's own inputs are intact: it is stale because what it read will change
    assert sorted(("upstream stale", run) for run in TRAIN) == sorted(
        reasons(states["results/evaluate"])
    )


def test_editing_the_prepared_data_names_the_data_not_the_upstream_run(
    pipeline: Path, capsys: Any
) -> None:
    with (pipeline / "results/prepare/data.csv").open("a") as handle:
        handle.write("0.5,1.5\n")
    code, out, _ = flexlock(capsys, "status", "results")
    assert 3 == code
    rows = table(out)
    assert ("up to date", "") == rows["results/prepare"]
    for run in TRAIN:
        assert ("stale", "data changed: results/prepare/data.csv") == rows[run]
    assert (
        "stale",
        "upstream stale: results/train/optim.lr=0.01, results/train/optim.lr=0.05 (+2 more)",
    ) == rows["results/evaluate"]
    assert out.splitlines()[-1].startswith("6 runs: 1 up to date, 5 stale")


def test_a_code_change_names_the_repo_and_file_for_every_run(pipeline: Path, capsys: Any) -> None:
    script = pipeline / "train.py"
    script.write_text(script.read_text() + "\n# tuned\n")
    code, states = status_json(capsys, "results")
    assert 3 == code
    assert dict.fromkeys(ALL_RUNS, "stale") == {run: s["state"] for run, s in states.items()}
    for state in states.values():
        code_reasons = [r for r in state["reasons"] if r["kind"] == "code changed"]
        assert [{"kind": "code changed", "subject": ".", "detail": "train.py"}] == code_reasons


def test_state_filter_shows_only_those_runs_and_keeps_the_exit_code(
    pipeline: Path, capsys: Any
) -> None:
    (pipeline / "results/prepare/data.csv").write_text("x,y\n")
    code, out, _ = flexlock(capsys, "status", "results", "--state", "up to date")
    assert (3, ["results/prepare"]) == (code, list(table(out)))
    code, _, err = flexlock(capsys, "status", "results", "--state", "old")
    assert 2 == code
    assert "--state 'old': not a state" in err


def test_failed_and_invalid_runs_and_what_they_feed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "raw.csv"
    data.write_text("a\n")
    Path("runs/a").mkdir(parents=True)
    write_sheet(Path("runs/a"), config={"step": "a"}, data=[Path("raw.csv")])
    Path("runs/b").mkdir()
    write_sheet(Path("runs/b"), config={"step": "b"}, prevs=[Path("runs/a")])
    Path("runs/c").mkdir()
    (Path("runs/c") / "run.lock").write_text("flexlock: 1\nid: [not, an, id]\n")
    code, states = status_json(capsys, "runs")
    assert 3 == code  # the unreadable sheet of runs/c cannot be judged: it must run again
    assert {"runs/a": "up to date", "runs/b": "up to date", "runs/c": "invalid"} == {
        run: state["state"] for run, state in states.items()
    }
    # runs/a is re-run and fails: the sheet runs/b consumed is replaced
    write_sheet(Path("runs/a"), config={"step": "a"}, data=[Path("raw.csv")], status="failed")
    code, states = status_json(capsys, "runs")
    assert ("failed", [("upstream re-run", "runs/a")]) == (
        states["runs/a"]["state"],
        reasons(states["runs/b"]),
    )
    assert "now failed" == states["runs/b"]["reasons"][0]["detail"]


def test_a_missing_directory_is_a_usage_error(tmp_path: Path, capsys: Any) -> None:
    code, _, err = flexlock(capsys, "status", str(tmp_path / "nowhere"))
    assert 2 == code
    assert "nowhere: no such directory" in err


def _git_logger(bin_dir: Path, log: Path) -> dict[str, str]:
    """Put a `git` first on PATH that logs each call, then runs the real git."""
    real = shutil.which("git")
    assert real is not None
    bin_dir.mkdir()
    wrapper = bin_dir / "git"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


@pytest.mark.parametrize("lrs", [2, 12])
def test_git_runs_a_fixed_number_of_times_however_many_runs(tmp_path: Path, lrs: int) -> None:
    work = build_pipeline(
        tmp_path / "pipeline", "".join(f"0.{index + 1:03d}\n" for index in range(lrs))
    )
    log = tmp_path / "git.log"
    env = _git_logger(tmp_path / "bin", log)
    (work / "train.py").write_text((work / "train.py").read_text() + "# edited\n")
    result = flexlock_subprocess("status", "results", cwd=work, env=env)
    assert 3 == result.returncode, result.stderr
    assert result.stdout.count("code changed: . (train.py)") == lrs + 2
    calls = log.read_text().splitlines()
    # one capture of the repository and one diff of the two trees, not one per run
    assert len(calls) <= 12, calls
    assert 1 == sum(" diff-tree " in f" {call} " for call in calls)


def test_a_second_call_in_one_process_sees_code_edited_in_between(
    pipeline: Path, capsys: Any
) -> None:
    assert 0 == flexlock(capsys, "status", "results")[0]
    (pipeline / "evaluate.py").write_text((pipeline / "evaluate.py").read_text() + "# v2\n")
    code, states = status_json(capsys, "results")
    assert 3 == code
    assert ("code changed", ".") == reasons(states["results/prepare"])[0]
