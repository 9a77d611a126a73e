"""Pull's staging area and its all-or-nothing move into `--into`.

Everything a pull restores is first laid out, exactly as it will end up, in a
staging tree inside `--into` (`.flexlock-pull-<random>/tree`, on the same file
system, so moving is a rename). Only when every check passed is it moved into
place, and only where nothing conflicts; a move that fails half-way is undone.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from flexlock.cli._transfer import sha256_file
from flexlock.core import ConfigError

__all__ = [
    "STAGING_PREFIX",
    "Staging",
    "check_into",
    "conflicts",
    "inside",
    "move_into_place",
    "repo_place",
]

STAGING_PREFIX = ".flexlock-pull-"


def inside(root: Path, path: Path) -> bool:
    """Tell whether `path`, symlinks resolved, is `root` or under it."""
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    return real == real_root or real.is_relative_to(real_root)


def repo_place(key: str) -> Path:
    """Return where repo `key` (its path relative to the run's cwd) goes under `--into`.

    Raises:
        ConfigError: the repo lies outside the run's working directory (`..`, absolute).
    """
    normal = os.path.normpath(key)
    if Path(normal).is_absolute() or normal == ".." or normal.startswith("../"):
        raise ConfigError(
            f"repo {key!r} of the run lies outside the run's working directory, so it cannot "
            "be restored inside --into (which becomes that directory); pull with --no-code and "
            f"clone it beside --into at {key!r} yourself (git clone URL; git checkout TAG)"
        )
    return Path() if normal == "." else Path(normal)


def check_into(into: Path, *, merge: bool) -> None:
    """Refuse a non-empty `--into` unless `merge` (leftover pull staging does not count).

    Raises:
        ConfigError: `into` is not a directory, or not empty without `merge`.
    """
    if into.exists() and not into.is_dir():
        raise ConfigError(f"--into {into} exists and is not a directory")
    if merge or not into.exists():
        return
    present = sorted(p.name for p in into.iterdir() if not p.name.startswith(STAGING_PREFIX))
    if present:
        raise ConfigError(
            f"--into {into} is not empty ({', '.join(present[:5])}); pull into an empty "
            "directory, or pass --merge to add the run beside what is there (refused where a "
            "file would differ)"
        )


class Staging:
    """A private staging directory inside `into`, removed on exit whatever happens."""

    def __init__(self, into: Path) -> None:
        self.root = into / f"{STAGING_PREFIX}{secrets.token_hex(6)}"
        self.tree = self.root / "tree"  # laid out exactly as it will be under `into`
        self.downloads = self.root / "downloads"  # one folder per run, as on the remote

    def __enter__(self) -> Staging:
        self.root.mkdir(parents=True)
        self.tree.mkdir()
        self.downloads.mkdir()
        return self

    def __exit__(self, *_exc: object) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _entries(root: Path) -> Iterator[Path]:
    """Yield the files, symlinks and `.git` directories under `root` (relative), top-down."""
    for directory, dirs, files in os.walk(root):
        here = Path(directory)
        if ".git" in dirs:
            dirs.remove(".git")
            yield (here / ".git").relative_to(root)
        for name in sorted(dirs):
            if (here / name).is_symlink():
                yield (here / name).relative_to(root)
        dirs[:] = [d for d in dirs if not (here / d).is_symlink()]
        for name in sorted(files):
            yield (here / name).relative_to(root)


def _same(staged: Path, existing: Path) -> bool:
    if staged.is_symlink() or existing.is_symlink():
        return (
            staged.is_symlink()
            and existing.is_symlink()
            and staged.readlink() == existing.readlink()
        )
    if staged.is_dir() or existing.is_dir():
        return False  # a `.git` is never merged
    return (
        existing.is_file()
        and staged.stat().st_size == existing.stat().st_size
        and sha256_file(staged) == sha256_file(existing)
    )


def conflicts(tree: Path, into: Path) -> list[str]:
    """Return the staged paths that `into` already holds with other content (or outside it)."""
    found = []
    for rel in _entries(tree):
        target = into / rel
        if not inside(into, target.parent):
            found.append(f"{rel} (its directory leads outside {into})")
        elif os.path.lexists(target) and not _same(tree / rel, target):
            found.append(str(rel))
        elif any(
            os.path.lexists(into / parent) and not (into / parent).is_dir()
            for parent in list(rel.parents)[:-1]
        ):
            found.append(f"{rel} (a parent is a file in {into})")
    return found


def move_into_place(tree: Path, into: Path) -> int:
    """Move every staged entry into `into`, skipping identical ones; return how many moved.

    The caller checked `conflicts` first; if a move still fails (a disk error, a race),
    every entry moved so far is moved back before the error propagates.
    """
    moved: list[tuple[Path, Path]] = []
    made: list[Path] = []
    try:
        for rel in _entries(tree):
            source, target = tree / rel, into / rel
            if os.path.lexists(target):
                if _same(source, target):
                    continue
                raise ConfigError(f"{target} appeared during the pull; nothing was moved")
            for parent in reversed(list(rel.parents)[:-1]):
                if not (into / parent).exists():
                    (into / parent).mkdir()
                    made.append(into / parent)
            source.rename(target)
            moved.append((target, source))
    except BaseException:
        for target, source in reversed(moved):
            with contextlib.suppress(OSError):
                target.rename(source)
        for directory in reversed(made):
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    return len(moved)
