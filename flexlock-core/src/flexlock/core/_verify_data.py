"""Checking data inputs and outputs against their recorded hashes (full) or stats (fast).

The full check re-hashes with the algorithm the sheet recorded, without the hash cache
unless asked: a verify that trusts the cache trusts the file system's mtimes, which is
what `fast` does, and says so. When a directory's hash differs and its manifest was kept
under `<save_dir>/.flexlock/manifests/`, the check names the missing, extra and changed
files.
"""

from __future__ import annotations

import os
from pathlib import Path

from flexlock.core._layout import find_manifest
from flexlock.core._model import DataRecord, RunLock
from flexlock.core._verify_report import CheckStatus, DataCheck

__all__ = ["check_data", "check_outputs"]

_GLOB_CHARS = frozenset("*?[")


def _algorithm(record: DataRecord) -> str:
    algorithm, sep, _ = record.hash.partition(":")
    return algorithm if sep else "sha256"


def check_data(
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
    count = len(listing.rels) if record.files is not None else None
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

        missing, extra = manifest_differences(manifest, listing.rels)
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


def check_outputs(
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
            check_data(
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
