"""A project says once what its code is: `[tool.flexlock.code]` in its pyproject.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from flexlock.core import ConfigError, clear_capture_cache, load, rerun_reason, runlock
from tests._helpers import git


def _run(project: Path, monkeypatch: pytest.MonkeyPatch, **options: object) -> Path:
    monkeypatch.chdir(project)
    with runlock(
        config={"save_dir": "results/run"},
        repos=["."],
        packages=False,
        finalize_at_exit=False,
        **options,
    ):
        pass
    clear_capture_cache()
    return project / "results" / "run"


@pytest.fixture
def project(git_repo: Path) -> Path:
    (git_repo / ".gitignore").write_text("results/\n")
    (git_repo / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n[tool.flexlock.code]\nexclude = ["notes/", "*.ipynb"]\n'
    )
    git(git_repo, "add", ".")
    git(git_repo, "commit", "-q", "-m", "project")
    return git_repo


def test_the_projects_scope_is_recorded_and_keeps_notes_out_of_the_code(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _run(project, monkeypatch)
    assert ("notes/", "*.ipynb") == load(run / "run.lock").code["."].exclude
    (project / "notes").mkdir()
    (project / "notes" / "ideas.txt").write_text("try a bigger model\n")
    (project / "analysis.ipynb").write_text("{}\n")
    assert rerun_reason(run) is None
    (project / "train.py").write_text("print('new code')\n")  # in scope: a change
    clear_capture_cache()
    assert "code changed in ." == rerun_reason(run)


def test_without_a_scope_the_exact_tree_is_the_code(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (git_repo / ".gitignore").write_text("results/\n")
    git(git_repo, "add", ".")
    git(git_repo, "commit", "-q", "-m", "ignore results")
    run = _run(git_repo, monkeypatch)
    (git_repo / "notes.txt").write_text("an untracked note\n")
    assert "code changed in ." == rerun_reason(run)


def test_run_options_add_to_the_projects_scope(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _run(project, monkeypatch, exclude=["scratch/"])
    assert ("notes/", "*.ipynb", "scratch/") == load(run / "run.lock").code["."].exclude


def test_a_rerun_check_asked_with_another_scope_says_so(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _run(project, monkeypatch, exclude=["scratch/"])
    assert rerun_reason(run, include=(), exclude=("scratch/",)) is None
    assert "code scope changed in ." == rerun_reason(run, include=(), exclude=())


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[tool.flexlock.code\nexclude = 1\n", "invalid TOML"),
        ('[tool.flexlock.code]\nexclude = "notes/"\n', "tool.flexlock.code.exclude must be a list"),
        ('[tool.flexlock.code]\nexlude = ["notes/"]\n', "unknown key(s) exlude"),
    ],
)
def test_a_bad_table_is_a_config_error_naming_the_file(
    project: Path, monkeypatch: pytest.MonkeyPatch, table: str, message: str
) -> None:
    (project / "pyproject.toml").write_text(table)
    with pytest.raises(ConfigError) as caught:
        _run(project, monkeypatch)
    assert str(caught.value).startswith("pyproject.toml: ")  # the file, from the run's cwd
    assert message in str(caught.value)


def test_diff_names_the_files_and_which_the_scope_now_leaves_out(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flexlock.core import diff_runs

    (git_repo / ".gitignore").write_text("results/\n")
    git(git_repo, "add", ".")
    git(git_repo, "commit", "-q", "-m", "ignore results")
    (git_repo / "notes.txt").write_text("an untracked note\n")
    monkeypatch.chdir(git_repo)
    for name in ("a", "b"):
        if name == "b":
            (git_repo / "pyproject.toml").write_text(
                '[tool.flexlock.code]\nexclude = ["notes.txt"]\n'
            )
        with runlock(
            config={"save_dir": f"results/{name}"},
            repos=["."],
            packages=False,
            finalize_at_exit=False,
        ):
            pass
    (change,) = diff_runs("results/a", "results/b").section("code")
    assert "code scope: include [] exclude [] → include [] exclude ['notes.txt']" in change.detail
    notes = next(line for line in change.detail if "notes.txt" in line and "scope:" not in line)
    assert notes.endswith("(outside the project's code scope now)")
    pyproject = next(line for line in change.detail if "pyproject.toml" in line)
    assert not pyproject.endswith("now)")


@pytest.mark.parametrize(
    ("spec", "path", "hidden"),
    [
        ("notes/", "notes/a/b.txt", True),
        ("notes/", "notes.txt", False),
        ("*.ipynb", "deep/dir/x.ipynb", True),
        ("data.csv", "data.csv", True),
        ("data.csv", "other/data.csv", False),
    ],
)
def test_scope_matches_paths_as_git_pathspecs_do(spec: str, path: str, hidden: bool) -> None:
    from flexlock.core._project import CodeScope

    assert hidden == CodeScope(exclude=(spec,)).hides(path)
