"""`flexlock completion bash|zsh`: the generated script completes in a real bash (issue 22)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flexlock.cli._cmd_completion import completion_script

pytestmark = pytest.mark.needs_cli


def _complete(script: str, line: str, cwd: Path) -> list[str]:
    """Source `script` in bash and return COMPREPLY for the command line `line` (cursor at end)."""
    driver = (
        f"{script}\n"
        f"read -ra COMP_WORDS <<<{line!r}\n"
        "COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n" + '_flexlock; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    bash = shutil.which("bash")
    assert bash is not None
    result = subprocess.run(
        [bash, "-c", driver], cwd=cwd, capture_output=True, text=True, check=True
    )
    return result.stdout.split()


@pytest.fixture(scope="module")
def bash_script() -> str:
    return completion_script("bash")


def test_commands_complete(bash_script: str, tmp_path: Path) -> None:
    assert ["show"] == _complete(bash_script, "flexlock sh", tmp_path)
    assert {"push", "pull"} == set(_complete(bash_script, "flexlock pu", tmp_path))


def test_options_and_their_choices_complete(bash_script: str, tmp_path: Path) -> None:
    assert ["--format"] == _complete(bash_script, "flexlock show --fo", tmp_path)
    assert ["mermaid"] == _complete(bash_script, "flexlock show --format m", tmp_path)


def test_run_directories_complete(bash_script: str, tmp_path: Path) -> None:
    (tmp_path / "results" / "train").mkdir(parents=True)
    (tmp_path / "raw.csv").write_text("a\n")
    assert ["results"] == _complete(bash_script, "flexlock show r", tmp_path)


def test_zsh_script_loads_bashcompinit_first() -> None:
    script = completion_script("zsh")
    assert script.splitlines()[1] == "autoload -U +X bashcompinit && bashcompinit"
    assert "complete -o filenames -F _flexlock flexlock" in script.splitlines()
    assert script.endswith("complete -o filenames -F _flexlock_clicfg python python3")


def test_the_completion_command_prints_the_script(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flexlock.cli._main", "completion", "bash"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert ["show"] == _complete(result.stdout, "flexlock sho", tmp_path)


_APP = """
import attrs
from flexlock.cli import clicfg

@attrs.define
class Model:
    lr: float = 0.1
    depth: int = 2

@attrs.define
class Config:
    model: Model = attrs.field(factory=Model)
    seed: int = 0

@clicfg
def main(cfg: Config) -> None:
    print("RAN")

if __name__ == "__main__":
    main(Config())
"""


def _complete_script(script: str, words: list[str], cwd: Path) -> list[str]:
    driver = (
        f"{script}\nCOMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        "COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n"
        '_flexlock_clicfg; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    bash = shutil.which("bash")
    assert bash is not None
    result = subprocess.run(
        [bash, "-c", driver], cwd=cwd, capture_output=True, text=True, check=True
    )
    return result.stdout.split()


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(_APP)
    (tmp_path / "conf.yml").write_text(
        "seed: 1\nsmall:\n  model:\n    depth: 1\nbig:\n  model:\n    depth: 8\n"
    )
    return tmp_path


def test_clicfg_config_keys_complete_after_o(bash_script: str, app: Path) -> None:
    words = [sys.executable, "app.py", "-o", "model."]
    assert ["model.depth", "model.lr"] == _complete_script(bash_script, words, app)


def test_clicfg_experiments_come_from_the_config_file(bash_script: str, app: Path) -> None:
    words = [sys.executable, "app.py", "--config", "conf.yml", "--experiment", ""]
    assert ["big", "small"] == _complete_script(bash_script, words, app)


def test_clicfg_flags_and_executor_names_complete(bash_script: str, app: Path) -> None:
    flags = _complete_script(bash_script, [sys.executable, "app.py", "--print"], app)
    assert ["--print-config", "--print_config"] == flags
    executors = _complete_script(bash_script, [sys.executable, "app.py", "--executor", ""], app)
    assert {"serial", "local"} <= set(executors)


def test_completing_does_not_run_main_and_a_plain_run_still_does(
    bash_script: str, app: Path
) -> None:
    assert "RAN" not in _complete_script(bash_script, [sys.executable, "app.py", "--se"], app)
    ran = subprocess.run(
        [sys.executable, "app.py"], cwd=app, capture_output=True, text=True, check=True
    )
    assert "RAN" in ran.stdout


def test_a_non_clicfg_script_completes_file_names(bash_script: str, tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text("print('x')\n")
    (tmp_path / "data.csv").write_text("a\n")
    assert ["data.csv"] == _complete_script(
        bash_script, [sys.executable, "plain.py", "da"], tmp_path
    )
