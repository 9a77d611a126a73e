"""A project hashes its data with one algorithm: `[tool.flexlock] hash` in its pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flexlock.core import ConfigError, clear_capture_cache, hash_path, load, runlock
from flexlock.core._digest import hash_file, hash_file_threaded, hasher_factory
from tests._helpers import git


def _project(repo: Path, table: str) -> Path:
    (repo / ".gitignore").write_text("results/\n")
    (repo / "pyproject.toml").write_text(f'[project]\nname = "demo"\n\n[tool.flexlock]\n{table}\n')
    (repo / "data.bin").write_bytes(b"some data\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "project")
    return repo


def _run(project: Path, monkeypatch: pytest.MonkeyPatch, **options: object) -> Path:
    monkeypatch.chdir(project)
    with runlock(
        config={"save_dir": "results/run"},
        repos=["."],
        data=["data.bin"],
        outputs=["out.txt"],
        packages=False,
        finalize_at_exit=False,
        **options,
    ) as run:
        (run.path.parent / "out.txt").write_text("result\n")
    clear_capture_cache()
    return project / "results" / "run"


def test_every_run_of_the_project_hashes_data_and_outputs_with_its_algorithm(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(git_repo, 'hash = "blake3"')
    sheet = load(_run(project, monkeypatch) / "run.lock")
    assert sheet.data["data.bin"].hash == hash_path(project / "data.bin", algorithm="blake3").hash
    assert {record.hash.partition(":")[0] for record in sheet.outputs.values() if record.hash} == {
        "blake3"
    }


def test_another_algorithm_than_the_projects_is_refused(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(git_repo, 'hash = "blake3"')
    with pytest.raises(ConfigError, match=r'pyproject.toml: \[tool.flexlock\] hash = "blake3"'):
        _run(project, monkeypatch, algorithm="sha256")


def test_without_the_package_the_run_fails_naming_the_extra_never_falls_back(
    git_repo: Path,
) -> None:
    # blake3 is installed here: the child process hides it (sys.modules entry None makes
    # `import blake3` fail, as on a machine without the package).
    project = _project(git_repo, 'hash = "blake3"')
    script = textwrap.dedent(
        """
        import sys
        sys.modules["blake3"] = None
        from flexlock.core import ConfigError, runlock
        try:
            with runlock(config={"save_dir": "results/run"}, repos=["."], data=["data.bin"],
                         packages=False, finalize_at_exit=False):
                pass
        except ConfigError as error:
            print(error)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=project, capture_output=True, text=True, check=True
    )
    assert "flexlock-core[blake3]" in done.stdout
    assert "pyproject.toml" in done.stdout
    assert not (project / "results" / "run" / "run.lock").exists()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("hahs = 'blake3'", r"unknown key\(s\) hahs; accepted: code, hash"),
        ("hash = 3", r"tool.flexlock.hash must be the name of a hash algorithm"),
        ("hash = 'md4'", r"unknown hash algorithm 'md4'"),
    ],
)
def test_a_bad_setting_is_an_error_naming_the_key(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch, table: str, message: str
) -> None:
    project = _project(git_repo, table)
    with pytest.raises(ConfigError, match=message):
        _run(project, monkeypatch)


def test_blake3_threads_over_mmap_give_the_single_thread_digest(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(range(256)) * 20_000)  # ~5 MiB: several blake3 chunks per thread
    assert hash_file_threaded(str(path), 2) == hash_file(str(path), hasher_factory("blake3"))
