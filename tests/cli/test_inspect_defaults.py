"""`flexlock show` / `diff` / `ls` in the first week: defaults and what comes first."""

from __future__ import annotations

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


def header(out: str, after: str = "") -> list[str]:
    """Return the column names of the first table after the line `after` (or the first)."""
    lines = out.splitlines()
    start = lines.index(after) + 1 if after else 0
    return lines[start].split()


def test_ls_keeps_constant_keys_out_when_some_runs_lack_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, config in {
        "lr=0.1": {"seed": 1, "name": "x", "lr": 0.1},
        "lr=0.2": {"seed": 1, "name": "x", "lr": 0.2, "extra": 5},
        "lr=0.3": {"seed": 1, "lr": 0.3},
    }.items():
        Path("results", name).mkdir(parents=True)
        write_sheet(Path("results", name), config=config)
    code, out, err = flexlock(capsys, "ls", "results")
    assert 0 == code
    assert ["status", "id", "created", "save_dir", "lr"] == header(out)
    assert "not shown" not in err


def test_ls_groups_runs_of_different_folders_with_their_own_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    runs = {
        "results/svc/C=1": {"C": 1, "kernel": "rbf", "seed": 0},
        "results/svc/C=10": {"C": 10, "kernel": "rbf", "seed": 0},
        "results/logreg/penalty=l1": {"penalty": "l1", "seed": 0, "name": "lr"},
        "results/logreg/penalty=l2": {"penalty": "l2", "seed": 0, "name": "lr"},
    }
    for directory, config in runs.items():
        Path(directory).mkdir(parents=True)
        write_sheet(Path(directory), config=config)
    _, out, _ = flexlock(capsys, "ls", "results", "--sort", "save_dir")
    assert ["status", "id", "created", "save_dir", "penalty"] == header(
        out, "results/logreg/  (2 runs)"
    )
    assert ["status", "id", "created", "save_dir", "C"] == header(out, "results/svc/  (2 runs)")


def test_ls_says_how_many_varying_keys_it_hid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    for value in (1, 2):
        Path("results", str(value)).mkdir(parents=True)
        write_sheet(Path("results", str(value)), config={f"k{i}": value for i in range(9)})
    _, out, err = flexlock(capsys, "ls", "results")
    assert 6 == len(header(out)) - 4
    assert "3 more varying config keys not shown (k6, k7, k8)" in err
