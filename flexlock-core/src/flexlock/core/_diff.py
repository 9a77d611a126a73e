"""Explain why two runs differ, or what would differ if a run ran now (`flexlock diff`).

`diff_locks` compares two sheets section by section: status, config (dotted keys,
old → new), code (commit range, dirty flag and, when the repository is on this
machine, the files changed between the two recorded trees), data (hash, size,
file count and, when both runs kept manifests, the files), upstream runs
(recursively, through the embedded upstream sheets) and the environment
(interpreter, platform, package versions; informational: not part of the identity).

`_diff_now.diff_current` compares a run's sheet with the state its inputs are in now.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import attrs

from flexlock.core._model import DataRecord, OutputRecord, PrevRecord, RepoRecord, RunLock

__all__ = ["Change", "RunDiff", "diff_locks", "diff_runs", "manifest_lines"]

Section = Literal["status", "config", "code", "data", "prevs", "env", "outputs"]
Kind = Literal["changed", "added", "removed"]
Record = TypeVar("Record", DataRecord, OutputRecord)

#: Sections whose changes change the run's identity (env and status do not).
IDENTITY_SECTIONS = ("config", "code", "data", "prevs")


@attrs.frozen
class Change:
    """One difference between two runs."""

    section: Section
    key: str  # dotted config key, repo / data / upstream path as recorded, env field
    kind: Kind
    old: Any = None
    new: Any = None
    detail: tuple[str, ...] = ()  # e.g. commit range and changed files, data files
    upstream: RunDiff | None = None  # for a changed upstream run: how it differs, recursively


@attrs.frozen
class RunDiff:
    """All differences from run `a` to run `b`."""

    a: str  # label: a path, or "recorded" / "now"
    b: str
    a_id: str
    b_id: str
    changes: tuple[Change, ...] = ()

    @property
    def same_identity(self) -> bool:
        """Tell whether the two runs have the same identity (same config, code, data, upstream)."""
        return self.a_id == self.b_id

    @property
    def identical(self) -> bool:
        """Tell whether nothing at all differs (environment and status included)."""
        return not self.changes

    def section(self, name: Section) -> list[Change]:
        """Return the changes of one section."""
        return [change for change in self.changes if change.section == name]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping."""
        raw = attrs.asdict(self, recurse=True)
        raw["same_identity"] = self.same_identity
        return raw


_MISSING: Any = object()


def diff_runs(a: str | os.PathLike[str], b: str | os.PathLike[str], *, git: bool = True) -> RunDiff:
    """Load the sheets of two runs (directories or run.lock files) and compare them.

    Raises:
        LockFileError: either path is not a readable run sheet.
    """
    from flexlock.core._layout import resolve_lock_path
    from flexlock.core._lockfile import load

    a_path, b_path = resolve_lock_path(a), resolve_lock_path(b)
    return diff_locks(
        load(a_path),
        load(b_path),
        a_label=str(a),
        b_label=str(b),
        a_path=a_path,
        b_path=b_path,
        git=git,
    )


def diff_locks(
    a: RunLock,
    b: RunLock,
    *,
    a_label: str = "a",
    b_label: str = "b",
    a_path: Path | None = None,
    b_path: Path | None = None,
    git: bool = True,
) -> RunDiff:
    """Compare two sheets; `a_path`/`b_path` (their run.lock) let data and output diffs use
    kept manifests to name files.

    With `git`, files changed between two recorded code trees are listed when the
    repository (its recorded root) exists here and holds both trees.
    """
    changes: list[Change] = []
    if a.status != b.status:
        changes.append(Change("status", "status", "changed", a.status, b.status))
    changes += _diff_config(a.config, b.config)
    changes += _diff_code(a.code, b.code, git=git)
    changes += _diff_data(a.data, b.data, a_path, b_path)
    changes += _diff_prevs(a.prevs, b.prevs, git=git)
    changes += _diff_env(a, b)
    if a.outputs is not None and b.outputs is not None:  # both runs finished with outputs
        changes += _diff_outputs(a.outputs, b.outputs, a_path, b_path)
    return RunDiff(a_label, b_label, a.id, b.id, tuple(changes))


# --- config -------------------------------------------------------------------


def _same(old: Any, new: Any) -> bool:
    # 1 == 1.0 == True in Python, but they are different configs.
    return type(old) is type(new) and old == new


def _diff_config(old: Any, new: Any, prefix: str = "") -> list[Change]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        changes: list[Change] = []
        for key in [*old, *(key for key in new if key not in old)]:
            dotted = f"{prefix}.{key}" if prefix else str(key)
            changes += _diff_config(old.get(key, _MISSING), new.get(key, _MISSING), dotted)
        return changes
    if old is _MISSING:
        return [Change("config", prefix, "added", None, new)]
    if new is _MISSING:
        return [Change("config", prefix, "removed", old, None)]
    if _same(old, new):
        return []
    return [Change("config", prefix, "changed", old, new)]


# --- code ---------------------------------------------------------------------


def _short(object_id: str | None) -> str:
    return object_id[:12] if object_id else "(none)"


def _diff_code(
    a: Mapping[str, RepoRecord], b: Mapping[str, RepoRecord], *, git: bool
) -> list[Change]:
    changes = []
    for key in [*a, *(key for key in b if key not in a)]:
        old, new = a.get(key), b.get(key)
        if old is None and new is not None:
            changes.append(
                Change("code", key, "added", None, new.tree, (f"commit {_short(new.commit)}",))
            )
        elif new is None and old is not None:
            changes.append(
                Change("code", key, "removed", old.tree, None, (f"commit {_short(old.commit)}",))
            )
        elif old is not None and new is not None and _repo_changed(old, new):
            changes.append(
                Change("code", key, "changed", old.tree, new.tree, _repo_detail(old, new, git=git))
            )
    return changes


def _repo_changed(old: RepoRecord, new: RepoRecord) -> bool:
    return (
        old.tree != new.tree
        or any(
            _repo_changed(sub, new.submodules[path]) if path in new.submodules else True
            for path, sub in old.submodules.items()
        )
        or set(new.submodules) - set(old.submodules) != set()
    )


def _repo_detail(old: RepoRecord, new: RepoRecord, *, git: bool) -> tuple[str, ...]:
    lines = []
    if old.commit != new.commit:
        lines.append(
            f"commits {_short(old.commit)}..{_short(new.commit)}"
            + (f" (git log {old.commit}..{new.commit})" if old.commit and new.commit else "")
        )
    else:
        lines.append(f"commit {_short(old.commit)} (same), working tree differs")
    if old.branch != new.branch:
        lines.append(f"branch {old.branch or '(detached)'} → {new.branch or '(detached)'}")
    if old.dirty != new.dirty:
        lines.append(
            f"uncommitted changes: {'yes' if old.dirty else 'no'} → {'yes' if new.dirty else 'no'}"
        )
    if (old.include, old.exclude) != (new.include, new.exclude):
        lines.append(
            f"code scope: include {list(old.include)} exclude {list(old.exclude)} → "
            f"include {list(new.include)} exclude {list(new.exclude)}"
        )
    if git and old.tree != new.tree:
        lines += _scope_notes(_tree_files(old, new), new.root)
    for path, sub in sorted(old.submodules.items()):
        now = new.submodules.get(path)
        if now is None:
            lines.append(f"submodule {path} removed")
        elif _repo_changed(sub, now):
            lines.append(f"submodule {path}: tree {_short(sub.tree)} → {_short(now.tree)}")
    lines += [
        f"submodule {path} added" for path in sorted(set(new.submodules) - set(old.submodules))
    ]
    return tuple(lines)


def _scope_notes(lines: list[str], root: str) -> list[str]:
    """Mark the changed files the project's `[tool.flexlock.code]` scope leaves out now."""
    from flexlock.core._errors import ConfigError
    from flexlock.core._project import project_code_scope

    try:
        scope = project_code_scope(root) if Path(root).is_dir() else None
    except ConfigError:
        scope = None
    if scope is None or not (scope.include or scope.exclude):
        return lines
    marked = []
    for line in lines:
        path = line.strip().partition("  ")[2]
        hidden = bool(path) and scope.hides(path)
        marked.append(f"{line}  (outside the project's code scope now)" if hidden else line)
    return marked


def _tree_files(old: RepoRecord, new: RepoRecord) -> list[str]:
    """List files changed between the recorded trees, if a repository here holds both."""
    from flexlock.core._errors import GitError
    from flexlock.core._git_snapshot import diff_trees

    error: GitError | None = None
    for root in dict.fromkeys((new.root, old.root)):
        if not Path(root).is_dir():
            continue
        try:
            return [
                f"  {line.replace(chr(9), '  ')}" for line in diff_trees(root, old.tree, new.tree)
            ]
        except GitError as caught:
            error = caught
    if error is not None:
        return [f"files unavailable: {str(error).splitlines()[0]}"]
    return [f"files unavailable: repository {new.root} is not on this machine"]


# --- data ---------------------------------------------------------------------


def _diff_records(
    section: Section,
    a: Mapping[str, Record],
    b: Mapping[str, Record],
    describe: Callable[[str, Record, Record], tuple[str, ...]],
) -> list[Change]:
    """Compare two sections of data or output records key by key (added, removed, changed)."""
    changes = []
    for key in [*a, *(key for key in b if key not in a)]:
        old, new = a.get(key), b.get(key)
        if old is None and new is not None:
            changes.append(Change(section, key, "added", None, _value(new)))
        elif new is None and old is not None:
            changes.append(Change(section, key, "removed", _value(old), None))
        elif old is not None and new is not None and _differs(old, new):
            changes.append(
                Change(section, key, "changed", _value(old), _value(new), describe(key, old, new))
            )
    return changes


def _value(record: DataRecord | OutputRecord) -> str:
    return record.hash or f"size={record.size} (not hashed)"  # an output over the hash cap


def _differs(old: DataRecord | OutputRecord, new: DataRecord | OutputRecord) -> bool:
    if old.hash and new.hash:
        return old.hash != new.hash
    return (old.size, old.files, old.mtime_ns) != (new.size, new.files, new.mtime_ns)


def _diff_data(
    a: Mapping[str, DataRecord],
    b: Mapping[str, DataRecord],
    a_path: Path | None,
    b_path: Path | None,
) -> list[Change]:
    return _diff_records(
        "data", a, b, lambda key, old, new: _data_detail(key, old, new, a_path, b_path)
    )


def _data_detail(
    key: str,
    old: DataRecord | OutputRecord,
    new: DataRecord | OutputRecord,
    a_path: Path | None,
    b_path: Path | None,
    *,
    manifest_name: str | None = None,
) -> tuple[str, ...]:
    lines = []
    if old.size != new.size:
        lines.append(f"size {old.size} → {new.size} bytes")
    if old.files != new.files and old.files is not None:
        lines.append(f"files {old.files} → {new.files}")
    if a_path is None or b_path is None:
        return tuple(lines)
    from flexlock.core._layout import find_manifest

    kept_as = manifest_name or key
    before_text, after_text = find_manifest(a_path, kept_as), find_manifest(b_path, kept_as)
    if before_text is None or after_text is None:
        return tuple(lines)

    return tuple(lines + manifest_lines(before_text, after_text))


# --- outputs ------------------------------------------------------------------


def _diff_outputs(
    a: Mapping[str, OutputRecord],
    b: Mapping[str, OutputRecord],
    a_path: Path | None,
    b_path: Path | None,
) -> list[Change]:
    from flexlock.core._outputs import output_manifest_key

    def describe(key: str, old: OutputRecord, new: OutputRecord) -> tuple[str, ...]:
        return _data_detail(key, old, new, a_path, b_path, manifest_name=output_manifest_key(key))

    return _diff_records("outputs", a, b, describe)


def manifest_lines(before_text: str, after_text: str) -> list[str]:
    """List files missing (-), extra (+) and changed (~) from one manifest to another."""
    from flexlock.core._hashing import parse_manifest

    before, after = parse_manifest(before_text), parse_manifest(after_text)
    lines = [f"  - {path}" for path in sorted(set(before) - set(after))]
    lines += [f"  + {path}" for path in sorted(set(after) - set(before))]
    lines += [
        f"  ~ {path}" for path in sorted(set(before) & set(after)) if before[path] != after[path]
    ]
    return lines


# --- upstream -----------------------------------------------------------------


def _diff_prevs(
    a: Mapping[str, PrevRecord], b: Mapping[str, PrevRecord], *, git: bool
) -> list[Change]:
    changes = []
    for key in [*a, *(key for key in b if key not in a)]:
        old, new = a.get(key), b.get(key)
        if old is None and new is not None:
            changes.append(Change("prevs", key, "added", None, new.id))
        elif new is None and old is not None:
            changes.append(Change("prevs", key, "removed", old.id, None))
        elif old is not None and new is not None and old.id != new.id:
            upstream = diff_locks(old.lock, new.lock, a_label=old.path, b_label=new.path, git=git)
            changes.append(Change("prevs", key, "changed", old.id, new.id, upstream=upstream))
    return changes


# --- environment --------------------------------------------------------------


def _diff_env(a: RunLock, b: RunLock) -> list[Change]:
    if a.env is None or b.env is None:
        return []
    changes = [
        Change("env", field, "changed", getattr(a.env, field), getattr(b.env, field))
        for field in ("python", "implementation", "platform", "hostname")
        if getattr(a.env, field) != getattr(b.env, field)
    ]
    old, new = a.env.packages, b.env.packages
    for name in sorted(set(old) | set(new)):
        if name not in new:
            changes.append(Change("env", f"packages.{name}", "removed", old[name], None))
        elif name not in old:
            changes.append(Change("env", f"packages.{name}", "added", None, new[name]))
        elif old[name] != new[name]:
            changes.append(Change("env", f"packages.{name}", "changed", old[name], new[name]))
    return changes
