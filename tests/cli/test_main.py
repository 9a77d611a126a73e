"""The `flexlock` console command: subcommands from entry points, --version."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flexlock.cli._main import main


def test_version_flag_prints_every_installed_distribution(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert 0 == exit_info.value.code
    lines = capsys.readouterr().out.splitlines()
    from flexlock.core import __version__

    assert f"flexlock-core {__version__}" in lines
    assert f"flexlock-cli {__version__}" in lines


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert 2 == main([])
    assert "commands" in capsys.readouterr().out


def test_console_script_is_installed_and_lists_subcommands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flexlock.cli._main", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "version" in result.stdout


def test_unknown_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert 2 == exit_info.value.code
    assert "no-such-command" in capsys.readouterr().err
