"""What counts as a run's code, and capturing it again the way `runlock()` did.

Shared by the writer (`runlock` leaves run directories out of the code it records)
and the readers (verify, diff and rerun checks re-capture a recorded repo with the
same rules, so trees compare like for like). Captures made for rerun checks are
cached per process: many runs of a task list share one checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from flexlock.core._errors import GitError
from flexlock.core._inputs import CodeInputs
from flexlock.core._model import RepoRecord
from flexlock.core._system import warn as _warn

__all__ = [
    "clear_capture_cache",
    "current_tree",
    "outputs_in_code",
    "recapture",
    "untracked_sheets",
]

PathLike = str | os.PathLike[str]


def outputs_in_code(record: RepoRecord, save_dir: Path | None, *, warn: bool = True) -> list[str]:
    """Return run directories the capture recorded as code, relative to the repo root.

    Run outputs inside the repo that git does not ignore would be part of the
    code: this run's own save_dir (its earlier run.lock included) and other runs'
    directories, e.g. the sibling tasks of a task list sharing `results/`. Then
    every rerun would see "code changed" and resume would never skip. So they
    are left out: this save_dir, and every untracked directory holding a run.lock.
    """
    untracked = [line[3:] for line in record.changes if line.startswith("??")]
    untracked += [skipped.path for skipped in record.skipped]
    if not untracked:
        return []
    root = Path(record.root).resolve()
    outputs = []
    if save_dir is not None:
        try:
            relative = save_dir.resolve().relative_to(root).as_posix()
        except ValueError:
            relative = "."
        if relative != "." and any(path.startswith(f"{relative}/") for path in untracked):
            outputs.append(relative)
    for name in untracked_sheets(record, root):
        parent = name.rpartition("/")[0]
        if parent and not any(parent == o or parent.startswith(f"{o}/") for o in outputs):
            outputs.append(parent)
    if outputs and warn and record.root not in _warned_roots:
        # Once per process and repo: a task list of 30 runs says it once, not 30 times.
        _warned_roots.add(record.root)
        # Named by their top folder in the repo: the line a user adds to .gitignore.
        tops = sorted({f"{output.split('/')[0]}/" for output in outputs})
        named = ", ".join(tops[:3]) + (" ..." if len(tops) > 3 else "")
        _warn(
            "flexlock: warning: run directories in %s are not git-ignored; they are left "
            "out of the recorded code (add %s to .gitignore)",
            named,
            named,
        )
    return outputs


_warned_roots: set[str] = set()


def untracked_sheets(record: RepoRecord, root: Path) -> list[str]:
    """Return the untracked run.lock files of `record`'s repo, relative to its root."""
    capped = bool(record.changes) and record.changes[-1].startswith("... and ")
    if not capped:  # the status lists every untracked file
        return [
            line[3:]
            for line in record.changes
            if line.startswith("?? ") and line.endswith("/run.lock")
        ]
    # One git call finds them all when the change list was capped.
    from flexlock.core._git_runner import run_git

    args = ["ls-files", "-z", "--others", "--exclude-standard", "--", ":(glob)**/run.lock"]
    try:
        listing = run_git(args, root).stdout
    except GitError:
        return []  # as before: a failed listing finds no sheets, the capture stands
    return [name for name in os.fsdecode(listing).split("\0") if name]


_capture_cache: dict[tuple[str, tuple[str, ...], tuple[str, ...]], RepoRecord | GitError] = {}


def current_tree(root: Path, code: CodeInputs) -> RepoRecord | GitError:
    """Capture the repo at `root` now as `code` was captured, once per process.

    Many runs of a task list share one checkout, hence the cache (keyed by the
    resolved root and the pathspecs; `clear_capture_cache` forgets it).
    """
    key = (os.fspath(root.resolve()), code.include, code.exclude)
    if key not in _capture_cache:
        try:
            _capture_cache[key] = _recapture(root, code.include, code.exclude)
        except GitError as error:
            _capture_cache[key] = error
    return _capture_cache[key]


def recapture(record: RepoRecord, root: PathLike) -> RepoRecord:
    """Capture the repo at `root` (where `record`'s repo is now) as runlock captured it.

    Same include/exclude pathspecs; the run directories that exist now are left
    out, as the run left out those of its time, so `tree` compares like for like.

    Raises:
        GitError: the repo cannot be captured.
    """
    return _recapture(root, record.include, record.exclude)


def _recapture(root: PathLike, include: tuple[str, ...], exclude: tuple[str, ...]) -> RepoRecord:
    from flexlock.core._git import capture_repo  # git capture is loaded only when needed

    current = capture_repo(Path(root), include=include, exclude=exclude)
    outputs = outputs_in_code(current, None, warn=False)
    if outputs:
        current = capture_repo(Path(root), include=include, exclude=(*exclude, *outputs))
        current = attrs.evolve(current, exclude=exclude, outputs=tuple(outputs))
    return current


def clear_capture_cache() -> None:
    """Forget the repo captures `rerun_reason` cached (after editing code within one process).

    The "not git-ignored" warning is forgotten too: it shows again once.
    """
    _capture_cache.clear()
    _warned_roots.clear()
