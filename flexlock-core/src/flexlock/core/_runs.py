"""Find runs under a directory and read their sheets' headers cheaply (for `flexlock ls`).

A run directory is a directory holding a `run.lock`. The walk never descends into a
run's own files: inside a run directory it only follows sub-directories that are
themselves run directories (the task-list layout `results/process/param=3/run.lock`),
so a run holding a million data files costs one `stat` per sub-directory, not a walk
of its data. `deep=True` walks everything.

Listing 10,000 runs must not parse 10,000 full sheets (each may embed its upstream
sheets and a package list): `read_summary` parses only the header of the file, the
top-level keys before `code:`, which the writer puts first (`_lockfile._KEY_ORDER`).
Parsing that header is still most of the cost (PyYAML builds every value in Python),
so `SummaryCache` keeps the summaries of sheets that did not change since the last
listing, keyed by size, mtime and inode (a sheet is replaced, never edited in place,
so a rewrite always changes the inode or the mtime).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from flexlock.core._errors import LockFileError
from flexlock.core._layout import LOCK_NAME, resolve_lock_path
from flexlock.core._system import RACY_WINDOW_NS

__all__ = [
    "LOCK_NAME",
    "RunSummary",
    "SummaryCache",
    "find_runs",
    "is_missing",
    "lookup",
    "matches",
    "read_summary",
    "resolve_lock_path",
]


# Directory names the walk never enters: tool state, VCS and environments, which
# cannot hold runs and can be huge. Hidden directories (".git", ".flexlock" with
# its history of older sheets, ".venv", ...) are skipped by their leading dot.
# "mlruns" is MLflow's file store: it holds copies of logged sheets (artifacts), not runs.
_SKIPPED_NAMES = frozenset({"__pycache__", "node_modules", "site-packages", "mlruns"})

# Top-level keys after the header; the header ends at the first of them.
_BODY_KEYS = (b"\ncode:", b"\ndata:", b"\nprevs:", b"\nenv:")
_HEADER_CHUNK = 64 * 1024


@attrs.frozen
class RunSummary:
    """What `flexlock ls` shows of one run, read from the header of its sheet."""

    path: Path  # the run.lock
    id: str = ""
    status: str = "invalid"
    created: str = ""
    finished: str | None = None
    save_dir: str | None = None
    config: Mapping[str, Any] = attrs.field(factory=dict)
    error: str | None = None  # "<type>: <message>" of a failed run
    problem: str | None = None  # why the sheet could not be read (status "invalid")

    @property
    def run_dir(self) -> Path:
        """Return the directory holding the sheet."""
        return self.path.parent

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping (paths as strings)."""
        return {
            "path": str(self.path),
            "run_dir": str(self.run_dir),
            "id": self.id,
            "status": self.status,
            "created": self.created,
            "finished": self.finished,
            "save_dir": self.save_dir,
            "config": dict(self.config),
            "error": self.error,
            "problem": self.problem,
        }


def find_runs(
    root: str | os.PathLike[str], *, deep: bool = False, follow_symlinks: bool = False
) -> Iterator[Path]:
    """Yield the run.lock of every run under `root` (itself included), lazily, in walk order.

    Args:
        root: directory to search, or a run.lock / run directory.
        deep: also search inside run directories' non-run sub-directories.
        follow_symlinks: enter symlinked directories (loops are detected and skipped).

    Raises:
        LockFileError: `root` does not exist.
    """
    root = Path(root)
    if root.is_file():
        yield root
        return
    if not root.is_dir():
        raise LockFileError(f"{root}: no such directory")
    # os.scandir gives the entry type from the directory read itself (d_type), so
    # telling directories from files costs no extra stat; only run.lock is stat'ed.
    seen: set[tuple[int, int]] = set()
    stack = [(os.fspath(root), False)]
    while stack:
        directory, inside_run = stack.pop()
        if follow_symlinks:  # one stat per directory, only in this mode: loops and aliases
            try:
                info = os.stat(directory)  # noqa: PTH116 - str paths: no Path per directory
            except OSError:
                continue
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
        try:
            with os.scandir(directory) as entries:
                children = []
                is_run = False
                for entry in entries:
                    name = entry.name
                    if name == LOCK_NAME:
                        is_run = entry.is_file()
                    elif name[0] != "." and name not in _SKIPPED_NAMES:
                        try:
                            if entry.is_dir(follow_symlinks=follow_symlinks):
                                children.append(entry)
                        except OSError:
                            continue
        except OSError:
            continue  # unreadable or vanished directory: nothing to list there
        if is_run:
            yield Path(directory) / LOCK_NAME
        descend_all = deep or not (is_run or inside_run)
        # Reverse so the stack pops children in name order: stable, readable output.
        for entry in sorted(children, key=lambda item: item.name, reverse=True):
            if descend_all:
                stack.append((entry.path, is_run or inside_run))
            elif os.path.isfile(os.path.join(entry.path, LOCK_NAME)):  # noqa: PTH113, PTH118
                stack.append((entry.path, True))


def _read_header(path: Path) -> bytes:
    """Read the sheet up to its first body key (`code:`, `data:`, ...), or all of it.

    Raises:
        LockFileError: the sheet is over the reader's size cap or does not end with a
            newline (the writer always ends it with one: the file was cut short).
    """
    from flexlock.core._lockfile import max_lock_bytes

    cap = max_lock_bytes()
    overlap = max(len(key) for key in _BODY_KEYS) - 1
    buffer = bytearray()
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > cap:
            raise LockFileError(
                f"{path}: {size} bytes is over the run.lock size cap of {cap} "
                "(raise FLEXLOCK_MAX_LOCK_BYTES if this sheet is genuine)"
            )
        if size:
            handle.seek(size - 1)
            if handle.read(1) != b"\n":
                raise LockFileError(f"{path}: run.lock is cut short (no final newline)")
            handle.seek(0)
        while len(buffer) <= cap:
            chunk = handle.read(_HEADER_CHUNK)
            if not chunk:
                break
            start = max(0, len(buffer) - overlap)  # a key may straddle two chunks
            buffer += chunk
            cut = min(
                (index for key in _BODY_KEYS if (index := buffer.find(key, start)) >= 0),
                default=-1,
            )
            if cut >= 0:
                return bytes(buffer[: cut + 1])
    return bytes(buffer)


# What the header fields must be for `ls` to show them (the full reader checks the rest).
_STATUSES = frozenset({"queued", "running", "succeeded", "failed"})
_ID_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._+-]{0,199}")
_TIMESTAMP_SHAPE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?")


def _header_problem(raw: dict[Any, Any]) -> str | None:
    """Say which header field `ls` would show is malformed, or None when all are sound."""
    status, run_id = raw.get("status"), raw.get("id")
    if not isinstance(status, str) or status not in _STATUSES:
        return f"status {status!r} is not one of {', '.join(sorted(_STATUSES))}"
    if not isinstance(run_id, str) or not _ID_SHAPE.fullmatch(run_id):
        return f"id {run_id!r} is not a run id"
    for key in ("created", "finished"):
        value = raw.get(key)
        if value is None and key == "finished":
            continue
        if not isinstance(value, str) or not _TIMESTAMP_SHAPE.fullmatch(value):
            return f"{key} {value!r} is not a timestamp"
    for key, kind in (("save_dir", str), ("config", dict), ("error", dict)):
        value = raw.get(key)
        if value is not None and not isinstance(value, kind):
            return f"{key} {value!r} is not a {'string' if kind is str else 'mapping'}"
    return None


def read_summary(path: str | os.PathLike[str]) -> RunSummary:
    """Read the header of the sheet at `path` into a `RunSummary`; never raise for a bad sheet.

    The header is parsed with the sheet reader's strict rules (libyaml when present;
    duplicate keys, anchors and aliases refused), and the fields `ls` shows are
    checked (a known status, an id, timestamps). A sheet over the reader's size cap
    is refused unread. A sheet that cannot be read comes back with status "invalid"
    and `problem` set; `flexlock show` and `verify` read the whole sheet.
    """
    from flexlock.core._lockfile import parse_yaml
    from flexlock.core._model import SCHEMA_VERSION

    path = Path(path)
    try:
        header = _read_header(path).decode("utf-8")
    except LockFileError as error:
        return RunSummary(path=path, problem=str(error))
    except (OSError, UnicodeDecodeError) as error:
        return RunSummary(path=path, problem=f"{path}: cannot read run.lock: {error}")
    try:
        raw = parse_yaml(header, source=str(path))
    except LockFileError:
        # The cut may have split something unusual: the full read says what is wrong.
        return _full_summary(path)
    if not isinstance(raw, dict) or "id" not in raw:
        return RunSummary(path=path, problem=f"{path}: not a run.lock")
    version = raw.get("flexlock")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        return _full_summary(path)  # the full reader's message says what to upgrade
    problem = _header_problem(raw)
    if problem is not None:
        return RunSummary(path=path, problem=f"{path}: {problem}")
    config = raw.get("config")
    error_record = raw.get("error")
    error_text = None
    if isinstance(error_record, dict):
        error_text = f"{error_record.get('type', 'Error')}: {error_record.get('message', '')}"
    return RunSummary(
        path=path,
        id=raw["id"],
        status=raw["status"],
        created=raw["created"],
        finished=raw.get("finished"),
        save_dir=raw.get("save_dir"),
        config=config if isinstance(config, dict) else {},
        error=error_text,
    )


def _full_summary(path: Path) -> RunSummary:
    """Read the whole sheet with the strict loader (slow path for unusual headers)."""
    from flexlock.core._lockfile import load

    try:
        lock = load(path)
    except LockFileError as error:
        return RunSummary(path=path, problem=str(error))
    return RunSummary(
        path=path,
        id=lock.id,
        status=lock.status,
        created=lock.created,
        finished=lock.finished,
        save_dir=lock.save_dir,
        config=lock.config,
        error=f"{lock.error.type}: {lock.error.message}" if lock.error else None,
    )


# A sheet modified this recently may still be rewritten within the mtime granularity
# with the same size and a recycled inode: not cached (git's "racy clean" rule).
_SUMMARY_CACHE_VERSION = 2  # 2: header fields validated (issue 20); older entries are stale


class SummaryCache:
    """The summaries of the sheets under one root, kept between listings in the user's cache.

    One JSON file per listed root under `<cache dir>/summaries/`, rewritten atomically
    after a listing that changed it, holding only the runs of that listing (removed
    runs drop out). A missing, corrupt or unwritable cache file only costs speed.
    """

    def __init__(self, root: str | os.PathLike[str], cache_dir: Path | None = None) -> None:
        import hashlib

        from flexlock.core._hashcache import default_cache_dir

        self.root = str(Path(root).resolve())
        name = hashlib.sha256(os.fsencode(self.root)).hexdigest()[:24] + ".json"
        self.file = (cache_dir or default_cache_dir()) / "summaries" / name
        self._old: dict[str, list[Any]] = self._read()
        self._new: dict[str, list[Any]] = {}
        self._dirty = False

    def _read(self) -> dict[str, list[Any]]:
        import json

        try:
            raw = json.loads(self.file.read_bytes())
        except (OSError, ValueError):
            return {}
        if not isinstance(raw, dict) or raw.get("version") != _SUMMARY_CACHE_VERSION:
            return {}
        entries = raw.get("runs")
        return entries if isinstance(entries, dict) else {}

    def summary(self, path: Path) -> RunSummary:
        """Return the summary of the sheet at `path`, from the cache when it is unchanged."""
        try:
            info = os.stat(path)  # noqa: PTH116 - one stat per sheet, str path is cheaper
        except OSError:
            return read_summary(path)
        key = os.path.relpath(path, self.root)
        stamp = [info.st_size, info.st_mtime_ns, info.st_ino]
        entry = self._old.get(key)
        if entry is not None and entry[:3] == stamp and isinstance(entry[3], dict):
            summary = _summary_from_cache(path, entry[3])
        else:
            summary = read_summary(path)
            self._dirty = True
        if time.time_ns() - info.st_mtime_ns > RACY_WINDOW_NS:
            self._new[key] = [*stamp, _summary_to_cache(summary)]
        return summary

    def save(self) -> None:
        """Write the cache file if this listing changed it (atomically; errors ignored)."""
        import json

        from flexlock.core._lockfile import write_atomic

        if not self._dirty and self._new.keys() == self._old.keys():
            return
        payload = {"version": _SUMMARY_CACHE_VERSION, "root": self.root, "runs": self._new}
        # A read-only or full cache directory only means the next listing parses again.
        with contextlib.suppress(OSError):
            write_atomic(self.file, json.dumps(payload, default=str).encode("utf-8"))


def _summary_to_cache(summary: RunSummary) -> dict[str, Any]:
    raw = summary.to_dict()
    del raw["path"], raw["run_dir"]
    return raw


def _summary_from_cache(path: Path, raw: dict[str, Any]) -> RunSummary:
    return RunSummary(path=path, **raw)


_MISSING = object()


def lookup(config: Mapping[str, Any], dotted_key: str) -> Any:
    """Return the value at `dotted_key` ("model.lr") in a nested config, or `_MISSING`."""
    value: Any = config
    for part in dotted_key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def is_missing(value: Any) -> bool:
    """Tell whether `lookup` found nothing."""
    return value is _MISSING


def matches(summary: RunSummary, filters: Iterable[tuple[str, str]]) -> bool:
    """Tell whether every `(dotted_key, text)` filter matches the run's config.

    A filter matches when the value, read as YAML, equals the config value (`lr=0.1`
    matches 0.1 and `name=012` the string "012"), or when the value's text matches
    as an fnmatch pattern (`model=resnet*`). The keys `status`, `id` and `save_dir`
    match the sheet's own fields when the config has no such key.
    """
    import fnmatch

    import yaml

    for key, text in filters:
        value = lookup(summary.config, key)
        if value is _MISSING:
            value = {"status": summary.status, "id": summary.id, "save_dir": summary.save_dir}.get(
                key, _MISSING
            )
        if value is _MISSING:
            return False
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError:
            parsed = _MISSING
        as_text = value if isinstance(value, str) else _plain_text(value)
        # isinstance check: YAML "1" must not match True (1 == True in Python).
        if parsed == value and isinstance(parsed, bool) == isinstance(value, bool):
            continue
        if as_text == text or fnmatch.fnmatchcase(as_text, text):
            continue
        return False
    return True


def _plain_text(value: Any) -> str:
    """Render a config value the way a user types it on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
