"""Task lists: files, sweeps, validation, save_dir layout, resume, failures (serial executor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from flexlock.cli import clicfg
from flexlock.cli._tasks import task_label
from flexlock.core import clear_capture_cache, load

RAN: list[tuple[int, str]] = []


@attrs.define
class Config:
    param: int = 1
    name: str = "a"
    save_dir: str = "results/process"


@clicfg
def process(cfg: Config) -> None:
    RAN.append((cfg.param, cfg.name))
    print(f"output of {cfg.param}")
    if cfg.param == 3 and not Path("fixed").exists():
        raise ValueError("three is bad")
    if cfg.param == 99:
        raise KeyboardInterrupt


@attrs.define
class Templated:
    param: int = 1
    save_dir: str = "results/p${param}"


@clicfg
def templated(cfg: Templated) -> None:
    RAN.append((cfg.param, ""))


@attrs.define
class NoSaveDir:
    param: int = 1


@clicfg
def unrecorded(cfg: NoSaveDir) -> None:
    RAN.append((cfg.param, ""))


@pytest.fixture(autouse=True)
def _forget() -> None:
    RAN.clear()
    # rerun_reason caches repo captures per process: one taken by an earlier test of this
    # process is stale once the checkout holding these tests changed since.
    clear_capture_cache()


def params() -> list[int]:
    return sorted(param for param, _ in RAN)


def status(workdir: Path, directory: str) -> str:
    return load(workdir / directory / "run.lock").status


# -- reading task files ------------------------------------------------------------------------


def test_line_file_runs_one_task_per_value(write: Any) -> None:
    write("tasks.txt", "1\n2\n")
    assert 0 == process.cli(["--tasks", "tasks.txt", "--task_to", "param"])
    assert [1, 2] == params()


def test_comments_and_blank_lines_are_skipped(write: Any) -> None:
    write("tasks.txt", "# header\n1\n\n   \n# 7\n2\n")
    process.cli(["--tasks", "tasks.txt", "--task-to", "param"])
    assert [1, 2] == params()


def test_yaml_task_file_items_are_override_mappings(write: Any) -> None:
    write("tasks.yml", "- {param: 1, name: x}\n- param: 2\n  name: '012'\n")
    process.cli(["--tasks", "tasks.yml"])
    assert [(1, "x"), (2, "012")] == sorted(RAN)


def test_key_value_line_file_without_task_to(write: Any) -> None:
    write("tasks.txt", "param=1 name='a b'\nparam=2\n")
    process.cli(["--tasks", "tasks.txt"])
    assert [(1, "a b"), (2, "a")] == sorted(RAN)


def test_several_task_files_are_concatenated(write: Any) -> None:
    write("a.txt", "1\n")
    write("b.txt", "2\n")
    process.cli(["--tasks", "a.txt", "--tasks", "b.txt", "--task_to", "param"])
    assert [1, 2] == params()


def test_sweep_runs_the_cartesian_product(workdir: Path) -> None:
    process.cli(["--sweep", "param=1,2", "--sweep", "name=x,y"])
    assert [(1, "x"), (1, "y"), (2, "x"), (2, "y")] == sorted(RAN)


def test_task_values_apply_after_overrides(write: Any) -> None:
    write("tasks.txt", "1\n2\n")
    process.cli(["--tasks", "tasks.txt", "--task_to", "param", "-o", "name", "z"])
    assert [(1, "z"), (2, "z")] == sorted(RAN)


# -- validation before anything runs ------------------------------------------------------------


def test_bad_line_exits_2_with_file_and_line_and_runs_nothing(
    write: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    write("tasks.txt", "1\n2\nthree\n")
    assert 2 == process.cli(["--tasks", "tasks.txt", "--task_to", "param"])
    assert ([], False) == (RAN, Path("results").exists())
    assert "tasks.txt:3" in capsys.readouterr().err


def test_unknown_key_in_yaml_task_names_its_line(
    write: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    write("tasks.yml", "- param: 1\n- parm: 2\n")
    assert 2 == process.cli(["--tasks", "tasks.yml"])
    assert "tasks.yml:2" in capsys.readouterr().err


def test_identical_tasks_exit_2_naming_both_lines(
    write: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    write("tasks.txt", "1\n2\n01\n")
    assert 2 == process.cli(["--tasks", "tasks.txt", "--task_to", "param"])
    assert "tasks.txt:1 and tasks.txt:3 are the same task" in capsys.readouterr().err


def test_unknown_task_to_key_exits_2(write: Any) -> None:
    write("tasks.txt", "1\n")
    assert 2 == process.cli(["--tasks", "tasks.txt", "--task_to", "nope"])


def test_plain_values_in_yaml_need_task_to(write: Any, capsys: pytest.CaptureFixture[str]) -> None:
    write("tasks.yml", "- 1\n- 2\n")
    assert 2 == process.cli(["--tasks", "tasks.yml"])
    assert "tasks.yml:1" in capsys.readouterr().err


# -- save_dir layout ---------------------------------------------------------------------------


def test_shared_save_dir_gives_each_task_a_subdirectory(write: Any, workdir: Path) -> None:
    write("tasks.txt", "1\n2\n")
    process.cli(["--tasks", "tasks.txt", "--task_to", "param"])
    assert ["succeeded", "succeeded"] == [
        status(workdir, "results/process/param=1"),
        status(workdir, "results/process/param=2"),
    ]


def test_task_config_records_its_subdirectory(write: Any, workdir: Path) -> None:
    write("tasks.txt", "1\n2\n")
    process.cli(["--tasks", "tasks.txt", "--task_to", "param"])
    assert "results/process/param=2" == load(workdir / "results/process/param=2").config["save_dir"]


@attrs.define
class FollowsSaveDir:
    param: int = 1
    save_dir: str = "results/fixed"
    model: str = "${save_dir}/model.pt"


@clicfg
def follows(cfg: FollowsSaveDir) -> None:
    RAN.append((cfg.param, cfg.model))


@attrs.define
class PathSaveDir:
    param: int = 1
    save_dir: Path = Path("results/paths")


@clicfg
def with_path(cfg: PathSaveDir) -> None:
    RAN.append((cfg.param, str(cfg.save_dir)))


def test_value_interpolating_save_dir_follows_the_task_subdirectory(write: Any) -> None:
    write("tasks.txt", "1\n2\n")
    follows.cli(["--tasks", "tasks.txt", "--task_to", "param"])
    assert [(1, "results/fixed/param=1/model.pt"), (2, "results/fixed/param=2/model.pt")] == sorted(
        RAN
    )


def test_path_typed_save_dir_gets_task_subdirectories(write: Any, workdir: Path) -> None:
    write("tasks.txt", "1\n2\n")
    with_path.cli(["--tasks", "tasks.txt", "--task_to", "param"])
    assert "results/paths/param=2" == load(workdir / "results/paths/param=2").config["save_dir"]


@pytest.mark.parametrize("function", [process, follows, with_path])
def test_planned_task_configs_are_what_each_task_resolves_to(function: Any) -> None:
    # Planning builds shared-save_dir tasks' configs without resolving them again when
    # it can: the result must be exactly what resolving each task's overrides gives.
    from flexlock.cli._config import ConfigTree
    from flexlock.cli._tasks import _resolve_task, plan_tasks, sweep_specs

    tree = ConfigTree(function.config_class)
    planned, _ = plan_tasks(tree, sweep_specs(["param=1,2,3"]))
    assert [_resolve_task(tree, p.task.overrides, p.task.source) for p in planned] == [
        p.config for p in planned
    ]


def test_templated_save_dir_is_used_as_is(write: Any, workdir: Path) -> None:
    write("tasks.txt", "1\n2\n")
    templated.cli(["--tasks", "tasks.txt", "--task_to", "param"])
    assert "succeeded" == status(workdir, "results/p2")


def test_label_is_sanitised_for_a_directory_name() -> None:
    assert "name=a_b_c" == task_label([("name", "a/b c")])


def test_long_label_is_shortened_with_a_hash() -> None:
    label = task_label([("name", "x" * 200)])
    assert (80, True) == (len(label), label.startswith("name=xxx"))


def test_stdout_of_each_task_goes_to_its_save_dir(write: Any, workdir: Path) -> None:
    write("tasks.txt", "1\n2\n")
    process.cli(["--tasks", "tasks.txt", "--task_to", "param"])
    assert "output of 2\n" == (workdir / "results/process/param=2/stdout.log").read_text()


def test_tasks_without_save_dir_still_run(write: Any) -> None:
    write("tasks.txt", "1\n2\n")
    assert 0 == unrecorded.cli(["--tasks", "tasks.txt", "--task_to", "param"])
    assert [1, 2] == params()


# -- failures and resume -----------------------------------------------------------------------


def test_failed_task_exits_1_and_others_go_on(write: Any, workdir: Path) -> None:
    write("tasks.txt", "3\n4\n")
    assert 1 == process.cli(["--tasks", "tasks.txt", "--task_to", "param"])
    assert ("failed", "succeeded") == (
        status(workdir, "results/process/param=3"),
        status(workdir, "results/process/param=4"),
    )


def test_failure_is_reported_with_log_path_and_summary(
    write: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    write("tasks.txt", "3\n4\n")
    process.cli(["--tasks", "tasks.txt", "--task_to", "param"])
    err = capsys.readouterr().err
    assert "log: results/process/param=3/stderr.log" in err
    assert "tasks: 2 total, 1 succeeded, 1 failed, 0 skipped" in err
    assert err.rstrip().endswith("error: 1 of 2 tasks failed (see the table above)")


def test_traceback_of_failed_task_is_in_its_stderr_log(write: Any, workdir: Path) -> None:
    write("tasks.txt", "3\n4\n")
    process.cli(["--tasks", "tasks.txt", "--task_to", "param"])
    assert (
        "ValueError: three is bad" in (workdir / "results/process/param=3/stderr.log").read_text()
    )


def test_fail_fast_stops_after_first_failure(write: Any) -> None:
    write("tasks.txt", "3\n4\n")
    assert 1 == process.cli(["--tasks", "tasks.txt", "--task_to", "param", "--fail_fast"])
    assert [3] == params()


def test_rerun_skips_succeeded_tasks(write: Any, capsys: pytest.CaptureFixture[str]) -> None:
    write("tasks.txt", "1\n2\n")
    process.cli(["--tasks", "tasks.txt", "--task_to", "param"])
    RAN.clear()
    assert 0 == process.cli(["--tasks", "tasks.txt", "--task_to", "param"])
    assert ([], True) == (RAN, "0 succeeded, 0 failed, 2 skipped" in capsys.readouterr().err)


def test_resubmitting_runs_only_failed_tasks(write: Any, workdir: Path) -> None:
    write("tasks.txt", "2\n3\n")
    process.cli(["--tasks", "tasks.txt", "--task_to", "param"])
    (workdir / "fixed").write_text("")
    RAN.clear()
    assert 0 == process.cli(["--tasks", "tasks.txt", "--task_to", "param"])
    assert [3] == params()


def test_changed_override_reruns_the_task(write: Any) -> None:
    write("tasks.txt", "1\n2\n")
    process.cli(["--tasks", "tasks.txt", "--task_to", "param"])
    RAN.clear()
    process.cli(["--tasks", "tasks.txt", "--task_to", "param", "-o", "name", "b"])
    assert [1, 2] == params()


def test_force_reruns_done_tasks(write: Any) -> None:
    write("tasks.txt", "1\n2\n")
    process.cli(["--tasks", "tasks.txt", "--task_to", "param"])
    RAN.clear()
    process.cli(["--tasks", "tasks.txt", "--task_to", "param", "--force"])
    assert [1, 2] == params()


def test_interrupt_marks_task_failed_and_stops(write: Any, workdir: Path) -> None:
    write("tasks.txt", "99\n2\n")
    assert 130 == process.cli(["--tasks", "tasks.txt", "--task_to", "param"])
    assert ([99], "failed") == (params(), status(workdir, "results/process/param=99"))


def test_print_config_prints_each_task_and_runs_nothing(
    write: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    write("tasks.txt", "1\n2\n")
    assert 0 == process.cli(["--tasks", "tasks.txt", "--task_to", "param", "--print_config"])
    out = capsys.readouterr().out
    assert ([], 2) == (RAN, out.count("save_dir: results/process/param="))
