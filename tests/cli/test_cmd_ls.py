"""`flexlock ls`: listing, filtering and sorting the runs under a directory."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from flexlock.core import Status
from tests.cli._inspect_helpers import flexlock, flexlock_subprocess, write_sheet


@pytest.fixture
def sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three runs of a learning-rate sweep: two succeeded, one failed."""
    monkeypatch.chdir(tmp_path)
    runs: list[tuple[float, Status]] = [(0.1, "succeeded"), (0.01, "failed"), (1.0, "succeeded")]
    for index, (lr, status) in enumerate(runs):
        run_dir = Path("results") / f"lr={lr}"
        run_dir.mkdir(parents=True)
        write_sheet(
            run_dir,
            config={"lr": lr, "model": {"name": "resnet", "depth": 18 + index}},
            status=status,
            created=f"2026-11-26T12:0{index}:00Z",
        )
    return tmp_path


def rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()[1:]]


def test_ls_prints_one_row_per_run_with_status_id_created_and_save_dir(
    sweep: Path, capsys: Any
) -> None:
    code, out, _ = flexlock(capsys, "ls", "results")
    assert (code, [row[0] for row in rows(out)], rows(out)[0][3:5]) == (
        0,
        ["succeeded", "failed", "succeeded"],
        ["12:00:00", "results/lr=0.1"],
    )


def test_ls_shows_the_config_keys_that_differ_between_runs(sweep: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "ls", "results")
    assert out.splitlines()[0].split() == [
        "status",
        "id",
        "created",
        "save_dir",
        "lr",
        "model.depth",
    ]


def test_ls_shows_the_id_prefix(sweep: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "ls", "results/lr=0.1")
    lock_id = json.loads(flexlock(capsys, "ls", "--json", "results/lr=0.1")[1])[0]["id"]
    assert rows(out)[0][1] == lock_id.removeprefix("sha256:")[:12]


def test_ls_filters_by_status(sweep: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "ls", "results", "--status", "failed", "--columns", "lr")
    assert [row[-1] for row in rows(out)] == ["0.01"]


def test_ls_filters_by_config_value(sweep: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "ls", "results", "-o", "lr=0.01", "--columns", "lr")
    assert [row[-1] for row in rows(out)] == ["0.01"]


def test_ls_filters_by_nested_config_pattern(sweep: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "ls", "results", "-o", "model.name=res*")
    assert len(rows(out)) == 3


def test_ls_rejects_a_filter_without_equals(sweep: Path, capsys: Any) -> None:
    code, _, err = flexlock(capsys, "ls", "results", "-o", "lr")
    assert (code, "expected KEY=VALUE" in err) == (2, True)


def test_ls_sorts_by_a_config_key_numerically(sweep: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "ls", "results", "--sort", "lr", "--columns", "lr")
    assert [row[-1] for row in rows(out)] == ["0.01", "0.1", "1.0"]


def test_ls_reverses_the_order(sweep: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "ls", "results", "--sort", "lr", "-r", "--columns", "lr")
    assert [row[-1] for row in rows(out)] == ["1.0", "0.1", "0.01"]


def test_ls_json_lists_every_run_with_its_config(sweep: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "ls", "results", "--json")
    assert [run["config"]["lr"] for run in json.loads(out)] == [0.1, 0.01, 1.0]


def test_ls_lists_an_invalid_sheet_and_warns(sweep: Path, capsys: Any) -> None:
    (sweep / "results" / "broken").mkdir()
    (sweep / "results" / "broken" / "run.lock").write_text("flexlock: 1\nid: [\n")
    code, out, err = flexlock(capsys, "ls", "results", "--status", "invalid")
    assert (code, rows(out)[0][0], "broken/run.lock" in err) == (0, "invalid", True)


def test_ls_of_a_directory_without_runs_says_so(tmp_path: Path, capsys: Any) -> None:
    code, out, err = flexlock(capsys, "ls", str(tmp_path))
    assert (code, out, "no runs under" in err) == (0, "", True)


def test_ls_of_a_missing_directory_exits_2_without_traceback(tmp_path: Path) -> None:
    result = flexlock_subprocess("ls", "nowhere", cwd=tmp_path)
    assert (
        result.returncode,
        "nowhere: no such directory" in result.stderr,
        "Traceback" in result.stderr,
    ) == (2, True, False)


def test_ls_piped_output_has_no_colour(sweep: Path) -> None:
    result = flexlock_subprocess("ls", "results", cwd=sweep, env={"FORCE_COLOR": ""})
    assert (result.returncode, "\x1b[" in result.stdout) == (0, False)


def test_ls_force_color_colours_even_when_piped(sweep: Path) -> None:
    result = flexlock_subprocess("ls", "results", cwd=sweep, env={"FORCE_COLOR": "1"})
    assert "\x1b[32msucceeded" in result.stdout


def test_table_aligns_wide_characters_by_terminal_cells() -> None:
    from flexlock.cli._output import Printer

    stream = io.StringIO()
    Printer(stream, color=False).table(["name", "lr"], [["日本", "0.1"], ["ab", "0.2"]])
    assert stream.getvalue().splitlines() == ["name  lr", "日本  0.1", "ab    0.2"]


def test_no_color_wins_over_force_color(monkeypatch: pytest.MonkeyPatch) -> None:
    from flexlock.cli._output import Printer

    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert Printer(io.StringIO()).style("x", "red") == "x"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_table_on_a_terminal_shortens_the_widest_column_to_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flexlock.cli._output import Printer

    monkeypatch.setenv("COLUMNS", "30")
    stream = _Terminal()
    Printer(stream, color=False).table(["status", "save_dir"], [["ok", "results/" + "x" * 40]])
    assert stream.getvalue().splitlines()[1] == "ok      results/" + "x" * 13 + "…"  # 30 cells


def test_table_piped_keeps_every_character(monkeypatch: pytest.MonkeyPatch) -> None:
    from flexlock.cli._output import Printer

    monkeypatch.setenv("COLUMNS", "30")
    stream = io.StringIO()
    Printer(stream, color=False).table(["status", "save_dir"], [["ok", "results/" + "x" * 40]])
    assert stream.getvalue().splitlines()[1] == "ok      results/" + "x" * 40
