"""`flexlock show`: a run's summary and its lineage as text, JSON, dot and mermaid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flexlock.core import load
from tests.cli._inspect_helpers import flexlock, flexlock_subprocess, write_sheet


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A diamond: download -> (features, labels) -> train."""
    monkeypatch.chdir(tmp_path)
    Path("raw.csv").write_text("a,b\n1,2\n")
    for name in ("download", "features", "labels", "train"):
        Path("results", name).mkdir(parents=True)
    write_sheet(Path("results/download"), data=[Path("raw.csv")])
    write_sheet(Path("results/features"), prevs=[Path("results/download")], config={"k": 1})
    write_sheet(Path("results/labels"), prevs=[Path("results/download")], config={"k": 2})
    write_sheet(
        Path("results/train"),
        config={"lr": 0.1, "model": {"name": "resnet"}},
        prevs=[Path("results/features"), Path("results/labels")],
    )
    return tmp_path


def test_show_prints_status_times_and_config(pipeline: Path, capsys: Any) -> None:
    code, out, _ = flexlock(capsys, "show", "results/train")
    assert (code, "succeeded" in out.splitlines()[0], "(1m30s)" in out, "  lr: 0.1" in out) == (
        0,
        True,
        True,
        True,
    )


def test_show_prints_data_inputs_with_hash_and_size(pipeline: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "show", "results/download")
    assert any(line.split()[:1] == ["raw.csv"] and "8 B" in line for line in out.splitlines())


def lineage_lines(out: str) -> list[str]:
    """Return the lineage tree's lines without status and id."""
    lines = out.splitlines()
    return [line[2:].rsplit("  ", 2)[0] for line in lines[lines.index("lineage") + 1 :]]


def test_show_draws_the_lineage_tree(pipeline: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "show", "results/train")
    assert lineage_lines(out) == [
        "results/train",
        "├── results/features",
        "│   └── results/download",
        "└── results/labels",
        "    └── results/download",
    ]


def test_show_draws_a_repeated_upstream_subtree_once(pipeline: Path, capsys: Any) -> None:
    Path("results/prepare").mkdir()
    write_sheet(Path("results/prepare"), prevs=[Path("results/download")])
    write_sheet(Path("results/features"), prevs=[Path("results/prepare")], config={"k": 1})
    write_sheet(Path("results/labels"), prevs=[Path("results/prepare")], config={"k": 2})
    write_sheet(Path("results/train"), prevs=[Path("results/features"), Path("results/labels")])
    _, out, _ = flexlock(capsys, "show", "results/train")
    assert (out.count("(seen above)"), out.count("results/download")) == (1, 1)


def test_show_json_prints_the_whole_sheet(pipeline: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "show", "results/train", "--format", "json")
    assert json.loads(out)["id"] == load(Path("results/train/run.lock")).id


def test_show_dot_draws_each_run_once_and_each_edge(pipeline: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "show", "results/train", "--format", "dot")
    assert (out.startswith("digraph lineage {"), out.count("[label="), out.count("->")) == (
        True,
        4,
        4,
    )


def test_show_mermaid_draws_a_flowchart(pipeline: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "show", "results/train", "-f", "mermaid")
    assert (out.splitlines()[0], out.count("-->")) == ("flowchart LR", 4)


def test_show_of_a_failed_run_prints_the_error(tmp_path: Path, capsys: Any) -> None:
    from flexlock.core import ErrorRecord, RunLock, dump

    dump(
        RunLock(
            id="sha256:" + "0" * 64,
            status="failed",
            created="2026-11-26T12:00:00Z",
            error=ErrorRecord("ValueError", "lr must be positive", "File x, line 3"),
        ),
        tmp_path / "run.lock",
    )
    _, out, _ = flexlock(capsys, "show", str(tmp_path))
    assert "ValueError: lr must be positive" in out


def test_show_of_a_bad_path_exits_2_without_traceback(tmp_path: Path) -> None:
    result = flexlock_subprocess("show", "missing-run", cwd=tmp_path)
    assert (result.returncode, "missing-run" in result.stderr, "Traceback" in result.stderr) == (
        2,
        True,
        False,
    )
