"""End to end: `python process.py --tasks ... --slurm_config slurm.yaml` on the local cluster."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from flexlock.core import load
from tests._helpers import git

pytestmark = [pytest.mark.slurm]

SCRIPT = """\
import attrs
from flexlock.cli import clicfg


@attrs.define
class Config:
    param: int = 0
    save_dir: str = "results/process"


@clicfg
def main(cfg: Config) -> None:
    if cfg.param == 99:
        raise ValueError("param 99 is cursed")
    print(f"param={cfg.param}")


if __name__ == "__main__":
    main()
"""


@pytest.fixture
def project(slurm_cluster: Path, git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A committed script in a git repo that ignores its results, as a user would set it up."""
    (git_repo / "process.py").write_text(SCRIPT)
    (git_repo / ".gitignore").write_text("results/\n")
    (git_repo / "slurm.yaml").write_text("time: 5\npoll_interval_s: 2\n")
    git(git_repo, "add", ".")
    git(git_repo, "commit", "-q", "-m", "process")
    monkeypatch.chdir(git_repo)
    return git_repo


def _run(project: Path, params: list[int], *extra: str) -> subprocess.CompletedProcess[str]:
    (project / "tasks.txt").write_text("".join(f"{param}\n" for param in params))
    command = [sys.executable, "process.py", "--tasks", "tasks.txt", "--task_to", "param"]
    return subprocess.run(
        [*command, "--slurm_config", "slurm.yaml", *extra],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )


@pytest.mark.timeout(160)
def test_task_list_runs_as_one_array_with_ids_in_each_sheet(project: Path) -> None:
    completed = _run(project, list(range(6)))

    assert completed.returncode == 0, completed.stderr
    sheets = [load(project / "results" / "process" / f"param={p}" / "run.lock") for p in range(6)]
    assert [sheet.status for sheet in sheets] == ["succeeded"] * 6
    scheduler = [sheet.env.scheduler for sheet in sheets if sheet.env]
    assert len({ids["SLURM_ARRAY_JOB_ID"] for ids in scheduler}) == 1
    assert [str(p) for p in range(6)] == [ids["SLURM_ARRAY_TASK_ID"] for ids in scheduler]


@pytest.mark.timeout(160)
def test_sheet_records_the_committed_code_the_job_ran(project: Path) -> None:
    (project / "tasks.txt").write_text("1\n2\n")
    git(project, "add", "tasks.txt")
    git(project, "commit", "-q", "-m", "tasks")
    completed = _run(project, [1, 2])

    assert completed.returncode == 0, completed.stderr
    sheet = load(project / "results" / "process" / "param=1" / "run.lock")
    (record,) = sheet.code.values()
    assert (git(project, "rev-parse", "HEAD"), False) == (record.commit, record.dirty)


@pytest.mark.timeout(300)
def test_resubmission_skips_succeeded_tasks(project: Path) -> None:
    first = _run(project, [0, 1, 2])
    second = _run(project, [0, 1, 2])

    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert "3 of 3 tasks already done, skipped" in second.stderr
    assert "[slurm] submitted" not in second.stderr


@pytest.mark.timeout(300)
def test_resubmission_sends_only_the_failed_task(project: Path) -> None:
    first = _run(project, [0, 99])
    second = _run(project, [0, 99])

    assert (first.returncode, second.returncode) == (1, 1)
    assert "[slurm] submitted 1 task(s)" in second.stderr


@pytest.mark.timeout(160)
def test_failed_task_reports_node_traceback_and_log_path(project: Path) -> None:
    completed = _run(project, [0, 99])

    assert completed.returncode == 1
    assert "ValueError: param 99 is cursed" in completed.stderr
    assert "slurm-logs/" in completed.stderr
    assert load(project / "results" / "process" / "param=99" / "run.lock").status == "failed"


@pytest.mark.timeout(160)
def test_no_wait_returns_before_the_tasks_finish_and_they_finish(project: Path) -> None:
    completed = _run(project, [4, 5], "--no_wait")

    assert completed.returncode == 0, completed.stderr
    assert "scancel" in completed.stderr
    sheets = [project / "results" / "process" / f"param={p}" / "run.lock" for p in (4, 5)]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if all(path.exists() and load(path).status == "succeeded" for path in sheets):
            break
        time.sleep(1)
    assert [load(path).status for path in sheets] == ["succeeded"] * 2


@pytest.mark.timeout(60)
def test_unknown_slurm_yaml_key_exits_2_and_submits_nothing(project: Path) -> None:
    (project / "slurm.yaml").write_text("time: 5\npartiton: debug\n")
    completed = _run(project, [0])

    assert completed.returncode == 2
    assert "slurm.yaml:2: " in completed.stderr  # the file and line of the bad key
    assert "unknown key 'partiton' (did you mean 'partition'?)" in completed.stderr
    assert not (project / "slurm-logs").exists()


@pytest.mark.timeout(160)
def test_code_edited_while_queued_is_reported_and_recorded(project: Path) -> None:
    (project / "slurm.yaml").write_text("time: 5\nadditional_parameters: {hold: true}\n")
    (project / "tasks.txt").write_text("1\n2\n")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "held jobs")
    command = [sys.executable, "process.py", "--tasks", "tasks.txt", "--task_to", "param"]
    process = subprocess.Popen(
        [*command, "--slurm_config", "slurm.yaml"], cwd=project, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    lines = []
    for line in process.stderr:  # until the (held) array is queued
        lines.append(line)
        if line.startswith("[slurm] submitted"):
            break
    array_id = lines[-1].split("as job(s) ")[1].split(";")[0]
    with (project / "process.py").open("a") as script:
        script.write("# edited while the jobs were queued\n")
    subprocess.run(["scontrol", "release", array_id], check=True, timeout=30)
    stderr = "".join(lines) + process.stderr.read()
    process.wait(timeout=120)

    assert process.returncode == 0, stderr
    assert "ran code that changed after submission (process.py)" in stderr
    record = next(
        iter(load(project / "results" / "process" / "param=1" / "run.lock").code.values())
    )
    assert (record.dirty, list(record.changes)) == (True, [" M process.py"])
