"""A run sheet as plain data, checked without building its records (for `flexlock show`).

`load()` builds attrs records through cattrs: importing both and generating the
converter's code costs several times a bare interpreter's start, which a command
that only prints a sheet should not pay. `load_plain` reads the file with the same
size cap and strict YAML reader, then checks every field against `SCHEMA`, a plain
copy of `_model`'s records (a test keeps the two equal). The check accepts only
sheets `load()` accepts; whatever it does not accept goes through `load()`, so
every error, and the odd sheet only cattrs' coercions accept, is exactly `load()`'s.

A schema-2 sheet's upstream runs are rebuilt into the same nested tree `load()`
builds (`prevs.<key>.lock`), by `_upstreams.unflatten`, so both readers apply the
same reference checks.

Layer "model and file format": imports `_errors`, `_upstreams` and `_lockfile` (and
`_model`, only for a sheet the check did not accept).
"""

from __future__ import annotations

import os
from typing import Any

from flexlock.core._errors import LockFileError

__all__ = ["SCHEMA", "SCHEMA_VERSION", "load_plain"]

#: `_model.SCHEMA_VERSION`, without importing the records.
SCHEMA_VERSION = 2

# Field kinds: str, int (not bool), bool, any (left as parsed), status (the
# `Status` literal), a record's name; `X?` is X or null, `[X]` a list of X,
# `{X}` a mapping of strings to X. A field is required when it has no default.
SCHEMA: dict[str, dict[str, tuple[str, bool]]] = {
    "RunLock": {
        "id": ("str", True),
        "status": ("status", True),
        "created": ("str", True),
        "config": ("{any}", False),
        "save_dir": ("str?", False),
        "finished": ("str?", False),
        "error": ("ErrorRecord?", False),
        "code": ("{RepoRecord}", False),
        "data": ("{DataRecord}", False),
        "prevs": ("{PrevRecord}", False),
        "env": ("EnvRecord?", False),
        "outputs": ("{OutputRecord}?", False),
        "flexlock": ("int", False),
        "attempts": ("[AttemptRecord]", False),
    },
    "ErrorRecord": {
        "type": ("str", True),
        "message": ("str", True),
        "traceback": ("str", False),
    },
    "SkippedFile": {"path": ("str", True), "size": ("int", True), "hash": ("str", True)},
    "RepoRecord": {
        "root": ("str", True),
        "commit": ("str?", True),
        "branch": ("str?", True),
        "remote": ("str?", True),
        "dirty": ("bool", True),
        "tree": ("str", True),
        "snapshot": ("str?", False),
        "changes": ("[str]", False),
        "skipped": ("[SkippedFile]", False),
        "include": ("[str]", False),
        "exclude": ("[str]", False),
        "outputs": ("[str]", False),
        "submodules": ("{RepoRecord}", False),
    },
    "DataRecord": {
        "hash": ("str", True),
        "size": ("int", True),
        "files": ("int?", False),
        "mtime_ns": ("int?", False),
    },
    "OutputRecord": {
        "hash": ("str?", True),
        "size": ("int", True),
        "files": ("int?", False),
        "mtime_ns": ("int?", False),
    },
    "PrevRecord": {"id": ("str", True), "path": ("str", True), "lock": ("RunLock", True)},
    "AttemptRecord": {
        "job_id": ("str", True),
        "state": ("str", True),
        "started": ("str?", False),
        "ended": ("str?", False),
    },
    "EnvRecord": {
        "python": ("str", True),
        "implementation": ("str", True),
        "platform": ("str", True),
        "hostname": ("str", True),
        "user": ("str", True),
        "cwd": ("str", True),
        "argv": ("[str]", False),
        "packages": ("{str}", False),
        "scheduler": ("{str}", False),
    },
}

_STATUSES = ("queued", "running", "succeeded", "failed")


def _fits(value: Any, kind: str) -> bool:
    """Tell whether `value` is of field kind `kind` (see `SCHEMA`)."""
    if kind.endswith("?"):
        return value is None or _fits(value, kind[:-1])
    if kind[0] == "{":
        item = kind[1:-1]
        return isinstance(value, dict) and all(
            isinstance(key, str) and _fits(entry, item) for key, entry in value.items()
        )
    if kind[0] == "[":
        return isinstance(value, list) and all(_fits(entry, kind[1:-1]) for entry in value)
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "any":
        return True
    if kind == "status":
        return isinstance(value, str) and value in _STATUSES
    fields = SCHEMA[kind]
    return isinstance(value, dict) and all(
        _fits(value[name], field_kind) if name in value else not required
        for name, (field_kind, required) in fields.items()
    )


class _NotPlainError(Exception):
    """A sheet (or one of its upstream sheets) the plain check does not accept."""


def _plain_tree(raw: Any, source: str) -> dict[str, Any] | None:
    """Return parsed sheet data as the nested tree `load()` reads, or None if unchecked."""
    from flexlock.core._upstreams import FLAT_SINCE, unflatten

    version = raw.get("flexlock") if isinstance(raw, dict) else None
    if not isinstance(version, int) or isinstance(version, bool) or version > SCHEMA_VERSION:
        return None
    if version < FLAT_SINCE:
        return raw if _fits(raw, "RunLock") else None

    def structure(entry: dict[str, Any], where: str) -> dict[str, Any]:
        if not _fits(entry, "RunLock"):
            raise _NotPlainError(where)
        return {**entry, "prevs": {}}  # as `nested_dict` writes a sheet without upstreams

    def link(
        sheet: dict[str, Any], prevs: dict[str, tuple[str, str, dict[str, Any]]]
    ) -> dict[str, Any]:
        linked = {
            name: {"id": id, "path": path, "lock": lock} for name, (id, path, lock) in prevs.items()
        }
        return {**sheet, "prevs": linked}

    try:
        return unflatten(raw, structure, link, lambda sheet: str(sheet["id"]), source=source)
    except (_NotPlainError, LockFileError):  # `load()` says what is wrong
        return None


def load_plain(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a run sheet as plain data (fields at their default may be absent), checked like `load`.

    Upstream sheets are nested under `prevs.<key>.lock`, whatever the schema.

    Raises:
        LockFileError: what `load(path)` raises: missing, unreadable, too large or malformed.
    """
    from flexlock.core._lockfile import from_dict, nested_dict, parse_yaml, read_text

    lock_file, text = read_text(path)
    raw = parse_yaml(text, source=str(lock_file))
    plain = _plain_tree(raw, str(lock_file))
    if plain is not None:
        return plain
    return nested_dict(from_dict(raw, source=str(lock_file)))
