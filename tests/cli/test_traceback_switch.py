"""FLEXLOCK_TRACEBACK shows a user error's traceback; FLEXLOCK_DEBUG alone no longer does.

Both places that turn a FlexLockError into one line and an exit code are checked:
the `flexlock` command and a `@clicfg` script's `cli()`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from flexlock.cli import clicfg
from flexlock.cli._main import main as flexlock_main

UserError = Callable[[], tuple[int, str]]


@attrs.define
class Config:
    param: int = 1


@clicfg(config_class=Config)
def process(cfg: Config) -> None:
    """Do nothing: only the command line is under test."""


def _command_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = flexlock_main(["debug", str(tmp_path / "missing")])  # a user error: no such run
    return code, capsys.readouterr().err


def _script_error(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = process.cli(["-o", "no_such_key", "1"])  # a user error: unknown config key
    return code, capsys.readouterr().err


@pytest.fixture(params=["command", "script"])
def user_error(
    request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> UserError:
    """Return a function that makes a user error at one call site: (exit code, stderr)."""
    if request.param == "command":
        return lambda: _command_error(tmp_path, capsys)
    return lambda: _script_error(capsys)


def test_user_error_has_no_traceback_by_default(
    user_error: UserError, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLEXLOCK_TRACEBACK", raising=False)
    code, err = user_error()
    assert (2, False, True) == (code, "Traceback" in err, "error:" in err)


def test_flexlock_traceback_prints_the_traceback_and_keeps_the_exit_code(
    user_error: UserError, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEXLOCK_TRACEBACK", "1")
    code, err = user_error()
    assert (2, True, True) == (
        code,
        "Traceback (most recent call last)" in err,
        err.rstrip().splitlines()[-1].startswith(("flexlock: error:", "process: error:")),
    )


def test_flexlock_debug_alone_prints_no_traceback(
    user_error: UserError, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLEXLOCK_TRACEBACK", raising=False)
    monkeypatch.setenv("FLEXLOCK_DEBUG", "1")
    code, err = user_error()
    assert (2, False) == (code, "Traceback" in err)
