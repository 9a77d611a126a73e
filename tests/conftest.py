"""Shared fixtures: hermetic git, service requirements, subprocess helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._helpers import git


@pytest.fixture(autouse=True)
def _hermetic_git(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No global/system git config, a fixed author, no signing, for every test."""
    home = tmp_path_factory.getbasetemp() / "git-home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key, value in {
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.com",
        "GIT_COMMITTER_NAME": "Test Author",
        "GIT_COMMITTER_EMAIL": "author@example.com",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FLEXLOCK_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "flexlock-cache"))
    monkeypatch.delenv("FLEXLOCK_DEBUG", raising=False)
    monkeypatch.delenv("FLEXLOCK_TRACEBACK", raising=False)


@pytest.fixture(autouse=True)
def _no_registered_inputs() -> None:
    """Start each test with an empty data/prev registry (it is process-wide, as in a script).

    A test that interpolates `${runlock_prev:...}` in-process would otherwise hand its
    upstream run to the next test's runlock().
    """
    from flexlock.core import clear_registered

    clear_registered()


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A fresh repository with one commit holding README.md."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "commit.gpgsign", "false")
    (repo / "README.md").write_text("hello\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


# --- install sets -------------------------------------------------------------
# tests/<part>/ runs only when flexlock-<part> is installed. FLEXLOCK_INSTALL_SET
# (set by nox and scripts/test.sh) says what must be installed: a distribution
# of the set that is missing is an error, never a silent skip.
_PARTS_OF_SET = {
    "core": ("core",),
    "cli": ("core", "cli"),
    "all": ("core", "cli", "mlflow", "slurm"),
}


def installed(part: str) -> bool:
    """Whether flexlock.<part> is importable here."""
    import importlib.util

    return importlib.util.find_spec(f"flexlock.{part}") is not None


def pytest_configure(config: pytest.Config) -> None:
    import os

    wanted = os.environ.get("FLEXLOCK_INSTALL_SET")
    if wanted is None:
        return
    if wanted not in _PARTS_OF_SET:
        raise pytest.UsageError(
            f"FLEXLOCK_INSTALL_SET={wanted!r}: expected one of {sorted(_PARTS_OF_SET)}"
        )
    missing = [part for part in _PARTS_OF_SET[wanted] if not installed(part)]
    if missing:
        raise pytest.UsageError(
            f"install set {wanted!r} needs flexlock-{', flexlock-'.join(missing)} installed"
        )


collect_ignore_glob = [
    f"{part}/*" for part in ("cli", "mlflow", "slurm") if not installed(part)
] + ([] if all(installed(p) for p in ("cli", "mlflow", "slurm")) else ["e2e/*"])


def pytest_runtest_setup(item: pytest.Item) -> None:
    for part in ("cli", "mlflow", "slurm"):
        if item.get_closest_marker(f"needs_{part}") and not installed(part):
            pytest.skip(f"flexlock-{part} is not installed in this install set")
