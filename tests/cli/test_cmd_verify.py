"""`flexlock verify`: exit codes, the readable report, --json and --fast."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli._inspect_helpers import flexlock, flexlock_subprocess, write_sheet


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    Path("raw.csv").write_text("a,b\n1,2\n")
    Path("results").mkdir()
    write_sheet(Path("results"), data=[Path("raw.csv")])
    return tmp_path


def test_verify_of_an_untouched_run_exits_0(run: Path, capsys: Any) -> None:
    code, out, _ = flexlock(capsys, "verify", "results")
    assert (code, out.splitlines()[-1]) == (0, "ok: 1 checks passed")


def test_verify_of_a_changed_input_exits_3_and_names_it(run: Path, capsys: Any) -> None:
    Path("raw.csv").write_text("a,b\n1,3\n")
    code, out, _ = flexlock(capsys, "verify", "results")
    assert (code, "raw.csv  changed" in out, out.splitlines()[-1]) == (
        3,
        True,
        "MISMATCH: 1 of 1 checks failed",
    )


def test_verify_json_reports_each_check(run: Path, capsys: Any) -> None:
    Path("raw.csv").unlink()
    code, out, _ = flexlock(capsys, "verify", "results", "--json")
    report = json.loads(out)
    assert (code, report["ok"], report["data"][0]["status"]) == (3, False, "missing")


def test_verify_fast_says_contents_were_not_hashed(run: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "verify", "results", "--fast")
    assert "contents NOT hashed" in out.splitlines()[0]


def test_verify_of_several_runs_exits_3_if_any_fails(run: Path, capsys: Any) -> None:
    Path("other").mkdir()
    Path("raw2.csv").write_text("x\n")
    write_sheet(Path("other"), data=[Path("raw2.csv")])
    Path("raw2.csv").write_text("y\n")
    code, _, _ = flexlock(capsys, "verify", "results", "other")
    assert code == 3


def test_verify_can_skip_a_section(run: Path, capsys: Any) -> None:
    Path("raw.csv").unlink()
    code, _, _ = flexlock(capsys, "verify", "results", "--no-data")
    assert code == 0


def test_verify_of_a_bad_path_exits_2_without_traceback(tmp_path: Path) -> None:
    result = flexlock_subprocess("verify", "nowhere", cwd=tmp_path)
    assert (result.returncode, "nowhere" in result.stderr, "Traceback" in result.stderr) == (
        2,
        True,
        False,
    )


def test_verify_of_a_corrupt_sheet_exits_2_naming_the_line(tmp_path: Path) -> None:
    (tmp_path / "run.lock").write_text("flexlock: 1\nid: a\nid: b\n")
    result = flexlock_subprocess("verify", ".", cwd=tmp_path)
    assert (result.returncode, "run.lock:3" in result.stderr) == (2, True)
