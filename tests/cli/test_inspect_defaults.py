"""`flexlock show` / `diff` / `ls` in the first week: defaults and what comes first."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.cli._inspect_helpers import flexlock, write_sheet


def test_show_without_argument_shows_the_run_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    write_sheet(tmp_path, config={"lr": 0.1})
    monkeypatch.chdir(tmp_path)
    code, out, _ = flexlock(capsys, "show")
    assert 0 == code
    assert "  lr: 0.1" in out


def test_show_without_argument_outside_a_run_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = flexlock(capsys, "show")
    assert 2 == code
    assert "no run.lock in this directory" in err
    assert "flexlock ls" in err
    assert os.getcwd() == str(tmp_path)


@pytest.fixture
def upgraded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two runs of another config, 40 packages apart (a `pip install` in between)."""
    monkeypatch.chdir(tmp_path)
    Path("a").mkdir()
    Path("b").mkdir()
    before = {f"pkg{index}": "1.0" for index in range(40)}
    after = {f"pkg{index}": "2.0" for index in range(30)} | {"newpkg": "0.1"}
    write_sheet(Path("a"), config={"lr": 0.1}, packages=before)
    write_sheet(Path("b"), config={"lr": 0.2}, packages=after)
    return tmp_path


def test_diff_leads_with_the_verdict_and_summarises_the_environment(
    upgraded: Path, capsys: Any
) -> None:
    code, out, _ = flexlock(capsys, "diff", "a", "b")
    lines = out.splitlines()
    assert 0 == code
    assert "different identity: config differs" == lines[0]
    assert "  lr  0.1 → 0.2" in lines
    assert "env: 41 packages changed; --env for details" == lines[-1]
    assert not any("packages.pkg" in line for line in lines)


def test_diff_env_lists_every_package(upgraded: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "diff", "a", "b", "--env")
    assert any(line.split() == ["packages.pkg3", "1.0", "→", "2.0"] for line in out.splitlines())
    assert sum("packages." in line for line in out.splitlines()) == 41
