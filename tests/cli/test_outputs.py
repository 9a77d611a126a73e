"""Outputs from the command line: `${runlock_out:...}`, and verify/show/diff of what runs wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from flexlock.cli import clicfg
from flexlock.core import load
from tests.cli._inspect_helpers import flexlock


@attrs.define
class Config:
    lr: float = 0.1
    figure: str = "${runlock_out:figures/curve.txt}"
    save_dir: str = "results/train"


@clicfg
def train(cfg: Config) -> None:
    Path(cfg.save_dir, "model.txt").write_text(f"weights for lr={cfg.lr}\n")
    Path(cfg.figure).parent.mkdir(parents=True, exist_ok=True)
    Path(cfg.figure).write_text("a curve\n")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_cli_run_records_its_save_dir_files_and_its_declared_output(workdir: Path) -> None:
    assert 0 == train.cli([])
    outputs = load("results/train/run.lock").outputs
    assert outputs is not None
    assert ["../../figures/curve.txt", "model.txt"] == sorted(outputs)


def test_verify_names_an_edited_output_and_exits_3(workdir: Path, capsys: Any) -> None:
    assert 0 == train.cli([])
    assert 0 == flexlock(capsys, "verify", "results/train")[0]
    Path("results/train/model.txt").write_text("edited by hand\n")
    code, out, _ = flexlock(capsys, "verify", "results/train")
    assert 3 == code
    assert "out   model.txt" in out
    assert "changed" in next(line for line in out.splitlines() if "model.txt" in line)
    assert 0 == flexlock(capsys, "verify", "results/train", "--no-outputs")[0]


def test_verify_reports_an_added_file_as_extra(workdir: Path, capsys: Any) -> None:
    assert 0 == train.cli([])
    Path("results/train/notes.txt").write_text("added later\n")
    code, out, _ = flexlock(capsys, "verify", "results/train")
    assert 3 == code
    assert "extra" in next(line for line in out.splitlines() if "notes.txt" in line)


def test_show_lists_the_outputs(workdir: Path, capsys: Any) -> None:
    assert 0 == train.cli([])
    code, out, _ = flexlock(capsys, "show", "results/train")
    listed = out.split("outputs\n", 1)[1].splitlines()[:2]
    assert 0 == code
    assert ["model.txt", "../../figures/curve.txt"] == [line.split()[0] for line in listed]


def test_diff_of_two_runs_shows_their_outputs_apart_from_the_identity(
    workdir: Path, capsys: Any
) -> None:
    assert 0 == train.cli(["-o", "save_dir", "results/a"])
    assert 0 == train.cli(["-o", "save_dir", "results/b", "-o", "lr", "0.2"])
    code, out, _ = flexlock(capsys, "diff", "results/a", "results/b")
    assert 0 == code
    assert "outputs (not part of the identity)" in out
    assert "model.txt" in out.split("outputs (not part of the identity)", 1)[1]
