"""Is a run done, or must it run again? (`rerun_reason`, used by resume and `flexlock diff`).

A reader of sheets: it re-captures code with the writer's rules (`_recapture`),
re-hashes data through the hash cache and reads upstream sheets, and never writes.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from flexlock.core._errors import ConfigError, FlexLockError, GitError, LockFileError
from flexlock.core._gather import RunOptions
from flexlock.core._identity import compute_id, config_changes, config_to_dict
from flexlock.core._inputs import RunInputs, kept_inputs, read_inputs
from flexlock.core._layout import resolve_recorded, resolve_repo, search_bases
from flexlock.core._lockfile import load, lock_path
from flexlock.core._project import CodeScope, project_code_scope
from flexlock.core._recapture import current_tree
from flexlock.core._redact import Redactor

__all__ = ["rerun_reason"]

PathLike = str | os.PathLike[str]


@functools.cache
def _default_redactor() -> Redactor:
    return RunOptions().redactor


def rerun_reason(path: PathLike, config: Any = None, **options: Any) -> str | None:
    """Say why the run at `path` (a save_dir or run.lock) must run again, or None if it is done.

    Done means: the sheet `succeeded`, its config equals `config` (when given,
    unstructured and redacted the same way), and its code trees, data hashes and
    upstream ids are still what it recorded. Repo captures are cached per
    process, data hashes use the hash cache (a `stat` per unchanged file).
    """
    file = lock_path(path)
    # The few fields that decide, kept beside the sheet by the run: no YAML to parse, and
    # the run.lock is still the one the run wrote, so its id matches them by construction.
    sheet = kept_inputs(file)
    written_by_run = sheet is not None
    if sheet is None:
        if not file.exists():
            return f"no run.lock in {file.parent}"
        try:
            sheet = RunInputs.of(load(file))
        except LockFileError as error:
            return f"unreadable run.lock: {error}"
    if sheet.status != "succeeded":
        return "last run failed" if sheet.status == "failed" else "last run did not finish"
    if config is not None:
        redactor = RunOptions.from_kwargs(options).redactor if options else _default_redactor()
        wanted = redactor(config_to_dict(config))
        changes = config_changes(sheet.config, wanted)
        if changes:
            more = f" (+{len(changes) - 1} more)" if len(changes) > 1 else ""
            return f"config changed: {changes[0]}{more}"
    # Recorded paths (repos included) resolve as `flexlock verify` resolves them: from
    # where the run is now, so a moved, copied or pulled project is judged by itself.
    bases = search_bases(sheet.save_dir, sheet.cwd, file)
    trees = {}
    # With include/exclude given (a CLI run with --code_include/--code_exclude), the scope
    # the run would use now must be the recorded one: another scope is another tree.
    asked = RunOptions.from_kwargs(options) if {"include", "exclude"} & set(options) else None
    for key, code in sheet.code.items():
        try:
            root = resolve_repo(key, bases, run_dir=file.parent)
        except GitError as error:
            return str(error)
        if asked is not None:
            try:
                wanted = project_code_scope(root) + CodeScope(asked.include, asked.exclude)
            except ConfigError as error:
                return f"code scope of {key} unreadable: {error}"
            if (wanted.include, wanted.exclude) != (code.include, code.exclude):
                return f"code scope changed in {key}"
        current = current_tree(root, code)
        if isinstance(current, GitError):
            return f"code changed in {key}: {current}"
        if current.tree != code.tree:
            return f"code changed in {key}"
        trees[key] = current.tree
    if sheet.data:
        from flexlock.core._hashing import hash_path
    hashes = {}
    for key, recorded_hash in sheet.data.items():
        algorithm = recorded_hash.partition(":")[0]
        try:
            now = hash_path(resolve_recorded(key, bases), algorithm=algorithm, use_cache=True)
        except FlexLockError:
            return f"data changed: {key} (no longer readable)"
        if now.hash != recorded_hash:
            return f"data changed: {key}"
        hashes[key] = now.hash
    ids = {}
    for key, (prev_path, prev_id) in sheet.prevs.items():
        try:
            upstream = read_inputs(lock_path(resolve_recorded(prev_path, bases)))
        except LockFileError:
            return f"upstream {key} changed (its run.lock is gone)"
        if upstream.id != prev_id or upstream.status != "succeeded":
            return f"upstream {key} changed"
        ids[key] = upstream.id
    if not written_by_run and compute_id(sheet.config, trees, hashes, ids) != sheet.id:
        return "run.lock id does not match its contents (edited by hand?)"
    return None
