"""What a Hydra user types in the first week: positional overrides, typos, pipes, sweeps."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import pytest

from flexlock.cli import clicfg
from flexlock.cli._interpolation import interpolate
from flexlock.core import ConfigError

SEEN: list[tuple[int, str]] = []


@attrs.define
class Model:
    lr: float = 0.1


@attrs.define
class Config:
    param: int = 1
    name: str = "a"
    model: Model = attrs.Factory(Model)


@clicfg
def process(cfg: Config) -> None:
    SEEN.append((cfg.param, cfg.name))


@pytest.fixture(autouse=True)
def _forget() -> None:
    SEEN.clear()


def test_positional_key_value_is_an_override() -> None:
    assert 0 == process.cli(["param=10", "model.lr=0.5", "name=x=y"])
    assert [(10, "x=y")] == SEEN


def test_positional_overrides_and_o_apply_in_command_line_order() -> None:
    assert 0 == process.cli(["param=2", "-o", "param", "3", "name=b"])
    assert [(3, "b")] == SEEN


def test_value_of_a_flag_is_not_taken_as_an_override(workdir: Path) -> None:
    assert 0 == process.cli(["--sweep", "param=1,2"])
    assert [1, 2] == sorted(param for param, _ in SEEN)


def test_positional_unknown_key_names_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert 2 == process.cli(["parm=3"])
    assert "did you mean 'param'" in capsys.readouterr().err


def test_misspelt_flag_suggests_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert 2 == process.cli(["--print_confg"])
    err = capsys.readouterr().err
    assert "unrecognized argument --print_confg; did you mean --print_config" in err


def test_field_given_as_a_flag_gives_the_override_spelling(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert 2 == process.cli(["--param", "3"])
    assert "param=VALUE or -o param VALUE" in capsys.readouterr().err


def test_stray_word_says_how_to_set_a_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert 2 == process.cli(["train"])
    assert "set a config field with KEY=VALUE or -o KEY VALUE" in capsys.readouterr().err


def test_key_swept_twice_says_so(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert 2 == process.cli(["--sweep", "param=1,2", "--sweep", "param=3"])
    err = capsys.readouterr().err
    assert "--sweep param is given twice" in err
    assert "same task" not in err
    assert [] == SEEN


def test_misspelt_interpolation_key_suggests_the_key() -> None:
    with pytest.raises(ConfigError, match=r"did you mean \$\{model\.lr\}\?"):
        interpolate({"model": {"lr": 0.1}, "x": "${model.lrr}"})


def test_print_config_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import attrs
            from flexlock.cli import clicfg

            @attrs.define
            class Config:
                param: int = 1

            @clicfg
            def main(cfg: Config) -> None:
                pass

            if __name__ == "__main__":
                main(Config())
            """
        )
    )
    child = subprocess.Popen(
        [sys.executable, str(script), "--print_config"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stderr is not None
    child.stdout.close()  # the reader is gone (`| head` done) before the script prints
    err = child.stderr.read()
    child.wait(timeout=60)
    assert "BrokenPipeError" not in err
    assert "Traceback" not in err
    assert 0 == child.returncode


SCRIPT = """
import attrs
from flexlock.cli import clicfg

@attrs.define
class Config:
    param: int = 1
    save_dir: str = "results/process"

@clicfg
def main(cfg: Config) -> None:
    print(f"task {cfg.param} says hello")

if __name__ == "__main__":
    main(Config())
"""


@pytest.fixture
def repo_script(tmp_path: Path) -> Path:
    """A committed script in its own git repo, whose results/ is not git-ignored."""
    from tests._helpers import git

    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "t")
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    git(tmp_path, "add", "script.py")
    git(tmp_path, "commit", "-q", "-m", "script")
    return script


def run_script(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_not_ignored_run_directories_are_named_once_per_invocation(repo_script: Path) -> None:
    result = run_script(repo_script, "--sweep", "param=1,2,3,4")
    assert 0 == result.returncode, result.stderr
    lines = result.stderr.splitlines()
    warnings = [line for line in lines if "not ignored" in line or "not git-ignored" in line]
    assert 1 == len(warnings), result.stderr
    assert "add results/ to .gitignore" in warnings[0]
    assert len(warnings[0]) < 140


FAILING = """
import attrs
from flexlock.cli import clicfg

@attrs.define
class Config:
    param: int = 1

def helper(value: int) -> None:
    raise ValueError(f"bad value {value}")

@clicfg
def main(cfg: Config) -> None:
    helper(cfg.param)

if __name__ == "__main__":
    main(Config())
"""


def test_traceback_of_a_failing_main_shows_only_the_users_frames(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(FAILING)
    result = run_script(script)
    frames = [line for line in result.stderr.splitlines() if line.lstrip().startswith("File ")]
    assert 1 == result.returncode
    assert frames, result.stderr
    assert all("script.py" in line for line in frames), result.stderr
    assert "ValueError: bad value 1" in result.stderr
    assert "flexlock frames hidden; FLEXLOCK_TRACEBACK=1 shows them" in result.stderr


def test_flexlock_traceback_shows_flexlocks_frames_too(tmp_path: Path) -> None:
    import os

    script = tmp_path / "script.py"
    script.write_text(FAILING)
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FLEXLOCK_TRACEBACK": "1"},
    )
    assert "_runner.py" in result.stderr
    assert "script.py" in result.stderr
