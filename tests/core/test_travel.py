"""A run follows its project: moved, copied or cloned elsewhere it is re-checked by itself.

Re-checks (`rerun_reason`, `verify`, `diff_current`) find each repo through where the
run is now (its save_dir and the repo's path relative to the run's working directory),
never through the absolute `root` the sheet recorded.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flexlock.core import clear_capture_cache, diff_current, load, rerun_reason, runlock, verify
from tests._helpers import git


def _run(
    project: Path, monkeypatch: pytest.MonkeyPatch, *, data: tuple[str, ...] = ("data/raw.csv",)
) -> Path:
    save_dir = "results/train"
    monkeypatch.chdir(project)
    with runlock(
        config={"save_dir": save_dir, "lr": 0.1},
        repos=["."],
        data=data,
        packages=False,
        finalize_at_exit=False,
    ):
        (project / save_dir / "model.txt").write_text("weights\n")
    return project / save_dir


@pytest.fixture
def project(git_repo: Path) -> Path:
    """A git project with a script, data and a git-ignored results folder."""
    (git_repo / "train.py").write_text("print('train')\n")
    (git_repo / ".gitignore").write_text("results/\n")
    (git_repo / "data").mkdir()
    (git_repo / "data" / "raw.csv").write_text("a,b\n1,2\n")
    git(git_repo, "add", ".")
    git(git_repo, "commit", "-q", "-m", "project")
    return git_repo


@pytest.fixture(autouse=True)
def _fresh_captures() -> None:
    clear_capture_cache()


def test_a_copy_is_judged_by_itself_while_the_original_changed(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _run(project, monkeypatch)
    copy = tmp_path / "copy"
    shutil.copytree(project, copy, symlinks=True)
    (project / "train.py").write_text("print('the original moved on')\n")  # original differs now
    monkeypatch.chdir(tmp_path)  # neither project is the current directory
    copied_run = copy / run.relative_to(project)
    assert rerun_reason(copied_run) is None
    report = verify(copied_run)
    assert report.ok, report
    assert [str(copy)] == [check.path for check in report.code]
    assert "code changed in ." == rerun_reason(run)  # the original is judged by itself too


def test_a_moved_project_resumes_verifies_and_diffs_without_its_original(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(project, monkeypatch)
    moved = tmp_path / "elsewhere" / "proj"
    moved.parent.mkdir()
    monkeypatch.chdir(tmp_path)
    shutil.move(project, moved)
    moved_run = moved / "results" / "train"
    assert rerun_reason(moved_run) is None
    assert verify(moved_run).ok
    sheet = load(moved_run / "run.lock")
    differences, reason = diff_current(moved_run)
    assert (None, []) == (reason, [c for c in differences.changes if c.section != "env"])
    assert str(project) == sheet.code["."].root  # the recorded root stays as information


def test_identity_does_not_depend_on_the_projects_absolute_path(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "other" / "place"
    shutil.copytree(project, copy, symlinks=True)
    first = load(_run(project, monkeypatch) / "run.lock")
    second = load(_run(copy, monkeypatch) / "run.lock")
    assert first.id == second.id
    assert first.code["."].root != second.code["."].root


def test_a_repo_that_cannot_be_found_names_where_it_looked_and_the_fix(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _run(project, monkeypatch, data=())
    lonely = tmp_path / "lonely" / "results" / "train"
    shutil.copytree(run, lonely)  # the results without their project
    shutil.rmtree(project)
    monkeypatch.chdir(tmp_path)
    reason = rerun_reason(lonely)
    assert reason is not None
    assert f"no git checkout at {tmp_path / 'lonely'}" in reason
    assert "--base DIR" in reason
    check = verify(lonely).code[0]
    assert ("missing", reason) == (check.status, check.detail)


def test_a_run_directory_can_say_where_its_repo_is_and_the_tree_must_still_match(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    run = _run(project, monkeypatch)
    apart = tmp_path / "apart" / "checkout"
    shutil.copytree(project, apart, symlinks=True)
    (project / "train.py").write_text("print('the recorded place moved on')\n")
    locations = run / ".flexlock" / "repos.json"
    locations.write_text(json.dumps({".": str(Path("..", "..", "..", "apart", "checkout"))}))
    monkeypatch.chdir(tmp_path)
    assert rerun_reason(run) is None  # judged at the place the run directory names
    (apart / "train.py").write_text("print('edited there too')\n")
    clear_capture_cache()
    assert "code changed in ." == rerun_reason(run)
    (apart / "train.py").write_text("print('train')\n")  # as recorded again
    clear_capture_cache()
    assert rerun_reason(run) is None
    locations.write_text(json.dumps({".": str(apart)}))  # absolute: ignored
    clear_capture_cache()
    assert "code changed in ." == rerun_reason(run)  # back to the recorded layout
