"""Sweeps at cluster scale on the real local cluster: packed elements, queued sheets, dead jobs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flexlock.core import RunLock, load
from flexlock.slurm._wait import poll_floor_s
from tests._helpers import git
from tests.slurm.test_cli import SCRIPT


@pytest.fixture
def project(slurm_cluster: Path, git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A committed script in a git repo that ignores its results."""
    (git_repo / "process.py").write_text(SCRIPT)
    (git_repo / ".gitignore").write_text("results/\n")
    git(git_repo, "add", ".")
    git(git_repo, "commit", "-q", "-m", "process")
    monkeypatch.chdir(git_repo)
    return git_repo


def _run(
    project: Path, params: list[int], slurm_yaml: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    (project / "slurm.yaml").write_text(slurm_yaml)
    (project / "tasks.txt").write_text("".join(f"{param}\n" for param in params))
    command = [sys.executable, "process.py", "--tasks", "tasks.txt", "--task_to", "param"]
    return subprocess.run(
        [*command, "--slurm_config", "slurm.yaml", *extra],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


def _sheets(project: Path, params: list[int]) -> list[RunLock]:
    return [load(project / "results" / "process" / f"param={p}") for p in params]


@pytest.mark.slurm
@pytest.mark.timeout(240)
def test_thirty_tasks_ten_per_job_run_in_three_elements_each_with_its_sheet(
    project: Path,
) -> None:
    completed = _run(project, list(range(30)), "time: 5\npoll_interval_s: 2\ntasks_per_job: 10\n")

    assert completed.returncode == 0, completed.stderr
    sheets = [load(project / "results" / "process" / f"param={p}") for p in range(30)]
    assert [sheet.status for sheet in sheets] == ["succeeded"] * 30
    elements = {
        (sheet.env.scheduler["SLURM_ARRAY_JOB_ID"], sheet.env.scheduler["SLURM_ARRAY_TASK_ID"])
        for sheet in sheets
        if sheet.env
    }
    assert len(elements) == 3


@pytest.mark.slurm
@pytest.mark.timeout(200)
def test_failing_task_of_a_packed_element_leaves_the_other_nine_succeeded(
    project: Path,
) -> None:
    params = [0, 1, 2, 3, 99, 5, 6, 7, 8, 9]
    completed = _run(project, params, "time: 5\npoll_interval_s: 2\ntasks_per_job: 10\n")

    assert completed.returncode == 1
    statuses = {p: load(project / "results" / "process" / f"param={p}").status for p in params}
    assert statuses == {p: "failed" if p == 99 else "succeeded" for p in params}
    assert "ValueError: param 99 is cursed" in completed.stderr


def _arrays(name: str) -> list[str]:
    output = subprocess.run(
        ["squeue", "--noheader", "--name", name, "--format=%F"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return sorted(set(output.split()))


@pytest.mark.slurm
@pytest.mark.timeout(120)
def test_no_wait_twice_while_queued_submits_one_array(project: Path) -> None:
    held = "time: 5\njob_name: twice\nadditional_parameters: {hold: true}\n"
    first = _run(project, [1, 2, 3], held, "--no_wait")
    second = _run(project, [1, 2, 3], held, "--no_wait")
    arrays = _arrays("twice")
    subprocess.run(["scancel", *arrays], check=False, timeout=30)

    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert len(arrays) == 1
    assert "flexlock: 3 queued, 0 running, 0 succeeded, 0 failed" in second.stderr
    assert "[slurm] submitted" not in second.stderr
    assert [sheet.status for sheet in _sheets(project, [1, 2, 3])] == ["queued"] * 3


@pytest.mark.slurm
@pytest.mark.timeout(120)
def test_scancel_of_a_queued_sweep_is_seen_as_failed_by_the_next_ls(project: Path) -> None:
    held = "time: 5\njob_name: cancelled\nadditional_parameters: {hold: true}\n"
    submitted = _run(project, [1, 2], held, "--no_wait")
    before = subprocess.run(
        ["flexlock", "ls", "results", "--status", "queued,running"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    subprocess.run(["scancel", *_arrays("cancelled")], check=True, timeout=30)
    after = subprocess.run(
        ["flexlock", "ls", "results", "--status", "failed"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert submitted.returncode == 0, submitted.stderr
    assert before.stdout.count("queued") == 2, before.stdout + before.stderr
    assert after.stdout.count("failed") == 2, after.stdout + after.stderr
    sheet = load(project / "results" / "process" / "param=1")
    assert (sheet.status, sheet.error.type if sheet.error else None) == (
        "failed",
        "SlurmCancelled",
    )


def test_polling_ten_thousand_tasks_never_asks_more_than_once_per_30_s() -> None:
    assert (poll_floor_s(10_000), poll_floor_s(100) < 1.0) == (30.0, True)


CHECKPOINTING = """\
import time
from pathlib import Path

import attrs
from flexlock.cli import clicfg
from flexlock.slurm import checkpoint_hook


@attrs.define
class Config:
    param: int = 0
    save_dir: str = "results/process"


@clicfg
def main(cfg: Config) -> None:
    state = Path(cfg.save_dir) / "state.txt"
    if state.exists():
        print("resumed from", state.read_text())
        return
    with checkpoint_hook(lambda: state.write_text("saved at the limit")):
        time.sleep(600)


if __name__ == "__main__":
    main()
"""


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.timeout(420)
def test_task_past_its_time_limit_is_requeued_once_and_finishes_from_its_checkpoint(
    project: Path,
) -> None:
    (project / "process.py").write_text(CHECKPOINTING)
    git(project, "commit", "-q", "-am", "checkpointing")
    completed = _run(project, [1], "time: 1\npoll_interval_s: 2\nmax_requeue: 1\n")

    assert completed.returncode == 0, completed.stderr
    sheet = load(project / "results" / "process")  # a single task keeps the save_dir
    assert sheet.status == "succeeded"
    assert [attempt.state for attempt in sheet.attempts] == ["TIMEOUT", "COMPLETED"]
    log = (project / "results" / "process" / "stdout.log").read_text()
    assert "resumed from saved at the limit" in log
