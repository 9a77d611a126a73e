"""`@clicfg`: the command line of a config class (DESIGN.md §4)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import attrs
import pytest

from flexlock.cli import clicfg
from flexlock.cli._cmdline import split_overrides
from flexlock.core import load

SEEN: list[Any] = []


@attrs.define
class Model:
    lr: float = 0.01
    """Learning rate of the optimiser."""
    layers: list[int] = attrs.field(factory=lambda: [64, 64])


@attrs.define
class Config:
    param: int = 1
    """How many things."""
    name: str = "abc"
    model: Model = attrs.field(factory=Model)


@clicfg
def main(cfg: Config) -> None:
    SEEN.append(cfg)


@attrs.define
class Recorded:
    param: int = 1
    save_dir: str = "results/p${param}"


@clicfg(config_class=Recorded)
def recorded(cfg: Recorded) -> str:
    if cfg.param < 0:
        raise ValueError("negative param")
    return "done"


@dataclasses.dataclass
class DataConfig:
    param: int = 1
    tags: list[str] = dataclasses.field(default_factory=list)


@clicfg
def data_main(cfg: DataConfig) -> None:
    SEEN.append(cfg)


class PlainConfig:
    param = 1
    save_dir = "results/process"


@clicfg(config_class=PlainConfig)
def plain_main(cfg: PlainConfig) -> None:
    SEEN.append(cfg)


@pytest.fixture(autouse=True)
def _forget() -> None:
    SEEN.clear()


def last() -> Any:
    assert len(SEEN) == 1
    return SEEN[0]


# -- grammar and merge order -------------------------------------------------------------------


def test_no_arguments_runs_with_class_defaults(workdir: Path) -> None:
    assert main.cli([]) == 0
    assert Config() == last()


def test_instance_passed_overrides_class_defaults(workdir: Path) -> None:
    main.cli([], config=Config(param=5))
    assert last().param == 5


def test_config_file_overrides_instance(write: Any) -> None:
    write("a.yml", "param: 7\n")
    main.cli(["--config", "a.yml"], config=Config(param=5))
    assert last().param == 7


def test_later_config_file_wins(write: Any) -> None:
    write("a.yml", "param: 7\nname: a\n")
    write("b.yml", "param: 8\n")
    main.cli(["--config", "a.yml", "--config", "b.yml"])
    assert (last().param, last().name) == (8, "a")


def test_experiment_subtree_overrides_shared_keys(write: Any) -> None:
    write("multi.yml", "param: 2\nprocess:\n  param: 3\ntrain:\n  param: 4\n")
    main.cli(["--config", "multi.yml", "--experiment", "process"])
    assert last().param == 3


def test_override_wins_over_experiment(write: Any) -> None:
    write("multi.yml", "process:\n  param: 3\n")
    main.cli(["--config", "multi.yml", "--experiment", "process", "-o", "param", "9"])
    assert last().param == 9


def test_override_key_equals_value_form(workdir: Path) -> None:
    main.cli(["-o", "model.lr=0.5"])
    assert last().model.lr == 0.5


def test_override_two_token_form_keeps_value_verbatim(workdir: Path) -> None:
    main.cli(["-o", "name", "a=b, #c @d"])
    assert last().name == "a=b, #c @d"


def test_override_value_may_start_with_dash(workdir: Path) -> None:
    main.cli(["-o", "model.lr", "-0.5"])
    assert last().model.lr == -0.5


def test_override_on_str_field_keeps_leading_zero(workdir: Path) -> None:
    main.cli(["-o", "name", "012"])
    assert last().name == "012"


def test_override_list_from_yaml_syntax(workdir: Path) -> None:
    main.cli(["-o", "model.layers", "[8, 16]"])
    assert last().model.layers == [8, 16]


def test_split_overrides_leaves_other_flags() -> None:
    assert split_overrides(["-o", "a", "1", "--force", "-o", "b=2"]) == (
        ["--force"],
        [("a", "1"), ("b", "2")],
    )


def test_dataclass_config_takes_overrides(workdir: Path) -> None:
    data_main.cli(["-o", "tags", "[x, y]"])
    assert last().tags == ["x", "y"]


def test_plain_class_config_takes_overrides(workdir: Path) -> None:
    plain_main.cli(["-o", "param", "4", "-o", "save_dir", "out"])
    assert (last().param, last().save_dir) == (4, "out")


# -- errors: exit 2, one paragraph, nothing run -------------------------------------------------


def test_unknown_key_exits_2_with_suggestion_and_runs_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.cli(["-o", "parm", "3"]) == 2
    assert SEEN == []
    assert "did you mean 'param'" in capsys.readouterr().err


def test_wrong_type_exits_2_naming_key(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main.cli(["-o", "param", "many"]) == 2
    assert (
        "config key 'param' (-o param): expected an integer, got 'many'" in capsys.readouterr().err
    )


def test_bad_yaml_exits_2_with_file_and_line(
    write: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    write("bad.yml", "param: 1\nname: [x\n")
    assert main.cli(["--config", "bad.yml"]) == 2
    assert "bad.yml:3: invalid YAML" in capsys.readouterr().err


def test_missing_config_file_exits_2(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main.cli(["--config", "nope.yml"]) == 2
    assert "'nope.yml' does not exist" in capsys.readouterr().err


def test_missing_experiment_lists_available_ones(
    write: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    write("multi.yml", "process:\n  param: 3\ntrain:\n  param: 4\n")
    assert main.cli(["--config", "multi.yml", "--experiment", "evaluate"]) == 2
    assert "experiments available: process, train" in capsys.readouterr().err


def test_config_error_writes_no_run_sheet(workdir: Path) -> None:
    assert recorded.cli(["-o", "param", "x"]) == 2
    assert not (workdir / "results").exists()


def test_unknown_flag_exits_2(workdir: Path) -> None:
    assert main.cli(["--no-such-flag"]) == 2


# -- print_config and help ----------------------------------------------------------------------


def test_print_config_marks_changed_values(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.cli(["--print_config", "-o", "model.lr", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "  lr: 0.5  # changed, default: 0.01" in out
    assert "param: 1\n" in out


def test_print_config_dash_spelling_runs_nothing(workdir: Path) -> None:
    assert main.cli(["--print-config"]) == 0
    assert SEEN == []


def test_print_config_shows_resolved_interpolation(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded.cli(["--print_config", "-o", "param", "3"])
    assert "save_dir: results/p3" in capsys.readouterr().out


def test_help_lists_every_field_with_type_default_and_docstring(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main.cli(["--help"]) == 0
    out = capsys.readouterr().out
    assert any(
        line.split() == ["model.lr", "float", "0.01", "Learning", "rate", "of", "the", "optimiser."]
        for line in out.splitlines()
    )
    assert "model.layers" in out


# -- run recording -----------------------------------------------------------------------------


def test_save_dir_run_writes_succeeded_sheet_with_config(workdir: Path) -> None:
    assert recorded.cli(["-o", "param", "3"]) == 0
    sheet = load(workdir / "results/p3/run.lock")
    assert (sheet.status, sheet.config) == ("succeeded", {"param": 3, "save_dir": "results/p3"})


def test_failing_main_exits_1_and_sheet_failed(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert recorded.cli(["-o", "param", "-1"]) == 1
    assert (
        capsys.readouterr()
        .err.rstrip()
        .endswith("error: the run failed; run sheet: results/p-1/run.lock")
    )
    sheet = load(workdir / "results/p-1/run.lock")
    assert (sheet.status, sheet.error.message if sheet.error else None) == (
        "failed",
        "negative param",
    )


def test_resume_skips_an_up_to_date_single_run(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert recorded.cli(["-o", "param", "3"]) == 0
    first = load(workdir / "results/p3/run.lock").created
    capsys.readouterr()
    assert recorded.cli(["-o", "param", "3", "--resume"]) == 0
    assert "up to date, skipped" in capsys.readouterr().err
    assert load(workdir / "results/p3/run.lock").created == first


def test_resume_reruns_a_failed_run_and_says_why(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert recorded.cli(["-o", "param", "-1"]) == 1
    Path(workdir / "results/p-1").rename(workdir / "results/p4")
    capsys.readouterr()
    assert recorded.cli(["-o", "param", "4", "--resume"]) == 0
    assert "last run failed" in capsys.readouterr().err
    assert load(workdir / "results/p4/run.lock").status == "succeeded"


def test_failed_single_run_saves_locals_when_debugging(workdir: Path) -> None:
    from flexlock.core import load_debug_locals

    (workdir / "process.py").write_text(
        textwrap.dedent("""
        import attrs
        from flexlock.cli import clicfg

        @attrs.define
        class Config:
            param: int = 1
            save_dir: str = "results/p${param}"

        @clicfg(config_class=Config)
        def main(cfg):
            ratio = 1 / (cfg.param - cfg.param)

        if __name__ == "__main__":
            main(Config())
    """)
    )
    env = {**os.environ, "FLEXLOCK_DEBUG": "1"}
    result = subprocess.run(
        [sys.executable, "process.py", "-o", "param", "5"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    loaded = load_debug_locals(workdir / "results/p5", namespace={})
    assert loaded["cfg"].param == 5


def test_python_call_returns_result_and_records(workdir: Path) -> None:
    assert recorded(Recorded(param=2)) == "done"
    assert load(workdir / "results/p2/run.lock").status == "succeeded"


def test_python_call_raises_user_exception_and_records_failure(workdir: Path) -> None:
    with pytest.raises(ValueError, match="negative"):
        recorded(Recorded(param=-2))
    assert load(workdir / "results/p-2/run.lock").status == "failed"


@attrs.define
class WithData:
    data: str = "${runlock_data:input.txt}"
    save_dir: str = "results/data"


@clicfg
def with_data(cfg: WithData) -> None:
    pass


def test_runlock_data_resolver_lands_in_sheet(workdir: Path) -> None:
    (workdir / "input.txt").write_text("x\n")
    assert with_data.cli([]) == 0
    assert list(load(workdir / "results/data/run.lock").data) == ["input.txt"]


@attrs.define
class Amending:
    save_dir: str = "results/amend"


@clicfg
def amending(cfg: Amending) -> None:
    from flexlock.core import runlock

    runlock(config=cfg, data=["extra.txt"])


def test_runlock_inside_main_amends_the_same_sheet(workdir: Path) -> None:
    (workdir / "extra.txt").write_text("y\n")
    assert amending.cli([]) == 0
    sheet = load(workdir / "results/amend/run.lock")
    assert (sheet.status, list(sheet.data)) == ("succeeded", ["extra.txt"])


# -- script entry vs import (real interpreters) ------------------------------------------------

SCRIPT = """
import attrs
from flexlock.cli import clicfg

@attrs.define
class Config:
    param: int = 1

@clicfg
def main(cfg: Config) -> None:
    print("param", cfg.param)

if __name__ == "__main__":
    main(Config())
"""


def _script(workdir: Path) -> Path:
    path = workdir / "process.py"
    path.write_text(textwrap.dedent(SCRIPT))
    return path


def _run(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(workdir)},
        check=False,
    )


def test_script_reads_its_command_line(workdir: Path) -> None:
    _script(workdir)
    assert _run(workdir, "process.py", "-o", "param", "7").stdout == "param 7\n"


def test_script_config_error_exits_2_without_traceback(workdir: Path) -> None:
    _script(workdir)
    result = _run(workdir, "process.py", "-o", "param", "x")
    assert (result.returncode, "Traceback" in result.stderr) == (2, False)


def test_imported_main_ignores_sys_argv(workdir: Path) -> None:
    _script(workdir)
    code = "import sys; sys.argv = ['x', '-o', 'param', '9']; import process; process.main()"
    assert _run(workdir, "-c", code).stdout == "param 1\n"


def test_help_and_serial_run_import_no_heavy_library(workdir: Path) -> None:
    _script(workdir)
    code = textwrap.dedent("""
        import atexit, runpy, sys
        heavy = {"joblib", "git", "mlflow", "submitit"}
        loaded = lambda: {m.split(".")[0] for m in sys.modules}
        atexit.register(lambda: print("HEAVY", sorted(loaded() & heavy)))
        sys.argv = ["process.py", *sys.argv[1:]]
        runpy.run_path("process.py", run_name="__main__")
    """)
    for args in (["--help"], ["-o", "param", "2"]):
        assert "HEAVY []" in _run(workdir, "-c", code, *args).stdout


def test_module_run_reads_its_command_line(workdir: Path) -> None:
    _script(workdir)
    assert "param 4\n" == _run(workdir, "-m", "process", "-o", "param=4").stdout


def test_python_call_accepts_a_mapping_of_overrides(workdir: Path) -> None:
    main({"model": {"lr": 0.5}})
    assert (0.5, 1) == (last().model.lr, last().param)
