"""Executors: serial and local (joblib/loky) built-ins, option errors, a third-party plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from flexlock.cli import ExecutorOptions, Task
from flexlock.cli._executors import local, serial
from flexlock.core import ConfigError, load

SCRIPT = """
import os
import attrs
from flexlock.cli import clicfg

@attrs.define
class Config:
    param: int = 1
    save_dir: str = "results/process"

@clicfg
def main(cfg: Config) -> None:
    print("pid", os.getpid(), "param", cfg.param)
    with open("order.txt", "a") as handle:
        handle.write(f"{cfg.param}\\n")
    if cfg.param == 3:
        raise ValueError("three is bad")

if __name__ == "__main__":
    main(Config())
"""


@pytest.fixture
def script(workdir: Path) -> Path:
    path = workdir / "process.py"
    path.write_text(textwrap.dedent(SCRIPT))
    (workdir / "tasks.txt").write_text("1\n2\n4\n")
    return path


def run(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "process.py", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )


def test_local_executor_runs_a_script_function_on_loky_workers(script: Path, workdir: Path) -> None:
    result = run(workdir, "--tasks", "tasks.txt", "--task_to", "param", "--n_jobs", "2")
    assert 0 == result.returncode, result.stderr
    statuses = [load(workdir / f"results/process/param={n}").status for n in (1, 2, 4)]
    assert ["succeeded"] * 3 == statuses


def test_local_executor_runs_tasks_outside_the_main_process(script: Path, workdir: Path) -> None:
    run(workdir, "--tasks", "tasks.txt", "--task_to", "param", "--n-jobs", "2")
    log = (workdir / "results/process/param=1/stdout.log").read_text()
    assert log.startswith("pid ")
    assert f"pid {os.getpid()} " not in log


def test_local_failure_exits_1_and_reports_task(script: Path, workdir: Path) -> None:
    (workdir / "tasks.txt").write_text("1\n3\n")
    result = run(workdir, "--tasks", "tasks.txt", "--task_to", "param", "--n_jobs", "2")
    assert (1, True) == (result.returncode, "task param=3 (tasks.txt:2) failed" in result.stderr)


def test_serial_rejects_no_wait() -> None:
    with pytest.raises(ConfigError, match="--no_wait needs an executor that submits jobs"):
        serial({"no_wait": True})


def test_local_rejects_unknown_option_naming_it() -> None:
    with pytest.raises(ConfigError, match="unknown option\\(s\\) gpus"):
        local({"gpus": 1})


def test_local_rejects_bad_backend() -> None:
    with pytest.raises(ConfigError, match="backend must be one of"):
        local({"backend": "dask"})


def test_serial_yields_results_in_order() -> None:
    tasks = [Task(index=i, label=str(i), overrides=(), source="t") for i in range(3)]

    def fake_runner(task: Task):  # type: ignore[no-untyped-def]
        from flexlock.cli import TaskResult

        return TaskResult(task=task, status="succeeded")

    results: Iterator[object] = serial({}).run(fake_runner, tasks)
    assert [0, 1, 2] == [r.task.index for r in results]  # type: ignore[attr-defined]


def test_unknown_executor_exits_2_listing_installed(script: Path, workdir: Path) -> None:
    result = run(workdir, "--tasks", "tasks.txt", "--task_to", "param", "--executor", "nope")
    assert (2, True) == (
        result.returncode,
        "installed: " in result.stderr and "local" in result.stderr,
    )


def test_executor_config_options_are_validated_before_running(script: Path, workdir: Path) -> None:
    (workdir / "local.yml").write_text("n_jobs: 2\ngpus: 1\n")
    result = run(
        workdir,
        "--tasks",
        "tasks.txt",
        "--task_to",
        "param",
        "--executor",
        "local",
        "--executor_config",
        "local.yml",
    )
    assert (2, False) == (result.returncode, (workdir / "results").exists())
    assert (
        "local.yml:2: executor 'local': unknown option(s) gpus; accepted: n_jobs, backend"
        in result.stderr
    )


def test_executor_options_say_where_each_key_came_from() -> None:
    options = ExecutorOptions({"n_jobs": 2, "gpus": 1}, source="run.yml", lines={"gpus": 3})
    assert ("run.yml:3", "--n_jobs") == (options.where("gpus"), options.where("n_jobs"))
    assert {"n_jobs": 2, "gpus": 1} == options  # still a plain mapping for the factory


def test_slurm_config_conflicts_with_other_executor(script: Path, workdir: Path) -> None:
    (workdir / "slurm.yml").write_text("{}\n")
    result = run(
        workdir,
        "--tasks",
        "tasks.txt",
        "--task_to",
        "param",
        "--executor",
        "local",
        "--slurm_config",
        "slurm.yml",
    )
    assert (2, True) == (
        result.returncode,
        "--slurm_config means --executor slurm" in result.stderr,
    )


def test_n_jobs_without_tasks_is_a_usage_error(script: Path, workdir: Path) -> None:
    result = run(workdir, "--n_jobs", "2")
    assert (2, True) == (result.returncode, "--tasks FILE" in result.stderr)


# -- a third-party executor distribution, built and installed for real -------------------------

PLUGIN_PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "flexlock-test-reverse-executor"
version = "0.0.1"

[project.entry-points."flexlock.executors"]
reverse = "flexlock_test_reverse:factory"
"""

PLUGIN_MODULE = '''
"""Runs tasks serially, last first; a stand-in for e.g. a PBS executor."""


class Reverse:
    def __init__(self, options):
        self.options = options

    def run(self, run_task, tasks):
        for task in reversed(tasks):
            yield run_task(task)


def factory(options):
    return Reverse(dict(options))
'''


@pytest.fixture(scope="module")
def reverse_executor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    source = tmp_path_factory.mktemp("plugin")
    (source / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    (source / "flexlock_test_reverse.py").write_text(PLUGIN_MODULE)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", str(source)], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(
            [*pip, "uninstall", "-y", "flexlock-test-reverse-executor"],
            check=True,
            capture_output=True,
        )


@pytest.mark.slow
def test_installed_third_party_executor_runs_tasks_from_the_cli(
    reverse_executor: None, script: Path, workdir: Path
) -> None:
    result = run(workdir, "--tasks", "tasks.txt", "--task_to", "param", "--executor", "reverse")
    assert (0, "4\n2\n1\n") == (result.returncode, (workdir / "order.txt").read_text())


# -- Ctrl-C on a local run ---------------------------------------------------------------------

SLOW_SCRIPT = """
import time
import attrs
from flexlock.cli import clicfg

@attrs.define
class Config:
    param: int = 1
    save_dir: str = "results/slow"

@clicfg
def main(cfg: Config) -> None:
    time.sleep(60)

if __name__ == "__main__":
    main(Config())
"""


def _statuses(workdir: Path) -> list[str]:
    statuses = []
    for path in sorted(workdir.glob("results/slow/*/run.lock")):
        try:
            statuses.append(load(path).status)
        except Exception:  # being replaced right now; read it on the next poll
            statuses.append("unreadable")
    return statuses


@pytest.mark.slow
def test_ctrl_c_leaves_no_sheet_running(workdir: Path) -> None:
    import signal
    import time

    (workdir / "process.py").write_text(textwrap.dedent(SLOW_SCRIPT))
    (workdir / "tasks.txt").write_text("1\n2\n3\n")
    # A handler, not SIG_IGN, while the child starts: exec resets a handler to the default
    # (as in a terminal) but keeps "ignored", which is how a background job of a
    # non-interactive shell (a CI script) would otherwise pass SIGINT down to the child.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "process.py",
                "--tasks",
                "tasks.txt",
                "--task_to",
                "param",
                "--n_jobs",
                "2",
            ],
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 120
    while _statuses(workdir).count("running") < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ["running", "running"] == _statuses(workdir)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground group
    _, err = process.communicate(timeout=120)
    assert (130, ["failed", "failed"]) == (process.returncode, _statuses(workdir)), err
