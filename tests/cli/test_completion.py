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
    assert script.endswith("complete -o filenames -F _flexlock flexlock")


def test_the_completion_command_prints_the_script(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flexlock.cli._main", "completion", "bash"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert ["show"] == _complete(result.stdout, "flexlock sho", tmp_path)
