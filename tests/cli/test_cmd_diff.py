"""`flexlock diff`: why two runs differ, and why a run would re-run now."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli._inspect_helpers import flexlock, flexlock_subprocess, write_sheet


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two training runs on one prepared dataset, with different configs."""
    monkeypatch.chdir(tmp_path)
    Path("raw.csv").write_text("a,b\n1,2\n")
    for name in ("prepare", "a", "b"):
        Path(name).mkdir()
    write_sheet(Path("prepare"), data=[Path("raw.csv")])
    write_sheet(
        Path("a"),
        config={"lr": 0.1, "model": {"depth": 18}, "seed": 1},
        prevs=[Path("prepare")],
        packages={"numpy": "1.26.0", "torch": "2.1.0"},
    )
    write_sheet(
        Path("b"),
        config={"lr": 0.2, "model": {"depth": 18}, "epochs": 3},
        prevs=[Path("prepare")],
        packages={"numpy": "2.0.0", "torch": "2.1.0"},
    )
    return tmp_path


def test_diff_shows_changed_config_old_to_new(runs: Path, capsys: Any) -> None:
    code, out, _ = flexlock(capsys, "diff", "a", "b")
    assert (code, "lr      0.1 → 0.2" in out) == (0, True)


def test_diff_shows_added_and_removed_config_keys(runs: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "diff", "a", "b")
    assert ("seed    removed (was 1)" in out, "epochs  added (3)" in out) == (True, True)


def test_diff_shows_changed_package_versions_with_env(runs: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "diff", "a", "b", "--env")
    assert "packages.numpy  1.26.0 → 2.0.0" in out


def test_diff_no_env_hides_the_environment(runs: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "diff", "a", "b", "--no-env")
    assert "numpy" not in out


def test_diff_explains_a_changed_upstream_run_recursively(runs: Path, capsys: Any) -> None:
    Path("raw.csv").write_text("changed\n")
    write_sheet(Path("prepare"), data=[Path("raw.csv")])
    write_sheet(
        Path("b"), config={"lr": 0.1, "model": {"depth": 18}, "seed": 1}, prevs=[Path("prepare")]
    )
    _, out, _ = flexlock(capsys, "diff", "a", "b", "--no-env")
    upstream = out[out.index("\nupstream") + 1 :]  # the section, not the verdict line
    assert ("prepare" in upstream.splitlines()[1], "raw.csv" in upstream) == (True, True)


def test_diff_of_two_equal_runs_says_same_identity(runs: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "diff", "a", "a")
    assert ("same identity" in out, out.splitlines()[-1]) == (True, "no differences")


def test_diff_json_lists_the_changes(runs: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "diff", "a", "b", "--json")
    changes = json.loads(out)["changes"]
    assert {
        key: value
        for key, value in changes[0].items()
        if key in ("section", "key", "kind", "old", "new")
    } == {"section": "config", "key": "lr", "kind": "changed", "old": 0.1, "new": 0.2}


def test_diff_of_one_run_against_now_names_what_would_rerun_it(runs: Path, capsys: Any) -> None:
    Path("raw.csv").write_text("changed\n")
    code, out, _ = flexlock(capsys, "diff", "prepare", "--no-env")
    assert (code, "raw.csv" in out, out.splitlines()[0]) == (
        0,
        True,
        "would re-run: data changed: raw.csv",
    )


def test_diff_of_an_up_to_date_run_says_it_would_be_skipped(runs: Path, capsys: Any) -> None:
    _, out, _ = flexlock(capsys, "diff", "prepare", "--no-env")
    assert out.splitlines()[0] == "up to date: running it again would be skipped"


def test_diff_of_a_bad_path_exits_2_without_traceback(runs: Path) -> None:
    result = flexlock_subprocess("diff", "a", "nowhere", cwd=runs)
    assert (result.returncode, "nowhere" in result.stderr, "Traceback" in result.stderr) == (
        2,
        True,
        False,
    )


SCRIPT = """
import attrs
from flexlock.cli import clicfg


@attrs.define
class Config:
    lr: float = 0.1
    data: str = "${runlock_data:raw.csv}"
    save_dir: str = "results/a"


@clicfg
def main(cfg: Config) -> None:
    print(cfg.lr)


if __name__ == "__main__":
    main()
"""


def test_ls_and_diff_explain_runs_written_by_a_real_clicfg_script(git_repo: Path) -> None:
    import subprocess
    import sys

    from tests._helpers import git

    (git_repo / "train.py").write_text(SCRIPT)
    (git_repo / "raw.csv").write_text("a,b\n1,2\n")
    (git_repo / ".gitignore").write_text("results/\n")
    git(git_repo, "add", ".")
    git(git_repo, "commit", "-q", "-m", "script")
    for lr, save_dir in (("0.1", "results/a"), ("0.2", "results/b")):
        subprocess.run(
            [sys.executable, "train.py", "-o", f"lr={lr}", "-o", f"save_dir={save_dir}"],
            cwd=git_repo,
            check=True,
            capture_output=True,
        )
    listing = flexlock_subprocess("ls", "results", "--columns", "lr", cwd=git_repo)
    explained = flexlock_subprocess("diff", "results/a", "results/b", "--no-env", cwd=git_repo)
    assert (
        [line.split()[-1] for line in listing.stdout.splitlines()[1:]],
        "lr        0.1 → 0.2" in explained.stdout,
        "code" in explained.stdout,
    ) == (["0.1", "0.2"], True, False)
