"""Verify a run against its sheet: data hashes, code trees and upstream ids (`flexlock verify`).

The full check re-hashes every data input with the algorithm the sheet recorded
(without the hash cache unless asked: a verify that trusts the cache trusts the
file system's mtimes, which is what `fast` does, and says so). When a data
input's hash differs and its manifest was kept under
`<save_dir>/.flexlock/manifests/`, the report names the missing, extra and
changed files separately.

Relative paths in a sheet are relative to the directory the run was started
from. They are resolved against, in order: the `base` argument; the directory
the run sits in minus its recorded relative `save_dir` (so a project moved or
pulled elsewhere as a whole still verifies); the recorded `env.cwd`; the
current directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import attrs

from flexlock.core._errors import LockFileError
from flexlock.core._layout import (
    LOCK_NAME,
    base_directories,
    find_manifest,
    resolve_lock_path,
    resolve_recorded,
    resolve_repo,
)
from flexlock.core._model import DataRecord, PrevRecord, RepoRecord, RunLock

__all__ = [
    "CodeCheck",
    "DataCheck",
    "PrevCheck",
    "VerifyReport",
    "require_ok",
    "verify",
]

CheckStatus = Literal["ok", "changed", "missing", "unreadable", "extra"]

_GLOB_CHARS = frozenset("*?[")


@attrs.frozen
class DataCheck:
    """The result of checking one data input."""

    name: str  # the path as recorded in the sheet
    path: str  # where it was looked for
    status: CheckStatus
    expected: str  # recorded hash (or "size=… files=…" in fast mode)
    actual: str | None = None
    detail: str = ""
    missing: tuple[str, ...] = ()  # files of a directory, relative to it
    extra: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()


@attrs.frozen
class CodeCheck:
    """The result of checking one repository's working tree against the recorded tree."""

    name: str  # the repo path as recorded
    path: str  # the repository root checked
    status: CheckStatus
    expected: str  # recorded tree id
    actual: str | None = None
    detail: str = ""
    files: tuple[str, ...] = ()  # git name-status lines, recorded tree -> current tree


@attrs.frozen
class PrevCheck:
    """The result of checking that an upstream sheet still has its recorded id."""

    name: str  # the prev path as recorded
    path: str  # the upstream run.lock checked
    status: CheckStatus
    expected: str  # recorded upstream id
    actual: str | None = None
    detail: str = ""
    report: VerifyReport | None = None  # the upstream run's own report, when recursive


@attrs.frozen
class VerifyReport:
    """Everything `verify` checked for one run; `ok` when nothing differs."""

    path: str  # the run.lock
    id: str
    mode: Literal["full", "fast"]
    data: tuple[DataCheck, ...] = ()
    code: tuple[CodeCheck, ...] = ()
    prevs: tuple[PrevCheck, ...] = ()
    outputs: tuple[DataCheck, ...] = ()  # what the run produced, checked like data

    @property
    def ok(self) -> bool:
        """Tell whether every check (and every upstream report) passed."""
        return all(check.status == "ok" for check in self.checks()) and all(
            check.report.ok for check in self.prevs if check.report is not None
        )

    def checks(self) -> Iterator[DataCheck | CodeCheck | PrevCheck]:
        """Iterate over the data, code, upstream and output checks of this run (not upstream's)."""
        yield from self.data
        yield from self.code
        yield from self.prevs
        yield from self.outputs

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping, with `ok` and the `mode` spelled out."""
        raw = attrs.asdict(self, recurse=True)
        raw["ok"] = self.ok
        raw["mode_detail"] = _MODE_DETAIL[self.mode]
        return raw


_MODE_DETAIL = {
    "full": "contents re-hashed with the recorded algorithm",
    "fast": "size, file count and modification time only; contents not hashed",
}


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

    return _verify(
        resolve_lock_path(path),
        load,
        fast=fast,
        use_cache=use_cache,
        base=base,
        data=data,
        code=code,
        prevs=prevs,
        outputs=outputs,
        recursive=recursive,
        seen=set(),
    )


def _verify(
    lock_path: Path,
    load: Any,
    *,
    fast: bool,
    use_cache: bool,
    base: str | os.PathLike[str] | None,
    data: bool,
    code: bool,
    prevs: bool,
    outputs: bool,
    recursive: bool,
    seen: set[Path],
) -> VerifyReport:
    lock: RunLock = load(lock_path)
    bases = base_directories(lock, lock_path, base)
    seen.add(lock_path.resolve())
    data_checks = (
        tuple(
            _check_data(
                name,
                record,
                resolve_recorded(name, bases),
                lock_path,
                fast=fast,
                use_cache=use_cache,
            )
            for name, record in lock.data.items()
        )
        if data
        else ()
    )
    code_checks = (
        tuple(_check_repo(name, record, bases) for name, record in lock.code.items())
        if code
        else ()
    )
    prev_checks = []
    if prevs:
        for name, prev in lock.prevs.items():
            check = _check_prev(name, prev, bases, load)
            upstream = Path(check.path)
            if recursive and check.status in ("ok", "changed") and upstream.resolve() not in seen:
                report = _verify(
                    upstream,
                    load,
                    fast=fast,
                    use_cache=use_cache,
                    base=None,
                    data=data,
                    code=code,
                    prevs=prevs,
                    outputs=outputs,
                    recursive=True,
                    seen=seen,
                )
                check = attrs.evolve(check, report=report)
            prev_checks.append(check)
    return VerifyReport(
        path=str(lock_path),
        id=lock.id,
        mode="fast" if fast else "full",
        data=data_checks,
        code=code_checks,
        prevs=tuple(prev_checks),
        outputs=_check_outputs(lock, lock_path, fast=fast, use_cache=use_cache) if outputs else (),
    )


# --- data ---------------------------------------------------------------------


def _algorithm(record: DataRecord) -> str:
    algorithm, sep, _ = record.hash.partition(":")
    return algorithm if sep else "sha256"


def _check_data(
    name: str,
    record: DataRecord,
    target: Path,
    lock_path: Path,
    *,
    fast: bool,
    use_cache: bool,
    manifest_name: str | None = None,
) -> DataCheck:
    is_glob = bool(_GLOB_CHARS.intersection(name))
    if not is_glob and not os.path.lexists(target):
        return DataCheck(
            name, str(target), "missing", record.hash, detail=f"{target} does not exist"
        )
    if fast:
        return _check_data_fast(name, record, target, lock_path, manifest_name)
    from flexlock.core._errors import HashError
    from flexlock.core._hashing import hash_path

    try:
        current = hash_path(target, algorithm=_algorithm(record), use_cache=use_cache)
    except HashError as error:
        status: CheckStatus = "missing" if is_glob and not _glob_matches(target) else "unreadable"
        return DataCheck(name, str(target), status, record.hash, detail=str(error))
    if current.hash == record.hash:
        return DataCheck(name, str(target), "ok", record.hash, current.hash)
    detail = _size_detail(record, current)
    kept_as = manifest_name or name
    recorded_manifest = find_manifest(lock_path, kept_as) if record.files is not None else None
    if recorded_manifest is None:
        note = (
            "contents differ"
            if record.files is None
            else ("contents differ (no manifest was kept to name the files)")
        )
        return DataCheck(
            name,
            str(target),
            "changed",
            record.hash,
            current.hash,
            detail=", ".join(filter(None, [detail, note])),
        )
    from flexlock.core._hashing import parse_manifest, tree_manifest

    try:
        current_manifest = tree_manifest(target, algorithm=_algorithm(record), use_cache=use_cache)
    except HashError as error:
        return DataCheck(name, str(target), "unreadable", record.hash, detail=str(error))
    before, after = parse_manifest(recorded_manifest), parse_manifest(current_manifest)
    return DataCheck(
        name,
        str(target),
        "changed",
        record.hash,
        current.hash,
        detail=detail,
        missing=tuple(sorted(set(before) - set(after))),
        extra=tuple(sorted(set(after) - set(before))),
        changed=tuple(sorted(key for key in set(before) & set(after) if before[key] != after[key])),
    )


def _glob_matches(target: Path) -> bool:
    import glob

    return bool(glob.glob(str(target)))  # noqa: PTH207 - the hasher's glob semantics


def _size_detail(record: DataRecord, current: DataRecord) -> str:
    parts = []
    if record.files != current.files and record.files is not None:
        parts.append(f"files {record.files} → {current.files}")
    if record.size != current.size:
        parts.append(f"size {record.size} → {current.size} bytes")
    return ", ".join(parts)


def _check_data_fast(
    name: str, record: DataRecord, target: Path, lock_path: Path, manifest_name: str | None = None
) -> DataCheck:
    from flexlock.core._errors import HashError
    from flexlock.core._walk import list_files

    expected = f"size={record.size}" + (
        f" files={record.files}" if record.files is not None else ""
    )
    try:
        # The hasher's own walker: the files `hash_path` would read, none of them read.
        listing = list_files(target)
    except HashError as error:
        return DataCheck(name, str(target), "unreadable", expected, detail=str(error))
    size = listing.size
    count = len(listing.files) if record.files is not None else None
    newest = listing.newest
    actual = f"size={size}" + (f" files={count}" if count is not None else "")
    problems = []
    if record.files is not None and count != record.files:
        problems.append(f"files {record.files} → {count}")
    if size != record.size:
        problems.append(f"size {record.size} → {size} bytes")
    if record.mtime_ns is not None and newest != record.mtime_ns:
        problems.append("modified since the run (newest mtime differs)")
    # With a kept manifest the file names are compared too: a rename keeps size and mtimes.
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    manifest = find_manifest(lock_path, manifest_name or name) if record.files is not None else None
    if manifest is not None:
        from flexlock.core._manifest import manifest_differences

        missing, extra = manifest_differences(manifest, [rel for rel, _ in listing.files])
        if (missing or extra) and not problems:
            problems.append("files renamed")
    if not problems:
        detail = "" if record.mtime_ns is not None else "sheet has no mtime: size and count only"
        return DataCheck(name, str(target), "ok", expected, actual, detail=detail)
    return DataCheck(
        name,
        str(target),
        "changed",
        expected,
        actual,
        detail=", ".join(problems),
        missing=missing,
        extra=extra,
    )


# --- outputs ------------------------------------------------------------------


def _check_outputs(
    lock: RunLock, lock_path: Path, *, fast: bool, use_cache: bool
) -> tuple[DataCheck, ...]:
    """Check each recorded output as data, and report entries the run did not leave."""
    from flexlock.core._outputs import output_manifest_key, output_names

    if lock.outputs is None:  # still running, or a sheet from before outputs were recorded
        return ()
    run_dir = lock_path.parent
    checks = []
    for key, output in lock.outputs.items():
        target = run_dir / key
        record = DataRecord(output.hash or "", output.size, output.files, output.mtime_ns)
        if not os.path.lexists(target):
            checks.append(
                DataCheck(key, str(target), "missing", record.hash, detail=f"{target} is gone")
            )
            continue
        checks.append(
            _check_data(
                key,
                record,
                target,
                lock_path,
                fast=fast or output.hash is None,  # an unhashed output: size and mtime only
                use_cache=use_cache,
                manifest_name=output_manifest_key(key),
            )
        )
    recorded_tops = {key.split("/", 1)[0] for key in lock.outputs}
    checks += [
        DataCheck(
            name,
            str(run_dir / name),
            "extra",
            "",
            detail="not among the outputs the run left (added since it finished)",
        )
        for name in output_names(run_dir)
        if name not in recorded_tops
    ]
    return tuple(checks)


# --- code ---------------------------------------------------------------------


def _check_repo(name: str, record: RepoRecord, bases: list[Path]) -> CodeCheck:
    from flexlock.core._errors import GitError
    from flexlock.core._recapture import recapture

    try:
        root = resolve_repo(name, bases)
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
            "recorded tree is kept under refs/flexlock/runs/ in the run's repository)"
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
