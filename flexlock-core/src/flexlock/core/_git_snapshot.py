"""Keeping a run's code snapshot reachable, and comparing recorded trees.

A run pins each commit holding its trees under `refs/flexlock/snapshots/<commit>`,
so `git gc` never drops it: one ref per distinct snapshot, not per run, so the
1,000 tasks of a sweep over one code state add one ref, and a process pins a
commit once. Runs of older versions pinned `refs/flexlock/runs/<run id>`; those
refs still count. Each save_dir that pinned a snapshot is listed in
`<git common dir>/flexlock/save-dirs`, which is how `flexlock gc` finds the
sheets that still need a ref. `diff_trees` names the files two recorded trees
differ in; `flagged_changes` finds the edits `git status` hides behind
`--skip-worktree` and `--assume-unchanged`.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from flexlock.core._errors import GitError
from flexlock.core._git_runner import failure as _failure
from flexlock.core._git_runner import run_git as _run
from flexlock.core._model import RepoRecord

__all__ = [
    "KEPT_PREFIX",
    "REF_PREFIX",
    "Flagged",
    "diff_trees",
    "flagged_changes",
    "keep_snapshot",
    "kept_ref",
    "save_dirs_file",
    "snapshot_ref",
]

#: Namespace of the per-run refs of older versions (still honoured, never written).
REF_PREFIX = "refs/flexlock/runs/"
#: Namespace of the local refs that keep snapshots reachable, one per commit.
KEPT_PREFIX = "refs/flexlock/snapshots/"

# (repo root, commit) pairs this process pinned, and the save_dirs it listed per repo
# root: a task list's worker pins its one snapshot once, not once per task.
_kept: set[tuple[str, str]] = set()
_listed: dict[str, set[str]] = {}
_common_dirs: dict[str, Path] = {}

# Pinning the same ref from many processes at once (a task array) can meet
# git's ref lock held by a sibling; retry briefly instead of failing the run.
_REF_LOCK_RETRIES = 50
_REF_LOCK_PAUSE = 0.05


def kept_ref(commit: str) -> str:
    """Return the local ref that keeps snapshot `commit` reachable."""
    return KEPT_PREFIX + commit


def snapshot_ref(run_id: str) -> str:
    """Return the per-run ref older versions pinned run `run_id`'s snapshots under.

    Characters a ref name cannot hold are replaced: `sha256:<hex>` becomes
    `sha256-<hex>`; `..`, spaces, a leading dot and a trailing `.lock` never survive.

    Raises:
        GitError: nothing usable is left of `run_id`.
    """
    name = re.sub(r"(?:[^A-Za-z0-9._-]|\.{2,})+", "-", run_id).strip(".-")
    if name.endswith(".lock"):
        name = name[: -len(".lock")] + "-lock"
    if not name:
        raise GitError(
            f"run id {run_id!r} cannot name a git ref; use letters, digits, '.', '_', '-' or ':'"
        )
    return REF_PREFIX + name


def _iter_records(record: RepoRecord) -> Iterator[RepoRecord]:
    for sub in record.submodules.values():  # submodules first: the parent's tree needs them
        yield from _iter_records(sub)
    yield record


def _pin(root: str, ref: str, commit: str, run_id: str) -> None:
    args = ["update-ref", "-m", f"flexlock: keep run {run_id}", ref, commit]
    for attempt in range(_REF_LOCK_RETRIES):
        result = _run(args, root, ok_codes=(0, 1, 128))
        if result.returncode == 0:
            return
        current = _run(["rev-parse", "-q", "--verify", ref], root, ok_codes=(0, 1)).stdout
        if current.decode().strip() == commit:
            return  # a sibling process pinned the same commit first
        stderr = os.fsdecode(result.stderr)
        if "lock" not in stderr or attempt == _REF_LOCK_RETRIES - 1:
            if "not a valid SHA1" in stderr or "trying to write ref" in stderr:
                raise GitError(
                    f"snapshot {commit} of run {run_id} is not in the repository {root} "
                    "(pruned, or recorded elsewhere); capture the code again"
                )
            raise _failure(args, root, result.stderr)
        time.sleep(_REF_LOCK_PAUSE)


def _common_dir(root: str) -> Path:
    known = _common_dirs.get(root)
    if known is None:
        output = _run(["rev-parse", "--git-common-dir"], root).stdout.rstrip(b"\n")
        known = _common_dirs[root] = Path(root, os.fsdecode(output)).resolve()
    return known


def save_dirs_file(root: str | os.PathLike[str]) -> Path:
    """Return the file listing the save_dirs whose runs pinned snapshots in repo `root`."""
    return _common_dir(os.fspath(root)) / "flexlock" / "save-dirs"


def _list_save_dir(root: str, save_dir: Path) -> None:
    """Add `save_dir` to the repo's list, once: one appended line, no fsync (a hint for gc)."""
    name = os.fspath(save_dir.absolute())
    listed = _listed.get(root)
    path = save_dirs_file(root)
    if listed is None:
        try:
            listed = set(path.read_text(encoding="utf-8", errors="surrogateescape").splitlines())
        except OSError:
            listed = set()
        _listed[root] = listed
    if name in listed or "\n" in name:
        return
    path.parent.mkdir(exist_ok=True)
    # One write(2) of a short line with O_APPEND: concurrent writers do not interleave.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        os.write(fd, os.fsencode(name) + b"\n")
    finally:
        os.close(fd)
    listed.add(name)


def keep_snapshot(
    record: RepoRecord, run_id: str, *, save_dir: str | os.PathLike[str] | None = None
) -> str:
    """Pin `record`'s snapshot (and its submodules') under `kept_ref(snapshot)`.

    The local ref keeps the snapshot from `git gc`. Safe to call again and from
    several processes at once; a process pins each commit once. With `save_dir`,
    the run directory is listed for `flexlock gc` (see `save_dirs_file`).

    Returns:
        The ref name of the top repository's snapshot.

    Raises:
        GitError: the record has no snapshot, or its commit is not in the repository.
    """
    for repo in _iter_records(record):
        if repo.snapshot is None:
            raise GitError(f"the code record of {repo.root} has no snapshot commit to keep")
        if (repo.root, repo.snapshot) not in _kept:
            if not Path(repo.root).is_dir():
                raise GitError(f"repository {repo.root} of run {run_id} does not exist here")
            _pin(repo.root, kept_ref(repo.snapshot), repo.snapshot, run_id)
            _kept.add((repo.root, repo.snapshot))
        if save_dir is not None:
            try:
                _list_save_dir(repo.root, Path(save_dir))
            except OSError as error:
                raise GitError(
                    f"cannot list {save_dir} in {save_dirs_file(repo.root)} ({error.strerror}): "
                    "make the repository's .git directory writable"
                ) from error
    return kept_ref(record.snapshot or "")


def diff_trees(root: str | os.PathLike[str], tree_a: str, tree_b: str) -> list[str]:
    """List the files that differ between two trees (or commits) as `git diff --name-status` does.

    Each line is `<status letter>\\t<path>`, e.g. `M\\tsrc/model.py`.

    Raises:
        GitError: `root` is not a repository or does not hold both trees.
    """
    if tree_a == tree_b:
        return []
    args = ["diff-tree", "-r", "-z", "--no-renames", "--name-status", tree_a, tree_b]
    try:
        output = _run(args, root).stdout
    except GitError as error:
        if "bad object" not in str(error) and "not a tree" not in str(error):
            raise
        raise GitError(
            f"the repository {root} does not hold tree {tree_a} or {tree_b}; "
            "fetch the run's snapshot (`flexlock pull <run tag>`) and try again"
        ) from error
    fields = output.split(b"\0")
    return [
        f"{fields[i].decode()}\t{os.fsdecode(fields[i + 1])}" for i in range(0, len(fields) - 1, 2)
    ]


class Flagged(NamedTuple):
    """What the index entries flagged `--skip-worktree` / `--assume-unchanged` hide."""

    index_info: list[bytes]  # `--index-info` lines setting each edited entry to its disk content
    changes: list[str]  # status-like lines: ` M`/` D` captured, `!!` not verifiable
    paths: list[bytes]  # flagged paths present on disk, whose stat data a reuse must check


def flagged_changes(root: str | os.PathLike[str], specs: Sequence[str]) -> Flagged:
    """Compare the flagged index entries with the working tree; the user's index is only read.

    `git status` trusts these flags and reports such files clean whatever their content.
    One `git ls-files -v --stage` lists them (a lowercase tag is assume-unchanged, `S`
    skip-worktree); when any is present, one `git hash-object -w --stdin-paths` hashes
    their disk content through the same filters as `git add`. A skip-worktree file
    absent from disk is outside a sparse checkout and stands as the index has it; an
    assume-unchanged one is deleted. Anything else (a symlink or directory in its place,
    a newline in its name) is listed as `!!` and makes the record dirty, never clean.
    """
    output = _run(["ls-files", "-v", "--stage", "-z", "--", *specs], root).stdout
    result = Flagged([], [], [])
    to_hash: list[tuple[bytes, bytes, bytes]] = []  # mode, index oid, path
    for entry in output.split(b"\0"):
        tag = entry[:1]
        if not (tag == b"S" or tag.islower()):
            continue
        meta, _, path = entry[2:].partition(b"\t")
        mode, oid, _stage = meta.split(b" ")
        if mode == b"160000":
            continue  # a submodule: its own capture decides the gitlink
        name = os.fsdecode(path)
        try:
            info = os.lstat(Path(root, name))
        except (FileNotFoundError, NotADirectoryError):
            if tag not in {b"S", b"s"}:  # assume-unchanged, and deleted
                result.index_info.append(b"0 " + oid + b"\t" + path + b"\0")
                result.changes.append(f" D {name}")
            continue
        result.paths.append(path)
        if stat.S_ISREG(info.st_mode) and mode != b"120000" and b"\n" not in path:
            to_hash.append((mode, oid, path))
        else:
            result.changes.append(
                f"!! {name} (flagged in the index; its disk content is not recorded)"
            )
    if to_hash:
        stdin = b"".join(path + b"\n" for _, _, path in to_hash)
        hashed = _run(["hash-object", "-w", "--stdin-paths"], root, stdin=stdin).stdout.split()
        for (mode, oid, path), disk_oid in zip(to_hash, hashed, strict=True):
            if disk_oid != oid:
                result.index_info.append(mode + b" " + disk_oid + b"\t" + path + b"\0")
                result.changes.append(f" M {os.fsdecode(path)}")
    return result
