"""What a run produced: the files it left in its save_dir, and the outputs it declared.

Recorded when the run finishes (succeeded or failed), never part of its identity.
Each top-level entry of the save_dir is one output, keyed by its name; an output
declared outside the save_dir (`runlock(outputs=[...])`, `${runlock_out:path}`) is
keyed by its path relative to the save_dir, so every key resolves from where the
run is now. Directories keep a file manifest under `.flexlock/manifests/` like data
inputs, so `verify` names the files that changed. Hashing goes through the hash
cache: a downstream run reading an output as data re-reads none of its bytes.

Left out: flexlock's own files (`run.lock`, `.flexlock/`, temp files, the task
logs), what the hasher never reads (`.git`, `__pycache__`, ...) and sub-directories
that hold a `run.lock` of their own (the runs of a task list sharing a save_dir). A
run that is killed (SIGTERM, Ctrl-C) records its outputs by size and mtime only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from flexlock.core._errors import HashError
from flexlock.core._layout import LOCK_NAME, STATE_DIR, TASK_LOG_NAMES, manifest_path
from flexlock.core._lockfile import TEMP_PREFIX
from flexlock.core._model import OutputRecord
from flexlock.core._system import usable_cpus, warn
from flexlock.core._walk import DEFAULT_EXCLUDES

__all__ = [
    "DEFAULT_OUTPUT_MAX_BYTES",
    "output_key",
    "output_manifest_key",
    "output_names",
    "record_outputs",
]

#: Outputs larger than this are recorded by size, file count and mtime only.
DEFAULT_OUTPUT_MAX_BYTES = 4 * 1024**3

# flexlock's own files, and what no hasher input ever holds (a repo's .git, caches).
_OWN_NAMES = frozenset({LOCK_NAME, STATE_DIR, *TASK_LOG_NAMES, *DEFAULT_EXCLUDES})


def output_names(run_dir: Path) -> list[str]:
    """Return the run's own top-level entries of `run_dir`, sorted; [] when it is gone."""
    names = []
    try:
        with os.scandir(run_dir) as scan:
            for entry in scan:
                name = entry.name
                if name in _OWN_NAMES or name.startswith(TEMP_PREFIX):
                    continue
                if entry.is_dir() and os.path.lexists(os.path.join(entry.path, LOCK_NAME)):  # noqa: PTH118
                    continue  # another run (a task of a list sharing this save_dir)
                names.append(name)
    except OSError:
        return []
    return sorted(names)


def output_key(path: str | os.PathLike[str], run_dir: Path) -> str:
    """Return the key of a declared output: its path relative to `run_dir`, POSIX style."""
    return Path(os.path.relpath(Path(path).absolute(), run_dir.absolute())).as_posix()


def output_manifest_key(key: str) -> str:
    """Return the name an output's manifest is kept under (never a data input's name)."""
    return f"outputs/{key}"


def record_outputs(
    run_dir: Path,
    declared: Iterable[str | os.PathLike[str]] = (),
    *,
    algorithm: str = "sha256",
    max_bytes: int = DEFAULT_OUTPUT_MAX_BYTES,
    hashing: bool = True,
    manifests: bool = True,
) -> dict[str, OutputRecord]:
    """Record every output of the run in `run_dir` (see the module docstring).

    An output that cannot be read is left out with a warning: recording what a run
    produced never turns a finished run into a failed one.
    """
    from flexlock.core._lockfile import write_atomic

    keys = output_names(run_dir)
    seen = set(keys)
    for path in declared:
        key = output_key(path, run_dir)
        top = key.split("/", 1)[0]
        if key not in seen and top not in seen:  # outputs inside the save_dir are listed already
            keys.append(key)
            seen.add(key)

    def record(key: str) -> tuple[OutputRecord, str | None] | None:
        try:
            return _record(run_dir / key, algorithm, max_bytes, hashing)
        except (HashError, OSError) as error:  # e.g. removed while the run finished
            warn("flexlock: output %s of %s not recorded: %s", key, run_dir, error)
            return None

    # One input per output, so each has the hash-cache entry a downstream run reading it
    # as data looks up; hashed side by side (hashlib releases the GIL on large reads).
    workers = min(usable_cpus(), len(keys))
    if workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers, thread_name_prefix="flexlock-outputs") as pool:
            results = list(pool.map(record, keys))
    else:
        results = [record(key) for key in keys]
    outputs = {}
    for key, result in zip(keys, results, strict=True):
        if result is None:
            continue
        outputs[key], manifest = result
        if manifest is not None and manifests:
            text = manifest.encode("utf-8", "surrogateescape")
            write_atomic(manifest_path(run_dir, output_manifest_key(key)), text)
    return outputs


def _record(
    path: Path, algorithm: str, max_bytes: int, hashing: bool
) -> tuple[OutputRecord, str | None]:
    from flexlock.core._walk import list_files

    newest: int | None
    if path.is_file():  # the usual output: a stat, not a walk
        info = path.stat()
        size, files, newest, is_directory = info.st_size, None, info.st_mtime_ns, False
    else:
        listing = list_files(path)  # raises HashError for a missing or unreadable output
        size, files, newest, is_directory = listing.size, len(listing.rels), listing.newest, True
    if not hashing or size > max_bytes:
        return OutputRecord(None, size, files=files, mtime_ns=newest), None
    from flexlock.core._hashing import hash_path, hash_path_with_manifest

    if is_directory:
        record, manifest = hash_path_with_manifest(path, algorithm=algorithm, progress=False)
    else:
        record, manifest = hash_path(path, algorithm=algorithm, progress=False), None
    return OutputRecord(record.hash, record.size, record.files, record.mtime_ns), manifest
