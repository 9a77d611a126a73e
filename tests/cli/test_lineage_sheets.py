"""`show`, `verify` and `diff` over sheets that hold each upstream run once (schema 2).

The same commands over a schema-1 sheet (a real one, written before schema 2) give
the same answers as over that sheet rewritten in schema 2.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from flexlock.core import dump, load, runlock
from tests.cli._inspect_helpers import flexlock

FIXTURE = Path(__file__).parents[1] / "core" / "data" / "schema1_pipeline"


def stage(
    save_dir: str, *, data: Sequence[str] = (), prevs: Sequence[str] = (), **config: Any
) -> None:
    """Run one real stage into `save_dir` that writes one output file."""
    with runlock({"save_dir": save_dir, **config}, repos=[], data=list(data), prevs=list(prevs)):
        Path(save_dir, "out.txt").write_text(f"{save_dir} {config}\n")


def fan_in(root: Path, *, rows: int, width: int = 3) -> Path:
    """Run prepare -> `width` train runs -> evaluate under `root`; return evaluate's directory."""
    root.mkdir(exist_ok=True)
    Path(root, "raw.csv").write_text("x\n1\n2\n")
    stage(f"{root}/prepare", data=[f"{root}/raw.csv"], rows=rows)
    for index in range(width):
        stage(f"{root}/train_{index}", prevs=[f"{root}/prepare"], seed=index)
    stage(f"{root}/evaluate", prevs=[f"{root}/train_{index}" for index in range(width)])
    return Path(root, "evaluate")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("form", ["text", "mermaid", "dot"])
def test_show_draws_the_same_lineage_from_schema1_and_schema2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, form: str
) -> None:
    shutil.copytree(FIXTURE, tmp_path / "project")
    monkeypatch.chdir(tmp_path / "project")
    sheet = Path("results/evaluate/run.lock")
    _, before, _ = flexlock(capsys, "show", str(sheet), "--format", form)
    dump(attrs.evolve(load(sheet), flexlock=2), sheet)
    _, after, _ = flexlock(capsys, "show", str(sheet), "--format", form)
    assert ("\nupstreams:\n" in sheet.read_text(encoding="utf-8"), after) == (True, before)


def test_verify_recursive_checks_a_fan_in_and_names_a_changed_shared_input(
    project: Path, capsys: Any
) -> None:
    evaluate = fan_in(Path("pipeline"), rows=2)
    passed, _, _ = flexlock(capsys, "verify", "--recursive", str(evaluate))
    Path("pipeline/raw.csv").write_text("x\n1\n3\n")
    failed, out, _ = flexlock(capsys, "verify", "--recursive", str(evaluate))
    changed = [line.split()[:3] for line in out.splitlines() if "changed" in line]
    assert (passed, failed, changed) == (0, 3, [["data", "pipeline/raw.csv", "changed"]])


def test_diff_follows_a_changed_shared_upstream_into_its_config(project: Path, capsys: Any) -> None:
    evaluate = fan_in(Path("pipeline"), rows=2, width=2)
    Path("before").mkdir()
    shutil.copy(evaluate / "run.lock", "before/run.lock")
    fan_in(Path("pipeline"), rows=3, width=2)
    code, out, _ = flexlock(capsys, "diff", "--no-env", "before", str(evaluate))
    # one line per path to prepare, as diff always drew it
    assert (code, out.count("rows  2 → 3")) == (0, 2)
