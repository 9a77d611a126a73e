"""Where a run's files are, and how a sheet's recorded paths resolve on this machine.

Shared by the writer (`runlock`) and the readers (verify, diff, rerun checks):
neither owns it. Relative paths in a sheet are relative to the directory the run
was started from. They resolve against, in order: the directory the run sits in
minus its recorded relative `save_dir` (so a project moved or pulled elsewhere as a
whole still resolves), the recorded `env.cwd`, the current directory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from flexlock.core._errors import GitError, LockFileError

if TYPE_CHECKING:  # for annotations only: `flexlock show` resolves a path without the model
    from flexlock.core._model import RunLock

__all__ = [
    "LOCK_NAME",
    "REPO_LOCATIONS",
    "STATE_DIR",
    "TASK_LOG_NAMES",
    "base_directories",
    "find_manifest",
    "manifest_path",
    "resolve_lock_path",
    "resolve_recorded",
    "resolve_repo",
    "search_bases",
    "working_directory",
]

LOCK_NAME = "run.lock"

#: flexlock's own files inside a save_dir (lock, history, manifests, kept inputs).
STATE_DIR = ".flexlock"

#: Where a run's repos are when not at their recorded place (written by `flexlock pull`
#: for an upstream run whose code is checked out apart): {repo key: path from the run dir}.
REPO_LOCATIONS = "repos.json"

#: Where a task of a task list writes its captured stdout and stderr, in its save_dir.
TASK_LOG_NAMES = ("stdout.log", "stderr.log")

_GLOB_CHARS = frozenset("*?[")

PathLike = str | os.PathLike[str]


def manifest_path(save_dir: PathLike, data_key: str) -> Path:
    """Return where the file manifest of data input `data_key` is kept in `save_dir`.

    The name is the input path made filename-safe plus 8 hex digits of its hash,
    so distinct inputs never share a manifest: `.flexlock/manifests/data_raw-1a2b3c4d.txt`.
    """
    import hashlib

    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", data_key).strip("._")[:80] or "data"
    digest = hashlib.sha256(data_key.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return Path(save_dir) / STATE_DIR / "manifests" / f"{safe}-{digest}.txt"


def resolve_lock_path(target: str | os.PathLike[str]) -> Path:
    """Return the run.lock named by `target` (a run directory or the sheet itself).

    Raises:
        LockFileError: `target` does not exist or is a directory without a run.lock.
    """
    path = Path(target)
    if path.is_dir():
        lock = path / LOCK_NAME
        if not lock.is_file():
            raise LockFileError(
                f"{path}: no {LOCK_NAME} in this directory (is it a run's save_dir? "
                f"`flexlock ls {path}` lists the runs under it)"
            )
        return lock
    if not path.exists():
        raise LockFileError(f"{path}: no such file or directory")
    return path


def base_directories(
    lock: RunLock, lock_path: Path, base: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Return the directories a sheet's relative paths may be relative to, best first."""
    if base is not None:
        return [Path(base)]
    return search_bases(lock.save_dir, lock.env.cwd if lock.env is not None else None, lock_path)


def search_bases(save_dir: str | None, cwd: str | None, lock_path: Path) -> list[Path]:
    """Return the directories a sheet's relative paths may be relative to, best first.

    The project root the sheet's run directory sits in (its recorded relative
    save_dir stripped), then the run's recorded cwd, then the current directory.
    """
    bases = [root] if (root := _project_root(save_dir, lock_path)) is not None else []
    if cwd and Path(cwd).is_dir():
        bases.append(Path(cwd))
    bases.append(Path.cwd())
    return list(dict.fromkeys(bases))


def working_directory(lock: RunLock, lock_path: Path) -> Path | None:
    """Return where the run described by `lock` ran, as it is on this machine now.

    The project root its run directory sits in, else its recorded cwd if that
    exists here, else None.
    """
    root = _project_root(lock.save_dir, lock_path)
    if root is None and lock.env is not None and Path(lock.env.cwd).is_dir():
        root = Path(lock.env.cwd)
    return root


def _project_root(save_dir: str | None, lock_path: Path) -> Path | None:
    """Strip a relative recorded `save_dir` from the sheet's run directory, if it ends so."""
    run_dir = lock_path.resolve().parent
    if not save_dir or Path(save_dir).is_absolute():
        return None
    parts = Path(os.path.normpath(save_dir)).parts
    if not parts or parts == (".",) or ".." in parts or run_dir.parts[-len(parts) :] != parts:
        return None
    return run_dir.parents[len(parts) - 1]


def resolve_recorded(recorded: str, bases: list[Path]) -> Path:
    """Resolve a recorded path against `bases`: the first where it exists, else the first base."""
    path = Path(recorded)
    if path.is_absolute():
        return path
    if _GLOB_CHARS.intersection(recorded):
        import glob  # the hasher's glob semantics (`**`, hidden files), not Path.glob's

        for base in bases:
            if glob.glob(os.path.join(glob.escape(str(base)), recorded)):  # noqa: PTH118, PTH207
                return base / path
        return bases[0] / path
    for base in bases:
        if os.path.lexists(base / path):
            return base / path
    return bases[0] / path


def find_manifest(lock_path: Path, data_name: str) -> str | None:
    """Return the manifest text `runlock()` kept for data input `data_name` of the run, if any."""
    try:
        return manifest_path(lock_path.parent, data_name).read_text(
            encoding="utf-8", errors="surrogateescape"
        )
    except OSError:
        return None


def resolve_repo(key: str, bases: list[Path], *, run_dir: Path | None = None) -> Path:
    """Return where the repo a sheet recorded under `key` is now: the first base holding it.

    A run directory may say where its repos are (`.flexlock/repos.json`, which pull
    writes for an upstream run whose code is checked out apart): that place comes
    first. Whatever it says, the tree found there must still be the recorded one.

    `key` is the repo's path relative to the run's working directory (`.`, `../lib`), so
    the repo follows the run when a project is moved, copied or pulled. The recorded
    absolute `root` is never used: on a host where the original checkout still exists
    it would judge a moved copy against the other checkout.

    Raises:
        GitError: no base holds the directory; the message names where it looked.
    """
    path = Path(key)
    candidates = [path] if path.is_absolute() else [base / path for base in bases]
    if run_dir is not None:
        candidates[:0] = _recorded_location(run_dir, key)
    for candidate in candidates:
        if (candidate / ".git").exists():  # a checkout's root (a worktree's .git is a file)
            return candidate
    looked = ", ".join(str(candidate) for candidate in candidates)
    raise GitError(
        f"repository {key!r} of the run not found (no git checkout at {looked}); run from the "
        "directory the run was started from, keep the repo at the same place relative to "
        "the run's results, or pass --base DIR (the run's working directory)"
    )


def _recorded_location(run_dir: Path, key: str) -> list[Path]:
    """Return the place `run_dir/.flexlock/repos.json` gives repo `key`, if any ([] if none)."""
    import json

    try:
        locations = json.loads((run_dir / STATE_DIR / REPO_LOCATIONS).read_text("utf-8"))
    except (OSError, ValueError):
        return []  # absent (the usual case) or unreadable: the recorded layout decides
    place = locations.get(key) if isinstance(locations, dict) else None
    if not isinstance(place, str) or not place or Path(place).is_absolute():
        return []
    return [run_dir / place]
