"""The slurm executor against the real local cluster: arrays, failures, kills, refusals.

Every test waits through pytest-timeout, so a job that never finishes fails
the test instead of hanging the suite.
"""

from __future__ import annotations

import io
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from flexlock.cli import Task, TaskResult, TaskRunner
from flexlock.core import ConfigError, load
from flexlock.slurm import SlurmExecutor, slurm_config
from tests.slurm import tasks as runners

pytestmark = [pytest.mark.slurm]


def _tasks(root: Path, count: int) -> list[Task]:
    return [
        Task(
            index=index,
            label=f"param={index}",
            overrides=(("param", index),),
            source=f"tasks.txt:{index + 1}",
            save_dir=str(root / "results" / f"param={index}"),
        )
        for index in range(count)
    ]


def _running(sheet: Path) -> bool:
    return sheet.exists() and load(sheet).status == "running"


def _executor(**options: object) -> tuple[SlurmExecutor, io.StringIO]:
    stream = io.StringIO()
    config = slurm_config({"time": 5, "poll_interval_s": 2, **options})
    return SlurmExecutor(config, stream=stream), stream


def _run(executor: SlurmExecutor, runner: TaskRunner, tasks: Sequence[Task]) -> list[TaskResult]:
    return sorted(executor.run(runner, tasks), key=lambda result: result.task.index)


@pytest.mark.timeout(120)
def test_six_tasks_run_as_one_array_and_write_six_sheets(slurm_cluster: Path) -> None:
    executor, _ = _executor()
    results = _run(executor, runners.succeed, _tasks(slurm_cluster, 6))

    assert [result.status for result in results] == ["succeeded"] * 6
    sheets = [load(slurm_cluster / "results" / f"param={i}" / "run.lock") for i in range(6)]
    assert [sheet.status for sheet in sheets] == ["succeeded"] * 6
    array_jobs = {sheet.env.scheduler["SLURM_ARRAY_JOB_ID"] for sheet in sheets if sheet.env}
    array_tasks = {sheet.env.scheduler["SLURM_ARRAY_TASK_ID"] for sheet in sheets if sheet.env}
    assert len(array_jobs) == 1
    assert {str(i) for i in range(6)} == array_tasks


@pytest.mark.timeout(120)
def test_result_details_name_each_array_task(slurm_cluster: Path) -> None:
    executor, _ = _executor()
    results = _run(executor, runners.succeed, _tasks(slurm_cluster, 2))
    array_id = results[0].details["array_job_id"]

    assert [f"{array_id}_0", f"{array_id}_1"] == [result.details["job_id"] for result in results]


@pytest.mark.timeout(120)
def test_array_over_the_size_limit_is_split_into_several_sbatch(slurm_cluster: Path) -> None:
    executor, stream = _executor(max_array_size=4)
    results = _run(executor, runners.succeed, _tasks(slurm_cluster, 6))

    assert len({result.details["array_job_id"] for result in results}) == 2
    assert [result.details["array_task_id"] for result in results] == ["0", "1", "2", "3", "0", "1"]
    assert "submitted 6 task(s) as job(s)" in stream.getvalue()


@pytest.mark.timeout(120)
def test_logs_are_linked_from_each_save_dir(slurm_cluster: Path) -> None:
    executor, _ = _executor()
    (result,) = _run(executor, runners.fail_with_exception, _tasks(slurm_cluster, 1))
    save_dir = slurm_cluster / "results" / "param=0"

    assert result.log_paths == (
        str((save_dir / "slurm.out").resolve()),
        str((save_dir / "slurm.err").resolve()),
    )
    assert "about to fail" in (save_dir / "slurm.out").read_text()


@pytest.mark.timeout(120)
def test_exception_in_task_is_reported_with_node_traceback(slurm_cluster: Path) -> None:
    executor, _ = _executor()
    (result,) = _run(executor, runners.fail_with_exception, _tasks(slurm_cluster, 1))

    assert result.status == "failed"
    assert "ZeroDivisionError: division by zero" in (result.error or "")
    assert "_divide_by_zero" in (result.error or "")
    sheet = load(slurm_cluster / "results" / "param=0" / "run.lock")
    assert (
        sheet.status,
        sheet.error.type if sheet.error else None,
    ) == ("failed", "ZeroDivisionError")


@pytest.mark.timeout(120)
def test_runner_crash_on_node_is_reported_with_traceback_and_logs(slurm_cluster: Path) -> None:
    executor, _ = _executor()
    (result,) = _run(executor, runners.crash_outside_task, _tasks(slurm_cluster, 1))

    assert result.status == "failed"
    assert "RuntimeError: runner broken for param=0" in (result.error or "")
    assert all(path.endswith(("_log.out", "_log.err")) for path in result.log_paths)


@pytest.mark.timeout(150)
def test_cancelled_job_is_failed_with_state_cancelled(slurm_cluster: Path) -> None:
    executor, _ = _executor()
    tasks = _tasks(slurm_cluster, 1)
    submissions = executor.submit(runners.sleep_forever, tasks)
    sheet = slurm_cluster / "results" / "param=0" / "run.lock"
    deadline = time.monotonic() + 60
    while not _running(sheet) and time.monotonic() < deadline:  # queued until the job starts
        time.sleep(0.5)
    subprocess.run(["scancel", submissions[0].job_id], check=True, timeout=30)
    (result,) = list(executor.wait(submissions))

    assert (result.status, result.details.get("state")) == ("failed", "CANCELLED")
    assert "Slurm state CANCELLED" in (result.error or "")
    assert load(sheet).status == "failed"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_time_limit_is_reported_as_timeout(slurm_cluster: Path) -> None:
    # 1 minute is Slurm's smallest limit; slurmctld enforces it within ~30 s after.
    executor, _ = _executor(time=1)
    (result,) = _run(executor, runners.sleep_forever, _tasks(slurm_cluster, 1))

    assert (result.status, result.details.get("state")) == ("failed", "TIMEOUT"), result
    assert "Slurm state TIMEOUT" in (result.error or "")
    sheet = load(slurm_cluster / "results" / "param=0" / "run.lock")
    assert sheet.status == "failed"


@pytest.mark.timeout(60)
def test_more_cpus_than_the_node_has_is_an_error_before_submission(slurm_cluster: Path) -> None:
    executor, _ = _executor(cpus_per_task=512)
    with pytest.raises(
        ConfigError, match=r"cpus_per_task=512 is more than any node of partition 'debug' has"
    ):
        executor.submit(runners.succeed, _tasks(slurm_cluster, 2))
    assert not (slurm_cluster / "slurm-logs").exists()


@pytest.mark.timeout(60)
def test_unknown_partition_is_an_error_listing_partitions(slurm_cluster: Path) -> None:
    executor, _ = _executor(partition="gpu-nope")
    with pytest.raises(
        ConfigError, match=r"partition='gpu-nope' does not exist on this cluster; partitions: debug"
    ):
        executor.submit(runners.succeed, _tasks(slurm_cluster, 1))


@pytest.mark.timeout(60)
def test_request_sbatch_refuses_is_an_error_quoting_sbatch(slurm_cluster: Path) -> None:
    executor, _ = _executor(gpus_per_node=1)  # the node has no GPU (no gres)
    with pytest.raises(
        ConfigError, match=r"Slurm refused the job: sbatch: error: Invalid generic resource"
    ):
        executor.submit(runners.succeed, _tasks(slurm_cluster, 2))


@pytest.mark.timeout(60)
def test_sbatch_script_carries_the_configured_options(slurm_cluster: Path) -> None:
    executor, _ = _executor(
        time="00:03:00",
        cpus_per_task=2,
        mem_gb=0.5,
        array_parallelism=1,
        job_name="sweep",
        no_wait=True,
    )
    submissions = executor.submit(runners.succeed, _tasks(slurm_cluster, 2))
    array_id = submissions[0].job_id.split("_")[0]
    script = (slurm_cluster / "slurm-logs" / array_id / f"{array_id}_submission.sh").read_text()

    expected = {
        "#SBATCH --time=3",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --mem=512MB",
        "#SBATCH --array=0-1%1",
        "#SBATCH --job-name=sweep",
    }
    assert expected <= set(script.splitlines())
    list(executor.wait(submissions))


@pytest.mark.timeout(60)
def test_no_wait_returns_at_once_printing_how_to_follow(slurm_cluster: Path) -> None:
    executor, stream = _executor(no_wait=True)
    results = list(executor.run(runners.succeed, _tasks(slurm_cluster, 3)))
    array_id = stream.getvalue().split("as job(s) ")[1].split(";")[0]

    assert results == []
    assert f"squeue -j {array_id}" in stream.getvalue()
    assert f"scancel {array_id}" in stream.getvalue()
    subprocess.run(["scancel", array_id], check=True, timeout=30)


@pytest.mark.timeout(120)
def test_closing_the_results_early_cancels_unfinished_jobs(slurm_cluster: Path) -> None:
    from flexlock.slurm._cluster import job_states

    executor, stream = _executor()
    tasks = _tasks(slurm_cluster, 2)
    submissions = executor.submit(runners.sleep_forever, tasks[1:]) + executor.submit(
        runners.succeed, tasks[:1]
    )
    results = executor.wait(submissions)
    first = next(results)
    results.close()  # what the CLI does on --fail_fast
    sleeper = submissions[0].job_id
    deadline = time.monotonic() + 60
    while job_states([sleeper]).get(sleeper) != "CANCELLED" and time.monotonic() < deadline:
        time.sleep(1)

    assert (first.status, job_states([sleeper]).get(sleeper)) == ("succeeded", "CANCELLED")
    assert f"scancel {sleeper}" in stream.getvalue()


@pytest.mark.timeout(150)
def test_job_killed_outright_is_failed_and_its_sheet_finalised(slurm_cluster: Path) -> None:
    import json
    import os
    import signal

    executor, _ = _executor()
    submissions = executor.submit(runners.sleep_forever, _tasks(slurm_cluster, 1))
    save_dir = slurm_cluster / "results" / "param=0"
    deadline = time.monotonic() + 60
    while not _running(save_dir / "run.lock") and time.monotonic() < deadline:
        time.sleep(0.5)
    holder = json.loads((save_dir / ".flexlock" / "lock").read_text())
    os.kill(holder["pid"], signal.SIGKILL)  # what the out-of-memory killer does: no cleanup
    (result,) = list(executor.wait(submissions))

    assert (result.status, result.details["state"]) == ("failed", "FAILED")
    assert "srun: error: localhost: task 0: Killed" in (result.error or "")
    sheet = load(save_dir / "run.lock")
    assert (sheet.status, sheet.error.type if sheet.error else None) == ("failed", "SlurmFailed")
