"""Verify a run against its sheet: data hashes, code trees and upstream ids (`flexlock verify`).

Data and outputs are checked by `_verify_data`, the report types live in
`_verify_report`; this module resolves the sheet's paths and checks code and
upstream runs.

Relative paths in a sheet are relative to the directory the run was started
from. They are resolved against, in order: the `base` argument; the directory
the run sits in minus its recorded relative `save_dir` (so a project moved or
pulled elsewhere as a whole still verifies); the recorded `env.cwd`; the
current directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs

from flexlock.core._errors import LockFileError
from flexlock.core._layout import (
    LOCK_NAME,
    base_directories,
    resolve_lock_path,
    resolve_recorded,
    resolve_repo,
)
from flexlock.core._model import PrevRecord, RepoRecord, RunLock
from flexlock.core._verify_data import check_data, check_outputs
from flexlock.core._verify_report import CodeCheck, DataCheck, PrevCheck, VerifyReport

__all__ = [
    "CodeCheck",
    "DataCheck",
    "PrevCheck",
    "VerifyReport",
    "require_ok",
    "verify",
]


def verify(
    path: str | os.PathLike[str],
    *,
    fast: bool = False,
    use_cache: bool = False,
    base: str | os.PathLike[str] | None = None,
    data: bool = True,
    code: bool = True,
    prevs: bool = True,
    outputs: bool = True,
    recursive: bool = False,
) -> VerifyReport:
    """Check a run's data, code, upstream sheets and outputs against what its sheet recorded.

    Args:
        path: the run directory or its run.lock.
        fast: compare size, file count and newest mtime instead of hashing contents.
        use_cache: let the hash cache answer for files whose size/mtime/inode are unchanged.
        base: directory the sheet's relative paths are relative to (default: see module doc).
        data, code, prevs, outputs: which sections to check. Outputs are what the run
            left in its save_dir (changed, missing, or `extra` entries added since).
        recursive: also verify each upstream run, as a nested report.

    Raises:
        LockFileError: `path` is not a readable run sheet (nothing was checked).
    """
    from flexlock.core._lockfile import load

    scope = _Scope(fast, use_cache, data, code, prevs, outputs, recursive)
    return _verify(resolve_lock_path(path), load, scope, base=base, seen=set())


@attrs.frozen
class _Scope:
    """What one `verify` call checks, the same for the run and each upstream run."""

    fast: bool
    use_cache: bool
    data: bool
    code: bool
    prevs: bool
    outputs: bool
    recursive: bool


def _verify(
    lock_path: Path,
    load: Any,
    scope: _Scope,
    *,
    base: str | os.PathLike[str] | None,
    seen: set[Path],
) -> VerifyReport:
    lock: RunLock = load(lock_path)
    bases = base_directories(lock, lock_path, base)
    seen.add(lock_path.resolve())
    fast, use_cache = scope.fast, scope.use_cache
    data_checks = (
        tuple(
            check_data(
                name,
                record,
                resolve_recorded(name, bases),
                lock_path,
                fast=fast,
                use_cache=use_cache,
            )
            for name, record in lock.data.items()
        )
        if scope.data
        else ()
    )
    code_checks = (
        tuple(
            _check_repo(name, record, bases, lock_path.parent) for name, record in lock.code.items()
        )
        if scope.code
        else ()
    )
    prev_checks = []
    if scope.prevs:
        for name, prev in lock.prevs.items():
            check = _check_prev(name, prev, bases, load)
            upstream = Path(check.path)
            follow = scope.recursive and check.status in ("ok", "changed")
            if follow and upstream.resolve() not in seen:
                report = _verify(upstream, load, scope, base=None, seen=seen)
                check = attrs.evolve(check, report=report)
            prev_checks.append(check)
    return VerifyReport(
        path=str(lock_path),
        id=lock.id,
        mode="fast" if fast else "full",
        data=data_checks,
        code=code_checks,
        prevs=tuple(prev_checks),
        outputs=check_outputs(lock, lock_path, fast=fast, use_cache=use_cache)
        if scope.outputs
        else (),
    )


# --- code ---------------------------------------------------------------------


def _check_repo(name: str, record: RepoRecord, bases: list[Path], run_dir: Path) -> CodeCheck:
    from flexlock.core._errors import GitError
    from flexlock.core._recapture import recapture

    try:
        root = resolve_repo(name, bases, run_dir=run_dir)
    except GitError as error:
        return CodeCheck(name, record.root, "missing", record.tree, detail=str(error))
    try:
        current = recapture(record, root)
    except GitError as error:
        return CodeCheck(name, str(root), "unreadable", record.tree, detail=str(error))
    problems = _repo_differences(record, current)
    if not problems and current.tree == record.tree:
        return CodeCheck(name, str(root), "ok", record.tree, current.tree)
    files: tuple[str, ...] = ()
    if current.tree != record.tree:
        files, note = _changed_files(root, record.tree, current.tree)
        problems.insert(0, note or f"tree {record.tree[:12]} → {current.tree[:12]}")
    return CodeCheck(
        name,
        str(root),
        "changed",
        record.tree,
        current.tree,
        detail="; ".join(problems),
        files=files,
    )


def _changed_files(root: Path, tree_a: str, tree_b: str) -> tuple[tuple[str, ...], str]:
    from flexlock.core._errors import GitError
    from flexlock.core._git_snapshot import diff_trees

    try:
        return tuple(diff_trees(root, tree_a, tree_b)), ""
    except GitError as error:
        return (), (
            f"tree {tree_a[:12]} → {tree_b[:12]} (files unavailable: {error}; the "
            "recorded tree is kept under refs/flexlock/ in the run's repository)"
        )


def _repo_differences(record: RepoRecord, current: RepoRecord) -> list[str]:
    """Compare what the tree id does not cover: large skipped files and submodules."""
    problems = []
    before = {skipped.path: skipped.hash for skipped in record.skipped}
    after = {skipped.path: skipped.hash for skipped in current.skipped}
    for path in sorted(set(before) | set(after)):
        if before.get(path) != after.get(path):
            state = "missing" if path not in after else "new" if path not in before else "changed"
            problems.append(f"large untracked file {path} {state}")
    for path, sub in sorted(record.submodules.items()):
        now = current.submodules.get(path)
        if now is None:
            problems.append(f"submodule {path} missing")
        elif now.tree != sub.tree or _repo_differences(sub, now):
            problems.append(f"submodule {path} changed (tree {sub.tree[:12]} → {now.tree[:12]})")
    return problems


# --- upstream -----------------------------------------------------------------


def _check_prev(name: str, prev: PrevRecord, bases: list[Path], load: Any) -> PrevCheck:

    candidates = [resolve_recorded(prev.path, bases), resolve_recorded(name, bases)]
    target = next((c for c in candidates if c.exists()), candidates[0])
    if target.is_dir():
        target = target / LOCK_NAME
    if not target.exists():
        return PrevCheck(
            name, str(target), "missing", prev.id, detail=f"upstream sheet {target} not found"
        )
    try:
        upstream: RunLock = load(target)
    except LockFileError as error:
        return PrevCheck(name, str(target), "unreadable", prev.id, detail=str(error))
    if upstream.id != prev.id:
        return PrevCheck(
            name,
            str(target),
            "changed",
            prev.id,
            upstream.id,
            detail="the upstream run was re-run with different inputs since",
        )
    if upstream.status != "succeeded":
        return PrevCheck(
            name,
            str(target),
            "changed",
            prev.id,
            upstream.id,
            detail=f"the upstream run is now {upstream.status}",
        )
    return PrevCheck(name, str(target), "ok", prev.id, upstream.id)


def require_ok(report: VerifyReport) -> VerifyReport:
    """Return `report` when it passed; raise `VerificationError` (exit code 3) otherwise."""
    from flexlock.core._errors import VerificationError

    if report.ok:
        return report
    failed = [f"{check.name}: {check.status}" for check in report.checks() if check.status != "ok"]
    raise VerificationError(f"{report.path}: verification failed: {', '.join(failed)}")
