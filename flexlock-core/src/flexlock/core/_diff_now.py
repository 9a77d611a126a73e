"""What would differ if a run ran now: `flexlock diff RUN` (the question "why would this rerun?").

The run's inputs are captured again with the engines `runlock()` uses (code from
where the repo is now, data through the hasher, upstream sheets, outputs) and the
recorded sheet is compared with that one by `diff_locks`.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from flexlock.core._diff import Change, RunDiff, diff_locks, manifest_lines
from flexlock.core._model import PrevRecord, RunLock

__all__ = ["current_lock", "diff_current"]


def current_lock(
    lock: RunLock, lock_path: Path, *, base: str | os.PathLike[str] | None = None
) -> RunLock:
    """Return the sheet a run with `lock`'s config would get now (code, data, upstream, env).

    Inputs that can no longer be read are left out (they show as removed in a diff).
    """
    from flexlock.core._errors import FlexLockError
    from flexlock.core._layout import base_directories, resolve_recorded, resolve_repo
    from flexlock.core._lockfile import load

    bases = base_directories(lock, lock_path, base)
    code = {}
    if lock.code:
        from flexlock.core._recapture import recapture

        for key, repo in lock.code.items():
            try:
                code[key] = recapture(repo, resolve_repo(key, bases, run_dir=lock_path.parent))
            except FlexLockError:
                continue
    data = {}
    if lock.data:
        from flexlock.core._hashing import hash_path

        for key, record in lock.data.items():
            algorithm = record.hash.partition(":")[0] or "sha256"
            try:
                data[key] = hash_path(resolve_recorded(key, bases), algorithm=algorithm)
            except FlexLockError:
                continue
    prevs = {}
    for key, prev in lock.prevs.items():
        target = resolve_recorded(prev.path, bases)
        try:
            upstream = load(target)
        except FlexLockError:
            continue
        prevs[key] = PrevRecord(id=upstream.id, path=prev.path, lock=upstream)
    env = None
    if lock.env is not None:
        from flexlock.core._env import capture_env

        env = capture_env(argv=lock.env.argv, packages=bool(lock.env.packages))
    from flexlock.core._identity import compute_id

    run_id = compute_id(
        lock.config,
        {key: repo.tree for key, repo in code.items()},
        {key: record.hash for key, record in data.items()},
        {key: prev.id for key, prev in prevs.items()},
    )
    outputs = None
    if lock.outputs is not None:
        from flexlock.core._outputs import record_outputs

        outputs = record_outputs(
            lock_path.parent,
            [lock_path.parent / key for key in lock.outputs],
            algorithm=next(
                (o.hash.partition(":")[0] for o in lock.outputs.values() if o.hash), "sha256"
            ),
            hashing=any(output.hash for output in lock.outputs.values()),
            manifests=False,  # a diff writes nothing
        )
    return attrs.evolve(
        lock,
        id=run_id,
        status=lock.status,
        code=code,
        data=data,
        prevs=prevs,
        env=env,
        outputs=outputs,
    )


def _with_current_files(
    change: Change, recorded: RunLock, lock_path: Path, base: str | os.PathLike[str] | None
) -> Change:
    """Add the files of a changed data directory, from its kept manifest and one made now."""
    if change.section != "data" or change.kind != "changed":
        return change
    from flexlock.core._errors import FlexLockError
    from flexlock.core._hashing import tree_manifest
    from flexlock.core._layout import base_directories, find_manifest, resolve_recorded

    record = recorded.data[change.key]
    before = find_manifest(lock_path, change.key) if record.files is not None else None
    if before is None:
        return change
    target = resolve_recorded(change.key, base_directories(recorded, lock_path, base))
    try:
        after = tree_manifest(target, algorithm=record.hash.partition(":")[0] or "sha256")
    except FlexLockError:
        return change
    return attrs.evolve(change, detail=(*change.detail, *manifest_lines(before, after)))


def diff_current(
    path: str | os.PathLike[str], *, base: str | os.PathLike[str] | None = None, git: bool = True
) -> tuple[RunDiff, str | None]:
    """Compare a run's sheet with what running it now would record.

    Returns:
        The differences (recorded → now; config is taken as recorded) and the
        one-line reason the run would be re-run, or None when it would be skipped.

    Raises:
        LockFileError: `path` is not a readable run sheet.
    """
    from flexlock.core._layout import resolve_lock_path
    from flexlock.core._lockfile import load

    lock_path = resolve_lock_path(path)
    recorded = load(lock_path)
    now = current_lock(recorded, lock_path, base=base)
    result = diff_locks(recorded, now, a_label="recorded", b_label="now", a_path=lock_path, git=git)
    result = attrs.evolve(
        result,
        changes=tuple(
            _with_current_files(change, recorded, lock_path, base) for change in result.changes
        ),
    )
    # The task runner's own verdict, so `diff RUN` says exactly what resume would do.
    from flexlock.core._freshness import rerun_reason

    reason = rerun_reason(lock_path)
    return result, reason
